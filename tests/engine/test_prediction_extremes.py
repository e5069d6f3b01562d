"""The fit at the edges: enormous volumes, usage far past the threshold, a line that barely rises, duplicate
and backwards times. The prediction runs in the same tick as the emergency check, so it must never raise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tempsweep.engine.prediction import Capacity, UsageSample, UsageWindow, predict
from tempsweep.models.prediction import Prediction

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TB = 10**12


def test_a_huge_volume_far_past_its_threshold_growing_a_byte_at_a_time_says_now() -> None:
    capacity = Capacity(total_bytes=10 * TB, emergency_used_bytes=9 * TB)
    samples = [UsageSample(T0 + timedelta(minutes=5 * i), int(9.5 * TB) + i) for i in range(12)]

    prediction = predict(samples, capacity)

    assert prediction is not None and prediction.emergency_at == samples[-1].at


def test_a_petabyte_volume_keeps_its_precision() -> None:
    capacity = Capacity(total_bytes=2**60, emergency_used_bytes=int(0.9 * 2**60))
    base = 2**59 + 1
    samples = [UsageSample(T0 + timedelta(minutes=5 * i), base + 7 * i) for i in range(12)]  # 7 bytes per 5 min

    prediction = predict(samples, capacity)

    assert prediction is not None and prediction.fill_rate_bytes_per_hour is not None
    assert abs(prediction.fill_rate_bytes_per_hour - 84) < 1e-6


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=2**63 - 1),
    emergency_ratio=st.floats(min_value=0, max_value=1),
    used=st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=4, max_size=40),
    gaps=st.lists(st.integers(min_value=1, max_value=10**7), min_size=40, max_size=40),
)
def test_property_any_measured_series_gives_a_prediction_not_an_exception(
    total: int, emergency_ratio: float, used: list[int], gaps: list[int]
) -> None:
    capacity = Capacity(total_bytes=total, emergency_used_bytes=int(total * emergency_ratio))
    at, samples = T0, []
    for value, gap in zip(used, gaps, strict=False):
        at += timedelta(seconds=gap)
        samples.append(UsageSample(at, min(value, total)))

    prediction = predict(samples, capacity)

    if prediction is not None:
        assert Prediction.model_validate(prediction.to_wire()) is not None
        if prediction.emergency_at is not None:
            assert prediction.emergency_at >= samples[-1].at


def test_a_duplicate_time_is_ignored_and_a_backwards_one_starts_afresh() -> None:
    window = UsageWindow()
    for minute in range(6):
        window.add(UsageSample(T0 + timedelta(minutes=minute), minute))

    window.add(UsageSample(T0 + timedelta(minutes=5), 99))  # the same time again
    assert [s.used_bytes for s in window.samples()] == [0, 1, 2, 3, 4, 5]

    window.add(UsageSample(T0, 7))  # the clock went back five minutes
    assert window.samples() == [UsageSample(T0, 7)]


def test_only_measured_samples_count_as_measured() -> None:
    window = UsageWindow()
    window.add(UsageSample(T0, 1), restored=True)
    window.add(UsageSample(T0 + timedelta(minutes=1), 2), restored=True)
    window.add(UsageSample(T0 + timedelta(minutes=2), 3))

    assert window.measured() == [UsageSample(T0 + timedelta(minutes=2), 3)]
    assert len(window.samples()) == 3
