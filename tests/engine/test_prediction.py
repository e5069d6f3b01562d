"""Time-to-full prediction on synthetic usage series.

Tolerances: an exact line predicts fullAt to the second (1 s allowed for float rounding); with noise
of 0.2 % of the capacity per sample, fullAt lies within 10 % of the true remaining time.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempsweep.engine.prediction import (
    Capacity,
    PredictionSettings,
    UsageSample,
    UsageWindow,
    format_duration,
    predict,
    restore,
    summarize,
)
from tempsweep.models.prediction import MAX_HISTORY_POINTS, Prediction
from tempsweep.models.resources import PolicyStatus

GB = 1_000_000_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CAPACITY = Capacity(total_bytes=100 * GB, emergency_used_bytes=90 * GB)


def _gb(value: float) -> int:
    return int(value * GB)


def series(start_gb: float, gb_per_hour: float, hours: float, every_minutes: int = 5) -> list[UsageSample]:
    steps = int(hours * 60 / every_minutes)
    return [
        UsageSample(T0 + timedelta(minutes=i * every_minutes), _gb(start_gb + gb_per_hour * i * every_minutes / 60))
        for i in range(steps + 1)
    ]


def test_steady_fill_predicts_full_and_emergency_to_the_second() -> None:
    samples = series(start_gb=20, gb_per_hour=5, hours=2)  # 30 GB at T0+2h; full (100) at T0+16h

    prediction = predict(samples, CAPACITY)

    assert prediction is not None
    assert prediction.fill_rate_bytes_per_hour == pytest.approx(5 * GB)
    assert abs(prediction.full_at - (T0 + timedelta(hours=16))) <= timedelta(seconds=1)
    assert abs(prediction.emergency_at - (T0 + timedelta(hours=14))) <= timedelta(seconds=1)
    assert prediction.full_in == "14h"
    assert prediction.samples_used == 25
    assert prediction.confidence == 1.0
    assert prediction.computed_at == T0 + timedelta(hours=2)


def test_a_cleanup_drop_restarts_the_fit_at_the_new_rate() -> None:
    before = series(start_gb=40, gb_per_hour=10, hours=3)  # up to 70 GB, then a cleanup to 30 GB
    after = [
        UsageSample(s.at + timedelta(hours=3, minutes=5), s.used_bytes)
        for s in series(start_gb=30, gb_per_hour=2, hours=2)
    ]

    prediction = predict(before + after, CAPACITY)

    assert prediction is not None
    assert prediction.samples_used == len(after)
    assert prediction.fill_rate_bytes_per_hour == pytest.approx(2 * GB)
    # 30 GB at T0+3h05m, 2 GB/h: full after 35 h more.
    expected = T0 + timedelta(hours=3, minutes=5) + timedelta(hours=35)
    assert abs(prediction.full_at - expected) <= timedelta(seconds=1)


def test_noisy_fill_lands_within_ten_percent_of_the_true_time() -> None:
    rng = random.Random(15)
    samples = [
        UsageSample(s.at, s.used_bytes + int(rng.gauss(0, 0.002 * CAPACITY.total_bytes)))
        for s in series(start_gb=50, gb_per_hour=4, hours=4)
    ]

    prediction = predict(samples, CAPACITY)

    assert prediction is not None
    true_full = T0 + timedelta(hours=12.5)  # 50 + 4 * 12.5 = 100
    remaining = true_full - samples[-1].at
    assert abs(prediction.full_at - true_full) <= remaining * 0.10
    assert 0.9 < prediction.confidence <= 1.0


@pytest.mark.parametrize(
    ("gb_per_hour", "why"), [(0, "flat"), (-3, "shrinking")], ids=["flat", "shrinking"]
)
def test_no_full_time_for_storage_that_is_not_filling(gb_per_hour: float, why: str) -> None:
    prediction = predict(series(start_gb=60, gb_per_hour=gb_per_hour, hours=2), CAPACITY)

    assert prediction is not None, why
    assert prediction.full_at is None
    assert prediction.emergency_at is None
    assert prediction.full_in == "not filling"  # the FULL IN column says why there is no time
    assert prediction.confidence == 0.0
    assert prediction.fill_rate_bytes_per_hour == pytest.approx(gb_per_hour * GB)


def test_noise_on_a_flat_volume_is_not_mistaken_for_filling() -> None:
    rng = random.Random(7)
    samples = [UsageSample(s.at, s.used_bytes + int(rng.gauss(0, 0.001 * CAPACITY.total_bytes)))
               for s in series(start_gb=60, gb_per_hour=0, hours=6)]

    prediction = predict(samples, CAPACITY)

    assert prediction is not None
    assert prediction.full_at is None


def test_too_few_samples_or_too_short_a_span_predicts_nothing() -> None:
    assert predict(series(20, 5, hours=0.25)[:3], CAPACITY) is None
    assert predict(series(20, 5, hours=5 / 60, every_minutes=1), CAPACITY) is None  # 6 samples in 5 minutes


def test_usage_already_past_the_emergency_threshold_says_now() -> None:
    prediction = predict(series(start_gb=92, gb_per_hour=1, hours=1), CAPACITY)

    assert prediction is not None
    assert prediction.emergency_at == prediction.computed_at
    assert abs(prediction.full_at - (T0 + timedelta(hours=8))) <= timedelta(seconds=1)


def test_the_window_keeps_six_hours_and_a_bounded_count() -> None:
    window = UsageWindow(PredictionSettings(max_samples=50))
    for sample in series(start_gb=0, gb_per_hour=1, hours=10, every_minutes=1):
        window.add(sample)
    window.add(UsageSample(T0 + timedelta(hours=10), 1))  # at the newest one's time: ignored

    kept = window.samples()
    assert len(kept) == 50
    assert kept[-1].at == T0 + timedelta(hours=10)

    wide = UsageWindow()
    for sample in series(start_gb=0, gb_per_hour=1, hours=10):
        wide.add(sample)
    assert wide.samples()[0].at == T0 + timedelta(hours=4)
    assert wide.samples()[-1].at - wide.samples()[0].at == timedelta(hours=6)


def test_the_summary_in_status_survives_a_round_trip_and_resumes_the_prediction() -> None:
    samples = series(start_gb=20, gb_per_hour=5, hours=6, every_minutes=1)  # 361 samples
    prediction = predict(samples, CAPACITY)
    assert prediction is not None and prediction.history is not None
    assert len(prediction.history.used_bytes) == MAX_HISTORY_POINTS

    wire = PolicyStatus(prediction=prediction).to_wire()
    restored_status = PolicyStatus.model_validate(wire)
    assert restored_status.prediction == prediction
    resumed = restore(restored_status.prediction.history)  # type: ignore[union-attr]

    assert resumed[0] == samples[0]
    assert resumed[-1] == samples[-1]
    again = predict(resumed, CAPACITY)
    assert again is not None
    assert abs(again.full_at - prediction.full_at) <= timedelta(seconds=1)  # type: ignore[operator]


def test_restore_of_nothing_or_of_a_mangled_history_is_empty() -> None:
    history = summarize(series(20, 5, hours=1))
    assert history is not None
    assert restore(None) == []
    assert restore(history.model_copy(update={"used_bytes": history.used_bytes[:-1]})) == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (600, "10m"), (3600, "1h"), (5 * 3600 + 20 * 60, "5h20m"), (3 * 86400 + 4 * 3600, "3d4h")],
)
def test_duration_format(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


steps = st.lists(st.integers(min_value=0, max_value=GB), min_size=3, max_size=80)
gaps = st.integers(min_value=60, max_value=1800)


def _walk(start: int, deltas: list[int], gap: int, sign: int) -> list[UsageSample]:
    used = start
    samples = [UsageSample(T0, used)]
    for i, delta in enumerate(deltas, start=1):
        used = max(used + sign * delta, 0)
        samples.append(UsageSample(T0 + timedelta(seconds=i * gap), used))
    return samples


@settings(max_examples=200, deadline=None)
@given(start=st.integers(min_value=0, max_value=100 * GB), deltas=steps, gap=gaps)
def test_property_flat_or_shrinking_storage_is_never_predicted_full(start: int, deltas: list[int], gap: int) -> None:
    prediction = predict(_walk(start, deltas, gap, sign=-1), CAPACITY)

    assert prediction is None or (prediction.full_at is None and prediction.emergency_at is None)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(min_value=0, max_value=100 * GB), deltas=steps, gap=gaps)
def test_property_a_predicted_full_time_is_never_in_the_past(start: int, deltas: list[int], gap: int) -> None:
    samples = _walk(start, deltas, gap, sign=1)

    prediction = predict(samples, CAPACITY)

    if prediction is not None and prediction.full_at is not None:
        assert prediction.full_at >= samples[-1].at
        assert prediction.emergency_at is not None and prediction.emergency_at <= prediction.full_at
        assert prediction.fill_rate_bytes_per_hour > 0
        assert isinstance(Prediction.model_validate(prediction.to_wire()), Prediction)
