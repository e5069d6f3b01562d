"""``status.prediction`` of a CleanupPolicy: when the storage fills up if it keeps filling as it has.

Kept apart from the rest of the status (one field refers to it) because it is computed by its own pure
fit (``tempsweep.engine.prediction``) and carries its own compact history, so that a restarted operator
can go on predicting without waiting hours for new samples.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from tempsweep.models.base import WireModel

#: At most this many samples are kept in status (about 1 KiB of YAML).
MAX_HISTORY_POINTS = 24
#: ``fullIn`` when there is no full time to show, and why (the FULL IN column).
NOT_FILLING = "not filling"
TOO_FEW_SAMPLES = "too few samples"


class PredictionHistory(WireModel):
    """The samples the fit used, thinned to a few points: enough to resume after a restart."""

    since: datetime = Field(description="Time of the first sample kept (UTC); offsets count from here.")
    offsets_seconds: list[int] = Field(
        max_length=MAX_HISTORY_POINTS, description="Seconds after `since` at which each sample was taken."
    )
    used_bytes: list[int] = Field(
        max_length=MAX_HISTORY_POINTS, description="Used bytes at each of those times (same order)."
    )


class Prediction(WireModel):
    """A least-squares fit of used bytes over time, since the last cleanup's drop, over a bounded window."""

    fill_rate_bytes_per_hour: float | None = Field(
        default=None,
        description="Fitted growth of used bytes per hour (negative when the storage is emptying); left out "
        "while there are too few samples since the last drop to fit a line.",
    )
    full_at: datetime | None = Field(
        default=None,
        description="When the fitted line reaches the capacity (UTC); left out when the storage is not "
        "filling measurably (flat, shrinking, or too few samples).",
    )
    full_in: str | None = Field(
        default=None,
        description="fullAt as a duration from computedAt, e.g. 5h20m (the FULL IN column; kubectl cannot "
        "show a future time as an age); 'not filling' when the storage is flat, shrinking or not rising "
        "measurably, 'too few samples' before at least 4 samples over 10 minutes since the last drop.",
    )
    emergency_at: datetime | None = Field(
        default=None,
        description="When the fitted line reaches the emergency threshold (UTC); the time of the last "
        "sample when usage is already there; left out when not filling.",
    )
    samples_used: int = Field(ge=0, description="Samples since the last drop that the fit used.")
    confidence: float = Field(
        ge=0,
        le=1,
        description="0..1: the fit's R squared, scaled down while fewer than 12 samples are in; 0 when "
        "there is no prediction.",
    )
    computed_at: datetime = Field(description="Time of the newest sample the fit used (UTC).")
    history: PredictionHistory | None = Field(
        default=None, description="A thinned copy of the samples, to resume after an operator restart."
    )
