"""The operator's metrics hooks: which passes a tick completed and how late, what a deleted policy leaves,
and what ``--metrics-port 0`` leaves out. Figures are read back from a real scrape of the registry."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tempsweep.controller.schedule import Observed, due_work
from tempsweep.controller.telemetry_hooks import DuePasses, OperatorTelemetry, completed_passes, due_times
from tempsweep.models import Health, RunPhase, RunStatus, RunType, StorageStats
from tempsweep.models.effective import Schedule
from tempsweep.models.prediction import Prediction
from tempsweep.models.resources import PolicyStatus
from tempsweep.telemetry import Pass

CREATED = datetime(2026, 3, 1, 9, 58, 30, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 11, 0, 3, tzinfo=UTC)
SCHEDULE = Schedule(
    suspend=False, scheduled_cron="0 * * * *", orphaned_cron="30 2 * * *", emergency_check_seconds=300,
    stats_seconds=60, monitor_storage=True,
)


def observed(**changes: object) -> Observed:
    """A ready policy whose timers all ran at creation time."""
    fields: dict[str, object] = {
        "generation": 1, "observed_generation": 1, "created": CREATED, "suspended": False, "ready": True,
        "job_source_ok": True, "last_stats": CREATED, "last_emergency_check": CREATED, "last_scheduled": None,
        "last_orphaned": None,
    }
    fields.update(changes)
    return Observed(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Policy:
    namespace: str = "team-a"
    name: str = "scratch"
    uid: str = "uid-1"


def samples(telemetry: OperatorTelemetry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """What a scrape of the operator shows."""
    assert telemetry.exposition is not None
    text = telemetry.exposition.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }


def series_of(telemetry: OperatorTelemetry, policy: str) -> int:
    return sum(1 for _, labels in samples(telemetry) if ("policy", policy) in labels)


def stats(health: Health = Health.HEALTHY) -> StorageStats:
    return StorageStats(
        usage_percent=40, emergency_threshold=90, warning_threshold=80, total_bytes=1000, free_bytes=600,
        temp_files_count=3, temp_files_size_bytes=30, active_jobs_count=0, failed_jobs_count=0,
        orphaned_files_count=0, orphaned_files_size_bytes=0, cleanup_needed=False, health=health,
    )


def run(phase: RunPhase = RunPhase.SUCCEEDED) -> RunStatus:
    return RunStatus(
        phase=phase, message="done", trigger=RunType.ORPHANED, start_time=NOW, end_time=NOW, duration_seconds=2,
        files_deleted=2, bytes_freed=30, deleted_by_reason={"Expired": 2}, freed_bytes_by_reason={"Expired": 30},
    )


def test_due_times_are_an_interval_after_the_last_pass_or_the_cron_slot() -> None:
    status = observed(last_stats=NOW - timedelta(seconds=70), last_emergency_check=NOW - timedelta(seconds=400))
    due = due_work(SCHEDULE, status, NOW)

    times = due_times(SCHEDULE, status, due)

    assert times == {
        Pass.STATISTICS: NOW - timedelta(seconds=10),  # every 60 s
        Pass.EMERGENCY_CHECK: NOW - timedelta(seconds=100),  # every 300 s
        Pass.SCHEDULED: datetime(2026, 3, 1, 11, 0, tzinfo=UTC),  # hourly slot
    }


def test_a_pass_that_never_ran_has_no_due_time_and_an_unresolved_policy_none() -> None:
    status = observed(last_stats=None, last_emergency_check=None)
    due = due_work(SCHEDULE, status, CREATED + timedelta(seconds=5))

    assert due.stats and due.emergency
    assert due_times(SCHEDULE, status, due) == {}
    assert due_times(None, status, due) == {}


def test_completed_passes_are_read_from_the_status_the_tick_wrote() -> None:
    written = PolicyStatus(last_emergency_check_time=NOW, last_orphaned_time=NOW)

    assert completed_passes(written, stats_computed=True) == {Pass.STATISTICS, Pass.EMERGENCY_CHECK, Pass.ORPHANED}
    assert completed_passes(PolicyStatus(), stats_computed=False) == set()


def test_a_tick_records_each_completed_pass_and_how_late_it_started() -> None:
    telemetry = OperatorTelemetry(port=1)  # never started: only the registry is used
    due = DuePasses({Pass.EMERGENCY_CHECK: NOW - timedelta(seconds=3), Pass.SCHEDULED: NOW}, started=NOW)

    telemetry.tick_finished(Policy(), due, {Pass.EMERGENCY_CHECK, Pass.ORPHANED})

    s = samples(telemetry)
    key = {"namespace": "team-a", "policy": "scratch"}
    assert s[("tempsweep_timer_lag_seconds_sum", frozenset({"pass": "EmergencyCheck"}.items()))] == 3
    assert ("tempsweep_timer_lag_seconds_count", frozenset({"pass": "Scheduled"}.items())) not in s  # not done
    assert ("tempsweep_timer_lag_seconds_count", frozenset({"pass": "Orphaned"}.items())) not in s  # no due time
    for pass_ in ("EmergencyCheck", "Orphaned"):
        stamp = s[("tempsweep_pass_last_success_timestamp_seconds", frozenset({**key, "pass": pass_}.items()))]
        assert stamp >= NOW.timestamp()


def test_unreadable_storage_turns_health_unknown() -> None:
    telemetry = OperatorTelemetry(port=1)
    telemetry.stats(Policy(), stats(Health.WARNING), NOW)

    telemetry.storage_unknown(Policy())

    s = samples(telemetry)
    health = {
        dict(labels)["state"]: v for (name, labels), v in s.items() if name == "tempsweep_storage_health"
    }
    assert health == {"Healthy": 0, "Warning": 0, "Critical": 0, "Unknown": 1}


def test_a_deleted_policy_leaves_no_series_and_a_late_result_brings_none_back() -> None:
    telemetry = OperatorTelemetry(port=1)
    telemetry.stats(Policy(), stats(), NOW)
    telemetry.run_finished(Policy(), run())
    telemetry.stats(Policy(name="other", uid="uid-2"), stats(), NOW)
    assert series_of(telemetry, "scratch") > 0

    telemetry.forget(Policy())
    telemetry.run_finished(Policy(), run(RunPhase.CANCELLED))  # its cleanup ends after the deletion
    telemetry.stats(Policy(), stats(), NOW)

    assert series_of(telemetry, "scratch") == 0
    assert series_of(telemetry, "other") > 0
    telemetry.stats(Policy(uid="uid-3"), stats(), NOW)  # created again under the same name
    assert series_of(telemetry, "scratch") > 0


def test_metrics_off_means_no_registry_and_every_hook_a_no_op() -> None:
    telemetry = OperatorTelemetry(port=0)

    telemetry.start()
    telemetry.stats(Policy(), stats(), NOW)
    telemetry.run_finished(Policy(), run())
    telemetry.tick_finished(Policy(), DuePasses({}), {Pass.STATISTICS})
    telemetry.forget(Policy())
    telemetry.stop()

    assert telemetry.exposition is None
    assert telemetry.serving_port is None


def test_a_port_already_taken_is_one_line_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        telemetry = OperatorTelemetry(port=taken.getsockname()[1], host="127.0.0.1")

        with pytest.raises(OSError):
            telemetry.start()

    assert telemetry.failure is not None
    assert telemetry.failure.startswith(f"--metrics-port {telemetry.port}: cannot listen on 127.0.0.1: ")
    assert "\n" not in telemetry.failure


def test_a_prediction_sets_the_time_until_gauges_and_none_removes_them() -> None:
    telemetry = OperatorTelemetry(port=1)
    filling = Prediction(
        fill_rate_bytes_per_hour=3600.0, full_at=NOW + timedelta(hours=2), emergency_at=NOW + timedelta(hours=1),
        samples_used=20, confidence=0.9, computed_at=NOW,
    )
    key = frozenset({"namespace": "team-a", "policy": "scratch"}.items())

    telemetry.prediction(Policy(), filling, NOW)
    assert samples(telemetry)[("tempsweep_storage_predicted_emergency_seconds", key)] == 3600

    telemetry.prediction(Policy(), None, NOW)
    assert ("tempsweep_storage_predicted_emergency_seconds", key) not in samples(telemetry)


def test_every_statistics_pass_moves_its_timestamp_and_figures_follow_the_storage() -> None:
    telemetry = OperatorTelemetry(port=1)
    key = {"namespace": "team-a", "policy": "scratch"}
    stamp = ("tempsweep_pass_last_success_timestamp_seconds", frozenset({**key, "pass": "Statistics"}.items()))
    healthy = ("tempsweep_storage_health", frozenset({**key, "state": "Healthy"}.items()))
    unknown = ("tempsweep_storage_health", frozenset({**key, "state": "Unknown"}.items()))

    telemetry.stats(Policy(), stats(), NOW)
    telemetry.stats(Policy(), stats(), NOW + timedelta(seconds=30))  # nothing changed but the time
    assert samples(telemetry)[stamp] == (NOW + timedelta(seconds=30)).timestamp()

    telemetry.storage_unknown(Policy())
    assert samples(telemetry)[unknown] == 1
    telemetry.stats(Policy(), stats(), NOW + timedelta(seconds=60))  # the same figures as before the outage
    assert samples(telemetry)[healthy] == 1 and samples(telemetry)[unknown] == 0

    telemetry.stats(Policy(), stats(Health.WARNING), NOW + timedelta(seconds=90))
    assert samples(telemetry)[healthy] == 0
