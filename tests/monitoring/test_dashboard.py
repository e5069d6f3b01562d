"""The Grafana dashboard: loads as a dashboard of a current schema, asks for its data source as a variable,
and queries only metrics tempsweep exposes, in PromQL the real promtool parses.

Grafana is not run here (AGPL; we ship data, not Grafana). That every query returns data is shown by the
e2e test where a real Prometheus scrapes the operator (tests/e2e/test_operator_prometheus.py).
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from support.components import missing_component
from support.dashboard import dashboard, panels, queries
from tempsweep.models import DeletionReason, Health, RunPhase, RunStatus, RunType, StorageStats
from tempsweep.models.prediction import Prediction
from tempsweep.telemetry import (
    Metrics,
    Pass,
    observe_pass,
    observe_prediction,
    observe_run,
    observe_run_duration,
    observe_stats,
    observe_timer_lag,
)

REPO = Path(__file__).resolve().parents[2]
PROMTOOL = REPO / ".local" / "bin" / "promtool"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
_dashboard, _panels, _queries = dashboard, panels, queries


def _exposed_names() -> set[str]:
    """Every sample name a fully used Metrics exposes."""
    metrics = Metrics(runtime_collectors=True)
    stats = StorageStats(
        usage_percent=50, emergency_threshold=90, warning_threshold=80, total_bytes=10, free_bytes=5,
        temp_files_count=1, temp_files_size_bytes=1, active_jobs_count=0, failed_jobs_count=0,
        orphaned_files_count=0, orphaned_files_size_bytes=0, cleanup_needed=False, health=Health.HEALTHY,
        archived_blobs_count=0, archived_blobs_size_bytes=0,
    )
    observe_stats(metrics, "ns", "p", stats)
    observe_prediction(metrics, "ns", "p", Prediction(
        fill_rate_bytes_per_hour=1, full_at=NOW, emergency_at=NOW, samples_used=4, confidence=1, computed_at=NOW,
    ), NOW)
    observe_pass(metrics, "ns", "p", Pass.STATISTICS, NOW)
    observe_timer_lag(metrics, Pass.STATISTICS, NOW, NOW)
    finished = RunStatus(
        phase=RunPhase.SUCCEEDED, message="", trigger=RunType.ORPHANED, start_time=NOW, end_time=NOW,
        duration_seconds=1, deleted_by_reason={DeletionReason.EXPIRED.value: 1},
        freed_bytes_by_reason={DeletionReason.EXPIRED.value: 10},
    )
    observe_run(metrics, "ns", "p", finished)
    observe_run_duration(metrics, finished)
    text = generate_latest(metrics.registry).decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_dashboard_has_a_current_schema_and_a_data_source_variable() -> None:
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert isinstance(dashboard["schemaVersion"], int) and 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    text = " ".join(_queries())
    for metric in ("tempsweep_storage_usage_ratio", "tempsweep_storage_warning_threshold_ratio",
                   "tempsweep_storage_free_bytes", "tempsweep_storage_predicted_full_seconds",
                   "tempsweep_cleanup_files_deleted_total", "tempsweep_cleanup_freed_bytes_total",
                   "tempsweep_cleanup_runs_total", "tempsweep_cleanup_duration_seconds_bucket",
                   "tempsweep_job_source_up"):
        assert metric in text, metric


def test_every_query_names_only_metrics_tempsweep_exposes() -> None:
    exposed = _exposed_names()
    for query in _queries():
        for name in re.findall(r"\btempsweep_[a-z_]+", query):
            assert name in exposed, f"{name} in {query!r} is not a tempsweep metric"


@pytest.mark.parametrize("query", _queries())
def test_every_query_parses_as_promql(query: str) -> None:
    if not PROMTOOL.is_file():
        missing_component("promtool", "run `make prometheus` (builds it from the upstream Go module)")

    result = subprocess.run([str(PROMTOOL), "--experimental", "promql", "format", query],
                            capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
