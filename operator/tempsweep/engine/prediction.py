"""Time-to-full prediction: a least-squares line through recent (time, used bytes) samples.

Pure: samples in, a ``Prediction`` out; no clock, no I/O. The caller (the operator's statistics
pass) appends one sample per measurement to a ``UsageWindow`` and calls ``predict``.

Why only since the last drop: a cleanup frees space in one step; a line fitted across that step
would say the storage is emptying while it is in fact filling again. So the fit starts at the last
sample after a fall of more than ``drop_fraction`` of the capacity (noise smaller than that is kept).

Why a significance test on the slope: a flat volume with a little noise would otherwise get a tiny
positive rate and a "full in 40 years" that alerts would act on. A full time is predicted only when
the rate is positive and at least ``min_t_value`` standard errors away from zero. A series that never
rises (flat or shrinking) never gets a full time: its least-squares slope is never positive.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tempsweep.models.effective import Predictive
from tempsweep.models.prediction import (
    MAX_HISTORY_POINTS,
    NOT_FILLING,
    TOO_FEW_SAMPLES,
    Prediction,
    PredictionHistory,
)
from tempsweep.models.status import StorageStats

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class UsageSample:
    """One measurement: when, and how many bytes were used."""

    at: datetime
    used_bytes: int


@dataclass(frozen=True)
class PredictionSettings:
    """How much history the fit looks at and how sure it must be."""

    window: timedelta = timedelta(hours=6)
    max_samples: int = 720
    min_samples: int = 4
    min_span: timedelta = timedelta(minutes=10)
    drop_fraction: float = 0.01
    min_t_value: float = 3.0
    full_confidence_samples: int = 12


@dataclass(frozen=True)
class Capacity:
    """What "full" and "emergency" mean for this storage, in used bytes."""

    total_bytes: int
    emergency_used_bytes: int


class UsageWindow:
    """The last samples of one policy: at most ``max_samples``, none older than ``window`` before the newest.

    A sample older than the newest one is ignored (clocks do not run backwards for us).
    """

    def __init__(self, settings: PredictionSettings | None = None) -> None:
        self.settings = settings or PredictionSettings()
        self._samples: deque[UsageSample] = deque(maxlen=self.settings.max_samples)

    def add(self, sample: UsageSample) -> None:
        if self._samples and sample.at <= self._samples[-1].at:
            return
        self._samples.append(sample)
        oldest = sample.at - self.settings.window
        while self._samples and self._samples[0].at < oldest:
            self._samples.popleft()

    def samples(self) -> list[UsageSample]:
        return list(self._samples)

    def __len__(self) -> int:
        return len(self._samples)


def since_last_drop(samples: list[UsageSample], capacity_bytes: int, drop_fraction: float) -> list[UsageSample]:
    """The samples after the last fall of more than ``drop_fraction`` of the capacity (a cleanup)."""
    threshold = drop_fraction * capacity_bytes
    start = 0
    for index in range(1, len(samples)):
        if samples[index - 1].used_bytes - samples[index].used_bytes > threshold:
            start = index
    return samples[start:]


@dataclass(frozen=True)
class _Line:
    intercept: float  # used bytes at t = 0 (the first sample)
    slope: float  # bytes per second
    r_squared: float
    t_value: float  # slope / its standard error; inf for an exact line


def _fit(xs: list[float], ys: list[float]) -> _Line:
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - mean_y) ** 2 for y in ys)
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    residual = max(syy - slope * sxy, 0.0)
    r_squared = 1.0 - residual / syy if syy > 0 else 0.0
    if residual <= 1e-9 * max(syy, 1.0):
        t_value = math.inf if slope != 0 else 0.0
    else:
        standard_error = math.sqrt(residual / (n - 2) / sxx)
        t_value = slope / standard_error
    return _Line(intercept, slope, min(max(r_squared, 0.0), 1.0), t_value)


def predict(
    samples: list[UsageSample], capacity: Capacity, settings: PredictionSettings | None = None
) -> Prediction | None:
    """Fit the fill rate since the last drop; None when too few samples or too short a span to say anything."""
    settings = settings or PredictionSettings()
    segment = since_last_drop(samples, capacity.total_bytes, settings.drop_fraction)
    if len(segment) < settings.min_samples or segment[-1].at - segment[0].at < settings.min_span:
        return None
    origin = segment[0].at
    xs = [(s.at - origin).total_seconds() for s in segment]
    ys = [float(s.used_bytes) for s in segment]
    line = _fit(xs, ys)
    last = segment[-1].at
    history = summarize(segment)
    rate_per_hour = line.slope * SECONDS_PER_HOUR
    filling = line.slope > 0 and line.t_value >= settings.min_t_value
    if not filling:
        return Prediction(
            fill_rate_bytes_per_hour=rate_per_hour, full_in=NOT_FILLING, samples_used=len(segment),
            confidence=0.0, computed_at=last, history=history,
        )
    scale = min(1.0, len(segment) / settings.full_confidence_samples)
    full_at = _reaches(line, origin, last, capacity.total_bytes)
    return Prediction(
        fill_rate_bytes_per_hour=rate_per_hour,
        full_at=full_at,
        full_in=format_duration(full_at - last),
        emergency_at=_reaches(line, origin, last, capacity.emergency_used_bytes),
        samples_used=len(segment),
        confidence=round(line.r_squared * scale, 3),
        computed_at=last,
        history=history,
    )


def assess(
    samples: list[UsageSample], capacity: Capacity, settings: PredictionSettings | None = None
) -> Prediction | None:
    """``predict``, or with too few samples since the last drop a Prediction that says so (no rate, no
    times; its history keeps the samples for a restart). None only for no samples at all."""
    if not samples:
        return None
    prediction = predict(samples, capacity, settings)
    if prediction is not None:
        return prediction
    segment = since_last_drop(samples, capacity.total_bytes, (settings or PredictionSettings()).drop_fraction)
    return Prediction(
        full_in=TOO_FEW_SAMPLES, samples_used=len(segment), confidence=0.0, computed_at=segment[-1].at,
        history=summarize(segment),
    )


def capacity_of(stats: StorageStats) -> Capacity | None:
    """Full and emergency in used bytes for these statistics; None when the capacity is not measurable."""
    total = stats.total_bytes
    if total <= 0:
        return None
    by_percent = math.ceil(total * stats.emergency_threshold / 100)
    by_floor = total - (stats.effective_min_free_space_bytes or 0)  # free < minFreeSpace is an emergency too
    return Capacity(total_bytes=total, emergency_used_bytes=max(min(by_percent, by_floor), 0))


def sample_of(stats: StorageStats, at: datetime) -> UsageSample:
    """The usage sample one statistics pass gives."""
    return UsageSample(at, max(stats.total_bytes - stats.free_bytes, 0))


def predictive_reason(
    prediction: Prediction | None, predictive: Predictive, last_run: datetime | None, now: datetime
) -> str | None:
    """Why a Predictive cleanup is due now ("emergency threshold predicted at ..."), or None.

    Due only when the emergency threshold is predicted within the horizon with at least the minimum
    confidence, and no Predictive cleanup ran within the cooldown. Anything less sure than that (no
    prediction, too few samples, not filling, low confidence) runs nothing early: the regular timers and
    the emergency check are still there.
    """
    if prediction is None or prediction.emergency_at is None or prediction.confidence < predictive.min_confidence:
        return None
    if prediction.emergency_at - now > timedelta(seconds=predictive.horizon_seconds):
        return None
    if last_run is not None and (now - last_run).total_seconds() < predictive.cooldown_seconds:
        return None
    at = prediction.emergency_at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    horizon = format_duration(timedelta(seconds=predictive.horizon_seconds))
    return (
        f"emergency threshold predicted at {at} (in {format_duration(prediction.emergency_at - now)}, "
        f"confidence {prediction.confidence:.2f}, within the {horizon} horizon)"
    )


def _reaches(line: _Line, origin: datetime, last: datetime, used_bytes: int) -> datetime:
    """When the (rising) fitted line reaches ``used_bytes``; never before the newest sample."""
    seconds = (used_bytes - line.intercept) / line.slope
    at = origin + timedelta(seconds=min(seconds, 100 * 365 * 86400.0))
    return max(at.replace(microsecond=0), last)  # whole seconds: status shows no false precision


def format_duration(delta: timedelta) -> str:
    """A short human duration: 45s, 12m, 5h20m, 3d4h (the largest two units)."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{seconds}s"


def summarize(samples: list[UsageSample], points: int = MAX_HISTORY_POINTS) -> PredictionHistory | None:
    """At most ``points`` samples, evenly picked, always keeping the newest: small enough for status."""
    if not samples:
        return None
    if len(samples) > points:
        step = (len(samples) - 1) / (points - 1)
        samples = [samples[round(i * step)] for i in range(points)]
    since = samples[0].at
    return PredictionHistory(
        since=since,
        offsets_seconds=[int((s.at - since).total_seconds()) for s in samples],
        used_bytes=[s.used_bytes for s in samples],
    )


def restore(history: PredictionHistory | None) -> list[UsageSample]:
    """The samples a stored history holds, oldest first (empty for none or a mangled one)."""
    if history is None or len(history.offsets_seconds) != len(history.used_bytes):
        return []
    return [
        UsageSample(history.since + timedelta(seconds=offset), used)
        for offset, used in zip(history.offsets_seconds, history.used_bytes, strict=True)
    ]
