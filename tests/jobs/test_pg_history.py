"""Cleanup history in PostgreSQL: a row per finished run, the table made on first use, failures harmless."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs.helpers import (
    JobDatabase,
    ago,
    assert_no_password,
    execute,
    files_under,
    make_files,
    make_policy,
    record_history,
    run_spec,
)
from support.locks import HeldLock
from tempsweep.jobs.sql import SqlJobSource
from tempsweep.models import RunPhase

pytestmark = pytest.mark.postgres

OLD = 30.0


@pytest.fixture
def table(job_db: JobDatabase, now: datetime) -> JobDatabase:
    job_db.create_jobs([(1, "running", ago(now, 40)), (2, "completed", ago(now, 40)), (3, "failed", ago(now, 5))])
    return job_db


def _history(db: JobDatabase, name: str = "cleanup_history") -> list[dict[str, object]]:
    engine = db.engine()
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text(f"SELECT * FROM {name} ORDER BY id"))]
    finally:
        engine.dispose()


def test_every_finished_run_appends_one_row(table: JobDatabase, tmp_path: Path, now: datetime) -> None:
    """A writer role (here the owner) gets the table created on the first run and a row per run."""
    make_files(tmp_path, {"job_1_a.tmp": OLD, "job_2_a.tmp": OLD, "job_3_a.tmp": OLD, "loose.tmp": OLD}, now)
    url = table.admin_url
    policy = make_policy(tmp_path, url, database={"historyTable": "cleanup_history"})
    assert not sa.inspect(table.engine()).has_table("cleanup_history")

    orphaned = execute(policy, run_spec("Orphaned", dryRun=True), SqlJobSource(policy.backend.database, url), now)
    assert record_history(policy, url, "orphans-dry", orphaned) is None
    crash = execute(policy, run_spec("CrashRecovery"), SqlJobSource(policy.backend.database, url), now)
    assert record_history(policy, url, "crash-1", crash, namespace="crawlers") is None

    rows = _history(table)
    assert [row["run_name"] for row in rows] == ["orphans-dry", "crash-1"]
    first, second = rows
    assert (first["namespace"], first["policy"], second["namespace"]) == (None, "crawler-temp", "crawlers")
    assert (first["trigger"], first["phase"], first["dry_run"]) == ("Orphaned", "Succeeded", True)
    assert (first["would_delete_count"], first["files_deleted"]) == (3, 0)
    assert first["start_time"] == orphaned.start_time and first["end_time"] == orphaned.end_time
    assert (second["trigger"], second["dry_run"], second["files_deleted"]) == ("CrashRecovery", False, 1)
    assert second["bytes_freed"] == crash.bytes_freed == 32
    assert second["deleted_by_reason"] == {"FailedJob": 1}
    assert second["files_scanned"] == crash.files_scanned
    assert second["job_queries"] == crash.job_queries
    assert second["errors"] == [] and second["error_count"] == 0
    assert second["message"] == crash.message


def test_the_row_counts_files_in_use_and_emptied_directories(table: JobDatabase, tmp_path: Path, now: datetime) -> None:
    """What a run kept because another process locks it, and the directories it emptied, are in its row."""
    make_files(tmp_path, {"held.tmp": OLD, "emptied/loose.tmp": OLD, "kept/loose.tmp": OLD}, now)
    old = now.timestamp() - OLD * 3600
    os.utime(tmp_path / "emptied", (old, old))  # a directory goes only when old enough for the rule
    url = table.admin_url
    policy = make_policy(tmp_path, url, database={"historyTable": "cleanup_history"})
    with HeldLock(tmp_path / "held.tmp"), HeldLock(tmp_path / "kept"):
        status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, url), now)
    assert record_history(policy, url, "orphans-locked", status) is None

    (row,) = _history(table)
    assert (row["files_skipped_in_use"], row["directories_removed"], row["would_remove_directories"]) == (2, 1, 0)
    assert (tmp_path / "held.tmp").exists() and (tmp_path / "kept" / "loose.tmp").exists()
    assert not (tmp_path / "emptied").exists()


def test_a_failed_run_is_recorded_with_its_errors(table: JobDatabase, tmp_path: Path, now: datetime) -> None:
    make_files(tmp_path, {"job_2_a.tmp": OLD, "loose.tmp": OLD}, now)
    policy = make_policy(
        tmp_path, table.admin_url, database={"historyTable": "cleanup_history", "table": "missing_jobs"}
    )
    status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, table.admin_url), now)
    assert status.phase is RunPhase.FAILED

    assert record_history(policy, table.admin_url, "orphans-1", status) is None

    (row,) = _history(table)
    assert row["phase"] == "Failed"
    assert "table 'missing_jobs' does not exist" in str(row["message"])
    assert row["deleted_by_reason"] == {"OrphanNoJobId": 1}
    assert_no_password(str(row), table.server.password)


def test_history_that_cannot_be_written_leaves_the_cleanup_as_it_was(
    table: JobDatabase, tmp_path: Path, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    """The read-only role may not create tables: the run stands, the problem is logged and returned."""
    make_files(tmp_path, {"job_2_a.tmp": OLD, "loose.tmp": OLD}, now)
    policy = make_policy(tmp_path, table.reader_url, database={"historyTable": "cleanup_history"})
    status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, table.reader_url), now)

    with caplog.at_level(logging.WARNING, logger="tempsweep"):
        problem = record_history(policy, table.reader_url, "orphans-1", status)

    assert status.phase is RunPhase.SUCCEEDED and status.files_deleted == 2
    assert files_under(tmp_path) == set()
    assert problem is not None
    assert problem.startswith("cleanup history table 'cleanup_history' not written: job database ")
    assert "permission denied for schema public" in problem
    assert any(problem in record.getMessage() for record in caplog.records)
    assert_no_password(problem)
    assert not sa.inspect(table.engine()).has_table("cleanup_history")


def test_history_with_the_server_down_returns_at_once(table: JobDatabase, tmp_path: Path, now: datetime) -> None:
    policy = make_policy(tmp_path, table.admin_url, database={"historyTable": "cleanup_history"})
    status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, table.admin_url), now)
    table.server.stop()
    try:
        problem = record_history(policy, table.admin_url, "orphans-1", status)
    finally:
        table.server.start()

    assert problem is not None and "is unreachable" in problem
    assert_no_password(problem, table.server.password)


def test_an_incompatible_existing_table_is_reported_not_altered(
    table: JobDatabase, tmp_path: Path, now: datetime
) -> None:
    table.execute("CREATE TABLE cleanup_history (id serial PRIMARY KEY, note text)")
    policy = make_policy(tmp_path, table.admin_url, database={"historyTable": "cleanup_history"})
    status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, table.admin_url), now)

    problem = record_history(policy, table.admin_url, "orphans-1", status)

    assert problem is not None and 'of relation "cleanup_history" does not exist' in problem
    assert _history(table) == []


def test_no_history_table_means_no_history(table: JobDatabase, tmp_path: Path, now: datetime) -> None:
    policy = make_policy(tmp_path, table.admin_url)
    status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, table.admin_url), now)

    assert record_history(policy, table.admin_url, "orphans-1", status) is None
    assert sa.inspect(table.engine()).get_table_names() == ["crawl_jobs"]
