"""Time-to-full prediction: a least-squares line through recent (time, used bytes) samples.

Pure: samples in, a ``Prediction`` out; no clock, no I/O. The caller (the operator's statistics
pass) appends one sample per measurement to a ``UsageWindow`` and calls ``predict``.

Why only since the last drop: a cleanup frees space in one step; a line fitted across that step
would say the storage is emptying while it is in fact filling again. So the fit starts at the last
sample after a fall of more than ``drop_fraction`` of the capacity (noise smaller than that is kept).

Why restored samples never act on their own: the history comes back from ``status.prediction``, which
anyone allowed to patch the status could have written; it may show a prediction at once after a
restart, but a Predictive cleanup waits for a line through samples this operator measured itself
(``UsageWindow.measured``). A history not fully understood (times without a zone, offsets not rising,
negative or out-of-range figures) is dropped whole, and a sample older than the newest one means the
clock went back: the window starts afresh rather than ignoring every new measurement until the clock
catches up with the old ones.

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

    A sample at the newest one's time is a duplicate (ignored); an older one means the clock went back
    (or the restored history lay in the future): the old samples cannot be placed against the new ones,
    so the window starts afresh with it.
    """

    def __init__(self, settings: PredictionSettings | None = None) -> None:
        self.settings = settings or PredictionSettings()
        self._samples: deque[UsageSample] = deque(maxlen=self.settings.max_samples)
        self._restored_until: datetime | None = None  # the newest sample restored from status, not measured

    def add(self, sample: UsageSample, *, restored: bool = False) -> None:
        if self._samples and sample.at == self._samples[-1].at:
            return
        if self._samples and sample.at < self._samples[-1].at:
            self._samples.clear()
            self._restored_until = None
        self._samples.append(sample)
        if restored:
            self._restored_until = sample.at
        oldest = sample.at - self.settings.window
        while self._samples and self._samples[0].at < oldest:
            self._samples.popleft()

    def samples(self) -> list[UsageSample]:
        return list(self._samples)

    def measured(self) -> list[UsageSample]:
        """The samples this operator measured itself (not restored from status): what a cleanup acts on."""
        since = self._restored_until
        return [s for s in self._samples if since is None or s.at > since]

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
    origin, base = segment[0].at, segment[0].used_bytes
    xs = [(s.at - origin).total_seconds() for s in segment]
    ys = [float(s.used_bytes - base) for s in segment]  # relative: no precision lost on petabytes
    relative = _fit(xs, ys)
    line = _Line(relative.intercept + base, relative.slope, relative.r_squared, relative.t_value)
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
    # far past (usage long beyond it) or far future: bounded, so that no datetime overflows
    at = origin + timedelta(seconds=min(max(seconds, -_FAR_SECONDS), _FAR_SECONDS))
    return max(at.replace(microsecond=0), last)  # whole seconds: status shows no false precision


_FAR_SECONDS = 100 * 365 * 86400.0


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


#: The largest figure a status integer holds (the API server's int64); no sample predates the epoch.
_MAX_STORED = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def restore(history: PredictionHistory | None, capacity_bytes: int = _MAX_STORED) -> list[UsageSample]:
    """The samples a stored history holds, oldest first; empty for none, or for one not fully understood
    (lists of different lengths, a time without a zone, offsets not rising from 0 or up, figures out of
    range, more used than ``capacity_bytes``): a mangled summary is no history, the window starts afresh."""
    if history is None or len(history.offsets_seconds) != len(history.used_bytes):
        return []
    offsets, used = history.offsets_seconds, history.used_bytes
    if history.since.utcoffset() is None or history.since < _EPOCH:  # (a naive time is checked first)
        return []
    rising = all(a < b for a, b in zip(offsets, offsets[1:], strict=False))
    if not rising or any(not 0 <= value <= _MAX_STORED for value in offsets):
        return []
    if any(not 0 <= value <= min(capacity_bytes, _MAX_STORED) for value in used):
        return []
    try:
        return [
            UsageSample(history.since + timedelta(seconds=offset), value)
            for offset, value in zip(offsets, used, strict=True)
        ]
    except OverflowError:  # past year 9999
        return []
