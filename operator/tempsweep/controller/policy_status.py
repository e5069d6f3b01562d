"""What a policy's status says, built as ``PolicyStatus`` parts: conditions, statistics, and the events
that go with their changes. Pure apart from the events; the caller writes the combined status once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from tempsweep.controller.conditions import condition, find_condition, read_conditions, set_condition
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime
from tempsweep.controller.schedule import Observed, parse_time
from tempsweep.controller.state import PolicyMemory
from tempsweep.models import Health, StorageStats
from tempsweep.models.effective import min_free_for
from tempsweep.models.quantities import format_bytes
from tempsweep.models.resources import Condition, PolicyStatus
from tempsweep.models.statuses import unrecognized_advice

UNRECOGNIZED_REASON = "UnrecognizedJobStatus"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def combine(*parts: PolicyStatus) -> PolicyStatus:
    """One status from several parts; a later part's fields win."""
    fields: dict[str, Any] = {}
    for part in parts:
        fields.update({name: value for name in PolicyStatus.model_fields if (value := getattr(part, name)) is not None})
    return PolicyStatus(**fields)


def observe(body: Any, memory: PolicyMemory) -> Observed:
    """What the tick needs from the object; statistics count as computed at the later of the time in
    status and the one in memory (they are rewritten only on change or every few minutes)."""
    status, meta, spec = body.get("status") or {}, body.get("metadata") or {}, body.get("spec") or {}
    conditions = read_conditions(status.get("conditions"))
    ready, jobs = find_condition(conditions, "Ready"), find_condition(conditions, "JobSourceReachable")
    stats_times = [t for t in (parse_time(status.get("lastStatsTime")), memory.stats_computed) if t]
    return Observed(
        generation=int(meta.get("generation") or 0),
        observed_generation=status.get("observedGeneration"),
        created=parse_time(meta.get("creationTimestamp")) or now_utc(),
        suspended=bool(spec.get("suspend")),
        ready=ready is not None and ready.status == "True",
        job_source_ok=jobs is None or jobs.status == "True",
        last_stats=max(stats_times) if stats_times else None,
        last_emergency_check=parse_time(status.get("lastEmergencyCheckTime")),
        last_scheduled=parse_time(status.get("lastScheduledTime")),
        last_orphaned=parse_time(status.get("lastOrphanedTime")),
    )


def not_ready(current: list[Condition], exc: PolicyNotReady, now: datetime, gen: int) -> PolicyStatus:
    """Ready=False (and the condition the problem belongs to) for ``exc``, the only conditions it carries;
    health Unknown when the storage itself cannot be read (the last figures' Healthy would say the opposite
    of the conditions)."""
    learned = [_at(condition("Ready", False, exc.reason, str(exc), now), gen)]
    if exc.condition != "Ready":
        learned.append(_at(condition(exc.condition, False, exc.reason, str(exc), now), gen))
    conditions = decided(current, learned)
    health = Health.UNKNOWN if exc.condition == "StorageHealthy" else None
    return PolicyStatus(conditions=conditions, observed_generation=gen, health=health)


def ready(
    current: list[Condition], runtime: PolicyRuntime, stats: StorageStats | None, now: datetime
) -> list[Condition]:
    """Ready=True, and the conditions of what was learned: JobSourceReachable, MinFreeSpaceApplied and
    StorageHealthy (the last two only with statistics); only these (``decided``)."""
    learned = [condition("Ready", True, "Validated", f"cleaning {runtime.storage.description}", now)]
    if runtime.policy.rules.has_job_source:
        learned.append(_job_source(runtime, stats, now))
        if stats is not None and not stats.job_source_error:
            learned.append(_statuses(stats, now))
    if stats is not None:
        if stats.effective_min_free_space_bytes is not None:
            learned.append(_min_free(runtime, stats, now))
        healthy = stats.health is not Health.CRITICAL
        learned.append(
            condition("StorageHealthy", healthy, stats.health.value, f"usage {stats.usage_percent:.1f}%", now)
        )
    return decided(current, [_at(item, runtime.generation) for item in learned])


