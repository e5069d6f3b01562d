"""CleanupPolicy ``.spec.prediction`` and ``.spec.audit``: acting before the disk is full, and keeping a record.

Both are opt-in: absent, the operator predicts (status only) but never cleans early, and writes no audit.
Kept apart from ``policy`` because neither changes which files a scenario may delete: prediction only
decides *when* the gentle cleanup runs, and the audit only records what was deleted.
"""

from __future__ import annotations

import posixpath
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt

from tempsweep.models.base import FiniteFloat, WireModel
from tempsweep.models.quantities import parse_duration, parse_quantity

#: The confidence a prediction needs before it may start a cleanup (the FillingUp alert uses the same).
DEFAULT_MIN_CONFIDENCE = 0.5
DEFAULT_AUDIT_MAX_BYTES = 10 * 2**20
MIN_AUDIT_MAX_BYTES = 4096


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def _size_input(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a size: use a whole number of bytes or a quantity such as 10Mi")
    return value


def _audit_size(value: int | str) -> int | str:
    if parse_quantity(value) < MIN_AUDIT_MAX_BYTES:
        raise ValueError(f"{value!r} is below {MIN_AUDIT_MAX_BYTES} bytes: too small to hold a few lines")
    return value


def _directory(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is relative: the audit directory must be absolute")
    if "\x00" in value or ".." in value.split("/"):
        raise ValueError(f"{value!r}: write the path without NUL bytes or '..'")
    normal = posixpath.normpath(value)
    return "/" + normal.lstrip("/")


Duration = Annotated[str, AfterValidator(_duration)]
AuditSize = Annotated[int | str, BeforeValidator(_size_input), AfterValidator(_audit_size)]
AuditDirectory = Annotated[str, AfterValidator(_directory)]


class PredictionSpec(WireModel):
    """Predictive cleanup: clean gently before the emergency threshold is reached."""

    horizon: Duration = Field(
        description="When status.prediction puts the emergency threshold within this duration (e.g. 6h) with "
        "at least minConfidence, the operator runs a Predictive cleanup at once: orphans and failed jobs' "
        "files only (the Orphaned and CrashRecovery rules), never the emergency's oldest-files tier, under "
        "the same guard (limits.maxDeletePercent), dry run and suspend; and posts a FillingUp event.",
    )
    min_confidence: FiniteFloat = Field(
        default=DEFAULT_MIN_CONFIDENCE,
        ge=0.1,
        le=1,
        description="The prediction's confidence (0..1) needed to act; below it nothing runs early.",
    )
    cooldown: Duration = Field(
        default="1h",
        description="At most one Predictive cleanup per this duration (status.lastPredictiveTime), whatever "
        "the prediction keeps saying.",
    )


class AuditSpec(WireModel):
    """A lasting record of what was deleted and why: one JSON line per deleted (dry run: planned) file."""

    directory: AuditDirectory | None = Field(
        default=None,
        description="Absolute directory (as mounted into the operator, or on the machine running the CLI) "
        "for the file NAMESPACE_POLICY.audit.jsonl, rotated by size. It must exist and lie outside the "
        "cleaned volume, also through symlinks or another mount of it (refused otherwise). When the file "
        "cannot be written, nothing (more) is deleted: the run fails with reason AuditUnavailable. Left out: "
        "the lines go to the log stream (logger tempsweep.audit), best effort: a failed log write is not seen.",
    )
    max_bytes: AuditSize = Field(
        default=DEFAULT_AUDIT_MAX_BYTES, description="Rotate the file when it would grow past this size (10Mi)."
    )
    backups: StrictInt = Field(
        default=5, ge=1, le=1000, description="Rotated files kept (.1 is the newest); older ones are removed."
    )
