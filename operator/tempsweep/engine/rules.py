"""The deletion rules of each scenario, as pure functions: a file in, a reason (or None) out.

These encode the original cleanup service's behaviour. They read no clock and touch no file:
``now`` comes in as an argument, so every rule is testable to the second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tempsweep.engine.inventory import JobState, ScannedFile
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
    """

    oldest_kept = clock.timestamp - max_age_hours * 3600.0

    def decide(item: ScannedFile) -> DeletionReason | None:
        if item.entry.mtime >= oldest_kept:
            return None
        if not policy.rules.has_job_source:
            return DeletionReason.EXPIRED
        if item.job_id is None:
            return DeletionReason.ORPHAN_NO_JOB_ID
        if item.state is JobState.UNKNOWN:
            return DeletionReason.ORPHAN_UNKNOWN_JOB
        if item.state is JobState.FINISHED:
            return DeletionReason.ORPHAN_FINISHED_JOB
        if item.state is JobState.FAILED and failed_past_wait(item.record, policy, clock):
            return DeletionReason.ORPHAN_FAILED_JOB
        return None  # active, unrecognized status, failed too recently, or status unavailable

    return decide


def crash_rule(failed_ids: frozenset[str]) -> Rule:
    """CrashRecovery: every file of a job in ``failed_ids`` (jobs already known failed past their wait)."""

    def decide(item: ScannedFile) -> DeletionReason | None:
        if item.job_id is not None and item.job_id in failed_ids:
            return DeletionReason.FAILED_JOB
        return None

    return decide


def chunk_rule(policy: EffectivePolicy, job_id: str, chunk_id: str, completed: frozenset[str] | None) -> Rule:
    """ChunkCompletion: the chunk's files whose name after the chunk prefix is in ``completed`` (all if None).

    This is the one rule that may delete files of an active job: the caller states that these
    exact files of a finished chunk are done with, which is the scenario's whole purpose.
    """
    pattern = policy.rules.chunk_pattern

    def decide(item: ScannedFile) -> DeletionReason | None:
        found = pattern.regex.match(item.entry.name)
        if found is None or found.group("job_id") != job_id or found.group("chunk_id") != chunk_id:
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
