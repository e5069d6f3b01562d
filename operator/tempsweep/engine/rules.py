"""The deletion rules of each scenario, as pure functions: a file in, a reason (or None) out.

These encode the original cleanup service's behaviour. They read no clock and touch no file:
``now`` comes in as an argument, so every rule is testable to the second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tempsweep.engine.inventory import JobState, Owner, ScannedFile
from tempsweep.engine.ports import JobRecord
from tempsweep.models.effective import EffectivePolicy
from tempsweep.models.enums import DeletionReason

Rule = Callable[[ScannedFile], DeletionReason | None]


@dataclass(frozen=True)
class Clock:
    """The instant a run plans against, as a UTC datetime and as a POSIX timestamp."""

    now: datetime
    timestamp: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp", self.now.timestamp())

    def age_hours(self, mtime: float) -> float:
        return (self.timestamp - mtime) / 3600.0


def failed_past_wait(record: JobRecord | None, policy: EffectivePolicy, clock: Clock) -> bool:
    """A failed job's files may go once its last update is older than ``failedJobs.cleanupAfterHours``.

    A failed job without an update time is kept: we cannot tell how long ago it failed.
    """
    if record is None or record.updated_at is None:
        return False
    waited = (clock.now - record.updated_at).total_seconds() / 3600.0
    return waited >= policy.rules.failed_cleanup_after_hours


def orphan_rule(policy: EffectivePolicy, clock: Clock, max_age_hours: float) -> Rule:
    """Orphaned: older than the age, and no job, an unknown job, a finished job or a failed job past its wait.

    "Unknown" means the job table has no such job, as in the original service. A job that exists with a
    status in none of the policy's lists (UNRECOGNIZED_STATUS) is kept like an active one.
    A file named by several jobs (its name and a directory) is an orphan only when it is one for each
    of them; a near-miss name is never one (it may be a job's file whose name did not parse).
    """

    oldest_kept = clock.timestamp - max_age_hours * 3600.0

    def owner_reason(owner: Owner) -> DeletionReason | None:
        if owner.state is JobState.UNKNOWN:
            return DeletionReason.ORPHAN_UNKNOWN_JOB
        if owner.state is JobState.FINISHED:
            return DeletionReason.ORPHAN_FINISHED_JOB
        if owner.state is JobState.FAILED and failed_past_wait(owner.record, policy, clock):
            return DeletionReason.ORPHAN_FAILED_JOB
        return None  # active, unrecognized status, failed too recently, or status unavailable

    def decide(item: ScannedFile) -> DeletionReason | None:
        if item.entry.mtime >= oldest_kept:
            return None
        if not policy.rules.has_job_source:
            return DeletionReason.EXPIRED
        if item.near_miss:
            return None
        if not item.owners:
            return DeletionReason.ORPHAN_NO_JOB_ID
        return every_owner(item, owner_reason)

    return decide


def every_owner(item: ScannedFile, decide: Callable[[Owner], DeletionReason | None]) -> DeletionReason | None:
    """The first owner's reason when every owner of the file gives one, else None (fail closed)."""
    first: DeletionReason | None = None
    for owner in item.owners:
        reason = decide(owner)
        if reason is None:
            return None
        first = first or reason
    return first


def crash_rule(failed_ids: frozenset[str]) -> Rule:
    """CrashRecovery: every file of a job in ``failed_ids`` (jobs already known failed past their wait).

    Files in a failed job's directory are its files too; a file also named by a job that is not in
    ``failed_ids`` (or on a near-miss path) is kept.
    """

    def owner_reason(owner: Owner) -> DeletionReason | None:
        return DeletionReason.FAILED_JOB if owner.job_id in failed_ids else None

    def decide(item: ScannedFile) -> DeletionReason | None:
        if item.near_miss or not item.owners:
            return None
        return every_owner(item, owner_reason)

    return decide


def chunk_rule(policy: EffectivePolicy, job_id: str, chunk_id: str, completed: frozenset[str] | None) -> Rule:
    """ChunkCompletion: the chunk's files whose name after the chunk prefix is in ``completed`` (all if None).

    This is the one rule that may delete files of an active job: the caller states that these
    exact files of a finished chunk are done with, which is the scenario's whole purpose. So it
    takes only files whose own name carries the chunk: files in a directory named after the chunk
    wait for their job's cleanup, and a file in a directory of another job (or a near-miss one) is kept.
    """
    pattern = policy.rules.naming.chunk

    def decide(item: ScannedFile) -> DeletionReason | None:
        if item.near_miss:
            return None
        found = pattern.match(item.entry.name)
        if found is None or found.group("job_id") != job_id or found.group("chunk_id") != chunk_id:
            return None
        if any(owner.job_id != job_id for owner in item.owners):
            return None
        if completed is not None and item.entry.name[found.end() :] not in completed:
            return None
        return DeletionReason.CHUNK_COMPLETED

    return decide


def first_of(*rules: Rule) -> Rule:
    """A rule that gives the first reason any of ``rules`` gives."""

    def decide(item: ScannedFile) -> DeletionReason | None:
        for rule in rules:
            reason = rule(item)
            if reason is not None:
                return reason
        return None

    return decide
