"""50 000 jobs, 200 000 files: one Orphaned run against PostgreSQL, its exact outcome, ceil(ids/1000) queries.

The files of a job sit together (four chunks in one directory of 1 000 files), as a crawler writes
them; the run scans them all, looks every job up in IN lists of at most 1 000 ids, and deletes
exactly the files of finished, failed-long-ago and unknown jobs. About a minute, most of it spent
creating the files.
"""

from __future__ import annotations

import math
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.helpers import READER, JobDatabase, execute, make_policy, run_spec
from tempsweep.jobs.sql import IN_LIST_LIMIT, SqlJobSource
from tempsweep.models import RunPhase

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

JOBS = 50_000
CHUNKS = 4
DIRECTORIES = 200
#: job number % 100 -> what the table says about it
ACTIVE, FINISHED, FAILED_LONG_AGO, FAILED_RECENTLY, UNKNOWN, CANCELLED = (
    range(0, 80),
    range(80, 90),
    range(90, 95),
    range(95, 97),
    range(97, 99),
    range(99, 100),
)


def _create_files(root: Path) -> None:
    for directory in range(DIRECTORIES):
        (root / f"d{directory:03d}").mkdir(parents=True)
    for number in range(1, JOBS + 1):
        directory = root / f"d{number % DIRECTORIES:03d}"
        for chunk in range(CHUNKS):
            os.mknod(directory / f"job_{number}_chunk_{chunk}_part.tmp", 0o644 | stat.S_IFREG)


def _remaining_jobs(root: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for _, _, names in os.walk(root):
        for name in names:
            number = int(name.split("_")[1])
            counts[number] = counts.get(number, 0) + 1
    return counts


def test_fifty_thousand_jobs_and_two_hundred_thousand_files(job_db: JobDatabase, tmp_path: Path) -> None:
    root = tmp_path / "volume"
    _create_files(root)
    now = datetime.now(UTC) + timedelta(hours=48)  # every file is two days old for this run
    job_db.execute(
        """CREATE TABLE crawl_jobs (id bigint PRIMARY KEY, status text NOT NULL, updated_at timestamptz,
                                    url text NOT NULL DEFAULT 'https://example.org/')""",
        f"GRANT SELECT ON crawl_jobs TO {READER}",
    )
    at = f"TIMESTAMPTZ '{now.isoformat()}'"
    job_db.execute(
        f"""INSERT INTO crawl_jobs (id, status, updated_at)
            SELECT n,
                   CASE WHEN n % 100 < 40 THEN 'running' WHEN n % 100 < 80 THEN 'pending'
                        WHEN n % 100 < 90 THEN 'completed' WHEN n % 100 < 97 THEN 'failed'
                        ELSE 'cancelled' END,
                   CASE WHEN n % 100 BETWEEN 95 AND 96 THEN {at} - INTERVAL '30 minutes'
                        ELSE {at} - INTERVAL '5 hours' END
            FROM generate_series(1, {JOBS}) AS n
            WHERE n % 100 NOT IN (97, 98)""",
        "ANALYZE crawl_jobs",
    )
    policy = make_policy(
        root,
        job_db.reader_url,
        limits={"maxFilesPerRun": 1_000_000, "batchSize": 1000, "parallelism": 4, "maxDeletePercent": 100},
    )
    source = SqlJobSource(policy.backend.database, job_db.reader_url)
    source.check()

    status = execute(policy, run_spec("Orphaned"), source, now)

    def jobs_in(*groups: range) -> int:
        return sum(1 for number in range(1, JOBS + 1) if any(number % 100 in group for group in groups))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_scanned == JOBS * CHUNKS
    assert status.deleted_by_reason == {
        "OrphanFinishedJob": CHUNKS * jobs_in(FINISHED),
        "OrphanFailedJob": CHUNKS * jobs_in(FAILED_LONG_AGO, CANCELLED),
        "OrphanUnknownJob": CHUNKS * jobs_in(UNKNOWN),
    }
    remaining = _remaining_jobs(root)
    assert set(remaining) == {n for n in range(1, JOBS + 1) if n % 100 in (*ACTIVE, *FAILED_RECENTLY)}
    assert set(remaining.values()) == {CHUNKS}, "every kept job keeps all its chunks"
    assert status.job_queries <= math.ceil(JOBS / IN_LIST_LIMIT) + 1, status.job_queries
