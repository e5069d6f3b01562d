"""Time-to-full for a policy's status, and the predictive cleanup it may start (``spec.prediction``).

Each statistics pass gives one usage sample (used bytes, time), kept in the policy's memory in a
bounded ``UsageWindow`` (6 h, 720 samples); the pure fit (``engine.prediction``) turns the window into
``status.prediction``. A restarted operator starts from the thinned history the last status kept, so
it does not wait hours to predict again.

Honest when unsure: no sample when the capacity cannot be measured (total 0) or the storage could not
be read; "too few samples" before there is a line to fit; "not filling" for flat, shrinking or noisy
usage. Only a prediction that puts the emergency threshold within the horizon, with the minimum
confidence, starts the gentle Predictive cleanup -- judged on the samples this operator measured itself
(a summary restored from status shows a prediction at once but never starts a cleanup on its own), at
most once per cooldown, never while an emergency is already due (the emergency check handles that) and
never in the same tick as another cleanup of the policy.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import kopf
from pydantic import ValidationError

from tempsweep.controller.cleanups import post_run_event, run_locked
from tempsweep.controller.schedule import parse_time
from tempsweep.engine import RunRequest
from tempsweep.engine.prediction import (
    UsageWindow,
    assess,
    capacity_of,
    predict,
    predictive_reason,
    restore,
    sample_of,
)
from tempsweep.models import RunPhase, RunStatus, RunType, StorageStats
from tempsweep.models.enums import Health
from tempsweep.models.prediction import Prediction, PredictionHistory
from tempsweep.models.quantities import format_bytes
from tempsweep.models.resources import PolicyStatus

if TYPE_CHECKING:
    from tempsweep.controller.runtime import PolicyRuntime
    from tempsweep.controller.state import OperatorState, PolicyMemory

FILLING_UP = "FillingUp"


def sample(
    body: Any, runtime: PolicyRuntime, state: OperatorState, memory: PolicyMemory, stats: StorageStats,
    now: datetime,
) -> Prediction | None:
    """Add this statistics pass (taken at ``now``) to the window and predict; None when the usage cannot
    be measured."""
    capacity = capacity_of(stats)
    if capacity is None or stats.health is Health.UNKNOWN:
        _observe(state, runtime, None, now)
        return None
    measured = f"{runtime.lock_key} of {capacity.total_bytes}"
    if memory.usage_of is None:  # a new memory: an operator restart, or the first statistics of the policy
        for restored in restore(_stored_history(body), capacity.total_bytes):
            memory.usage.add(restored, restored=True)
    elif memory.usage_of != measured:  # another volume or capacity: the old samples say nothing about it
        memory.usage = UsageWindow(memory.usage.settings)
    memory.usage_of = measured
    window = memory.usage
    window.add(sample_of(stats, now))
    prediction = assess(window.samples(), capacity, window.settings)
    _observe(state, runtime, prediction, now)
    return prediction


def _stored_history(body: Any) -> PredictionHistory | None:
    stored = ((body.get("status") or {}).get("prediction") or {}).get("history")
    if not stored:
        return None
    try:
        return PredictionHistory.model_validate(stored)
    except ValidationError:  # a mangled status is no history; the window starts afresh
        return None


def _observe(state: OperatorState, runtime: PolicyRuntime, prediction: Prediction | None, now: datetime) -> None:
    """The prediction gauges (through the operator's one metrics adapter, ``telemetry_hooks``)."""
    state.telemetry.prediction(runtime, prediction, now)


def predictive_cleanup(
    body: Any, runtime: PolicyRuntime, state: OperatorState, memory: PolicyMemory,
    prediction: Prediction | None, stats: StorageStats,
) -> list[PolicyStatus]:
    """Run the Predictive cleanup when the prediction calls for it; the status parts it leaves."""
    predictive = runtime.policy.schedule.predictive
    capacity = capacity_of(stats)
    if predictive is None or prediction is None or capacity is None or stats.cleanup_needed:
        return []
    now = prediction.computed_at
    last = _last_predictive(body, memory, now)
    # only what this operator measured acts: a summary restored from status may have been written by anyone
    measured = predict(memory.usage.measured(), capacity, memory.usage.settings)
    why = predictive_reason(measured, predictive, last, now)
    if why is None:
        return []
    result = run_locked(
        runtime, RunRequest(RunType.PREDICTIVE), state.locks, wait=False,
        should_stop=lambda: state.stops.check(runtime.uid),
    )
    if result is None:
        return []  # the storage is busy with another cleanup: asked again at the next statistics
    memory.last_predictive = now
    kopf.event(body, type="Warning", reason=FILLING_UP, message=filling_up_message(why, result))
    state.telemetry.run_finished(runtime, result)
    if result.phase is not RunPhase.SUCCEEDED:
        post_run_event(body, result)
    return [PolicyStatus(last_predictive_time=now), PolicyStatus.last_cleanup(result)]


def _last_predictive(body: Any, memory: PolicyMemory, now: datetime) -> datetime | None:
    """The last Predictive cleanup (status or memory). A status time not understood (not RFC 3339, no zone)
    or in the future (a clock that ran ahead, a hand-edited status) counts as one just now: the cooldown
    starts afresh, neither skipped nor stretched until that future comes."""
    value = (body.get("status") or {}).get("lastPredictiveTime")
    try:
        stored = parse_time(value)
        if stored is not None and (stored.utcoffset() is None or stored > now):
            raise ValueError(value)
    except ValueError:
        stored = None
        if memory.last_predictive is None or memory.last_predictive > now:
            memory.last_predictive = now
    if memory.last_predictive is not None and memory.last_predictive > now:  # this clock went back
        memory.last_predictive = now
    return max((t for t in (stored, memory.last_predictive) if t is not None), default=None)


def filling_up_message(why: str, result: RunStatus) -> str:
    """The FillingUp event: when the storage was predicted full, and what the early cleanup freed."""
    if result.dry_run:
        done = f"dry run, would free {format_bytes(result.would_free_bytes)} ({result.would_delete_count} files)"
    else:
        done = f"freed {format_bytes(result.bytes_freed)} ({result.files_deleted} files)"
    return f"storage filling up: {why}; Predictive cleanup {result.phase.value.lower()}, {done}: {result.message}"
