"""PostgreSQL rows the database matched belong to their job: padded char(n) ids and non-unique id columns.

The SQLite twin of this file covers the other spellings; here the two a PostgreSQL table realistically
has: a ``char(n)`` id column, whose values come back padded with spaces, and a table with several rows per
id (status changes), where the most protective row wins whatever order the server sends them in.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobs.helpers import JobDatabase, ago, execute, files_under, make_files, make_policy, run_spec
from tempsweep.jobs.sql import SqlJobSource

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("kind", ["Orphaned", "Scheduled"])
def test_a_running_job_in_a_padded_char_column_keeps_its_files(
    job_db: JobDatabase, tmp_path, kind: str
) -> None:
    now = datetime.now(UTC)
    job_db.create_jobs([("abc", "running", ago(now, 48)), ("old", "completed", ago(now, 48))], id_type="char(10)")
    make_files(tmp_path, {"job_abc_x.tmp": 30, "job_old_x.tmp": 30}, now)
    policy = make_policy(tmp_path, job_db.reader_url)

    status = execute(policy, run_spec(kind), SqlJobSource(policy.backend.database, job_db.reader_url), now)

    assert files_under(tmp_path) == {"job_abc_x.tmp"}, status.message


@pytest.mark.parametrize("kind", ["Orphaned", "CrashRecovery", "Scheduled"])
def test_a_job_with_a_running_row_among_others_keeps_its_files(job_db: JobDatabase, tmp_path, kind: str) -> None:
    now = datetime.now(UTC)
    job_db.execute(
        "CREATE TABLE crawl_jobs (id bigint, status text, updated_at timestamptz)",
        "GRANT SELECT ON crawl_jobs TO tempsweep_reader",
    )
    job_db.execute(
        "INSERT INTO crawl_jobs VALUES (:id, :status, :updated_at)",
        params=[
            {"id": 7, "status": "failed", "updated_at": ago(now, 48)},
            {"id": 7, "status": "running", "updated_at": ago(now, 1)},
            {"id": 7, "status": "completed", "updated_at": ago(now, 0.5)},
            {"id": 8, "status": "failed", "updated_at": ago(now, 48)},
            {"id": 8, "status": "completed", "updated_at": ago(now, 40)},
        ],
    )
    make_files(tmp_path, {"job_7_x.tmp": 30, "job_8_x.tmp": 30}, now)
    policy = make_policy(tmp_path, job_db.reader_url)

    execute(policy, run_spec(kind), SqlJobSource(policy.backend.database, job_db.reader_url), now)

    assert files_under(tmp_path) == {"job_7_x.tmp"}, "job 8 is failed (its most protective row), job 7 runs"
