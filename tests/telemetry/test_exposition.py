"""The operator's pre-rendered exposition: the same figures as one registry, each family once, accepted by
the real promtool, and a forgotten policy gone."""

from __future__ import annotations

import itertools
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from support.components import missing_component
from tempsweep.models import DeletionReason, Health, RunPhase, RunStatus, RunType, StorageStats
from tempsweep.telemetry import (
    Metrics,
    Pass,
    observe_pass,
    observe_run,
    observe_run_duration,
    observe_stats,
    observe_timer_lag,
)
from tempsweep.telemetry.exposition import Exposition

PROMTOOL = Path(__file__).resolve().parents[2] / ".local" / "bin" / "promtool"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICIES = [("team-a", "scratch"), ("team-a", "frames"), ("team-b", "scratch")]


def stats(used_percent: float) -> StorageStats:
    return StorageStats(
        usage_percent=used_percent, emergency_threshold=90, warning_threshold=80, total_bytes=1000,
        free_bytes=int(1000 - 10 * used_percent), temp_files_count=3, temp_files_size_bytes=30, active_jobs_count=0,
        failed_jobs_count=0, orphaned_files_count=1, orphaned_files_size_bytes=5, cleanup_needed=False,
        health=Health.HEALTHY,
    )


def run(trigger: RunType, phase: RunPhase, seconds: float) -> RunStatus:
    return RunStatus(
        phase=phase, message="", trigger=trigger, start_time=NOW, end_time=NOW, duration_seconds=seconds,
        files_deleted=2, bytes_freed=20, deleted_by_reason={DeletionReason.EXPIRED.value: 2},
        freed_bytes_by_reason={DeletionReason.EXPIRED.value: 20}, job_queries=1,
    )


def fill(exposition: Exposition, single: Metrics) -> None:
    """The same observations into the per-policy exposition and into one registry."""
    for index, (namespace, policy) in enumerate(POLICIES):
        status = run(list(RunType)[index], list(RunPhase)[2 + index % 3], 3.0 * index)
        with exposition.updating(namespace, policy) as metrics:
            observe_stats(metrics, namespace, policy, stats(10.0 * index))
            observe_pass(metrics, namespace, policy, Pass.EMERGENCY_CHECK, NOW)
            observe_run(metrics, namespace, policy, status)
        observe_run_duration(exposition.operator, status)
        observe_stats(single, namespace, policy, stats(10.0 * index))
        observe_pass(single, namespace, policy, Pass.EMERGENCY_CHECK, NOW)
        observe_run(single, namespace, policy, status)
        observe_run_duration(single, status)
    for metrics in (exposition.operator, single):
        observe_timer_lag(metrics, Pass.STATISTICS, NOW, NOW + timedelta(seconds=2))


def samples(text: str) -> set[tuple[str, frozenset[tuple[str, str]], float]]:
    return {
        (s.name, frozenset(s.labels.items()), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_merged_scrape_says_what_one_registry_would() -> None:
    exposition, single = Exposition(runtime_collectors=False), Metrics()
    fill(exposition, single)

    merged = exposition.render().decode()

    assert samples(merged) == samples(generate_latest(single.registry).decode())
    types = re.findall(r"^# TYPE (\S+)", merged, flags=re.MULTILINE)
    assert len(types) == len(set(types)), "every family is declared once"


def test_a_forgotten_policy_leaves_the_scrape_and_the_others_stay() -> None:
    exposition = Exposition(runtime_collectors=False)
    fill(exposition, Metrics())

    exposition.forget("team-a", "frames")

    policies = {dict(labels).get("policy") for _, labels, _ in samples(exposition.render().decode())}
    assert policies == {"scratch", None}  # None: the operator-wide histograms
    assert exposition.policies() == 2


def test_promtool_accepts_the_scrape() -> None:
    if not PROMTOOL.is_file():
        missing_component("promtool", "run `make prometheus` (builds it from the upstream Go module)")
    exposition = Exposition(runtime_collectors=True)
    fill(exposition, Metrics())
    with exposition.updating("team-c", "empty"):
        pass  # a policy with no figure yet: families without samples

    result = subprocess.run([str(PROMTOOL), "check", "metrics"], input=exposition.render(), capture_output=True,
                            check=False)

    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.parametrize("policies", [0, 1, 50], ids=lambda n: f"{n}-policies")
def test_every_series_of_many_policies_is_served(policies: int) -> None:
    exposition = Exposition(runtime_collectors=False)
    for index, trigger in itertools.product(range(policies), RunType):
        with exposition.updating("ns", f"p{index}") as metrics:
            observe_run(metrics, "ns", f"p{index}", run(trigger, RunPhase.SUCCEEDED, 1.0))

    found = samples(exposition.render().decode())

    runs = [s for s in found if s[0] == "tempsweep_cleanup_runs_total" and s[2] == 1]
    assert len(runs) == policies * len(RunType)
