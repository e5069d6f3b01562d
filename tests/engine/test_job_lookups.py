"""Job status from a real SQLite table, in a handful of batched queries; without it, no job's file goes."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sweep_helpers import Tree, effective_policy, execute, job, run_spec, sqlite_jobs
from tempsweep.engine import CleanupContext, compute_stats
from tempsweep.engine.inventory import LOOKUP_BATCH
from tempsweep.jobs import MemoryJobSource
from tempsweep.jobs.sql import SqlJobSource
from tempsweep.models import RunPhase
from tempsweep.storage import MemoryStorage, VolumeStorage

OLD = 1000.0


def _sql_policy(root: Path, url: str, **overrides):
    return effective_policy(
        root,
        jobs={"database": {"url": url}},
        orphans={"maxAgeHours": 1},
        failedJobs={"cleanupAfterHours": 1},
        **overrides,
    )


def _source(policy) -> SqlJobSource:
    assert policy.backend.database is not None and policy.backend.database_url is not None
    source = SqlJobSource(policy.backend.database, policy.backend.database_url)
    source.check()
    return source


def test_lookups_are_batched_by_distinct_job_ids_on_a_real_tree(
    tree: Tree, tmp_path: Path, now: datetime
) -> None:
    """5 000 files of 2 500 jobs: a few queries, not one per file nor one per thousand files."""
    jobs = 2_500
    statuses = ("running", "completed", "failed")
    url = sqlite_jobs(
        tmp_path / "jobs.db",
        [(number, statuses[number % 3], now - timedelta(hours=5)) for number in range(jobs)],
    )
    for number in range(jobs):
        for part in ("a", "b"):
            tree.file(f"d{number % 7}/job_{number}_{part}.tmp", age_hours=OLD, size=1)
    policy = _sql_policy(tree.root, url, limits={"maxFilesPerRun": 100_000, "batchSize": 1000})
    source = _source(policy)
    queries_before = source.query_count

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned"), jobs=source, now=now)

    assert status.files_scanned == 2 * jobs
    assert status.job_queries == source.query_count - queries_before
    assert status.job_queries <= math.ceil(jobs / LOOKUP_BATCH) + 1
    remaining_jobs = {int(path.rpartition("/")[2].split("_")[1]) for path in tree.files()}
    assert remaining_jobs == {number for number in range(jobs) if number % 3 == 0}, (
        "active jobs keep their files"
    )
    assert status.deleted_by_reason == {"OrphanFinishedJob": 2 * 833, "OrphanFailedJob": 2 * 833}


@pytest.mark.parametrize(
    "files_per_job", [1, 4, 40], ids=["one-file-each", "four-files-each", "forty-files-each"]
)
@pytest.mark.parametrize("order", ["grouped-by-job", "interleaved"])
def test_query_count_depends_on_distinct_jobs_not_on_files(
    files_per_job: int, order: str, now: datetime
) -> None:
    jobs = 2_500
    storage = MemoryStorage()  # lists its files sorted by path
    stamp = now.timestamp() - OLD * 3600
    for part in range(files_per_job):
        for number in range(jobs):
            directory = f"j{number:05d}" if order == "grouped-by-job" else f"p{part:02d}"
            storage.put(f"{directory}/job_{number}_{part}.tmp", 1, stamp)
    source = MemoryJobSource([job(str(number), "running", 1, now) for number in range(jobs)])
    policy = effective_policy(
        "/data/volume",
        jobs={"database": {"url": "sqlite://"}},
        storage={"volume": {"capacity": "1Gi"}},
        limits={"maxFilesPerRun": 1_000_000},
    )

    status = execute(policy, storage, run_spec("Orphaned"), jobs=source, now=now)

    assert status.files_scanned == jobs * files_per_job
    assert status.files_deleted == 0
    assert status.job_queries <= math.ceil(jobs / LOOKUP_BATCH) + 1
    assert max(source.lookups) <= LOOKUP_BATCH


def test_a_removed_sqlite_database_makes_job_status_unavailable(
    tree: Tree, tmp_path: Path, now: datetime
) -> None:
    database = tmp_path / "jobs.db"
    url = sqlite_jobs(database, [(1, "completed", now - timedelta(hours=50)), (2, "running", now)])
    tree.file("job_1_a.tmp", age_hours=OLD)
    tree.file("job_2_a.tmp", age_hours=OLD)
    tree.file("loose.tmp", age_hours=OLD)
    policy = _sql_policy(tree.root, url)
    source = _source(policy)
    source.close()  # drop pooled connections: the next query opens the path again
    database.unlink()

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned"), jobs=source, now=now)

    assert tree.files() == {"job_1_a.tmp", "job_2_a.tmp"}
    assert status.deleted_by_reason == {"OrphanNoJobId": 1}
    assert status.phase is RunPhase.FAILED
    assert "job status unavailable" in status.message


def test_stats_report_an_unavailable_job_source(tree: Tree, now: datetime) -> None:
    tree.file("job_1_a.tmp", age_hours=OLD)
    tree.file("loose.tmp", age_hours=OLD)
    source = MemoryJobSource([job("1", "completed", 50, now)])
    source.unavailable = True
    policy = effective_policy(tree.root, jobs={"database": {"url": "sqlite://"}}, orphans={"maxAgeHours": 1})

    stats = compute_stats(
        CleanupContext(policy=policy, storage=VolumeStorage(str(tree.root)), jobs=source, now=now)
    )

    assert stats.job_source_error is not None and "unreachable" in stats.job_source_error
    assert stats.orphaned_files_count == 1, "only the file without a job id is known to be an orphan"
    assert stats.temp_files_count == 2


def test_stats_count_files_jobs_and_orphans(tree: Tree, tmp_path: Path, now: datetime) -> None:
    url = sqlite_jobs(
        tmp_path / "jobs.db",
        [
            (1, "running", now),
            (2, "pending", now),
            (3, "failed", now),
            (4, "completed", now - timedelta(hours=50)),
        ],
    )
    tree.file("job_1_a.tmp", age_hours=OLD, size=100)
    tree.file("job_4_a.tmp", age_hours=OLD, size=200)
    tree.file("loose.tmp", age_hours=OLD, size=300)
    tree.file("fresh.tmp", age_hours=0, size=400)
    tree.file("skip.lock", age_hours=OLD, size=5000)
    policy = _sql_policy(
        tree.root,
        url,
        exclude=["*.lock"],
        storage={"volume": {"capacity": 10_000}},
        thresholds={"warningPercent": 50, "emergencyPercent": 90},
    )

    stats = compute_stats(
        CleanupContext(policy=policy, storage=VolumeStorage(str(tree.root)), jobs=_source(policy), now=now)
    )

    assert stats.temp_files_count == 4
    assert stats.temp_files_size_bytes == 1000
    assert stats.usage_percent == 60.0, "excluded files still take space"
    assert (stats.active_jobs_count, stats.failed_jobs_count) == (2, 1)
    assert (stats.orphaned_files_count, stats.orphaned_files_size_bytes) == (2, 500)
    assert stats.health.value == "Warning"
    assert stats.cleanup_needed is False
    assert stats.job_source_error is None


def test_a_zero_padded_id_of_an_active_job_in_an_integer_column_keeps_its_file(
    tree: Tree, tmp_path: Path, now: datetime
) -> None:
    """File names carry ids as text: 'job_007_' must find the integer id 7, and 7 is running."""
    url = sqlite_jobs(tmp_path / "jobs.db", [(7, "running", now)])
    tree.file("job_007_a.tmp", age_hours=OLD)
    policy = _sql_policy(tree.root, url)

    execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned"), jobs=_source(policy), now=now)

    assert tree.files() == {"job_007_a.tmp"}


def test_sqlite_job_table_drives_crash_recovery(tree: Tree, tmp_path: Path, now: datetime) -> None:
    url = sqlite_jobs(
        tmp_path / "jobs.db",
        [
            (1, "failed", now - timedelta(hours=3)),
            (2, "failed", now - timedelta(minutes=10)),
            (3, "running", now),
        ],
    )
    for number in (1, 2, 3):
        tree.file(f"job_{number}_x.tmp")
    policy = _sql_policy(tree.root, url)

    status = execute(
        policy, VolumeStorage(str(tree.root)), run_spec("CrashRecovery"), jobs=_source(policy), now=now
    )

    assert tree.files() == {"job_2_x.tmp", "job_3_x.tmp"}
    assert status.deleted_by_reason == {"FailedJob": 1}
