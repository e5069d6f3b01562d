"""Emergency: over the threshold or below the free-space floor, delete in the documented order until relieved.

Usage is controlled exactly with ``storage.volume.capacity``: files of 100 bytes on a 1000-byte
capacity are 10 % each.
"""

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
        [
            job("100", "running", 1, now),
            job("200", "failed", 5, now),
            job("201", "failed", 0.5, now),
            job("300", "completed", 0.2, now),
        ]
    )


def _emergency(
    tree: Tree, jobs: MemoryJobSource | None, now: datetime, *, dry_run: bool = False, **thresholds: Any
):
    limits = thresholds.pop("limits", {})
    policy = effective_policy(
        tree.root,
        jobs=JOBS if jobs is not None else None,
        storage={"volume": {"capacity": thresholds.pop("capacity", 1000)}},
        thresholds={"emergencyPercent": 90, "warningPercent": 80, "emergencyBufferPercent": 30, **thresholds},
        orphans={"emergencyMaxAgeHours": 1},
        failedJobs={"cleanupAfterHours": 1},
        limits=limits,
    )
    spec = run_spec("Emergency", **({"dryRun": True} if dry_run else {}))
    return execute(policy, VolumeStorage(str(tree.root)), spec, jobs=jobs, now=now)


@pytest.fixture
def crowded(tree: Tree) -> Tree:
    """900 of 1000 bytes: 90 %, at the threshold. Relief needs usage below 60 %: four files must go."""
    for index, age in enumerate((100, 90, 80)):
        tree.file(f"job_100_active{index}.tmp", age_hours=age, size=SIZE)
    tree.file("stale.tmp", age_hours=5, size=SIZE)  # orphan older than emergencyMaxAgeHours
    tree.file(
        "job_201_chunk_1_a.tmp", age_hours=50, size=SIZE
    )  # failed job (too recently for crash recovery)
    tree.file("job_201_chunk_1_b.tmp", age_hours=40, size=SIZE)
    tree.file("recent-a.tmp", age_hours=0.5, size=SIZE)  # young files: only "oldest remaining"
    tree.file("recent-b.tmp", age_hours=0.4, size=SIZE)
    tree.file("job_300_recent.tmp", age_hours=0.3, size=SIZE)
    return tree


