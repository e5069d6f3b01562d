"""The blast-radius guard: a run that plans to delete too much of what it scanned deletes nothing.

The case it exists for: the job table was truncated (or the policy points at the wrong one), so the
files of ten running jobs all look like orphans of unknown jobs. The guard counts the whole plan,
without the ``maxFilesPerRun`` cap, before the first unlink; over ``limits.maxDeletePercent`` (50 by
default) the run fails with BlastRadiusExceeded and reports the plan as a dry run would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import RunPhase, RunStatus
from tempsweep.models.enums import RunReason
from tempsweep.storage import VolumeStorage

OLD = 100.0
BLOCKED = RunReason.BLAST_RADIUS_EXCEEDED


def _truncated_table(tree: Tree, now: datetime, *, running: int = 6, kept: int = 4) -> MemoryJobSource:
    """``running`` old files of running jobs that are missing from the table, ``kept`` young files."""
    for index in range(running):
        tree.file(f"job_{index}_out.tmp", age_hours=OLD)
    for index in range(kept):
        tree.file(f"young/part{index}.tmp", age_hours=0.5)
    return MemoryJobSource([job("999", "running", 1, now)])  # the rows of jobs 0..5 are gone


def _run(tree: Tree, jobs: Any, now: datetime, kind: str = "Orphaned", *, limits: Any = None, **spec: Any) -> RunStatus:
    policy = effective_policy(
        tree.root,
        jobs=JOBS,
        orphans={"maxAgeHours": 24},
        limits={"maxDeletePercent": None, **(limits or {})},  # None: the policy's default
    )
    return execute(policy, VolumeStorage(str(tree.root)), run_spec(kind, **spec), jobs=jobs, now=now)


def _assert_blocked(status: RunStatus, tree: Tree, before: set[str]) -> None:
    assert tree.files() == before, "nothing may be deleted"
    assert status.phase is RunPhase.FAILED
    assert status.reason is BLOCKED
    assert status.files_deleted == 0
    assert status.message.split(": ")[1] == "BlastRadiusExceeded"


def test_a_truncated_job_table_trips_the_default_limit_and_nothing_is_deleted(tree: Tree, now: datetime) -> None:
    jobs = _truncated_table(tree, now)
    before = tree.files()

    status = _run(tree, jobs, now)

    _assert_blocked(status, tree, before)
    assert "plans to delete 6 of 10 scanned files (60.0%), more than limits.maxDeletePercent (50%)" in status.message
    # the plan as a dry run reports it
    assert status.would_delete_count == 6
    assert sorted(status.would_delete) == sorted(f"job_{index}_out.tmp" for index in range(6))
    assert status.would_delete_by_reason == {"OrphanUnknownJob": 6}
    assert status.would_free_bytes == 60


def test_a_plan_at_the_limit_goes_ahead(tree: Tree, now: datetime) -> None:
    jobs = _truncated_table(tree, now, running=5, kept=5)

    status = _run(tree, jobs, now)

    assert status.phase is RunPhase.SUCCEEDED
    assert status.files_deleted == 5
    assert status.reason is None


@pytest.mark.parametrize(
    ("limits", "spec"),
    [({}, {"force": True}), ({"maxDeletePercent": 100}, {}), ({"maxDeletePercent": 70}, {})],
    ids=["force-on-the-run", "limit-100-turns-it-off", "a-higher-limit"],
)
def test_a_person_can_accept_the_plan(tree: Tree, now: datetime, limits: dict[str, Any], spec: dict[str, Any]) -> None:
    jobs = _truncated_table(tree, now)

    status = _run(tree, jobs, now, limits=limits, **spec)

    assert status.phase is RunPhase.SUCCEEDED
    assert status.files_deleted == 6
    assert tree.files() == {f"young/part{index}.tmp" for index in range(4)}


def test_the_limit_counts_the_whole_plan_not_the_per_run_cap(tree: Tree, now: datetime) -> None:
    jobs = _truncated_table(tree, now)
    before = tree.files()

    status = _run(tree, jobs, now, limits={"maxFilesPerRun": 2})

    _assert_blocked(status, tree, before)
    assert "plans to delete 6 of 10 scanned files" in status.message
    assert status.would_delete_count == 2, "reported as a dry run with the same cap would report it"
    assert status.limit_reached


@pytest.mark.parametrize("force", [False, True], ids=["dry-run", "dry-run-with-force"])
def test_a_dry_run_shows_the_plan_and_whether_the_guard_would_stop_it(tree: Tree, now: datetime, force: bool) -> None:
    jobs = _truncated_table(tree, now)
    before = tree.files()

    status = _run(tree, jobs, now, dryRun=True, **({"force": True} if force else {}))

    assert tree.files() == before
    assert status.dry_run
    assert status.would_delete_count == 6
    assert status.would_delete_by_reason == {"OrphanUnknownJob": 6}
    if force:
        assert (status.phase, status.reason) == (RunPhase.SUCCEEDED, None)
    else:
        assert (status.phase, status.reason) == (RunPhase.FAILED, BLOCKED)


def test_crash_recovery_is_guarded_too(tree: Tree, now: datetime) -> None:
    for index in range(3):
        tree.file(f"job_7_part{index}.tmp", age_hours=0.1)
    tree.file("job_8_a.tmp", age_hours=0.1)
    jobs = MemoryJobSource([job("7", "failed", 5, now), job("8", "running", 5, now)])
    before = tree.files()

    blocked = _run(tree, jobs, now, "CrashRecovery")
    forced = _run(tree, jobs, now, "CrashRecovery", force=True)

    assert blocked.reason is BLOCKED and "plans to delete 3 of 4 scanned files" in blocked.message
    assert before - tree.files() == {f"job_7_part{index}.tmp" for index in range(3)}
    assert forced.phase is RunPhase.SUCCEEDED


def test_chunk_completion_is_exempt(tree: Tree, now: datetime) -> None:
    for index in range(5):
        tree.file(f"job_1_chunk_2_{index}.tmp", age_hours=0.1)

    status = _run(
        tree,
        MemoryJobSource([job("1", "running", 1, now)]),
        now,
        "ChunkCompletion",
        jobId="1",
        chunkId="2",
        limits={"maxDeletePercent": 0},
    )

    assert status.phase is RunPhase.SUCCEEDED
    assert tree.files() == set()


def _crowded(tree: Tree, now: datetime) -> MemoryJobSource:
    """10 files of 100 bytes on a 1000-byte capacity (100 %): relief below 60 % needs the 5 oldest."""
    for index in range(10):
        tree.file(f"job_{index}_data.tmp", age_hours=50 - index, size=100)
    return MemoryJobSource([job(str(index), "completed", 60, now) for index in range(10)])


def _emergency(
    tree: Tree, jobs: Any, now: datetime, kind: str = "Emergency", orphan_age: float = 1000, **limits: Any
) -> RunStatus:
    policy = effective_policy(
        tree.root,
        jobs=JOBS,
        storage={"volume": {"capacity": 1000}},
        thresholds={"emergencyPercent": 90, "warningPercent": 80, "emergencyBufferPercent": 30},
        orphans={"maxAgeHours": orphan_age, "emergencyMaxAgeHours": 1},
        limits={"maxDeletePercent": None, **limits},
    )
    return execute(policy, VolumeStorage(str(tree.root)), run_spec(kind), jobs=jobs, now=now)


@pytest.mark.parametrize(
    ("limits", "blocked"),
    [
        ({}, None),
        ({"maxDeletePercent": 0}, None),
        ({"emergencyMaxDeletePercent": 50}, None),
        ({"emergencyMaxDeletePercent": 40}, "5 of 10 scanned files (50.0%)"),
        # the planner keeps only the 2 oldest candidates; the guard then counts the whole tier (upper bound)
        ({"emergencyMaxDeletePercent": 40, "maxFilesPerRun": 2}, "up to 10 of 10 scanned files (100.0%)"),
    ],
    ids=["default-off", "not-maxDeletePercent", "at-its-limit", "over-its-limit", "over-its-limit-uncapped"],
)
def test_emergency_has_its_own_limit(tree: Tree, now: datetime, limits: dict[str, Any], blocked: str | None) -> None:
    jobs = _crowded(tree, now)
    before = tree.files()

    status = _emergency(tree, jobs, now, **limits)

    if blocked:
        _assert_blocked(status, tree, before)
        assert f"plans to delete {blocked}, more than limits.emergencyMaxDeletePercent (40%)" in status.message
        assert status.would_delete_by_reason == {"EmergencyOrphan": min(5, limits.get("maxFilesPerRun", 5))}
    else:
        assert status.phase is RunPhase.SUCCEEDED, status.message
        assert before - tree.files() == {f"job_{index}_data.tmp" for index in range(5)}


@pytest.mark.parametrize(
    ("limits", "over"),
    [
        ({"emergencyMaxDeletePercent": 40}, "the emergency phase plans to delete 5 of 10"),
        ({"maxDeletePercent": 10}, "the orphan and crash phase plans to delete 2 of 10"),
    ],
    ids=["emergency-phase-over", "orphan-phase-over"],
)
def test_either_phase_of_a_scheduled_run_stops_the_whole_run(
    tree: Tree, now: datetime, limits: dict[str, Any], over: str
) -> None:
    jobs = _crowded(tree, now)  # the emergency takes the 5 oldest; jobs 5 and 6 (45 h, 44 h) are orphans
    before = tree.files()

    status = _emergency(tree, jobs, now, "Scheduled", orphan_age=43.5, **limits)

    _assert_blocked(status, tree, before)
    assert over in status.message
    assert status.would_delete_by_reason == {"EmergencyOrphan": 5, "OrphanFinishedJob": 2}


def test_scheduled_within_both_limits_deletes_both_phases(tree: Tree, now: datetime) -> None:
    jobs = _crowded(tree, now)

    status = _emergency(tree, jobs, now, "Scheduled", orphan_age=43.5, maxDeletePercent=20)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.deleted_by_reason == {"EmergencyOrphan": 5, "OrphanFinishedJob": 2}


@pytest.mark.parametrize("force", [False, True], ids=["stopped", "forced"])
def test_a_stopped_plan_removes_no_emptied_directory_either(tree: Tree, now: datetime, force: bool) -> None:
    for index in range(3):
        path = tree.file(f"old/job_{index}_out.tmp", age_hours=OLD)
    tree.age(path.parent, OLD)
    tree.file("young.tmp", age_hours=0.5)
    jobs = MemoryJobSource([job("999", "running", 1, now)])

    status = _run(tree, jobs, now, **({"force": True} if force else {}))

    if force:
        assert status.directories_removed == 1
        assert not (tree.root / "old").exists()
    else:
        assert status.reason is BLOCKED
        assert (status.directories_removed, status.would_remove_directories) == (0, 0)
        assert (tree.root / "old").is_dir()
