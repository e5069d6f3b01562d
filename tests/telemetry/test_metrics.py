"""The metrics as a scrape shows them: render the exposition text, parse it back, look up what a user queries."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tempsweep.models import DeletionReason, Health, RunPhase, RunStatus, RunType, StorageStats
from tempsweep.models.prediction import Prediction
from tempsweep.telemetry import (
    Metrics,
    Pass,
    forget_policy,
    observe_pass,
    observe_prediction,
    observe_run,
    observe_run_duration,
    observe_stats,
    observe_timer_lag,
)
from tempsweep.telemetry.metrics import FINAL_PHASES, MAX_SERIES_PER_POLICY, OPERATOR_SERIES, TIMER_LAG_BUCKETS

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
GB = 1_000_000_000

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: Metrics) -> Samples:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def stats(**overrides: object) -> StorageStats:
    fields: dict[str, object] = {
        "usage_percent": 82.5, "emergency_threshold": 90.0, "warning_threshold": 80.0,
        "total_bytes": 100 * GB, "free_bytes": 17_500_000_000, "temp_files_count": 1200,
        "temp_files_size_bytes": 60 * GB, "active_jobs_count": 2, "failed_jobs_count": 1,
        "orphaned_files_count": 40, "orphaned_files_size_bytes": 3 * GB, "cleanup_needed": False,
        "health": Health.WARNING, "effective_min_free_space_bytes": 5 * GB,
    }
    fields.update(overrides)
    return StorageStats.model_validate(fields)


def run_status(trigger: RunType, phase: RunPhase = RunPhase.SUCCEEDED, **overrides: object) -> RunStatus:
    fields: dict[str, object] = {
        "phase": phase, "message": "done", "trigger": trigger, "start_time": NOW,
        "end_time": NOW + timedelta(seconds=12), "duration_seconds": 12.0,
    }
    fields.update(overrides)
    return RunStatus.model_validate(fields)


def test_statistics_become_per_policy_gauges() -> None:
    metrics = Metrics()

    observe_stats(metrics, "team-a", "scratch", stats())

    s = scrape(metrics)
    key = {"namespace": "team-a", "policy": "scratch"}
    assert value(s, "tempsweep_storage_capacity_bytes", **key) == 100 * GB
    assert value(s, "tempsweep_storage_free_bytes", **key) == 17.5 * GB
    assert value(s, "tempsweep_storage_used_bytes", **key) == 82.5 * GB
    assert value(s, "tempsweep_storage_usage_ratio", **key) == pytest.approx(0.825)
    assert value(s, "tempsweep_storage_warning_threshold_ratio", **key) == pytest.approx(0.8)
    assert value(s, "tempsweep_storage_emergency_threshold_ratio", **key) == pytest.approx(0.9)
    assert value(s, "tempsweep_storage_min_free_bytes", **key) == 5 * GB
    assert value(s, "tempsweep_temp_files", **key) == 1200
    assert value(s, "tempsweep_orphaned_files_bytes", **key) == 3 * GB
    assert value(s, "tempsweep_storage_health", state="Warning", **key) == 1
    assert value(s, "tempsweep_storage_health", state="Healthy", **key) == 0
    assert value(s, "tempsweep_storage_health", state="Critical", **key) == 0
    assert value(s, "tempsweep_job_source_up", **key) == 1
    assert value(s, "tempsweep_archived_blobs", **key) is None  # a volume has no archive tier


def test_health_moves_and_job_source_down_and_archive_counts() -> None:
    metrics = Metrics()
    observe_stats(metrics, "ns", "p", stats())

    observe_stats(metrics, "ns", "p", stats(health=Health.CRITICAL, job_source_error="connection refused",
                                            archived_blobs_count=7, archived_blobs_size_bytes=700))

    s = scrape(metrics)
    assert value(s, "tempsweep_storage_health", namespace="ns", policy="p", state="Critical") == 1
    assert value(s, "tempsweep_storage_health", namespace="ns", policy="p", state="Warning") == 0
    assert value(s, "tempsweep_job_source_up", namespace="ns", policy="p") == 0
    assert value(s, "tempsweep_archived_blobs", namespace="ns", policy="p") == 7


def test_runs_count_by_type_and_phase_and_deletions_by_reason() -> None:
    metrics = Metrics()
    runs = [
        run_status(
            RunType.ORPHANED, files_deleted=5, bytes_freed=500, files_skipped=1, job_queries=3,
            deleted_by_reason={"OrphanUnknownJob": 3, "Expired": 2},
            freed_bytes_by_reason={"OrphanUnknownJob": 300, "Expired": 200},
        ),
        run_status(
            RunType.ORPHANED, RunPhase.FAILED, duration_seconds=400.0, error_count=4,
            deleted_by_reason={"Expired": 1, "/some/path": 9}, bytes_freed=10,
            freed_bytes_by_reason={"Expired": 1, "/some/path": 9},
        ),
    ]
    for status in runs:
        observe_run(metrics, "ns", "p", status)
        observe_run_duration(metrics, status)

    s = scrape(metrics)
    key = {"namespace": "ns", "policy": "p"}
    assert value(s, "tempsweep_cleanup_runs_total", type="Orphaned", phase="Succeeded", **key) == 1
    assert value(s, "tempsweep_cleanup_runs_total", type="Orphaned", phase="Failed", **key) == 1
    assert value(s, "tempsweep_cleanup_files_deleted_total", reason="Expired", **key) == 3
    assert value(s, "tempsweep_cleanup_files_deleted_total", reason="OrphanUnknownJob", **key) == 3
    assert value(s, "tempsweep_cleanup_files_deleted_total", reason="/some/path", **key) is None
    assert value(s, "tempsweep_cleanup_freed_bytes_total", reason="Expired", **key) == 201
    assert value(s, "tempsweep_cleanup_freed_bytes_total", reason="OrphanUnknownJob", **key) == 300
    assert value(s, "tempsweep_cleanup_freed_bytes_total", reason="/some/path", **key) is None
    assert value(s, "tempsweep_cleanup_files_skipped_total", type="Orphaned", **key) == 1
    assert value(s, "tempsweep_cleanup_errors_total", type="Orphaned", **key) == 4
    assert value(s, "tempsweep_job_source_queries_total", **key) == 3
    assert value(s, "tempsweep_cleanup_seconds_total", type="Orphaned", **key) == 412
    # the duration histogram is the operator's, by type only: no policy label, so 15 series per type in all
    assert value(s, "tempsweep_cleanup_duration_seconds_count", type="Orphaned") == 2
    assert value(s, "tempsweep_cleanup_duration_seconds_bucket", type="Orphaned", le="30.0") == 1
    assert value(s, "tempsweep_cleanup_duration_seconds_sum", type="Orphaned") == 412


def test_prediction_gauges_appear_and_disappear() -> None:
    metrics = Metrics()
    filling = Prediction(
        fill_rate_bytes_per_hour=3600.0, full_at=NOW + timedelta(hours=5), emergency_at=NOW + timedelta(hours=4),
        samples_used=20, confidence=0.97, computed_at=NOW,
    )
    observe_prediction(metrics, "ns", "p", filling, NOW)
    s = scrape(metrics)
    assert value(s, "tempsweep_storage_predicted_full_seconds", namespace="ns", policy="p") == 5 * 3600
    assert value(s, "tempsweep_storage_predicted_emergency_seconds", namespace="ns", policy="p") == 4 * 3600
    assert value(s, "tempsweep_storage_fill_rate_bytes_per_second", namespace="ns", policy="p") == 1.0
    assert value(s, "tempsweep_storage_prediction_confidence_ratio", namespace="ns", policy="p") == 0.97

    flat = Prediction(fill_rate_bytes_per_hour=0.0, samples_used=20, confidence=0.0, computed_at=NOW)
    observe_prediction(metrics, "ns", "p", flat, NOW)
    s = scrape(metrics)
    assert value(s, "tempsweep_storage_predicted_full_seconds", namespace="ns", policy="p") is None
    assert value(s, "tempsweep_storage_fill_rate_bytes_per_second", namespace="ns", policy="p") == 0

    observe_prediction(metrics, "ns", "p", None, NOW)
    assert value(scrape(metrics), "tempsweep_storage_fill_rate_bytes_per_second", namespace="ns", policy="p") is None


def test_passes_and_timer_lag() -> None:
    metrics = Metrics()
    observe_pass(metrics, "ns", "p", Pass.EMERGENCY_CHECK, NOW)
    observe_timer_lag(metrics, Pass.SCHEDULED, due_at=NOW, started_at=NOW + timedelta(seconds=3))
    observe_timer_lag(metrics, Pass.SCHEDULED, due_at=NOW, started_at=NOW - timedelta(seconds=3))

    s = scrape(metrics)
    assert value(s, "tempsweep_pass_last_success_timestamp_seconds", namespace="ns", policy="p",
                 **{"pass": "EmergencyCheck"}) == NOW.timestamp()
    assert value(s, "tempsweep_timer_lag_seconds_count", **{"pass": "Scheduled"}) == 2
    assert value(s, "tempsweep_timer_lag_seconds_sum", **{"pass": "Scheduled"}) == 3


def _everything(metrics: Metrics, namespace: str, policy: str) -> None:
    observe_stats(metrics, namespace, policy, stats(archived_blobs_count=1, archived_blobs_size_bytes=1))
    observe_prediction(metrics, namespace, policy, Prediction(
        fill_rate_bytes_per_hour=1.0, full_at=NOW, emergency_at=NOW, samples_used=5, confidence=1, computed_at=NOW,
    ), NOW)
    for pass_ in Pass:
        observe_pass(metrics, namespace, policy, pass_, NOW)
    for trigger, phase in itertools.product(RunType, FINAL_PHASES):
        status = run_status(
            trigger, phase, deleted_by_reason={r.value: 1 for r in DeletionReason},
            freed_bytes_by_reason={r.value: 10 for r in DeletionReason}, job_queries=1,
        )
        observe_run(metrics, namespace, policy, status)
        observe_run_duration(metrics, status)


def _series_of(samples: Samples, policy: str) -> int:
    return sum(1 for _, labels in samples if ("policy", policy) in labels)


def test_series_per_policy_stay_within_the_documented_bound_and_go_with_the_policy() -> None:
    metrics = Metrics()
    _everything(metrics, "ns", "busy")
    _everything(metrics, "ns", "other")

    s = scrape(metrics)
    assert _series_of(s, "busy") == MAX_SERIES_PER_POLICY  # the bound is tight: every label value used
    unlabelled = [name for name, labels in s if not any(key == "policy" for key, _ in labels)]
    assert len(unlabelled) == OPERATOR_SERIES - len(Pass) * (len(TIMER_LAG_BUCKETS) + 3)  # no timer lag yet
    assert not any(":" in v or "/" in v for _, labels in s for _, v in labels if _ != "le")

    forget_policy(metrics, "ns", "busy")

    s = scrape(metrics)
    assert _series_of(s, "busy") == 0
    assert _series_of(s, "other") > 0


def test_the_operator_registry_carries_the_process_and_python_collectors() -> None:
    s = scrape(Metrics(runtime_collectors=True))
    names = {name for name, _ in s}
    assert "python_info" in names
    assert "process_resident_memory_bytes" in names
    assert any(name.startswith("python_gc_") for name in names)
