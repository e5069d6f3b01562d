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
and its real path (symlinks resolved, and through bind mounts: ``storage.mounts``) must not lie inside the
cleaned volume, which could otherwise delete its own record.

Hostile input: a file name is any bytes but '/' and NUL, so each line is one JSON object on one line
whatever the name holds, naming its exact bytes (``models.jsontext``). A modification time the calendar
cannot show is written as POSIX seconds. The audit file is opened without following a symlink and must
be a regular file (a FIFO planted there would block the run forever): the record is never written
through something swapped in between runs.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import logging.handlers
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime

from tempsweep.engine.ports import AuditEntry, AuditError
from tempsweep.models.effective import AuditTarget, Backend, inside
from tempsweep.models.jsontext import one_line_json
from tempsweep.storage.mounts import device_location

AUDIT_LOGGER = "tempsweep.audit"
#: What Kubernetes allows as a namespace or object name: the audit file's name is made of them.
_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
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


def _mtime(seconds: float) -> str | float:
    """RFC 3339 in UTC, or the POSIX seconds themselves when no calendar date fits (before year 1, after 9999)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return seconds


def _line(labels: AuditLabels, entry: AuditEntry) -> dict[str, object]:
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": "planned" if entry.planned else "deleted",
        "path": entry.path,
        "reason": entry.reason,
        "size": entry.size,
        "mtime": _mtime(entry.mtime),
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

    def _open(self) -> io.TextIOWrapper:
        return open(self.baseFilename, "a", encoding=self.encoding, errors=self.errors, opener=_own_file)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        import sys

        self.failure = sys.exc_info()[1] or OSError("write failed")


def _own_file(path: str, flags: int) -> int:
    """Open ``path`` itself: never through a symlink, never a FIFO or device (O_NONBLOCK: no wait on open)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o640)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "a symbolic link: the audit is never written through one") from None
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads (or a socket)
            raise OSError(errno.ENXIO, "not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


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
        labels = self._labels
        if not all(_DNS_NAME.fullmatch(value) for value in (labels.namespace, labels.policy)):
            # the API server allows no other names; a CLI policy file might hold "../x" or a slash
            raise AuditError(
                f"metadata: namespace {labels.namespace!r} and name {labels.policy!r} must be DNS names "
                "(lowercase letters, digits, '-', '.') to name the audit file"
            )
        if not os.path.isdir(self.directory):
            raise AuditError(f"spec.audit.directory: {self.directory} does not exist or is not a directory")
        if self._volume is not None:
            real, volume = os.path.realpath(self.directory), os.path.realpath(self._volume)
            if inside(real, volume):
                raise AuditError(
                    f"spec.audit.directory: {self.directory} is {real}, inside the cleaned volume {self._volume}"
                )
            self._refuse_the_volume_mounted_again()
        try:
            handler = _KeepingErrors(
                self.path, maxBytes=self._target.max_bytes, backupCount=self._target.backups, encoding="utf-8"
            )
        except OSError as exc:
            raise AuditError(f"spec.audit.directory: {self.path}: {exc.strerror or exc}") from None
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._handler = handler

    def _refuse_the_volume_mounted_again(self) -> None:
        """The directory may be part of the volume under another name (a bind mount, a subPath)."""
        assert self._volume is not None
        here, volume = device_location(self.directory), device_location(self._volume)
        if here is not None and volume is not None and here[0] == volume[0] and inside(here[1], volume[1]):
            raise AuditError(
                f"spec.audit.directory: {self.directory} is {here[1]} on device {here[0]}, inside the cleaned "
                f"volume {self._volume} ({volume[1]} on the same device) mounted under another name"
            )

    def record(self, entry: AuditEntry) -> None:
        handler = self._handler
        if handler is None:
            raise AuditError("the audit file is not open")
        message = one_line_json(_line(self._labels, entry))
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
        text = one_line_json(fields)
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
