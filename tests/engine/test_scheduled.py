"""Scheduled: the emergency check, then orphans, then crash recovery for all failed jobs, as one record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage

SIZE = 100


@pytest.fixture
def jobs(now: datetime) -> MemoryJobSource:
    return MemoryJobSource(
        [job("100", "running", 1, now), job("200", "failed", 5, now), job("201", "failed", 0.5, now)]
    )


def _scheduled(
    tree: Tree,
    jobs: MemoryJobSource | None,
    now: datetime,
    *,
    capacity: int,
    dry_run: bool = False,
    **thresholds: Any,
):
    policy = effective_policy(
        tree.root,
        jobs=JOBS if jobs is not None else None,
        storage={"volume": {"capacity": capacity}},
        thresholds={"emergencyPercent": 90, "warningPercent": 80, "emergencyBufferPercent": 5, **thresholds},
        orphans={"maxAgeHours": 24, "emergencyMaxAgeHours": 1},
        failedJobs={"cleanupAfterHours": 1},
    )
    spec = run_spec("Scheduled", **({"dryRun": True} if dry_run else {}))
    return execute(policy, VolumeStorage(str(tree.root)), spec, jobs=jobs, now=now)


@pytest.fixture
def mixed(tree: Tree) -> Tree:
    """Nine 100-byte files: 90 % of a 1000-byte capacity."""
    for index in range(3):
        tree.file(f"job_100_active{index}.tmp", age_hours=100, size=SIZE)
    tree.file("ancient.tmp", age_hours=48, size=SIZE)
    tree.file("old.tmp", age_hours=30, size=SIZE)
    tree.file("job_200_recent.tmp", age_hours=0.2, size=SIZE)  # failed 5 h ago: crash recovery takes it
    for index in range(3):
        tree.file(f"fresh{index}.tmp", age_hours=0.1, size=SIZE)
    return tree


KEPT = {
    "job_100_active0.tmp",
    "job_100_active1.tmp",
    "job_100_active2.tmp",
    "fresh0.tmp",
    "fresh1.tmp",
    "fresh2.tmp",
}


def test_without_an_emergency_it_cleans_orphans_and_crashed_jobs(
    mixed: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    status = _scheduled(mixed, jobs, now, capacity=100_000)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert mixed.files() == KEPT
    assert status.deleted_by_reason == {"OrphanNoJobId": 2, "FailedJob": 1}
    assert status.trigger.value == "Scheduled"


def test_with_an_emergency_it_relieves_first_and_then_cleans_the_rest(
    mixed: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    status = _scheduled(mixed, jobs, now, capacity=1000)

    assert mixed.files() == KEPT
    assert status.deleted_by_reason == {"EmergencyOrphan": 1, "OrphanNoJobId": 1, "FailedJob": 1}
    assert status.files_deleted == 3
    assert status.bytes_freed == 300
    assert status.storage_before_percent == 90.0
    assert status.storage_after_percent == 60.0, "after = what is really left on the 1000-byte capacity"


def test_a_dry_run_counts_each_file_once(mixed: Tree, jobs: MemoryJobSource, now: datetime) -> None:
    before = mixed.files()
    status = _scheduled(mixed, jobs, now, capacity=1000, dry_run=True)

    assert mixed.files() == before
    assert status.would_delete_count == 3
    assert status.would_delete_by_reason == {"EmergencyOrphan": 1, "OrphanNoJobId": 1, "FailedJob": 1}
    assert len(set(status.would_delete)) == len(status.would_delete)


def test_without_job_status_only_old_files_without_a_job_go_and_the_run_fails(
    mixed: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    jobs.unavailable = True
    status = _scheduled(mixed, jobs, now, capacity=100_000)

    assert mixed.files() == KEPT | {"job_200_recent.tmp"}
    assert status.deleted_by_reason == {"OrphanNoJobId": 2}
    assert status.phase is RunPhase.FAILED
    assert "unreachable" in status.message


def test_an_age_only_policy_runs_without_crash_recovery(mixed: Tree, now: datetime) -> None:
    status = _scheduled(mixed, None, now, capacity=100_000)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert mixed.files() == {"fresh0.tmp", "fresh1.tmp", "fresh2.tmp", "job_200_recent.tmp"}
    assert status.deleted_by_reason == {"Expired": 5}, "without job status, a job's name protects nothing"
