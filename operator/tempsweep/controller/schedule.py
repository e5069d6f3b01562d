"""When is a timer's work due? Pure functions of the schedule, the time kept in status, and now.

Kopf timers keep no state across restarts and would all fire at start-up. Instead the operator
ticks often and asks here. Cron work is due when a cron slot has passed since the slot last
handled (or, for a new policy, since the policy was created); the slot itself is recorded, so
after an outage the missed slot runs once — not once per missed slot, and not never.

``due_work`` answers for a whole tick: the policy's timer calls it once and acts on the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from croniter import croniter

from tempsweep.models.effective import Schedule


def parse_time(value: object) -> datetime | None:
    """A timestamp from status (RFC 3339 text) or None."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def due_cron_slot(
    cron: str, last_slot: datetime | None, baseline: datetime, now: datetime
) -> datetime | None:
    """The latest cron slot at or before ``now`` if it is newer than the last handled one, else None."""
    slot: datetime = croniter(cron, now).get_prev(datetime)
    if croniter.match(cron, now.replace(second=0, microsecond=0)) and now.second == 0:
        slot = now.replace(microsecond=0)
    handled = last_slot or baseline
    return slot if slot > handled else None


@lru_cache(maxsize=8192)
def _next_slot_after(cron: str, handled: datetime) -> datetime:
    slot: datetime = croniter(cron, handled).get_next(datetime)
    return slot


def cron_due(cron: str, last_slot: datetime | None, baseline: datetime, now: datetime) -> bool:
    """Whether ``due_cron_slot`` would return a slot; cheap, because the next slot after the last handled
    one is computed once and remembered (every policy asks this at every tick)."""
    return _next_slot_after(cron, last_slot or baseline) <= now


def interval_due(seconds: float, last: datetime | None, now: datetime) -> bool:
    """True when ``seconds`` have passed since ``last`` (or it never ran)."""
    return last is None or (now - last).total_seconds() >= seconds - 0.5


@dataclass(frozen=True)
class Observed:
    """What a policy's tick knows besides its schedule: read from the object's status and metadata."""

    generation: int
    observed_generation: int | None
    created: datetime
    suspended: bool  # read from the raw spec, so a suspended policy rests even when its spec is invalid
    ready: bool
    job_source_ok: bool  # False only while JobSourceReachable is False
    last_stats: datetime | None
    last_emergency_check: datetime | None
    last_scheduled: datetime | None
    last_orphaned: datetime | None


@dataclass(frozen=True)
class DueWork:
    """What one tick has to do. ``revalidate``: write the conditions again even if nothing else is due."""

    revalidate: bool = False
    stats: bool = False
    emergency: bool = False
    scheduled: datetime | None = None  # the cron slot to run, if one is due
    orphaned: datetime | None = None

    @property
    def anything(self) -> bool:
        return self.revalidate or self.stats or self.emergency or bool(self.scheduled or self.orphaned)


def due_work(policy: Schedule | None, status: Observed, now: datetime) -> DueWork:
    """The work due at ``now`` by the policy's schedule; None: the spec does not resolve (re-validate).

    Pure: the same inputs give the same answer, so the tick decides once, on the event loop, and hands
    only due work to a thread. A policy that is not ready, whose job source is down or whose spec
    changed is re-validated every tick, so a fixed secret or directory is noticed at once.
    """
    if status.suspended or (policy is not None and policy.suspend):
        return DueWork()
    revalidate = (
        policy is None
        or status.observed_generation != status.generation
        or not status.ready
        or not status.job_source_ok
    )
    if policy is None:
        return DueWork(revalidate=True)
    return DueWork(
        revalidate=revalidate,
        stats=policy.monitor_storage and interval_due(policy.stats_seconds, status.last_stats, now),
        emergency=interval_due(policy.emergency_check_seconds, status.last_emergency_check, now),
        scheduled=_slot(policy.scheduled_cron, status.last_scheduled, status.created, now),
        orphaned=_slot(policy.orphaned_cron, status.last_orphaned, status.created, now),
    )


def _slot(cron: str, last_slot: datetime | None, baseline: datetime, now: datetime) -> datetime | None:
    return due_cron_slot(cron, last_slot, baseline, now) if cron_due(cron, last_slot, baseline, now) else None
