"""What a policy's handlers do, as sync functions run in worker threads; each returns one PolicyStatus.

``validate`` answers a new or changed spec (validation against the cluster and statistics at once);
``tick`` does the work ``due_work`` found due. Neither writes: the handler writes what they return,
so each event has one status write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import kopf

from tempsweep.controller import policy_status as ps
from tempsweep.controller import prediction_work
from tempsweep.controller.cleanups import post_run_event, refresh_stats, run_locked
from tempsweep.controller.conditions import find_condition, read_conditions
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime, build_runtime
from tempsweep.controller.schedule import DueWork, interval_due, parse_time
from tempsweep.controller.state import OperatorState, PolicyMemory
from tempsweep.engine import RunRequest, StorageError
from tempsweep.models import RunPhase, RunType, StorageStats
from tempsweep.models.resources import PolicyStatus

#: Statistics are recomputed every statsInterval but written to status only when a figure changed, or at
#: least this often: every write is a PATCH plus a watch event to process, for every policy, and with
#: a hundred quiet policies those writes were most of an idle operator's CPU.
STATS_REWRITE_SECONDS = 300.0


class _Unusable(Exception):
    """The policy cannot be acted on now; ``status`` says why."""

    def __init__(self, status: PolicyStatus) -> None:
        super().__init__()
        self.status = status


def _runtime(body: Any, state: OperatorState, memory: PolicyMemory | None, now: datetime) -> PolicyRuntime:
    current = read_conditions((body.get("status") or {}).get("conditions"))
    gen = int((body.get("metadata") or {}).get("generation") or 0)
    try:
        return build_runtime(dict(body), state, memory)
    except PolicyNotReady as exc:
        if memory is None:  # a spec change: say so once; the timer re-validates quietly every tick
            kopf.event(body, type="Warning", reason=exc.reason, message=str(exc))
        raise _Unusable(ps.not_ready(current, exc, now, gen)) from None


def _stats(body: Any, runtime: PolicyRuntime, now: datetime) -> StorageStats:
    try:
        return refresh_stats(runtime)
    except StorageError as exc:
        # the storage vanished or became unreadable after validation: say so in conditions, once in events
        current = read_conditions((body.get("status") or {}).get("conditions"))
        was_ready = find_condition(current, "Ready")
        if was_ready is None or was_ready.status != "False":
            kopf.event(body, type="Warning", reason="StorageUnavailable", message=str(exc))
        problem = PolicyNotReady("StorageUnavailable", str(exc), condition="StorageHealthy")
        raise _Unusable(ps.not_ready(current, problem, now, runtime.generation)) from None


def validate(body: Any, state: OperatorState, memory: PolicyMemory, now: datetime) -> PolicyStatus:
    """Validate against the cluster and compute statistics at once (when storage monitoring is on)."""
    try:
        runtime = _runtime(body, state, None, now)
        stats = _stats(body, runtime, now) if runtime.policy.schedule.monitor_storage else None
    except _Unusable as unusable:
        return unusable.status
    status = body.get("status") or {}
    if stats is not None:
        memory.stats_computed = now  # the first tick need not compute them again from a stale status
    parts = [ps.stats_part(body, status, memory, stats, now)] if stats is not None else []
    if stats is not None:
        prediction = prediction_work.sample(body, runtime, state, memory, stats, now)
        parts.append(PolicyStatus(prediction=prediction))
    before = read_conditions(status.get("conditions"))
    conditions = ps.ready(before, runtime, stats, now)
    ps.job_source_events(body, memory, before, conditions)
    ps.min_free_event(body, before, conditions)
    state.timers.record(_key(runtime), "validated", now)
    return ps.combine(*parts, PolicyStatus(conditions=conditions, observed_generation=runtime.generation))


def tick(body: Any, due: DueWork, state: OperatorState, memory: PolicyMemory, now: datetime) -> PolicyStatus:
    """Do what is due; a busy storage leaves its check or slot due for the next tick."""
    try:
        runtime = _runtime(body, state, memory, now)
        stats = _due_stats(body, runtime, memory, due, now)
    except _Unusable as unusable:
        return unusable.status
    status = body.get("status") or {}
    parts = []
    prediction = prediction_work.sample(body, runtime, state, memory, stats, now) if stats is not None else None
    if stats is not None and _rewrite_stats(status, stats, now):
        parts += [ps.stats_part(body, status, memory, stats, now), PolicyStatus(prediction=prediction)]
    cleanups = _due_cleanups(body, runtime, state, due, now)
    parts += cleanups
    if stats is not None and not any(part.last_cleanup_time for part in cleanups):
        parts += prediction_work.predictive_cleanup(body, runtime, state, memory, prediction, stats)
    before = read_conditions(status.get("conditions"))
    conditions = ps.ready(before, runtime, stats, now)
    if any(find_condition(before, item.type) != item for item in conditions):  # else a PATCH every tick
        parts.append(PolicyStatus(conditions=conditions))
        ps.job_source_events(body, memory, before, conditions)
    return ps.combine(*parts)


def _due_stats(
    body: Any, runtime: PolicyRuntime, memory: PolicyMemory, due: DueWork, now: datetime
) -> StorageStats | None:
    if not due.stats:
        return None
    stats = _stats(body, runtime, now)
    memory.stats_computed = now
    if stats.job_source_error:
        memory.job_source = None  # read the secret and connect afresh next tick
    return stats


def _rewrite_stats(status: dict[str, Any], stats: StorageStats, now: datetime) -> bool:
    changed = any(status.get(key) != value for key, value in stats.model_dump(mode="json", by_alias=True).items())
    return changed or interval_due(STATS_REWRITE_SECONDS, parse_time(status.get("lastStatsTime")), now)


def _due_cleanups(
    body: Any, runtime: PolicyRuntime, state: OperatorState, due: DueWork, now: datetime
) -> list[PolicyStatus]:
    parts = []

    def stop() -> str | None:
        return state.stops.check(runtime.uid) or state.shards.lost(_key(runtime))

    if due.emergency:
        result = run_locked(runtime, RunRequest(RunType.EMERGENCY), state.locks, wait=False, should_stop=stop)
        if result is not None:
            parts.append(PolicyStatus(last_emergency_check_time=now))
            if result.files_deleted or result.would_delete_count or result.phase is RunPhase.FAILED:
                post_run_event(body, result)
                parts.append(PolicyStatus.last_cleanup(result))
    for kind, slot, time_field in (
        (RunType.SCHEDULED, due.scheduled, "last_scheduled_time"),
        (RunType.ORPHANED, due.orphaned, "last_orphaned_time"),
    ):
        if slot is not None:
            result = run_locked(runtime, RunRequest(kind), state.locks, wait=False, should_stop=stop)
            if result is not None:
                post_run_event(body, result)
                parts += [PolicyStatus.model_validate({time_field: slot}), PolicyStatus.last_cleanup(result)]
    return parts


def _key(runtime: PolicyRuntime) -> str:
    return f"{runtime.namespace}/{runtime.name}"
