"""The offline CLI against a real PostgreSQL: a working table, broken ones, identifiers meant to inject SQL.

Bad input -- an identifier that is not one -- exits 2 with one line naming the policy file and the
field and deletes nothing. A database that cannot be read -- a refused password, a missing table or
column, an unreachable server -- is an outage: the run keeps every file of a job and exits 1. The
password is never printed.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.helpers import READER_PASSWORD, JobDatabase, ago, assert_no_password, files_under, make_files
from support.probing import free_port
from tempsweep.cli import main

pytestmark = pytest.mark.postgres

OLD = 30.0
FILES = {
    "job_1_a.tmp": OLD,
    "job_2_a.tmp": OLD,
    "job_3_a.tmp": OLD,
    "job_9_a.tmp": OLD,
    "loose.tmp": OLD,
    "fresh.tmp": 0.5,
}


@pytest.fixture(autouse=True)
def _no_operator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TEMP_STORAGE_CLEANUP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def table(job_db: JobDatabase, now: datetime) -> JobDatabase:
    job_db.create_jobs([(1, "running", ago(now, 40)), (2, "completed", ago(now, 40)), (3, "failed", ago(now, 5))])
    return job_db


def _manifests(tmp_path: Path, root: Path, database: dict[str, Any]) -> tuple[str, str]:
    policy = {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupPolicy",
        "metadata": {"name": "crawler-temp"},
        "spec": {
            "storage": {"volume": {"path": str(root)}},
            "thresholds": {"minFreeSpace": 0},
            "orphans": {"maxAgeHours": 24},
            "limits": {"maxDeletePercent": 100},  # most of this small tree is meant to go
            "jobs": {"database": database},
        },
    }
    run = {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupRun",
        "metadata": {"name": "orphans-now"},
        "spec": {"policyRef": {"name": "crawler-temp"}, "type": "Orphaned"},
    }
    policy_path, run_path = tmp_path / "policy.yaml", tmp_path / "run.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    run_path.write_text(yaml.safe_dump(run))
    return str(policy_path), str(run_path)


@pytest.fixture
def volume(tmp_path: Path, now: datetime) -> Path:
    root = tmp_path / "volume"
    make_files(root, FILES, now)
    return root


def test_run_and_scan_read_the_real_table(
    table: JobDatabase, volume: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy, run = _manifests(tmp_path, volume, {"url": table.reader_url})

    assert main(["scan", "--policy", policy]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["activeJobsCount"], stats["failedJobsCount"]) == (1, 1)
    assert stats["orphanedFilesCount"] == 4

    assert main(["run", "-f", run, "--policy", policy]) == 0
    out, err = capsys.readouterr()
    status = json.loads(out)
    assert status["deletedByReason"] == {
        "OrphanFinishedJob": 1,
        "OrphanFailedJob": 1,
        "OrphanUnknownJob": 1,
        "OrphanNoJobId": 1,
    }
    assert status["jobQueries"] == 1
    assert files_under(volume) == {"job_1_a.tmp", "fresh.tmp"}
    assert_no_password(out + err)


@pytest.mark.parametrize(
    ("url_parts", "database", "expected"),
    [
        pytest.param(
            {"password": "Wr0ng-Recognisable/p@ss%word"},
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
            {"statusColumn": "state"},
            "table 'crawl_jobs' has no column 'state' (jobs.database.statusColumn)",
            id="missing-column",
        ),
        pytest.param({"port": "free"}, {}, "is unreachable: Connection refused", id="unreachable"),
    ],
)
def test_a_broken_job_database_is_an_outage_that_keeps_every_file_of_a_job(
    table: JobDatabase,
    volume: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    url_parts: dict[str, Any],
    database: dict[str, Any],
    expected: str,
) -> None:
    if url_parts.get("port") == "free":
        url_parts = {"port": free_port()}
    url = table.url_with(**url_parts) if url_parts else table.reader_url
    policy, run = _manifests(tmp_path, volume, {"url": url, **database})

    code = main(["run", "-f", run, "--policy", policy])

    out, err = capsys.readouterr()
    status = json.loads(out)
    assert code == 1, "the run went on without job status and failed, as in the operator"
    assert status["phase"] == "Failed"
    assert "job status unavailable, files of jobs were kept: job database postgresql+psycopg://" in status["message"]
    assert expected in status["message"]
    assert {name for name in FILES if name.startswith("job_")} <= files_under(volume), "every file of a job stays"
    for text in (out, err):
        assert_no_password(text)
        assert_no_password(text, "Wr0ng-Recognisable/p@ss%word")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("table", "crawl_jobs; DROP TABLE crawl_jobs", id="table-statement"),
        pytest.param("table", "public.crawl_jobs.extra", id="table-three-parts"),
        pytest.param("idColumn", 'id" OR "1"="1', id="id-quote"),
        pytest.param("statusColumn", "status; DROP TABLE crawl_jobs", id="status-statement"),
        pytest.param("updatedAtColumn", "updated_at) --", id="updated-at-comment"),
        pytest.param("historyTable", "history; DROP TABLE crawl_jobs", id="history-statement"),
    ],
)
def test_identifiers_that_are_not_plain_names_are_rejected_before_any_query(
    table: JobDatabase,
    volume: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: str,
) -> None:
    policy, run = _manifests(tmp_path, volume, {"url": table.reader_url, field: value})

    assert main(["scan", "--policy", policy]) == 2
    scan_err = capsys.readouterr().err
    assert main(["run", "-f", run, "--policy", policy]) == 2
    run_err = capsys.readouterr().err

    for err in (scan_err, run_err):
        assert f"{policy}: spec.jobs.database.{field}: " in err
        assert_no_password(err)
    assert files_under(volume) == set(FILES)
    assert table.scalar("SELECT count(*) FROM crawl_jobs") == 3, "the table is intact"


def test_the_password_of_a_database_url_setting_stays_out_of_errors(
    table: JobDatabase,
    volume: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The operator-wide TEMP_STORAGE_CLEANUP_DATABASE_URL, pointing at a table that is not there."""
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_DATABASE_URL", table.reader_url)
    policy, run = _manifests(tmp_path, volume, {"table": "not_there"})

    assert main(["run", "-f", run, "--policy", policy]) == 1
    out, err = capsys.readouterr()
    err = out + err
    assert "table 'not_there' does not exist" in err
    assert READER_PASSWORD not in err
    assert_no_password(err)
