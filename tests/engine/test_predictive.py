"""Predictive cleanup: when a prediction may start it (pure), and what the gentle run deletes (real volume).

The run is Scheduled's orphan and crash phase without the emergency: the oldest files of inactive jobs
(the emergency's third tier) are never its business, whatever the usage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.engine.prediction import (
    Capacity,
    UsageSample,
    assess,
    capacity_of,
    predict,
    predictive_reason,
)
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import Health, RunPhase, RunType, StorageStats
from tempsweep.models.effective import Predictive
from tempsweep.models.prediction import TOO_FEW_SAMPLES
from tempsweep.storage import VolumeStorage

GB = 1_000_000_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CAPACITY = Capacity(total_bytes=100 * GB, emergency_used_bytes=90 * GB)
SIX_HOURS = Predictive(horizon_seconds=6 * 3600, min_confidence=0.5, cooldown_seconds=3600)


def _filling(start_gb: float, gb_per_hour: float, minutes: int = 60) -> list[UsageSample]:
    return [UsageSample(T0 + timedelta(minutes=m), int((start_gb + gb_per_hour * m / 60) * GB))
            for m in range(0, minutes + 1, 5)]


def test_emergency_within_the_horizon_starts_it_and_says_when() -> None:
    samples = _filling(60, 5)  # 65 GB at T0+1h; emergency (90) at T0+6h: 5 h away
    now = samples[-1].at

    why = predictive_reason(predict(samples, CAPACITY), SIX_HOURS, None, now)

    assert why is not None
    assert "emergency threshold predicted at 2026-01-01T06:00:00Z (in 5h" in why
    assert "within the 6h horizon" in why


@pytest.mark.parametrize(
    ("samples", "last_run", "why"),
    [
        (_filling(20, 5), None, "emergency 13 h away: beyond the horizon"),
        (_filling(60, 0), None, "flat: not filling"),
        (_filling(80, -5), None, "shrinking"),
        (_filling(60, 5)[:2], None, "too few samples"),
        (_filling(60, 5), T0 + timedelta(minutes=30), "cooldown: ran 30 min ago"),
    ],
    ids=["beyond-horizon", "flat", "shrinking", "too-few", "cooldown"],
)
def test_anything_less_sure_runs_nothing_early(samples: list[UsageSample], last_run: datetime | None, why: str) -> None:
    now = samples[-1].at
    assert predictive_reason(assess(samples, CAPACITY), SIX_HOURS, last_run, now) is None, why


def test_low_confidence_runs_nothing_early() -> None:
    early = _filling(60, 5, minutes=20)  # 5 samples: a clean line, but confidence is scaled down to 5/12
    prediction = predict(early, CAPACITY)
    assert prediction is not None and prediction.emergency_at is not None
    assert prediction.confidence < 0.5

    assert predictive_reason(prediction, SIX_HOURS, None, early[-1].at) is None
    lenient = Predictive(horizon_seconds=6 * 3600, min_confidence=0.1)
    assert predictive_reason(prediction, lenient, None, early[-1].at) is not None


def test_too_few_samples_is_said_not_guessed() -> None:
    prediction = assess(_filling(60, 5)[:3], CAPACITY)

    assert prediction is not None
    assert prediction.full_in == TOO_FEW_SAMPLES
    assert prediction.fill_rate_bytes_per_hour is None and prediction.full_at is None
    assert prediction.samples_used == 3 and prediction.history is not None  # kept for a restart
    assert assess([], CAPACITY) is None


def _stats(total: int, free: int, min_free: int | None = 0) -> StorageStats:
    return StorageStats(
        usage_percent=100 * (total - free) / total if total else 100, emergency_threshold=95, warning_threshold=85,
        total_bytes=total, free_bytes=free, temp_files_count=0, temp_files_size_bytes=0, active_jobs_count=0,
        failed_jobs_count=0, orphaned_files_count=0, orphaned_files_size_bytes=0, cleanup_needed=False,
        health=Health.HEALTHY, effective_min_free_space_bytes=min_free,
    )


def test_capacity_for_the_fit_counts_the_free_space_floor_and_refuses_an_unmeasured_one() -> None:
    assert capacity_of(_stats(1000, 500)) == Capacity(1000, 950)
    assert capacity_of(_stats(1000, 500, min_free=200)) == Capacity(1000, 800)  # free < 200 is an emergency too
    assert capacity_of(_stats(0, 0)) is None  # nothing to measure against: no prediction at all


@pytest.fixture
def jobs(now: datetime) -> MemoryJobSource:
    return MemoryJobSource(
        [job("1", "running", 50, now), job("2", "failed", 5, now), job("3", "completed", 2, now)]
    )


def test_the_gentle_run_deletes_orphans_and_failed_jobs_only(tree: Tree, jobs: MemoryJobSource, now: datetime) -> None:
    tree.file("stray.tmp", age_hours=30)  # orphan: no job id, past maxAgeHours
    tree.file("job_2_out.bin", age_hours=3)  # failed job past its wait
    tree.file("job_1_running.bin", age_hours=100)  # active: never
    tree.file("job_3_done.bin", age_hours=3)  # finished, but younger than maxAgeHours: the emergency's tier only
    tree.file("young.tmp", age_hours=2)
    policy = effective_policy(
        tree.root, jobs=JOBS, orphans={"maxAgeHours": 24}, failedJobs={"cleanupAfterHours": 1},
        storage={"volume": {"capacity": "60"}},  # 50 bytes of 60: past the emergency threshold, still gentle
        thresholds={"minFreeSpace": 1, "emergencyPercent": 80, "warningPercent": 70},
        limits={"maxDeletePercent": 100},
    )

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec("Predictive"), jobs=jobs, now=now)

    assert status.trigger is RunType.PREDICTIVE
    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert tree.files() == {"job_1_running.bin", "job_3_done.bin", "young.tmp"}
    assert status.deleted_by_reason == {"OrphanNoJobId": 1, "FailedJob": 1}
    assert not any(reason.startswith("Emergency") for reason in status.deleted_by_reason)


def test_the_blast_radius_guard_stops_it_like_any_other(tree: Tree, jobs: MemoryJobSource, now: datetime) -> None:
    for index in range(4):
        tree.file(f"stray-{index}.tmp", age_hours=30)
    tree.file("young.tmp")
    policy = effective_policy(tree.root, jobs=JOBS, orphans={"maxAgeHours": 24}, limits={"maxDeletePercent": 50})

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec("Predictive"), jobs=jobs, now=now)

    assert status.phase is RunPhase.FAILED
    assert status.reason is not None and status.reason.value == "BlastRadiusExceeded"
    assert len(tree.files()) == 5
