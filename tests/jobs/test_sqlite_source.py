"""SQLite, the embedded default: the same guarantees without a server (read-only, deadline, no stray file)."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from jobs.helpers import make_policy, record_history
from tempsweep.engine import JobSourceError
from tempsweep.jobs.database import shared_engine, transaction
from tempsweep.jobs.sql import SqlJobSource
from tempsweep.models import RunPhase, RunStatus, RunType


def _database(path: Path, rows: list[tuple[object, object, object]], *, id_type: str = "INTEGER") -> str:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(f"CREATE TABLE crawl_jobs (id {id_type} PRIMARY KEY, status TEXT, updated_at TIMESTAMP)")
        connection.executemany("INSERT INTO crawl_jobs VALUES (?, ?, ?)", rows)
    connection.close()
    return f"sqlite:///{path}"


def test_timestamps_in_every_spelling_sqlite_keeps_them_are_read_as_utc(tmp_path: Path) -> None:
    url = _database(
        tmp_path / "jobs.db",
        [
            (1, "failed", "2026-03-01 10:00:00"),  # naive text: UTC
            (2, "failed", "2026-03-01T10:00:00.250000"),
            (3, "failed", "2026-03-01T12:00:00+02:00"),  # an offset
            (4, "failed", "2026-03-01T10:00:00Z"),
            (5, "failed", 1772359200),  # epoch seconds
            (6, "failed", "yesterday-ish"),  # unreadable: unknown time, files kept
            (7, "failed", None),
        ],
    )
    source = SqlJobSource(make_policy(tmp_path, url).backend.database, url)

    found = source.lookup([str(n) for n in range(1, 8)])

    ten = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert {job_id: record.updated_at for job_id, record in found.items()} == {
        "1": ten,
        "2": ten.replace(microsecond=250000),
        "3": ten,
        "4": ten,
        "5": ten,
        "6": None,
        "7": None,
    }


def test_integer_and_text_id_columns(tmp_path: Path) -> None:
    integer_url = _database(tmp_path / "int.db", [(7, "running", None), (8, None, None)])
    text_url = _database(tmp_path / "text.db", [("7", "running", None), ("007", "completed", None)], id_type="TEXT")

    by_integer = SqlJobSource(make_policy(tmp_path, integer_url).backend.database, integer_url).lookup(
        ["7", "007", "8", "abc", "99999999999999999999999"]
    )
    by_text = SqlJobSource(make_policy(tmp_path, text_url).backend.database, text_url).lookup(["7", "007", "abc"])

    assert {k: r.status for k, r in by_integer.items()} == {"7": "running", "007": "running", "8": "pending"}
    assert {k: r.status for k, r in by_text.items()} == {"7": "running", "007": "completed"}


def test_a_long_query_is_interrupted_at_the_deadline(tmp_path: Path) -> None:
    url = _database(tmp_path / "jobs.db", [(1, "running", None)])
    connection = sqlite3.connect(tmp_path / "jobs.db")
    with connection:  # a view that counts to a billion before answering
        connection.execute(
            "CREATE VIEW slow_jobs AS SELECT j.* FROM crawl_jobs j WHERE (WITH RECURSIVE c(x) AS "
            "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c) > 0"
        )
    connection.close()
    policy = make_policy(tmp_path, url, database={"table": "slow_jobs", "queryTimeoutSeconds": 0.3})
    source = SqlJobSource(policy.backend.database, url)
    source.check()

    started = time.monotonic()
    with pytest.raises(JobSourceError, match=r"query timed out after 0.3 s \(jobs.database.queryTimeoutSeconds\)"):
        source.lookup(["1"])
    assert time.monotonic() - started < 3


def test_reads_cannot_write_and_the_connection_is_writable_again_afterwards(tmp_path: Path) -> None:
    url = _database(tmp_path / "jobs.db", [(1, "running", None)])
    engine = shared_engine(url)
    with transaction(engine, 5) as conn, pytest.raises(DBAPIError, match="readonly"):
        conn.exec_driver_sql("DELETE FROM crawl_jobs")
    with transaction(engine, 5, read_only=False) as conn:
        conn.exec_driver_sql("UPDATE crawl_jobs SET status = 'completed'")
    with transaction(engine, 5) as conn:
        assert conn.exec_driver_sql("SELECT status FROM crawl_jobs").scalar() == "completed"


def test_a_missing_database_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "jobs.db"
    url = f"sqlite:///{path}"
    source = SqlJobSource(make_policy(tmp_path, url).backend.database, url)

    with pytest.raises(JobSourceError, match=r"is unreachable: unable to open database file"):
        source.check()
    assert not path.exists() and not path.parent.exists()


def test_history_in_sqlite(tmp_path: Path) -> None:
    url = _database(tmp_path / "jobs.db", [])
    policy = make_policy(tmp_path, url, database={"historyTable": "cleanup_history"})
    moment = datetime(2026, 3, 1, 10, tzinfo=UTC)
    status = RunStatus(
        phase=RunPhase.SUCCEEDED,
        message="ok",
        trigger=RunType.SCHEDULED,
        start_time=moment,
        end_time=moment,
        duration_seconds=0.5,
        files_deleted=3,
        bytes_freed=300,
        deleted_by_reason={"Expired": 3},
    )

    assert record_history(policy, url, "tick-1", status) is None
    assert record_history(policy, url, "tick-2", status) is None

    connection = sqlite3.connect(tmp_path / "jobs.db")
    rows = connection.execute("SELECT run_name, trigger, files_deleted, bytes_freed FROM cleanup_history").fetchall()
    connection.close()
    assert rows == [("tick-1", "Scheduled", 3, 300), ("tick-2", "Scheduled", 3, 300)]
