"""``--log-format json``: one JSON object per log line, for log pipelines (Loki, Elasticsearch, Cloud Logging).

Every line has ``time`` (UTC, RFC 3339), ``level``, ``logger`` and ``message``; ``namespace``, ``policy``,
``run`` and ``reason`` are added where known: from ``extra={...}`` on the call, from Kopf's object
reference on operator lines about a CleanupPolicy or CleanupRun, or from ``ContextFields`` (the CLI knows
which policy and run it works on). Stdlib only: the format is small and ours to keep stable.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tempsweep.models.jsontext import one_line_json

FIELDS = ("namespace", "policy", "run", "reason")
DEFAULTS_ATTRIBUTE = "tempsweep_defaults"
#: A record's own structured fields (the deletion audit's path, size, ...), merged in last, top level.
FIELDS_ATTRIBUTE = "tempsweep_fields"
_KIND_FIELD = {"CleanupPolicy": "policy", "CleanupRun": "run"}


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # weakest first: fixed context, then the object Kopf logs about, then the call's own extra fields
        line.update(getattr(record, DEFAULTS_ATTRIBUTE, {}))
        line.update(_object_fields(getattr(record, "k8s_ref", None)))
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = str(value)
        line.update(getattr(record, FIELDS_ATTRIBUTE, None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return one_line_json(line, default=str)  # a file name in a message cannot forge or break a line


def _object_fields(ref: object) -> dict[str, str]:
    """namespace and policy/run from Kopf's ``k8s_ref`` (a dict with kind, name, namespace)."""
    if not isinstance(ref, dict):
        return {}
    fields: dict[str, str] = {}
    if ref.get("namespace"):
        fields["namespace"] = str(ref["namespace"])
    field = _KIND_FIELD.get(str(ref.get("kind")))
    if field and ref.get("name"):
        fields[field] = str(ref["name"])
    return fields


class ContextFields(logging.Filter):
    """Fixed fields (e.g. the CLI's policy and run) for records that do not carry their own."""

    def __init__(self, **fields: str | None) -> None:
        super().__init__()
        self.fields = {k: v for k, v in fields.items() if k in FIELDS and v}

    def filter(self, record: logging.LogRecord) -> bool:
        setattr(record, DEFAULTS_ATTRIBUTE, {**getattr(record, DEFAULTS_ATTRIBUTE, {}), **self.fields})
        return True


def use_json(logger: logging.Logger | None = None, **fields: str | None) -> None:
    """Give every handler of ``logger`` (default: the root logger) the JSON formatter, and the given
    fixed fields (on the handler, so records propagated from child loggers get them too)."""
    for handler in (logger or logging.getLogger()).handlers:
        handler.setFormatter(JsonFormatter())
        if fields:
            handler.addFilter(ContextFields(**fields))
