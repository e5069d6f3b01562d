"""The operator's own timing knobs, read from the environment once and checked like every other setting.

``TEMPSWEEP_TICK_SECONDS``, ``TEMPSWEEP_TTL_CHECK_SECONDS``, ``TEMPSWEEP_RUN_LEASE_SECONDS`` and
``TEMPSWEEP_RUN_QUEUE_LIMIT`` shape
Kopf registrations at import time (a timer's interval), so they cannot wait for the operator's settings
object. ``run_operator`` calls ``load_timing`` before importing the handlers: a bad value stops the
operator with one line naming the variable (exit 2), never a traceback from a module import.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from tempsweep.engine.prediction import PredictionSettings
from tempsweep.models import SettingsError


@dataclass(frozen=True)
class Timing:
    """How often policies tick, how often finished runs are swept, how long a run claim lives, and how many
    CleanupRuns may wait in one storage's queue."""

    tick_seconds: float
    ttl_check_seconds: float
    run_lease_seconds: int
    run_queue_limit: int = 1000
    prediction_min_span_seconds: float = 600.0  # the shortest series (since the last drop) a fit is made from


def _seconds(environ: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a number of seconds") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise SettingsError(f"{name}: {raw!r} must be between {low:g} and {high:g} seconds")
    return value


def load_timing(environ: Mapping[str, str] | None = None) -> Timing:
    """The knobs from ``environ`` (default: the process environment); SettingsError names a bad one."""
    env = os.environ if environ is None else environ
    lease_name = "TEMPSWEEP_RUN_LEASE_SECONDS"
    lease = _seconds(env, lease_name, 30, 1, 3600)
    if lease != int(lease):
        raise SettingsError(f"{lease_name}: {env[lease_name]!r} must be whole seconds")
    return Timing(
        tick_seconds=_seconds(env, "TEMPSWEEP_TICK_SECONDS", 10, 0.1, 3600),
        ttl_check_seconds=_seconds(env, "TEMPSWEEP_TTL_CHECK_SECONDS", 60, 0.1, 86_400),
        run_lease_seconds=int(lease),
        run_queue_limit=_count(env, "TEMPSWEEP_RUN_QUEUE_LIMIT", 1000, 1, 1_000_000),
        prediction_min_span_seconds=_seconds(env, "TEMPSWEEP_PREDICTION_MIN_SPAN_SECONDS", 600, 1, 86_400),
    )


def _count(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: {raw!r} must be between {low} and {high}")
    return value


def prediction_settings() -> PredictionSettings:
    """The fit's settings, with ``TEMPSWEEP_PREDICTION_MIN_SPAN_SECONDS`` (tests fill a volume in seconds)."""
    return PredictionSettings(min_span=timedelta(seconds=load_timing().prediction_min_span_seconds))
