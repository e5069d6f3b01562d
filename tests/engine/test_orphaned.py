"""Orphaned: old files whose job is gone, unknown, finished or failed past its wait; never an active job's."""

from __future__ import annotations

from datetime import datetime

import pytest

from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage

OLD, YOUNG = 30.0, 2.0  # hours; the policy's orphan age is 24 h


@pytest.fixture
def jobs(now: datetime) -> MemoryJobSource:
    return MemoryJobSource(
        [
            job("100", "running", 50, now),
            job("101", "pending", 50, now),
            job("200", "failed", 5, now),
            job("201", "failed", 0.5, now),
            job("300", "completed", 50, now),
        ]
    )


def _orphaned(tree: Tree, jobs: MemoryJobSource | None, now: datetime, **fields: float):
    policy = effective_policy(
        tree.root,
        jobs=JOBS if jobs is not None else None,
        orphans={"maxAgeHours": 24},
        failedJobs={"cleanupAfterHours": 1},
    )
    return execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned", **fields), jobs=jobs, now=now)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("download.tmp", "OrphanNoJobId"),
        ("job_999_a.tmp", "OrphanUnknownJob"),
        ("job_300_a.tmp", "OrphanFinishedJob"),
        ("job_200_a.tmp", "OrphanFailedJob"),
    ],
    ids=["no-job-id", "unknown-job", "finished-job", "failed-past-wait"],
)
def test_each_orphan_rule_deletes_an_old_file_with_its_reason(
    tree: Tree, jobs: MemoryJobSource, now: datetime, name: str, reason: str
) -> None:
    tree.file(name, age_hours=OLD)
    tree.file(f"young/{name}", age_hours=YOUNG)

    status = _orphaned(tree, jobs, now)

    assert tree.files() == {f"young/{name}"}, "only the old file is an orphan"
    assert status.deleted_by_reason == {reason: 1}
    assert status.phase is RunPhase.SUCCEEDED


@pytest.mark.parametrize(
    "name",
    ["job_100_a.tmp", "job_101_chunk_3_b.tmp", "job_201_a.tmp"],
    ids=["running-job", "pending-job-chunk", "failed-too-recently"],
)
def test_files_of_active_or_recently_failed_jobs_are_never_orphans(
    tree: Tree, jobs: MemoryJobSource, now: datetime, name: str
) -> None:
    tree.file(name, age_hours=10_000)

    status = _orphaned(tree, jobs, now, maxAgeHours=0.001)

    assert tree.files() == {name}
    assert status.files_deleted == 0


def test_a_mixed_tree_loses_exactly_its_orphans(tree: Tree, jobs: MemoryJobSource, now: datetime) -> None:
    expected_gone = {"a/download.tmp", "job_999_x.tmp", "b/c/job_300_x.tmp", "job_200_x.tmp"}
    expected_kept = {"job_100_x.tmp", "job_201_x.tmp", "fresh.tmp", "b/job_999_new.tmp"}
    for name in expected_gone:
        tree.file(name, age_hours=OLD, size=100)
    for name in expected_kept - {"fresh.tmp", "b/job_999_new.tmp"}:
        tree.file(name, age_hours=OLD)
    tree.file("fresh.tmp", age_hours=YOUNG)
    tree.file("b/job_999_new.tmp", age_hours=YOUNG)

    status = _orphaned(tree, jobs, now)

    assert tree.files() == expected_kept
    assert status.files_scanned == 8
    assert status.files_deleted == 4
    assert status.bytes_freed == 400
    assert sum(status.deleted_by_reason.values()) == status.files_deleted


def test_bytes_freed_are_split_by_the_reason_each_file_went_for(
    tree: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    tree.file("a.tmp", age_hours=OLD, size=10)
    tree.file("b.tmp", age_hours=OLD, size=20)
    tree.file("job_999_x.tmp", age_hours=OLD, size=300)
    tree.file("job_300_x.tmp", age_hours=OLD, size=4000)
    tree.file("job_100_x.tmp", age_hours=OLD, size=50_000)  # running: kept, counted nowhere

    status = _orphaned(tree, jobs, now)

    assert status.freed_bytes_by_reason == {"OrphanNoJobId": 30, "OrphanUnknownJob": 300, "OrphanFinishedJob": 4000}
    assert status.deleted_by_reason == {"OrphanNoJobId": 2, "OrphanUnknownJob": 1, "OrphanFinishedJob": 1}
    assert sum(status.freed_bytes_by_reason.values()) == status.bytes_freed


def test_a_dry_run_frees_nothing_by_any_reason(tree: Tree, jobs: MemoryJobSource, now: datetime) -> None:
    tree.file("a.tmp", age_hours=OLD, size=10)

    status = _orphaned(tree, jobs, now, dryRun=True)

    assert status.freed_bytes_by_reason == {}
    assert status.would_delete_by_reason == {"OrphanNoJobId": 1}


def test_the_run_max_age_overrides_the_policy(tree: Tree, jobs: MemoryJobSource, now: datetime) -> None:
    tree.file("six-hours.tmp", age_hours=6)
    tree.file("two-hours.tmp", age_hours=2)

    status = _orphaned(tree, jobs, now, maxAgeHours=4)

    assert tree.files() == {"two-hours.tmp"}
    assert status.files_deleted == 1


def test_an_age_only_policy_deletes_every_old_file_as_expired(tree: Tree, now: datetime) -> None:
    for name in ("download.tmp", "job_100_a.tmp", "job_999_chunk_1_b.tmp", "deep/er/x.bin"):
        tree.file(name, age_hours=OLD)
    tree.file("fresh.tmp", age_hours=YOUNG)

    status = _orphaned(tree, None, now)

    assert tree.files() == {"fresh.tmp"}
    assert status.deleted_by_reason == {"Expired": 4}
    assert status.job_queries == 0


def test_without_job_status_only_files_without_a_job_id_go_and_the_run_fails(
    tree: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    jobs.unavailable = True
    tree.file("download.tmp", age_hours=OLD)
    for name in ("job_999_a.tmp", "job_300_a.tmp", "job_200_a.tmp", "job_100_a.tmp"):
        tree.file(name, age_hours=OLD)

    status = _orphaned(tree, jobs, now)

    assert tree.files() == {"job_999_a.tmp", "job_300_a.tmp", "job_200_a.tmp", "job_100_a.tmp"}
    assert status.deleted_by_reason == {"OrphanNoJobId": 1}
    assert status.phase is RunPhase.FAILED
    assert "job status unavailable" in status.message


def test_a_file_exactly_at_the_age_limit_is_kept(tree: Tree, now: datetime) -> None:
    tree.file("edge.tmp", age_hours=24)

    status = _orphaned(tree, None, now)

    assert tree.files() == {"edge.tmp"}
    assert status.files_deleted == 0