def test_deletes_orphans_then_failed_jobs_then_the_oldest_and_stops_when_relieved(
    crowded: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    status = _emergency(crowded, jobs, now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert crowded.files() == {
        "job_100_active0.tmp",
        "job_100_active1.tmp",
        "job_100_active2.tmp",
        "recent-b.tmp",
        "job_300_recent.tmp",
    }
    assert status.deleted_by_reason == {"EmergencyOrphan": 1, "EmergencyFailedJob": 2, "EmergencyOldest": 1}
    assert status.storage_before_percent == 90.0
    assert status.storage_after_percent == 50.0


def test_a_dry_run_reports_the_same_choice_in_order(
    crowded: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    before = crowded.files()
    status = _emergency(crowded, jobs, now, dry_run=True)

    assert crowded.files() == before
    assert status.files_deleted == 0
    assert status.would_delete == [
        "stale.tmp",
        "job_201_chunk_1_a.tmp",
        "job_201_chunk_1_b.tmp",
        "recent-a.tmp",
    ]
    assert status.would_delete_by_reason == {
        "EmergencyOrphan": 1,
        "EmergencyFailedJob": 2,
        "EmergencyOldest": 1,
    }


def test_below_the_threshold_nothing_is_needed_and_nothing_is_deleted(
    tree: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    for index in range(8):
        tree.file(f"old{index}.tmp", age_hours=100, size=SIZE)  # 80 %: below 90 %
    before = tree.files()

    status = _emergency(tree, jobs, now)

    assert tree.files() == before
    assert status.phase is RunPhase.SUCCEEDED
    assert "no emergency" in status.message
    assert status.storage_before_percent == status.storage_after_percent == 80.0


def test_too_little_free_space_triggers_it_and_it_stops_once_enough_is_free(
    tree: Tree, now: datetime
) -> None:
    for index in range(5):
        tree.file(f"old{index}.tmp", age_hours=10 - index, size=SIZE)  # 50 %, but only 500 bytes free

    status = _emergency(tree, None, now, minFreeSpace=600)

    assert tree.files() == {"old1.tmp", "old2.tmp", "old3.tmp", "old4.tmp"}, (
        "the oldest file goes, and only it"
    )
    assert status.phase is RunPhase.SUCCEEDED


def test_when_it_cannot_get_there_it_deletes_what_it_may_and_says_so(
    tree: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    for index in range(8):
        tree.file(f"job_100_active{index}.tmp", age_hours=100, size=SIZE)
    tree.file("stale.tmp", age_hours=100, size=SIZE)
    tree.file("job_300_done.tmp", age_hours=0.1, size=SIZE)

    status = _emergency(tree, jobs, now)

    assert tree.files() == {f"job_100_active{index}.tmp" for index in range(8)}
    assert status.phase is RunPhase.FAILED
    assert "could not bring usage below 60%" in status.message
    assert status.storage_after_percent == 80.0


def test_an_age_only_policy_treats_every_file_as_a_candidate(tree: Tree, now: datetime) -> None:
    tree.file("job_1_old.tmp", age_hours=10, size=SIZE)
    for index in range(8):
        tree.file(f"young{index}.tmp", age_hours=0.5 - index * 0.01, size=SIZE)

    status = _emergency(tree, None, now)

    assert status.deleted_by_reason == {"EmergencyOrphan": 1, "EmergencyOldest": 3}
    assert tree.files() == {f"young{index}.tmp" for index in range(3, 8)}


def test_with_job_status_unavailable_only_files_without_a_job_go_and_the_run_fails(
    crowded: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    jobs.unavailable = True

    status = _emergency(crowded, jobs, now, emergencyBufferPercent=10)  # relief below 80 %: two files

    assert crowded.files().isdisjoint({"stale.tmp", "recent-a.tmp"})
    assert "recent-b.tmp" in crowded.files()
    assert {path for path in crowded.files() if path.startswith("job_")} == {
        "job_100_active0.tmp",
        "job_100_active1.tmp",
        "job_100_active2.tmp",
        "job_201_chunk_1_a.tmp",
        "job_201_chunk_1_b.tmp",
        "job_300_recent.tmp",
    }
    assert status.phase is RunPhase.FAILED
    assert "job status unavailable" in status.message


def test_max_files_per_run_bounds_an_emergency_and_the_status_says_so(
    crowded: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    status = _emergency(crowded, jobs, now, limits={"maxFilesPerRun": 2})

    assert status.files_deleted == 2
    assert status.deleted_by_reason == {"EmergencyOrphan": 1, "EmergencyFailedJob": 1}
    assert status.limit_reached
    assert "maxFilesPerRun" in status.message
    assert status.phase is RunPhase.FAILED


def test_on_a_filesystem_a_floor_above_the_disk_is_refused_and_nothing_is_deleted(
    tree: Tree, now: datetime
) -> None:
    """No capacity: the real filesystem's figures; an explicit free-space floor above the disk can never
    be met, so no emergency runs on it at all (it used to delete every file it could)."""
    tree.file("b.tmp", age_hours=3)
    tree.file("a.tmp", age_hours=5)
    policy = effective_policy(tree.root, thresholds={"minFreeSpace": "1Ei"})

    for kind in ("Emergency", "Scheduled"):
        status = execute(policy, VolumeStorage(str(tree.root)), run_spec(kind), now=now)

        assert tree.files() == {"a.tmp", "b.tmp"}
        assert status.phase is RunPhase.FAILED
        assert status.files_deleted == 0
        assert "spec.thresholds.minFreeSpace (" in status.message
        assert "filesystem size" in status.message and "nothing deleted" in status.message


@pytest.mark.parametrize("kind", ["Emergency", "Scheduled"])
def test_an_inherited_floor_larger_than_the_capacity_starts_no_emergency(tree: Tree, now: datetime, kind: str) -> None:
    """The reproduction: with the default 1 GiB floor on a small storage every check was an emergency that
    deleted every file it could, however new. The default is not applied there; nothing new is deleted."""
    for index in range(5):
        tree.file(f"fresh{index}.tmp", age_hours=0.1, size=SIZE)
    policy = effective_policy(
        tree.root, storage={"volume": {"capacity": "1Mi"}}, thresholds=None, orphans={"emergencyMaxAgeHours": 1}
    )
    assert policy.rules.min_free_inherited and policy.rules.min_free_bytes == 2**30

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec(kind), now=now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert tree.files() == {f"fresh{index}.tmp" for index in range(5)}
    assert status.effective_min_free_space_bytes == 0
    assert "TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB (1.0GiB) is not below the capacity (1.0MiB)" in status.message
