"""The small interfaces the engine's callers talk through: where files are, where job status is read,
and where finished runs are recorded.

Real implementations live in ``tempsweep.storage`` (volume, Azure Blob), ``tempsweep.jobs`` (SQL)
and ``tempsweep.history`` (SQL); in-memory ones ship beside them for tests and demos. The engine
imports only this module, so it never learns about filesystems, SQLAlchemy or Azure.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from tempsweep.models.status import RunStatus


@dataclass(slots=True, eq=False)
class FileEntry:
    """One file as the scan saw it (not frozen only because frozen dataclasses cost ~1 µs per
    instance, which is a fifth of the scan's per-file budget; treat it as immutable).

    ``path`` is relative to the storage root with '/' separators; ``token`` identifies this exact
    version of the file (inode and mtime on a volume, ETag on a blob) so a deletion can refuse a
    file that changed after it was planned.
    """

    path: str
    size: int
    mtime: float
    token: Hashable = None
    archived: bool = False

    @property
    def name(self) -> str:
        """The file name: the last path component."""
        return self.path.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class Usage:
    """Bytes used of a total. For a filesystem the total is used + available (as ``df`` computes the
    percentage); with a capacity it is the capacity, and usage may exceed 100 %."""

    used: int
    total: int

    @property
    def free(self) -> int:
        return max(0, self.total - self.used)

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.total if self.total > 0 else 100.0

    def after_freeing(self, freed: int) -> Usage:
        """The usage once ``freed`` bytes are gone."""
        return Usage(used=max(0, self.used - freed), total=self.total)


class Outcome(StrEnum):
    """What happened to one file the applier asked to delete."""

    DELETED = "deleted"
    VANISHED = "vanished"
    CHANGED = "changed"
    IN_USE = "in-use"  # another process holds a lock on it (or on a directory above it): kept
    FAILED = "failed"


@dataclass(slots=True, eq=False)
class DeleteResult:
    entry: FileEntry
    outcome: Outcome
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """A directory as the scan saw it: ``entries`` counts everything in it (files, directories,
    symlinks, excluded or unreadable entries alike), so it is empty only when ``entries`` is 0.
    ``token`` identifies this exact directory (device and inode) for the re-check before rmdir."""

    path: str
    mtime: float
    entries: int
    token: Hashable = None

    @property
    def parent(self) -> str:
        return self.path.rpartition("/")[0]

    @property
    def depth(self) -> int:
        return self.path.count("/") + 1


@dataclass(slots=True, eq=False)
class DirectoryResult:
    directory: DirectoryEntry
    outcome: Outcome
    detail: str = ""


class StorageError(RuntimeError):
    """The storage as a whole cannot be used (root missing, credentials refused, ...)."""


class StorageProvider(Protocol):
    """Files under one root: streamed listing, safe batch deletion, usage."""

    description: str

    def scan(self) -> Iterator[FileEntry]:
        """Every regular file under the root, streamed; never follows symlinks or leaves the root."""
        ...

    def filesystem_usage(self) -> Usage | None:
        """The backing filesystem's usage, or None when usage must come from a capacity."""
        ...

    def scan_errors(self) -> list[str]:
        """Problems met by the last scan (unreadable directories, ...), cleared by the call."""
        ...

    def delete(self, entries: Sequence[FileEntry]) -> list[DeleteResult]:
        """Delete each entry if it is still the version that was scanned; one result per entry."""
        ...


@runtime_checkable
class FilesystemStorage(Protocol):
    """What a storage with real directories and file locks adds (a volume; Azure prefixes have neither:
    an empty virtual folder does not exist, and blobs cannot be locked like files)."""

    def scan_pruned(self, prune: Callable[[str], bool]) -> Iterator[FileEntry]:
        """Like ``scan``, but directories for which ``prune(relative_path)`` is true are not entered."""
        ...

    def directories(self) -> Sequence[DirectoryEntry]:
        """The directories the last scan listed completely (never the root, never a mount point)."""
        ...

    def skipped_in_use(self) -> list[str]:
        """Directories the last scan did not enter because another process holds a lock on them."""
        ...

    def probe(self, entries: Sequence[FileEntry]) -> list[DeleteResult]:
        """Every check ``delete`` makes, without deleting: DELETED means 'would be deleted'."""
        ...

    def remove_directories(self, directories: Sequence[DirectoryEntry]) -> list[DirectoryResult]:
        """rmdir each directory, deepest first, if it is still the one scanned, empty and unlocked."""
        ...


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A row of the job table: its status and when that status last changed (aware UTC or None)."""

    job_id: str
    status: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobCounts:
    active: int
    failed: int


class JobSourceError(RuntimeError):
    """Job status could not be read; the message is safe to show (no credentials)."""


class JobSource(Protocol):
    """Read-only access to job status."""

    @property
    def query_count(self) -> int:
        """Queries sent so far (for the run status and the query-count guarantees)."""
        ...

    def lookup(self, job_ids: Sequence[str]) -> Mapping[str, JobRecord]:
        """Records of the given ids that exist; an id missing from the result is unknown to the table."""
        ...

    def failed_jobs(self) -> Sequence[JobRecord]:
        """Every job in a failed status."""
        ...

    def counts(self) -> JobCounts:
        """How many jobs are active and failed."""
        ...


class HistoryRecorder(Protocol):
    """Where finished runs are recorded (best effort: a failure is returned, never raised)."""

    def record(self, run_name: str, status: RunStatus) -> str | None:
        """Record one finished run; None, or why it could not be recorded."""
        ...


class AuditError(RuntimeError):
    """The audit record could not be written; the message is safe to show. Nothing more may be deleted."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One deleted file (or, in a dry run, one planned deletion) for the audit record."""

    path: str  # relative to the storage root
    reason: str  # a DeletionReason
    size: int
    mtime: float
    planned: bool  # a dry run's plan, not a deletion


class AuditSink(Protocol):
    """Where the per-file audit goes (``spec.audit``), bound to one run by its caller (who adds the run,
    policy and type). Writes must be durable enough to rely on: a failure raises ``AuditError``."""

    def open(self) -> None:
        """Make sure the record can be written, before anything is deleted; AuditError when it cannot."""
        ...

    def record(self, entry: AuditEntry) -> None:
        """Write one line; AuditError when it could not be written."""
        ...

    def close(self) -> None: ...
