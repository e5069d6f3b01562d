"""Rows the database returns for a job: lenient collations and duplicate ids never make a job look finished or absent.

A job table's database decides which rows match an id, and SQLite types values, not columns (a
column declared without a type compares the integer 7 and the text '7' as different; an INTEGER
column may hold the text 'abc'). With a case-insensitive or space-ignoring
collation it returns the row ``abc`` for the file ``job_ABC_...``; with an id column that is not unique
(a table of status changes) it returns several rows for one job. Before, the first case left the
job looking absent from the table (its old files were orphans) and the second let the last row sent
win (a running job whose older ``completed`` row came last was deleted). SQLite, no server needed.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.helpers import execute, files_under, make_files, make_policy, run_spec
from tempsweep.jobs.sql import SqlJobSource

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(hours=500)


def _database(path: Path, rows: list[tuple[object, object, object]], *, id_type: str = "TEXT") -> str:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(f"CREATE TABLE crawl_jobs (id {id_type}, status TEXT, updated_at TIMESTAMP)")
        connection.executemany("INSERT INTO crawl_jobs VALUES (?, ?, ?)", rows)
    connection.close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("id_type", "rows", "file"),
    [
        pytest.param("TEXT COLLATE NOCASE", [("abc", "running", None)], "job_ABC_x.tmp", id="nocase-upper-file"),
        pytest.param("TEXT COLLATE NOCASE", [("ABC", "running", None)], "job_abc_x.tmp", id="nocase-upper-row"),
        pytest.param("TEXT COLLATE RTRIM", [("abc   ", "running", None)], "job_abc_x.tmp", id="padded-row"),
        pytest.param(
            "TEXT", [("7", "completed", OLD.isoformat()), ("7", "running", None)], "job_7_x.tmp", id="dup-running-last"
        ),
        pytest.param(
            "TEXT", [("7", "running", None), ("7", "completed", OLD.isoformat())], "job_7_x.tmp", id="dup-finished-last"
        ),
        pytest.param("", [(7, "running", None)], "job_7_x.tmp", id="typeless-column-integer-value"),
        pytest.param("", [("7", "running", None)], "job_7_x.tmp", id="typeless-column-text-value"),
        pytest.param("INTEGER", [("abc", "running", None)], "job_abc_x.tmp", id="integer-column-text-value"),
        pytest.param("INTEGER", [(7, "running", None)], "job_007_x.tmp", id="integer-column-zero-padded-file"),
        pytest.param("REAL", [(7.0, "running", None)], "job_7_x.tmp", id="real-column"),
        pytest.param(
            "INTEGER",
            [(7, "failed", OLD.isoformat()), (7, "processing", None), (7, "done", None)],
            "job_7_x.tmp",
            id="dup-int-unrecognized-among-deletable",
        ),
    ],
)
@pytest.mark.parametrize("kind", ["Orphaned", "CrashRecovery", "Scheduled"])
def test_a_job_the_database_has_a_keeping_row_for_keeps_its_files(
    tmp_path: Path, id_type: str, rows: list[tuple[object, object, object]], file: str, kind: str
) -> None:
    url = _database(tmp_path / "jobs.db", rows, id_type=id_type)
    volume = tmp_path / "volume"
    make_files(volume, {file: 500, "job_gone_x.tmp": 500}, NOW)
    policy = make_policy(volume, url)

    status = execute(policy, run_spec(kind), SqlJobSource(policy.backend.database, url), NOW)

    assert file in files_under(volume), status.model_dump_json()
    if kind != "CrashRecovery":
        assert "job_gone_x.tmp" not in files_under(volume), "a job absent from the table is still an orphan"


def test_a_text_id_sqlite_reads_as_a_number_neither_fails_the_lookup_nor_borrows_that_job(tmp_path: Path) -> None:
    # SQLite converts the text '1e3' to 1000.0 when comparing it with an INTEGER column, so the row of job 1000
    # comes back for the file job_1e3_x; that row is not job 1e3's, and it must not fail the whole batch either
    url = _database(tmp_path / "jobs.db", [(1000, "completed", None), (41, "running", None)], id_type="INTEGER")
    volume = tmp_path / "volume"
    make_files(volume, {"job_1e3_x.tmp": 500, "job_41_x.tmp": 500, "job_9_x.tmp": 500}, NOW)
    policy = make_policy(volume, url)

    status = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, url), NOW)

    assert status.errors == [] and "unavailable" not in status.message, status.message
    assert files_under(volume) == {"job_41_x.tmp"}


_STATUSES = ["running", "pending", "failed", "completed", "done", "queued", "RUNNING ", None]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    statuses=st.lists(st.sampled_from(_STATUSES), min_size=1, max_size=5),
    hours_ago=st.lists(st.sampled_from([None, 0.1, 500.0, -5.0]), min_size=5, max_size=5),
    kind=st.sampled_from(["Orphaned", "CrashRecovery", "Scheduled"]),
)
def test_any_keeping_row_among_duplicates_keeps_the_job(
    tmp_path_factory: pytest.TempPathFactory, statuses: list[str | None], hours_ago: list[float | None], kind: str
) -> None:
    base = tmp_path_factory.mktemp("dup")
    rows = [
        ("42", status, None if hours is None else (NOW - timedelta(hours=hours)).isoformat())
        for status, hours in zip(statuses, hours_ago, strict=False)
    ]
    url = _database(base / "jobs.db", rows)
    volume = base / "volume"
    make_files(volume, {"job_42_a.tmp": 500}, NOW)
    policy = make_policy(volume, url)

    execute(policy, run_spec(kind), SqlJobSource(policy.backend.database, url), NOW)

    keeping = {"running", "pending", "queued", "running ", None}
    if any((status.lower() if status else None) in keeping for status in statuses):
        assert files_under(volume) == {"job_42_a.tmp"}, rows
