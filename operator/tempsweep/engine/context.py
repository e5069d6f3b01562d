"""Everything one cleanup needs, in one object, so functions take a context instead of eleven arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tempsweep.engine.exclusion import exclusion_matcher
from tempsweep.engine.inventory import Inventory, JobResolver
from tempsweep.engine.ports import AuditSink, FilesystemStorage, JobSource, StorageError, StorageProvider, Usage
from tempsweep.engine.rules import Clock
from tempsweep.models.effective import EffectivePolicy


@dataclass(frozen=True)
class Progress:
    """A progress report for long runs (the CLI prints it on a terminal, the operator patches status)."""

    files_planned: int  # files the applier has taken on so far (deleted, skipped or failed)
    files_deleted: int
    bytes_freed: int
    deleted_by_reason: Mapping[str, int] = field(default_factory=dict)  # deleted files per reason so far


#: Asked between batches: a reason to stop the cleanup now (the run or its policy was deleted, the policy
#: suspended), or None to go on. Must be cheap and must not block: it is called once per round of batches.
StopCheck = Callable[[], str | None]


@dataclass
class CleanupContext:
    """A policy bound to its storage and job source, at an instant."""

    policy: EffectivePolicy
    storage: StorageProvider
    jobs: JobSource | None = None
    now: datetime | None = None
    progress: Callable[[Progress], None] | None = None
    should_stop: StopCheck | None = None
    audit: AuditSink | None = None  # spec.audit: one line per deleted (dry run: planned) file

    def clock(self) -> Clock:
        now = self.now or datetime.now(UTC)
        return Clock(now if now.tzinfo else now.replace(tzinfo=UTC))

    def inventory(self, *, resolve_jobs: bool = True) -> tuple[Inventory, JobResolver]:
        """A fresh single-pass inventory of the storage, with its job resolver."""
        resolver = JobResolver(self.policy, self.jobs if self.policy.rules.has_job_source else None)
        excluded = exclusion_matcher(self.policy.rules.exclude)
        # excluded directories are not even listed, unless their files must count as used space
        storage, measured = self.storage, self.policy.rules.capacity_bytes is None
        if excluded is not None and measured and isinstance(storage, FilesystemStorage):
            entries = storage.scan_pruned(excluded.excludes_directory)
        else:
            entries = self.storage.scan()
        return Inventory(entries, self.policy, resolver, resolve_jobs=resolve_jobs), resolver

    def usage(self, bytes_total: int) -> Usage:
        """Usage against the capacity when one is set, else the filesystem's own figures."""
        if self.policy.rules.capacity_bytes is not None:
            return Usage(used=bytes_total, total=self.policy.rules.capacity_bytes)
        measured = self.storage.filesystem_usage()
        if measured is None:
            raise StorageError(
                f"{self.storage.description} has no filesystem usage: set a capacity in the policy"
            )
        return measured

    def measure_usage(self) -> tuple[Usage, list[str]]:
        """Usage measured afresh, not computed from what was deleted, with any problems met measuring it.

        On a filesystem: its statistics (deleting a hard link's other name, a sparse file or a file
        still held open frees nothing, and this shows it). With a capacity: a new listing, summed
        (capacity mode counts the bytes of the files under the root, so a hard link's remaining name
        still counts). Listing problems come back with it: such a sum may be short, so the caller must
        not trust it as a success.
        """
        if self.policy.rules.capacity_bytes is None:
            return self.usage(0), []
        used = sum(entry.size for entry in self.storage.scan())
        return Usage(used=used, total=self.policy.rules.capacity_bytes), self.storage.scan_errors()
