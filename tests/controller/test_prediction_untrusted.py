"""What the prediction does with input it does not fully understand: a summary in status that anyone allowed
to patch the status could have written (forged, garbled, in the future), and a clock that jumps. Nothing of
it may crash the policy's tick (its emergency check runs in the same tick) or start a cleanup on its own.
On a real volume, through the operator's own functions."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import kopf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kopf._core.engines.posting import settings_var

from sweep_helpers import effective_policy
from tempsweep.controller.prediction_work import predictive_cleanup, sample
from tempsweep.controller.runtime import PolicyRuntime
from tempsweep.controller.state import OperatorState, PolicyMemory
from tempsweep.engine import CleanupContext, compute_stats
from tempsweep.engine.prediction import UsageSample, summarize
from tempsweep.models import StorageStats, load_settings
from tempsweep.storage import VolumeStorage

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
MIB = 2**20
T = TypeVar("T")


def _quiet(work: Callable[[], T]) -> T:
    """Run ``work`` as a handler would, with Kopf's event posting off (no API server in these tests)."""
    quiet = kopf.OperatorSettings()
    quiet.posting.enabled = False
    context = contextvars.copy_context()
    context.run(settings_var.set, quiet)
    return context.run(work)


def _runtime(root: Path) -> PolicyRuntime:
    policy = effective_policy(
        root, storage={"volume": {"capacity": "10Mi"}}, orphans={"maxAgeHours": 24}, prediction={"horizon": "6h"}
    )
    return PolicyRuntime("team-a", "p", 1, policy, VolumeStorage(str(root)), None)


def _stats(runtime: PolicyRuntime, at: datetime) -> StorageStats:
    return compute_stats(CleanupContext(policy=runtime.policy, storage=runtime.storage, now=at))


def _volume(root: Path) -> Path:
    """8 MiB in use (the emergency threshold is at 9 MiB), one of them an old orphan a cleanup would delete."""
    (root / "fresh.bin").write_bytes(b"x" * 7 * MIB)
    orphan = root / "stale.tmp"
    orphan.write_bytes(b"x" * MIB)
    old = NOW.timestamp() - 48 * 3600
    os.utime(orphan, (old, old))
    return orphan


def _forged(used_mib: list[float], every: timedelta, end: datetime = NOW) -> dict[str, Any]:
    start = end - every * len(used_mib)
    history = summarize([UsageSample(start + every * i, int(mib * MIB)) for i, mib in enumerate(used_mib)])
    assert history is not None
    return {"metadata": {"name": "p", "namespace": "team-a"}, "status": {"prediction": {"history": history.to_wire()}}}


def test_a_forged_rising_summary_shows_a_prediction_but_starts_no_cleanup(tmp_path: Path) -> None:
    orphan = _volume(tmp_path)
    runtime, state, memory = _runtime(tmp_path), OperatorState(load_settings({})), PolicyMemory()
    body = _forged([1 + 0.6 * i for i in range(12)], timedelta(minutes=5))  # "filling at 7 MiB/h"
    stats = _stats(runtime, NOW)

    prediction = sample(body, runtime, state, memory, stats, NOW)
    parts = _quiet(lambda: predictive_cleanup(body, runtime, state, memory, prediction, stats))

    assert prediction is not None and prediction.emergency_at is not None  # status shows what the summary says
    assert prediction.emergency_at - NOW < timedelta(hours=6)
    assert parts == [] and orphan.exists()  # but only what this operator measured may act


def test_samples_the_operator_measured_itself_do_start_it(tmp_path: Path) -> None:
    orphan = _volume(tmp_path)
    runtime, state, memory = _runtime(tmp_path), OperatorState(load_settings({})), PolicyMemory()
    body = _forged([1 + 0.6 * i for i in range(12)], timedelta(minutes=5))
    parts: list[Any] = []
    for minute in range(0, 60, 5):  # the volume fills by 0.1 MiB every 5 minutes, measured
        at = NOW + timedelta(minutes=minute)
        if minute:
            (tmp_path / f"more-{minute}.bin").write_bytes(b"x" * (MIB // 10))
        stats = _stats(runtime, at)
        prediction = sample(body, runtime, state, memory, stats, at)
        parts = _quiet(lambda: predictive_cleanup(body, runtime, state, memory, prediction, stats))  # noqa: B023
        if parts:
            break

    assert parts and not orphan.exists()
    assert minute >= 25  # six measured samples: enough confidence (0.5) of their own


# a history as a patched status may hold it: any zone or none, any offsets, any figures the API accepts
_histories = st.fixed_dictionaries(
    {
        "since": st.one_of(
            st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.isoformat()),
            st.datetimes(
                min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
            ).map(lambda d: d.isoformat()),
        ),
        "offsetsSeconds": st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=24),
        "usedBytes": st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=24),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=_histories, last_predictive=st.one_of(st.none(), st.text(max_size=30), st.just("2026-01-01T11:00:00")))
