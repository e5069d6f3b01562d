"""When the job database fails, nothing of a job goes, files without a job id still do, and the run says why.

Every failure here is real: a stopped server, a wrong password refused by scram-sha-256, a table
locked by another session, a view that sleeps, a missing table or column, a table the role may not
read. The run keeps each job's files (its status is unknown), deletes old files that carry no job
id, fails with one clear line, and never shows the password.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from jobs.helpers import (
    READER,
    READER_PASSWORD,
    JobDatabase,
    ago,
    assert_no_password,
    execute,
    files_under,
    make_files,
    make_policy,
    run_spec,
)
from support.probing import free_port
from tempsweep.engine import JobSourceError, Progress
from tempsweep.jobs.database import shared_engine, transaction
from tempsweep.jobs.sql import SqlJobSource
from tempsweep.models import RunPhase

pytestmark = pytest.mark.postgres

WRONG_PASSWORD = "Wr0ng-Recognisable/p@ss%word"
OLD = 30.0


def _tree(root: Path, now: datetime, jobs: range, loose: int = 5) -> set[str]:
    """One old file per job plus ``loose`` old files without a job id; returns the job files."""
    job_files = {f"d{number % 4}/job_{number}_part.tmp" for number in jobs}
    make_files(root, {name: OLD for name in job_files} | {f"loose_{k}.tmp": OLD for k in range(loose)}, now)
    return job_files


def _connect_admin(db: JobDatabase) -> psycopg.Connection[Any]:
    server = db.server
    return psycopg.connect(
        host=server.host, port=server.port, user=server.user, password=server.password, dbname=db.name
    )


# -- broken configuration or credentials, as the operator meets them (no up-front check) -------------


BROKEN = [
    pytest.param(
        {"password": WRONG_PASSWORD},
        {},
        'password authentication failed for user "tempsweep_reader"',
        id="wrong-password",
    ),
    pytest.param(
        {},
        {"table": "crawl_jobz"},
        "table 'crawl_jobz' does not exist (jobs.database.table)",
        id="missing-table",
    ),
    pytest.param(
        {},
        {"updatedAtColumn": "finished_at"},
        "table 'crawl_jobs' has no column 'finished_at' (jobs.database.updatedAtColumn)",
        id="missing-column",
    ),
    pytest.param({}, {"table": "private_jobs"}, "permission denied for table private_jobs", id="no-privilege"),
    pytest.param({"database": "no_such_db"}, {}, 'database "no_such_db" does not exist', id="missing-database"),
    pytest.param({"port": "free"}, {}, "is unreachable", id="unreachable"),
]


def _broken_url(db: JobDatabase, url_parts: dict[str, Any]) -> str:
    parts = dict(url_parts)
    if parts.get("port") == "free":
        parts["port"] = free_port()
    return db.url_with(**parts) if parts else db.reader_url


@pytest.fixture
def jobs_table(job_db: JobDatabase, now: datetime) -> JobDatabase:
    job_db.create_jobs([(number, "completed", ago(now, 40)) for number in range(1, 101)])
    job_db.execute("CREATE TABLE private_jobs AS SELECT * FROM crawl_jobs")  # not granted to the reader
    return job_db


@pytest.mark.parametrize(("url_parts", "database", "expected"), BROKEN)
def test_a_broken_job_source_keeps_every_job_file(
    jobs_table: JobDatabase,
    tmp_path: Path,
    now: datetime,
    url_parts: dict[str, Any],
    database: dict[str, Any],
    expected: str,
) -> None:
    url = _broken_url(jobs_table, url_parts)
    job_files = _tree(tmp_path, now, range(1, 101))
    policy = make_policy(tmp_path, url, database=database)

    status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, url), now)

    assert status.phase is RunPhase.FAILED
    assert "job status unavailable, files of jobs were kept" in status.message
    assert expected in status.message
    assert files_under(tmp_path) == job_files, "old files without a job id are still cleaned by age"
    assert status.deleted_by_reason == {"OrphanNoJobId": 5}
    assert_no_password(status.model_dump_json())
    assert_no_password(status.model_dump_json(), WRONG_PASSWORD)


# -- a slow database ---------------------------------------------------------------------------------


@pytest.mark.parametrize("slowness", ["table-locked", "sleeping-view"])
def test_a_slow_query_stops_at_the_policy_timeout(
    job_db: JobDatabase, tmp_path: Path, now: datetime, slowness: str
) -> None:
    job_db.create_jobs([(number, "completed", ago(now, 40)) for number in range(1, 2501)])
    job_db.execute(
        "CREATE VIEW sleepy_jobs AS SELECT j.id, j.status, j.updated_at FROM crawl_jobs j, pg_sleep(30) s",
        f"GRANT SELECT ON sleepy_jobs TO {READER}",
    )
    job_files = _tree(tmp_path, now, range(1, 2501))
    table = "sleepy_jobs" if slowness == "sleeping-view" else "crawl_jobs"
    policy = make_policy(tmp_path, job_db.reader_url, database={"table": table, "queryTimeoutSeconds": 1})
    source = SqlJobSource(policy.backend.database, job_db.reader_url)
    source.check()  # the table is there; only its rows are slow to come
    holder = _connect_admin(job_db)
    try:
        if slowness == "table-locked":
            holder.execute("LOCK TABLE crawl_jobs IN ACCESS EXCLUSIVE MODE")  # held until rollback
        started = time.monotonic()
        status = execute(policy, run_spec("Orphaned"), source, now)
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()

    assert status.phase is RunPhase.FAILED
    assert "query timed out after 1 s (jobs.database.queryTimeoutSeconds)" in status.message
    assert files_under(tmp_path) == job_files
    assert status.deleted_by_reason == {"OrphanNoJobId": 5}
    assert status.job_queries == 1, "after the first timeout the other batches fail without waiting again"
    assert elapsed < 8, f"2 500 ids in 3 batches must not wait 3 timeouts ({elapsed:.1f} s)"
    assert_no_password(status.message)


# -- the server goes away in the middle of a run, then comes back ------------------------------------


def test_server_stopped_mid_run_keeps_unresolved_job_files_and_the_next_run_recovers(
    job_db: JobDatabase, tmp_path: Path, now: datetime
) -> None:
    """1 875 jobs in 5 directories: the progress hook stops the server once a first lookup was answered."""
    finished, running, files = set(), set(), {}
    for directory in range(5):
        for index in range(375):
            number = directory * 1000 + index
            (finished if index < 250 else running).add(number)
            for part in ("a", "b"):
                files[f"d{directory}/job_{number}_{part}.tmp"] = OLD
        for index in range(250):
            files[f"d{directory}/loose_{index}.tmp"] = OLD
    make_files(tmp_path, files, now)
    job_db.create_jobs(
        [(n, "completed", ago(now, 40)) for n in finished] + [(n, "running", ago(now, 40)) for n in running]
    )
    policy = make_policy(
        tmp_path,
        job_db.reader_url,
        limits={"batchSize": 50, "parallelism": 1, "maxFilesPerRun": 100_000, "maxDeletePercent": 100},
    )
    server = job_db.server
    source = SqlJobSource(policy.backend.database, job_db.reader_url)
    source.check()
    checked = source.query_count
    stops: list[Progress] = []

    def stop_server_after_the_first_lookup(progress: Progress) -> None:
        if not stops and source.query_count > checked:
            stops.append(progress)
            server.stop()

    try:
        first = execute(policy, run_spec("Orphaned"), source, now, progress=stop_server_after_the_first_lookup)
    finally:
        server.start()

    def job_of(path: str) -> int:
        return int(path.rpartition("/")[2].split("_")[1])

    left = files_under(tmp_path)
    assert stops, "the server was stopped after the first lookup"
    assert first.files_deleted > stops[0].files_deleted, "the run went on after the server stopped"
    assert first.phase is RunPhase.FAILED
    assert "job status unavailable, files of jobs were kept" in first.message
    assert "is unreachable" in first.message
    assert_no_password(first.model_dump_json())
    assert not any(path.rpartition("/")[2].startswith("loose_") for path in left), "no job id: cleaned by age"
    assert {job_of(p) for p in left} >= running, "no file of a running job was deleted"
    kept_finished = {job_of(p) for p in left} & finished
    assert 0 < len(kept_finished) < len(finished), "jobs looked up before the stop went, the others stayed"
    assert all(f"d{n // 1000}/job_{n}_b.tmp" in left for n in kept_finished), "a job's files share one fate"
    assert first.job_queries == 2, "one lookup answered, one failed; then no more attempts in this run"

    # the server is back: the next run (a new source, the same pooled engine) simply works
    second = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, job_db.reader_url), now)

    assert second.phase is RunPhase.SUCCEEDED, second.message
    assert {job_of(p) for p in files_under(tmp_path)} == running
    assert second.deleted_by_reason == {"OrphanFinishedJob": 2 * len(kept_finished)}


# -- what the source does to the database --------------------------------------------------------------


def test_reads_are_read_only_even_when_the_table_is_a_view_that_writes(
    job_db: JobDatabase, tmp_path: Path, now: datetime
) -> None:
    """A view whose function writes: the source's transaction refuses the write (the superuser's URL)."""
    job_db.create_jobs([(1, "completed", ago(now, 40))])
    job_db.execute(
        "CREATE TABLE audit (at timestamptz)",
        """CREATE FUNCTION audited(s text) RETURNS text LANGUAGE plpgsql VOLATILE AS
           $$ BEGIN INSERT INTO audit VALUES (now()); RETURN s; END $$""",
        "CREATE VIEW audited_jobs AS SELECT id, audited(status) AS status, updated_at FROM crawl_jobs",
    )
    make_files(tmp_path, {"job_1_a.tmp": OLD}, now)
    policy = make_policy(tmp_path, job_db.admin_url, database={"table": "audited_jobs"})
    source = SqlJobSource(policy.backend.database, job_db.admin_url)

    with pytest.raises(JobSourceError, match="cannot execute INSERT in a read-only transaction"):
        source.lookup(["1"])
    assert job_db.scalar("SELECT count(*) FROM audit") == 0
    assert files_under(tmp_path) == {"job_1_a.tmp"}


def test_each_transaction_carries_its_own_limits_and_leaves_the_pooled_connection_clean(
    job_db: JobDatabase,
) -> None:
    engine = shared_engine(job_db.admin_url)
    with transaction(engine, 2.5) as conn:
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "2500ms"
        with pytest.raises(DBAPIError, match="read-only transaction"):
            conn.exec_driver_sql("CREATE TABLE nope (x int)")
    with transaction(engine, 7, read_only=False) as conn:
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "off"
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "7s"
    with engine.connect() as conn:  # the same pooled connection, outside our transactions
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "off"


def test_sources_of_one_url_share_one_pool(job_db: JobDatabase, tmp_path: Path, now: datetime) -> None:
    job_db.create_jobs([(number, "running", ago(now, 1)) for number in range(1, 11)])
    policy = make_policy(tmp_path, job_db.reader_url)
    for _ in range(5):  # five runs, as five timer ticks or five policies on one database would
        source = SqlJobSource(policy.backend.database, job_db.reader_url)
        source.check()
        assert set(source.lookup([str(n) for n in range(1, 11)])) == {str(n) for n in range(1, 11)}
        source.close()

    connections = job_db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tempsweep' AND datname = current_database()"
    )
    assert connections == 1
    assert shared_engine(job_db.reader_url) is shared_engine(job_db.reader_url)
    assert shared_engine(job_db.reader_url) is not shared_engine(job_db.admin_url)


def test_an_id_column_of_type_uuid_is_compared_as_uuids(job_db: JobDatabase, tmp_path: Path, now: datetime) -> None:
    running, done = "0b7e3d2c-6a51-4f7e-9a65-3c1f7d9c2b10", "7d444840-9dc0-11d1-b245-5ffdce74fad2"
    job_db.create_jobs([(running, "running", ago(now, 40)), (done, "completed", ago(now, 40))], id_type="uuid")
    make_files(
        tmp_path,
        {f"job_{running.upper()}_a.tmp": OLD, f"job_{done}_a.tmp": OLD, "job_not-a-uuid_a.tmp": OLD},
        now,
    )
    policy = make_policy(tmp_path, job_db.reader_url)

    status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, job_db.reader_url), now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert files_under(tmp_path) == {f"job_{running.upper()}_a.tmp"}
    assert status.deleted_by_reason == {"OrphanFinishedJob": 1, "OrphanUnknownJob": 1}


def test_reader_password_is_really_required(job_db: JobDatabase) -> None:
    """Guard for the tests above: the server checks the reader's password (so 'wrong' is really wrong)."""
    job_db.create_jobs([])
    with psycopg.connect(
        host=job_db.server.host,
        port=job_db.server.port,
        user=READER,
        password=READER_PASSWORD,
        dbname=job_db.name,
    ) as conn:
        assert conn.execute("SELECT count(*) FROM crawl_jobs").fetchone() == (0,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=job_db.server.host,
            port=job_db.server.port,
            user=READER,
            password=WRONG_PASSWORD,
            dbname=job_db.name,
        )
