"""Update the metrics from tempsweep's typed records: statistics, run results, predictions, passes.

One function per record, each taking the ``Metrics`` and the policy's namespace and name; none of them
imports the controller, so the operator's handlers, the CLI and tests call the same code.
"""

from __future__ import annotations

import contextlib
import itertools
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from tempsweep.models import DeletionReason, Health, RunStatus, RunType, StorageStats
from tempsweep.models.prediction import Prediction
from tempsweep.telemetry.metrics import FINAL_PHASES, Metrics, Pass


def observe_stats(metrics: Metrics, namespace: str, policy: str, stats: StorageStats) -> None:
    """The per-policy gauges from one statistics pass."""
    key = (namespace, policy)
    metrics.capacity_bytes.labels(*key).set(stats.total_bytes)
    metrics.free_bytes.labels(*key).set(stats.free_bytes)
    metrics.used_bytes.labels(*key).set(max(stats.total_bytes - stats.free_bytes, 0))
    metrics.usage_ratio.labels(*key).set(stats.usage_percent / 100)
    metrics.warning_ratio.labels(*key).set(stats.warning_threshold / 100)
    metrics.emergency_ratio.labels(*key).set(stats.emergency_threshold / 100)
    metrics.min_free_bytes.labels(*key).set(stats.effective_min_free_space_bytes or 0)
    metrics.temp_files.labels(*key).set(stats.temp_files_count)
    metrics.temp_files_bytes.labels(*key).set(stats.temp_files_size_bytes)
    metrics.orphaned_files.labels(*key).set(stats.orphaned_files_count)
    metrics.orphaned_files_bytes.labels(*key).set(stats.orphaned_files_size_bytes)
    if stats.archived_blobs_count is not None:
        metrics.archived_blobs.labels(*key).set(stats.archived_blobs_count)
        metrics.archived_blobs_bytes.labels(*key).set(stats.archived_blobs_size_bytes or 0)
    for state in Health:
        metrics.health.labels(*key, state.value).set(1 if stats.health is state else 0)
    metrics.cleanup_needed.labels(*key).set(1 if stats.cleanup_needed else 0)
    metrics.job_source_up.labels(*key).set(0 if stats.job_source_error else 1)


def observe_run(metrics: Metrics, namespace: str, policy: str, status: RunStatus) -> None:
    """The per-cleanup counters from one finished run (dry runs delete nothing); the duration histogram is
    the operator's, in ``observe_run_duration``."""
    key = (namespace, policy)
    run_type = status.trigger.value
    for phase in FINAL_PHASES:
        # both outcomes exist from the first run on, so increase() sees the first failure too
        metrics.runs.labels(*key, run_type, phase.value)
    metrics.runs.labels(*key, run_type, status.phase.value).inc()
    for counter, by_reason in ((metrics.files_deleted, status.deleted_by_reason),
                               (metrics.bytes_freed, status.freed_bytes_by_reason)):
        for reason, amount in by_reason.items():
            if amount > 0 and reason in _REASONS:  # only the known reasons: the label set stays bounded
                counter.labels(*key, reason).inc(amount)
    metrics.files_skipped.labels(*key, run_type).inc(status.files_skipped)
    metrics.errors.labels(*key, run_type).inc(status.error_count)
    metrics.seconds.labels(*key, run_type).inc(max(status.duration_seconds, 0.0))
    metrics.job_queries.labels(*key).inc(status.job_queries)


def observe_run_duration(metrics: Metrics, status: RunStatus) -> None:
    """The operator-wide run-duration histogram (by type; no policy label), from one finished run."""
    metrics.duration.labels(status.trigger.value).observe(max(status.duration_seconds, 0.0))


def observe_prediction(
    metrics: Metrics, namespace: str, policy: str, prediction: Prediction | None, now: datetime
) -> None:
    """The prediction gauges; the seconds-until series disappear when there is no full time to predict, and
    every series when there is no fitted line (too few samples)."""
    key = (namespace, policy)
    if prediction is None or prediction.fill_rate_bytes_per_hour is None:
        for gauge in (metrics.fill_rate, metrics.prediction_confidence, metrics.full_seconds,
                      metrics.emergency_seconds):
            _remove(gauge, key)
        return
    metrics.fill_rate.labels(*key).set(prediction.fill_rate_bytes_per_hour / 3600)
    metrics.prediction_confidence.labels(*key).set(prediction.confidence)
    for gauge, at in ((metrics.full_seconds, prediction.full_at), (metrics.emergency_seconds, prediction.emergency_at)):
        if at is None:
            _remove(gauge, key)
        else:
            gauge.labels(*key).set(max((at - now).total_seconds(), 0.0))


def observe_pass(metrics: Metrics, namespace: str, policy: str, pass_: Pass, at: datetime) -> None:
    """A periodic pass over the policy finished at ``at`` (timezone-aware)."""
    metrics.last_success.labels(namespace, policy, pass_.value).set(at.timestamp())


def observe_timer_lag(metrics: Metrics, pass_: Pass, due_at: datetime, started_at: datetime) -> None:
    """A due pass started ``started_at - due_at`` late (never negative)."""
    metrics.timer_lag.labels(pass_.value).observe(max((started_at - due_at).total_seconds(), 0.0))


def forget_policy(metrics: Metrics, namespace: str, policy: str) -> None:
    """Drop every series of a deleted policy, so the series count follows the live policies."""
    key = (namespace, policy)
    types: list[tuple[str, ...]] = [(t.value,) for t in RunType]
    reasons: list[tuple[str, ...]] = [(r.value,) for r in DeletionReason]
    extras: dict[int, list[tuple[str, ...]]] = {
        id(metrics.health): [(s.value,) for s in Health],
        id(metrics.last_success): [(p.value,) for p in Pass],
        id(metrics.runs): [(t.value, p.value) for t, p in itertools.product(RunType, FINAL_PHASES)],
        id(metrics.files_deleted): reasons,
        id(metrics.bytes_freed): reasons,
        id(metrics.files_skipped): types,
        id(metrics.errors): types,
        id(metrics.seconds): types,
    }
    for metric in metrics.per_policy():
        for extra in extras.get(id(metric), [()]):
            _remove(metric, key + extra)


_REASONS = frozenset(r.value for r in DeletionReason)


def _remove(metric: Gauge | Counter | Histogram, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):  # never set: nothing to remove
        metric.remove(*labels)