def decided(current: list[Condition], learned: list[Condition]) -> list[Condition]:
    """Only the conditions this handler decided, as set on ``current`` (the status it judged from).

    The others are not repeated: ``StatusWriter`` sets these per type on the latest object, and a copy
    of a condition from a status read before another handler's write would undo that write (the create
    handler's StorageHealthy, or a Ready=False, lost to a timer tick that started earlier).
    """
    conditions = current
    for item in learned:
        conditions = set_condition(conditions, item)
    types = {item.type for item in learned}
    return [item for item in conditions if item.type in types]


def _job_source(runtime: PolicyRuntime, stats: StorageStats | None, now: datetime) -> Condition:
    outage = runtime.job_outage
    error = outage.message if outage else (stats.job_source_error if stats else None)
    reason = outage.reason if outage else "QueryFailed"
    return condition(
        "JobSourceReachable", error is None, reason if error else "Reachable", error or "job table readable", now
    )


def _statuses(stats: StorageStats, now: datetime) -> Condition:
    """JobStatusesRecognized: False while files are kept because their job's status is in no list."""
    names = stats.unrecognized_job_statuses
    if names:
        message = unrecognized_advice(names, stats.files_kept_unrecognized_status)
        return condition("JobStatusesRecognized", False, UNRECOGNIZED_REASON, message, now)
    message = "every job status met is in activeStatuses, failedStatuses or finishedStatuses"
    return condition("JobStatusesRecognized", True, "AllRecognized", message, now)


def _min_free(runtime: PolicyRuntime, stats: StorageStats, now: datetime) -> Condition:
    floor = min_free_for(runtime.policy.rules, stats.total_bytes)
    reason = "Applied" if floor.applied else "MinFreeSpaceNotApplied"
    message = floor.note or f"emergency cleanup keeps at least {format_bytes(floor.bytes)} free"
    return condition("MinFreeSpaceApplied", floor.applied, reason, message, now)


def min_free_event(body: Any, before: list[Condition], after: list[Condition]) -> None:
    """One Warning when the inherited minFreeSpace stops being applied (on validation, not every tick)."""
    old, new = find_condition(before, "MinFreeSpaceApplied"), find_condition(after, "MinFreeSpaceApplied")
    if new is not None and new.status == "False" and (old is None or old.status != "False"):
        kopf.event(body, type="Warning", reason=new.reason, message=new.message)


def _at(item: Condition, generation: int) -> Condition:
    return item.model_copy(update={"observed_generation": generation})


def stats_part(
    body: Any, previous: dict[str, Any], memory: PolicyMemory, stats: StorageStats, now: datetime
) -> PolicyStatus:
    """The statistics and their time; one Warning when health turns Critical, and one for each job status
    met that is in no status list (new against the statuses already in status, so a restart posts nothing
    twice)."""
    # the create handler and a timer tick may both judge against a status not yet written: memory too
    known = set(previous.get("unrecognizedJobStatuses") or []) | memory.statuses_announced
    new = [name for name in stats.unrecognized_job_statuses if name not in known]
    memory.statuses_announced = frozenset(stats.unrecognized_job_statuses)
    if new:
        kopf.event(body, type="Warning", reason=UNRECOGNIZED_REASON, message=unrecognized_advice(new))
    previous_health = previous.get("health")
    if stats.health is Health.CRITICAL and previous_health != Health.CRITICAL.value:
        kopf.event(
            body,
            type="Warning",
            reason="StorageCritical",
            message=f"usage {stats.usage_percent:.1f}% >= {stats.emergency_threshold:g}% "
            f"({stats.temp_files_count} files, {format_bytes(stats.temp_files_size_bytes)})",
        )
    return PolicyStatus(stats=stats, last_stats_time=now)


def job_source_events(body: Any, memory: PolicyMemory, before: list[Condition], after: list[Condition]) -> None:
    """One Warning when job status becomes unreadable and one Normal when it is back: per outage, not per tick."""
    old, new = find_condition(before, "JobSourceReachable"), find_condition(after, "JobSourceReachable")
    # the create handler and a timer tick may both see the same transition from a stale status
    previous = memory.job_source_announced or (old.status if old else None)
    if new is None or previous == new.status:
        return
    memory.job_source_announced = new.status
    if new.status == "False":
        kopf.event(
            body,
            type="Warning",
            reason="JobSourceUnreachable",
            message=f"{new.message}; files of jobs are kept until job status can be read",
        )
    elif old is not None:
        kopf.event(body, type="Normal", reason="JobSourceRecovered", message="job status readable again")
