"""Job statuses in none of the policy's three lists keep their files (issue 11, finding 1).

A job table spells states many ways (``RUNNING``, ``Running``, `` pending``) and adds new ones
(``queued``, ``processing``). Statuses compare ignoring case and surrounding whitespace; one that is
still in no list is *unrecognized*: every scenario but ChunkCompletion keeps its files like an active
job's, and the run says how many files it kept and for which statuses. A job missing from the table
stays an orphan, as in the original service. Each case runs against the in-memory job source and a
real SQLite job table read through SQLAlchemy.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sweep_helpers import Tree, effective_policy, execute, job, run_spec, sqlite_jobs
from tempsweep.jobs import MemoryJobSource
from tempsweep.jobs.sql import SqlJobSource
from tempsweep.models import RunPhase
from tempsweep.models.effective import EffectivePolicy
from tempsweep.storage import VolumeStorage

OLD = 500.0  # hours: older than every age the policy uses
#: statuses that finding 1 saw deleted as a finished job's files; the first two normalize to "running"
#: and " pending" to "pending" (active), the others are in no list
STATUS_VARIANTS = ["RUNNING", "Running", "queued", "processing", " pending"]
RECOGNIZED_ACTIVE = {"RUNNING", "Running", " pending"}
SCENARIOS = ["Orphaned", "CrashRecovery", "Emergency", "Scheduled"]


def _policy(root: Path, url: str = "sqlite://") -> EffectivePolicy:
    return effective_policy(
        root,
        jobs={"database": {"url": url}},
        storage={"volume": {"capacity": 1000}},  # 12 files of 50 bytes: 60 %
        thresholds={"emergencyPercent": 50, "warningPercent": 40, "emergencyBufferPercent": 45},
        orphans={"maxAgeHours": 24, "emergencyMaxAgeHours": 1},
        failedJobs={"cleanupAfterHours": 1},
    )


def _source(kind: str, tmp_path: Path, rows: list[tuple[int, str, float]], now: datetime) -> tuple[Any, str]:
    if kind == "memory":
        return MemoryJobSource([job(str(i), status, hours, now) for i, status, hours in rows]), "sqlite://"
    url = sqlite_jobs(
        tmp_path / "jobs.db", [(i, status, job(str(i), status, hours, now).updated_at) for i, status, hours in rows]
    )
    return None, url


def _fill(tree: Tree) -> None:
    """Old files of jobs 1 (the variant status), 2 (finished), 3 (failed), 4 (not in the table)."""
    for job_id in (1, 2, 3, 4):
        for serial in range(3):
            tree.file(f"job_{job_id}_part{serial}.tmp", age_hours=OLD, size=50)


@pytest.fixture(params=["memory", "sqlite"])
def source_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("status", STATUS_VARIANTS, ids=lambda s: repr(s).strip("'").replace(" ", "space-"))
def test_a_job_in_a_variant_or_unlisted_status_keeps_every_file(
    tree: Tree, tmp_path: Path, now: datetime, source_kind: str, status: str, scenario: str
) -> None:
    _fill(tree)
    rows = [(1, status, 50.0), (2, "completed", 50.0), (3, "failed", 50.0)]
    source, url = _source(source_kind, tmp_path, rows, now)
    policy = _policy(tree.root, url)
    jobs = source if source is not None else SqlJobSource(policy.backend.database, url)

    result = execute(policy, VolumeStorage(str(tree.root)), run_spec(scenario), jobs=jobs, now=now)

    kept = {f"job_1_part{serial}.tmp" for serial in range(3)}
    assert kept <= tree.files(), f"{status!r}: {result.message}"
    assert result.files_deleted > 0, "the other jobs' files are still cleaned"
    if status in RECOGNIZED_ACTIVE or scenario == "CrashRecovery":  # crash recovery never looks files up
        assert result.files_kept_unrecognized_status == 0
        assert result.unrecognized_job_statuses == []
    else:
        assert result.files_kept_unrecognized_status == 3
        assert result.unrecognized_job_statuses == [status.strip().lower()]
        assert f"job status '{status.strip().lower()}' is in no status list" in result.message


@pytest.mark.parametrize("status", ["completed", "COMPLETED", " Done ", "succeeded\t", "Finished", "success"], ids=repr)
def test_a_finished_status_in_any_spelling_is_an_orphan_once_old(
    tree: Tree, tmp_path: Path, now: datetime, source_kind: str, status: str
) -> None:
    tree.file("job_7_a.tmp", age_hours=OLD)
    tree.file("job_7_b.tmp", age_hours=1)
    tree.file("keep.tmp", age_hours=1)
    source, url = _source(source_kind, tmp_path, [(7, status, 50.0)], now)
    policy = _policy(tree.root, url)
    jobs = source if source is not None else SqlJobSource(policy.backend.database, url)

    result = execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned"), jobs=jobs, now=now)

    assert tree.files() == {"job_7_b.tmp", "keep.tmp"}
    assert result.deleted_by_reason == {"OrphanFinishedJob": 1}


@pytest.mark.parametrize("status", ["FAILED", " failed ", "Error"], ids=repr)
def test_crash_recovery_finds_failed_jobs_in_any_spelling(
    tree: Tree, tmp_path: Path, now: datetime, source_kind: str, status: str
) -> None:
    tree.file("job_5_a.tmp", age_hours=0.1)
    tree.file("job_6_a.tmp", age_hours=0.1)
    source, url = _source(source_kind, tmp_path, [(5, status, 5.0), (6, "queued", 5.0)], now)
    policy = _policy(tree.root, url)
    jobs = source if source is not None else SqlJobSource(policy.backend.database, url)

    every = execute(policy, VolumeStorage(str(tree.root)), run_spec("CrashRecovery"), jobs=jobs, now=now)
    one = execute(policy, VolumeStorage(str(tree.root)), run_spec("CrashRecovery", jobId="6"), jobs=jobs, now=now)

    assert every.deleted_by_reason == {"FailedJob": 1}
    assert tree.files() == {"job_6_a.tmp"}
    assert one.files_deleted == 0
    assert "job 6 is 'queued' (a status in no status list), not failed" in one.message


def test_a_job_missing_from_the_table_is_still_an_orphan(tree: Tree, now: datetime) -> None:
    tree.file("job_404_a.tmp", age_hours=OLD)
    tree.file("job_1_a.tmp", age_hours=OLD)
    jobs = MemoryJobSource([job("1", "Queued", 50, now)])

    result = execute(_policy(tree.root), VolumeStorage(str(tree.root)), run_spec("Orphaned"), jobs=jobs, now=now)

    assert tree.files() == {"job_1_a.tmp"}
    assert result.deleted_by_reason == {"OrphanUnknownJob": 1}
    assert (result.files_kept_unrecognized_status, result.unrecognized_job_statuses) == (1, ["queued"])


def test_chunk_completion_still_deletes_the_named_chunk_of_a_job_in_an_unlisted_status(
    tree: Tree, now: datetime
) -> None:
    tree.file("job_1_chunk_2_a.tmp", age_hours=0.1)
    tree.file("job_1_chunk_3_a.tmp", age_hours=0.1)
    jobs = MemoryJobSource([job("1", "processing", 1, now)])
    spec = run_spec("ChunkCompletion", jobId="1", chunkId="2")

    result = execute(_policy(tree.root), VolumeStorage(str(tree.root)), spec, jobs=jobs, now=now)

    assert tree.files() == {"job_1_chunk_3_a.tmp"}
    assert result.phase is RunPhase.SUCCEEDED


def test_the_listed_statuses_are_bounded(tree: Tree, now: datetime) -> None:
    names = [f"state-{index:02d}" for index in range(15)]
    for index in range(15):
        tree.file(f"job_{index}_a.tmp", age_hours=OLD)
    jobs = MemoryJobSource([job(str(index), name, 50, now) for index, name in enumerate(names)])

    result = execute(_policy(tree.root), VolumeStorage(str(tree.root)), run_spec("Orphaned"), jobs=jobs, now=now)

    assert result.files_kept_unrecognized_status == 15
    assert len(result.unrecognized_job_statuses) == 10
    assert set(result.unrecognized_job_statuses) <= set(names)
    assert len(tree.files()) == 15
