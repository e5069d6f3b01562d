"""Applying a plan: batched, bounded, parallel deletions through a storage provider.

The planner decides; this module only carries decisions out (or, for a dry run, records what it
would have done, through exactly the same path minus the provider call). Batches of
``batchSize`` go to a small thread pool because unlinks overlap well across threads; at most
``maxFilesPerRun`` files are attempted per run, however many phases share the applier.

A dry run on a storage that can check without deleting (``FilesystemStorage.probe``: a volume)
asks it, so files locked by another process are reported as in use, not as "would delete".
Files another process holds a lock on are kept and counted (``in_use``), not errors. Deleted (or,
dry, would-be-deleted) files are also counted per directory for ``directories.remove_emptied``.

With an audit sink (``spec.audit``) every deleted file, and in a dry run every planned one, gets a line;
a plan the guard stopped is not audited (nothing was deleted, and the status lists it). When a line
cannot be written the applier stops at the next batch boundary, as it does when cancelled: the person
who asked for a record gets no deletions without one beyond the batches already under way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from tempsweep.engine.ports import (
    AuditEntry,
    AuditError,
    AuditSink,
    DeleteResult,
    FileEntry,
    FilesystemStorage,
    Outcome,
    StorageProvider,
)
from tempsweep.models.effective import EffectivePolicy
from tempsweep.models.enums import DeletionReason
from tempsweep.models.status import MAX_ERRORS, MAX_SHOWN_MESSAGE, MAX_WOULD_DELETE, shortened


@dataclass(slots=True, eq=False)
class Decision:
    """One planned deletion and why."""

    entry: FileEntry
    reason: DeletionReason


@dataclass
class Tally:
    """What the applier did (or would have done) so far."""

    attempted: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    vanished: int = 0  # gone before we got to them: reported, but not a failure of the run
    by_reason: Counter[str] = field(default_factory=Counter)
    freed_by_reason: Counter[str] = field(default_factory=Counter)  # bytes, keyed like by_reason
    would_delete: list[str] = field(default_factory=list)
    would_count: int = 0
    would_bytes: int = 0
    would_by_reason: Counter[str] = field(default_factory=Counter)
    limit_reached: bool = False
    cancelled: str | None = None  # why the run stopped early at a batch boundary (StopCheck's answer)
    in_use: set[str] = field(default_factory=set)  # locked by another process: kept (dirs end in '/')
    emptying: Counter[str] = field(default_factory=Counter)  # this phase's deletions per parent directory
    directories_removed: int = 0
    would_remove_directories: int = 0
    audit_failure: str | None = None  # why the audit record could not be written: no more deletions

    def take_emptying(self) -> Counter[str]:
        """The per-directory deletion counts since the last call (one phase's), and start afresh."""
        counts, self.emptying = self.emptying, Counter()
        return counts

    def add_error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(shortened(message, MAX_SHOWN_MESSAGE))


ProgressCallback = Callable[[Tally], None]
StopCheck = Callable[[], str | None]


class Applier:
    """Carries out decisions for one run; several plans (phases) may share it and its budget."""

    def __init__(
        self,
        provider: StorageProvider,
        policy: EffectivePolicy,
        *,
        dry_run: bool,
        progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self._provider = provider
        self._policy = policy
        self.dry_run = dry_run
        self._progress = progress
        self._should_stop = should_stop
        self._audit = audit
        self._reporting = False  # recording a stopped plan: not audited
        self.tally = Tally()

    def stopped(self) -> bool:
        """True once the run was told to stop, or its audit failed; asked between batches, never in the
        middle of one."""
        if self.tally.audit_failure is not None:
            return True
        if self.tally.cancelled is None and self._should_stop is not None:
            self.tally.cancelled = self._should_stop()
        return self.tally.cancelled is not None

    def _audited(self, entry: FileEntry, reason: DeletionReason | None, *, planned: bool) -> None:
        """Write the entry's audit line; a failure stops the run (and names a deleted file left unrecorded)."""
        if self._audit is None or self._reporting:
            return
        tally = self.tally
        if tally.audit_failure is None:
            try:
                self._audit.record(
                    AuditEntry(entry.path, reason.value if reason else "Unplanned", entry.size, entry.mtime, planned)
                )
                return
            except AuditError as exc:
                tally.audit_failure = f"the audit record could not be written ({exc})"
        if not planned:
            tally.add_error(f"{entry.path}: deleted, but its audit line could not be written")

    @property
    def budget_left(self) -> int:
        return self._policy.rules.max_files_per_run - self.tally.attempted

    def apply(self, decisions: Iterable[Decision]) -> Tally:
        """Apply decisions until they run out or the per-run limit is reached."""
        limited = self._within_budget(iter(decisions))
        if self.dry_run and isinstance(self._provider, FilesystemStorage):
            self._probe_all(self._provider, limited)
        elif self.dry_run:
            for decision in limited:
                self._record_would(decision)
                if self.tally.cancelled is not None or self.tally.audit_failure is not None:
                    break
        else:
            self._delete_all(limited)
        return self.tally

    def report_only(self, decisions: Iterable[Decision]) -> Tally:
        """Record decisions exactly as a dry run does, whatever ``dry_run`` says (a plan the guard stopped)."""
        dry_run, self.dry_run, self._reporting = self.dry_run, True, True
        try:
            return self.apply(decisions)
        finally:
            self.dry_run, self._reporting = dry_run, False

    def _within_budget(self, decisions: Iterator[Decision]) -> Iterator[Decision]:
        if self.stopped():  # a later phase of a cancelled run applies nothing
            return
        for decision in decisions:
            if self.budget_left <= 0:
                self.tally.limit_reached = True
                return
            self.tally.attempted += 1
            yield decision

    def _probe_all(self, provider: FilesystemStorage, decisions: Iterator[Decision]) -> None:
        """Dry run through the storage's own checks, a batch at a time."""
        batch: dict[str, Decision] = {}
        for decision in decisions:
            batch[decision.entry.path] = decision
            if len(batch) >= self._policy.rules.batch_size:
                if not self._probe_batch(provider, batch):
                    return
                batch = {}
        if batch:
            self._probe_batch(provider, batch)

    def _probe_batch(self, provider: FilesystemStorage, batch: dict[str, Decision]) -> bool:
        """Probe one batch unless told to stop first (a batch boundary); False when stopped."""
        if self.stopped():
            self.tally.attempted -= len(batch)
            return False
        self._record_probed(provider.probe([d.entry for d in batch.values()]), batch)
        return True

    def _record_probed(self, results: list[DeleteResult], batch: dict[str, Decision]) -> None:
        for result in results:
            if result.outcome is Outcome.DELETED:
                self._record_would(batch[result.entry.path])
            else:
                self._count_kept(result)

    def _count_kept(self, result: DeleteResult) -> None:
        """A file that was not (or would not be) deleted: in use, changed, vanished or failed."""
        tally = self.tally
        if result.outcome is Outcome.IN_USE:
            tally.in_use.add(result.entry.path)
        elif result.outcome is Outcome.CHANGED:
            tally.skipped += 1
        elif result.outcome is Outcome.VANISHED:
            tally.vanished += 1
            tally.add_error(f"{result.entry.path}: vanished before it could be deleted")
        else:
            tally.add_error(f"{result.entry.path}: {result.detail or 'could not be deleted'}")

    def _record_would(self, decision: Decision) -> None:
        tally = self.tally
        tally.emptying[decision.entry.path.rpartition("/")[0]] += 1
        tally.would_count += 1
        tally.would_bytes += decision.entry.size
        tally.would_by_reason[decision.reason.value] += 1
        self._audited(decision.entry, decision.reason, planned=True)
        if len(tally.would_delete) < MAX_WOULD_DELETE:
            tally.would_delete.append(shortened(decision.entry.path))
        if tally.would_count % 1000 == 0:
            if self._progress:
                self._progress(tally)
            self.stopped()

    def _delete_all(self, decisions: Iterator[Decision]) -> None:
        """Plan a round of ``parallelism`` batches, then delete them in parallel while planning waits.

        Planning and deleting take turns instead of overlapping: with the GIL, a planning thread
        that keeps the interpreter busy makes every unlink thread wait for it (measured 3x slower
        than taking turns on two cores).
        """
        batch_size = self._policy.rules.batch_size
        round_size = batch_size * self._policy.rules.parallelism
        reasons: dict[str, DeletionReason] = {}
        workers = self._policy.rules.parallelism
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tempsweep-delete") as pool:
            pending: list[FileEntry] = []
            for decision in decisions:
                reasons[decision.entry.path] = decision.reason
                pending.append(decision.entry)
                if len(pending) >= round_size:
                    if not self._start_round(pool, pending, batch_size, reasons):
                        return
                    pending = []
            if pending:
                self._start_round(pool, pending, batch_size, reasons)

    def _start_round(
        self,
        pool: ThreadPoolExecutor,
        entries: list[FileEntry],
        batch_size: int,
        reasons: dict[str, DeletionReason],
    ) -> bool:
        """Delete one round unless told to stop first (a batch boundary); False when stopped."""
        if self.stopped():
            self.tally.attempted -= len(entries)  # taken from the plan, never tried: not part of the run
            return False
        self._delete_round(pool, entries, batch_size, reasons)
        return True

    def _delete_round(
        self,
        pool: ThreadPoolExecutor,
        entries: list[FileEntry],
        batch_size: int,
        reasons: dict[str, DeletionReason],
    ) -> None:
        futures = {
            pool.submit(self._provider.delete, entries[start : start + batch_size])
            for start in range(0, len(entries), batch_size)
        }
        done, _ = wait(futures)
        self._merge(done, reasons)

    def _merge(self, done: set[Future[list[DeleteResult]]], reasons: dict[str, DeletionReason]) -> None:
        tally = self.tally
        for future in done:
            try:
                results = future.result()
            except Exception as exc:  # a provider bug must not end the run silently
                tally.add_error(f"batch failed: {exc}")
                continue
            for result in results:
                reason = reasons.pop(result.entry.path, None)
                if result.outcome is Outcome.DELETED:
                    tally.deleted += 1
                    tally.bytes_freed += result.entry.size
                    key = reason.value if reason else "Unplanned"
                    tally.by_reason[key] += 1
                    tally.freed_by_reason[key] += result.entry.size
                    tally.emptying[result.entry.path.rpartition("/")[0]] += 1
                    self._audited(result.entry, reason, planned=False)
                else:
                    self._count_kept(result)
        if self._progress:
            self._progress(tally)
