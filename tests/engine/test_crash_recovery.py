"""CrashRecovery: the files of failed jobs go once the job has been failed for cleanupAfterHours."""

from __future__ import annotations

from datetime import datetime

import pytest

from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage


@pytest.fixture
def jobs(now: datetime) -> MemoryJobSource:
    return MemoryJobSource(
        [
            job("1", "failed", 5, now),  # failed long enough ago
            job("2", "cancelled", 3, now),  # another failed status
            job("3", "failed", 0.25, now),  # failed too recently
            job("4", "running", 5, now),  # active
            job("5", "completed", 5, now),  # finished
            job("6", "error", None, now),  # failed, but we cannot tell when
        ]
    )


@pytest.fixture
def crash_tree(tree: Tree) -> Tree:
    for job_id in ("1", "2", "3", "4", "5", "6", "7", "10"):
        tree.file(f"job_{job_id}_a.tmp")
        tree.file(f"parts/job_{job_id}_chunk_1_b.tmp")
    tree.file("loose.tmp", age_hours=100)
    return tree


def _run(tree: Tree, jobs: MemoryJobSource, now: datetime, **fields: str):
    policy = effective_policy(tree.root, jobs=JOBS, failedJobs={"cleanupAfterHours": 1})
    return execute(
        policy, VolumeStorage(str(tree.root)), run_spec("CrashRecovery", **fields), jobs=jobs, now=now
    )


def _files_of(tree: Tree, job_id: str) -> set[str]:
    return {path for path in tree.files() if path.rpartition("/")[2].startswith(f"job_{job_id}_")}


def test_a_failed_job_past_its_wait_loses_all_its_files(
    crash_tree: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    before = crash_tree.files()
    status = _run(crash_tree, jobs, now, jobId="1")

    assert status.phase is RunPhase.SUCCEEDED
    assert _files_of(crash_tree, "1") == set()
    assert crash_tree.files() == before - {"job_1_a.tmp", "parts/job_1_chunk_1_b.tmp"}
    assert status.deleted_by_reason == {"FailedJob": 2}


@pytest.mark.parametrize(
    ("job_id", "why"),
    [
        ("3", "failed less than 1 h ago"),
        ("4", "is 'running', not failed"),
        ("5", "is 'completed', not failed"),
        ("6", "failed less than"),
        ("7", "is not in the job table"),
    ],
    ids=["failed-too-recently", "active", "finished", "failed-without-timestamp", "unknown"],
)
def test_a_job_that_is_not_ready_keeps_its_files_and_the_status_says_why(
    crash_tree: Tree, jobs: MemoryJobSource, now: datetime, job_id: str, why: str
) -> None:
    before = crash_tree.files()
    status = _run(crash_tree, jobs, now, jobId=job_id)

    assert crash_tree.files() == before
    assert status.files_deleted == 0
    assert f"job {job_id}" in status.message
    assert why in status.message


def test_without_a_job_id_every_failed_job_past_its_wait_is_cleaned(
    crash_tree: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    status = _run(crash_tree, jobs, now)

    assert _files_of(crash_tree, "1") == set()
    assert _files_of(crash_tree, "2") == set()
    for kept in ("3", "4", "5", "6", "7", "10"):
        assert len(_files_of(crash_tree, kept)) == 2, f"job {kept} must keep its files"
    assert "loose.tmp" in crash_tree.files()
    assert status.files_deleted == 4
    assert status.deleted_by_reason == {"FailedJob": 4}


def test_without_a_job_id_and_no_ready_job_the_status_says_so(tree: Tree, now: datetime) -> None:
    tree.file("job_3_a.tmp")
    jobs = MemoryJobSource([job("3", "failed", 0.1, now)])
    status = _run(tree, jobs, now)

    assert tree.files() == {"job_3_a.tmp"}
    assert "no failed job is older than 1 h" in status.message


def test_a_policy_without_job_status_cannot_run_crash_recovery(tree: Tree, now: datetime) -> None:
    tree.file("job_1_a.tmp", age_hours=100)
    status = execute(
        effective_policy(tree.root), VolumeStorage(str(tree.root)), run_spec("CrashRecovery"), now=now
    )

    assert status.phase is RunPhase.FAILED
    assert "jobs.database" in status.message
    assert tree.files() == {"job_1_a.tmp"}


def test_an_unavailable_job_source_fails_the_run_and_deletes_nothing(
    crash_tree: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    jobs.unavailable = True
    before = crash_tree.files()
    status = _run(crash_tree, jobs, now)

    assert status.phase is RunPhase.FAILED
    assert "unreachable" in status.message
    assert crash_tree.files() == before
