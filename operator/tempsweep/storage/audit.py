"""The per-file deletion audit (``spec.audit``): one JSON line per deleted (dry run: planned) file.

Two places a line can go: a file ``NAMESPACE_POLICY.audit.jsonl`` in a directory the policy names,
rotated by size with the standard library's ``RotatingFileHandler`` (well kept, and its rollover --
rename ``.1`` to ``.2`` ..., drop the oldest -- is exactly the behaviour wanted, so none of ours); or
the log stream, through the logger ``tempsweep.audit`` (with ``--log-format json`` the line's fields
become the log object's fields).

Fail closed: the owner of the policy asked for a record, so a record that cannot be written stops the
deletions (``AuditError``) instead of deleting unrecorded. The handler normally swallows write errors
(``Handler.handleError`` prints them); ours keeps the error and raises it to the engine. The directory
must already exist -- a missing one is far more often an unmounted volume than a wish to create it --
and its real path (symlinks resolved) must not lie inside the cleaned volume, which could otherwise
delete its own record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from tempsweep.engine.ports import AuditEntry, AuditError
from tempsweep.models.effective import AuditTarget, Backend, inside

AUDIT_LOGGER = "tempsweep.audit"
#: The attribute ``telemetry.jsonlog`` merges into a JSON log line (the audit fields, top level).
FIELDS_ATTRIBUTE = "tempsweep_fields"


@dataclass(frozen=True)
class AuditLabels:
    """What the caller knows about the run: who ran it and for which policy."""

    namespace: str
    policy: str
    run: str  # a CleanupRun's name, or the timer's pass (timer-Scheduled, timer-Predictive, ...)
    run_type: str
    run_uid: str | None = None  # a CleanupRun's uid (its name may be reused later)


def _line(labels: AuditLabels, entry: AuditEntry) -> dict[str, object]:
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": "planned" if entry.planned else "deleted",
        "path": entry.path,
        "reason": entry.reason,
        "size": entry.size,
        "mtime": datetime.fromtimestamp(entry.mtime, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "type": labels.run_type,
        "run": labels.run,
        **({"runUid": labels.run_uid} if labels.run_uid else {}),
        "policy": labels.policy,
        "namespace": labels.namespace,
        "dryRun": entry.planned,
    }


class _KeepingErrors(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that remembers a failed write instead of printing it and carrying on."""

    failure: BaseException | None = None

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        import sys

        self.failure = sys.exc_info()[1] or OSError("write failed")


class FileAudit:
    """Audit lines appended to a size-rotated file outside the cleaned tree."""

    def __init__(self, target: AuditTarget, volume_path: str | None, labels: AuditLabels) -> None:
        assert target.directory is not None
        self.directory = target.directory
        self.path = os.path.join(target.directory, target.file_name(labels.namespace, labels.policy))
        self._target = target
        self._volume = volume_path
        self._labels = labels
        self._handler: _KeepingErrors | None = None

    def open(self) -> None:
        if not os.path.isdir(self.directory):
            raise AuditError(f"spec.audit.directory: {self.directory} does not exist or is not a directory")
        if self._volume is not None:
            real, volume = os.path.realpath(self.directory), os.path.realpath(self._volume)
            if inside(real, volume):
                raise AuditError(
                    f"spec.audit.directory: {self.directory} is {real}, inside the cleaned volume {self._volume}"
                )
        try:
            handler = _KeepingErrors(
                self.path, maxBytes=self._target.max_bytes, backupCount=self._target.backups, encoding="utf-8"
            )
        except OSError as exc:
            raise AuditError(f"spec.audit.directory: {self.path}: {exc.strerror or exc}") from None
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._handler = handler

    def record(self, entry: AuditEntry) -> None:
        handler = self._handler
        if handler is None:
            raise AuditError("the audit file is not open")
        message = json.dumps(_line(self._labels, entry), ensure_ascii=False)
        handler.handle(logging.LogRecord(AUDIT_LOGGER, logging.INFO, self.path, 0, message, None, None))
        if handler.failure is not None:
            failure, handler.failure = handler.failure, None
            detail = failure.strerror if isinstance(failure, OSError) and failure.strerror else str(failure)
            raise AuditError(f"{self.path}: {detail}")

    def close(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            # every line was flushed as it was written (and a failure raised then); what close may still
            # fail on is the rest of a write that already failed
            with contextlib.suppress(OSError):
                handler.close()


class LogAudit:
    """Audit lines on the log stream (logger ``tempsweep.audit``, INFO even when other loggers are quieter)."""

    def __init__(self, labels: AuditLabels) -> None:
        self._labels = labels
        self._log = logging.getLogger(AUDIT_LOGGER)

    def open(self) -> None:
        if self._log.level == logging.NOTSET or self._log.level > logging.INFO:
            self._log.setLevel(logging.INFO)

    def record(self, entry: AuditEntry) -> None:
        fields = _line(self._labels, entry)
        # the text format shows the JSON line; the JSON format merges the fields into its own object
        text = json.dumps(fields, ensure_ascii=False)
        fields["message"] = f"{fields['action']} {entry.path}"
        self._log.info(text, extra={FIELDS_ATTRIBUTE: fields})

    def close(self) -> None:
        return None


def open_audit(backend: Backend, labels: AuditLabels) -> FileAudit | LogAudit | None:
    """The audit sink the policy asks for, bound to one run; None without ``spec.audit``."""
    target = backend.audit
    if target is None:
        return None
    if target.directory is None:
        return LogAudit(labels)
    return FileAudit(target, backend.volume_path, labels)