def test_property_no_summary_crashes_the_tick_or_cleans_on_its_own(
    tmp_path: Path, history: dict[str, Any], last_predictive: str | None
) -> None:
    root = tmp_path / "v"
    root.mkdir(exist_ok=True)
    orphan = _volume(root)
    runtime, state, memory = _runtime(root), OperatorState(load_settings({})), PolicyMemory()
    body = {"status": {"prediction": {"history": history}, "lastPredictiveTime": last_predictive}}
    stats = _stats(runtime, NOW)

    prediction = sample(body, runtime, state, memory, stats, NOW)
    parts = _quiet(lambda: predictive_cleanup(body, runtime, state, memory, prediction, stats))

    assert prediction is not None and prediction.computed_at == NOW  # the measurement now is never ignored
    assert memory.usage.samples()[-1].at == NOW
    assert parts == [] and orphan.exists()


def test_a_clock_that_went_back_starts_the_window_afresh_instead_of_ignoring_every_sample(tmp_path: Path) -> None:
    _volume(tmp_path)
    runtime, state, memory = _runtime(tmp_path), OperatorState(load_settings({})), PolicyMemory()
    ahead = NOW + timedelta(hours=3)  # the clock ran 3 h fast, then NTP set it right
    for minute in range(0, 30, 5):
        sample({}, runtime, state, memory, _stats(runtime, ahead), ahead + timedelta(minutes=minute))

    prediction = sample({}, runtime, state, memory, _stats(runtime, NOW), NOW)

    assert prediction is not None and prediction.computed_at == NOW
    assert [s.at for s in memory.usage.samples()] == [NOW]


def test_a_last_predictive_time_in_the_future_delays_by_one_cooldown_not_until_then(tmp_path: Path) -> None:
    orphan = _volume(tmp_path)
    policy = effective_policy(
        tmp_path, storage={"volume": {"capacity": "10Mi"}}, orphans={"maxAgeHours": 24},
        prediction={"horizon": "6h", "cooldown": "30m"},
    )
    runtime = PolicyRuntime("team-a", "p", 1, policy, VolumeStorage(str(tmp_path)), None)
    state, memory = OperatorState(load_settings({})), PolicyMemory()
    body = {"status": {"lastPredictiveTime": "2099-01-01T00:00:00Z"}}  # a clock that ran ahead wrote it
    ran_at = None
    for minute in range(0, 60, 5):
        at = NOW + timedelta(minutes=minute)
        if minute:
            (tmp_path / f"more-{minute}.bin").write_bytes(b"x" * (MIB // 10))
        stats = _stats(runtime, at)
        prediction = sample(body, runtime, state, memory, stats, at)
        if _quiet(lambda: predictive_cleanup(body, runtime, state, memory, prediction, stats)):  # noqa: B023
            ran_at = minute
            break

    assert ran_at == 30 and not orphan.exists()  # one cooldown after it first looked, not in 2099


def test_a_summary_that_used_more_than_the_capacity_is_not_resumed(tmp_path: Path) -> None:
    """Written for another capacity (the spec changed while the operator was down) or by hand: not this storage."""
    _volume(tmp_path)
    runtime, state, memory = _runtime(tmp_path), OperatorState(load_settings({})), PolicyMemory()
    body = _forged([5, 10, 15, 20, 25, 30], timedelta(minutes=5))  # MiB, on a 10 MiB volume

    prediction = sample(body, runtime, state, memory, _stats(runtime, NOW), NOW)

    assert [s.at for s in memory.usage.samples()] == [NOW]
    assert prediction is not None and prediction.full_in == "too few samples"
