"""Every orphan rule and crash recovery, decided from real rows of a real PostgreSQL job table.

The table is read with both id column types (integer and text) and both timestamp types (with and
without time zone); the database's sessions run in New York time, so a timestamp handled in the
wrong zone moves a job across the one-hour crash-recovery wait and the test notices.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobs.helpers import (
    JobDatabase,
    ago,
    assert_no_password,
    execute,
    files_under,
    make_files,
    make_policy,
    run_spec,
)
from tempsweep.jobs.sql import SqlJobSource
from tempsweep.models import RunPhase

pytestmark = pytest.mark.postgres

OLD, YOUNG = 30.0, 1.0  # hours; the policy's orphan age is 24 h and failed jobs wait 1 h

COLUMN_TYPES = [
    pytest.param(("bigint", "timestamptz"), id="integer-id-timestamptz"),
    pytest.param(("bigint", "timestamp"), id="integer-id-timestamp"),
    pytest.param(("text", "timestamptz"), id="text-id-timestamptz"),
    pytest.param(("text", "timestamp"), id="text-id-timestamp"),
]


def _jobs(now: datetime, naive: bool) -> list[tuple[int, str | None, datetime | None]]:
    def t(hours: float) -> datetime:
        return ago(now, hours, naive=naive)

    return [
        (1, "running", t(48)),  # active, however old
        (2, "pending", t(0.1)),
        (3, "failed", t(3)),  # failed, past the 1 h wait
        (4, "failed", t(0.5)),  # failed 30 min ago: still waiting
        (5, "cancelled", t(5)),
        (6, "completed", t(30)),  # finished
        (7, "running", t(2)),
        (8, "error", t(2)),
        (9, "failed", None),  # failed, but when is unknown: kept
        (10, None, t(40)),  # no status at all: cannot be called done
    ]


FILES = {
    "job_1_chunk_0_a.tmp": OLD,
    "job_2_a.tmp": OLD,
    "job_3_chunk_1_a.tmp": OLD,
    "job_3_b.tmp": YOUNG,
    "job_4_a.tmp": OLD,
    "job_5_a.tmp": OLD,
    "job_6_a.tmp": OLD,
    "job_6_b.tmp": YOUNG,
    "deep/er/job_6_c.tmp": OLD,
    "job_007_a.tmp": OLD,  # job 7 in an integer column; an unknown id in a text column
    "job_8_a.tmp": OLD,
    "job_8_b.tmp": YOUNG,
    "job_9_a.tmp": OLD,
    "job_10_a.tmp": OLD,
    "job_404_a.tmp": OLD,  # no such job
    "job_404_b.tmp": YOUNG,
    "job_abc_a.tmp": OLD,  # cannot even be an integer id
    "loose.tmp": OLD,  # no job id
    "fresh.tmp": YOUNG,
}


@pytest.fixture(scope="module")
def moment() -> datetime:
    """One instant for the whole module: the rows are written once per column type and only read."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module", params=COLUMN_TYPES)
def table(
    request: pytest.FixtureRequest, postgres_server: Any, reader_role: str, moment: datetime
) -> Iterator[tuple[JobDatabase, str]]:
    id_type, timestamp_type = request.param
    db = JobDatabase.fresh(postgres_server, reader_role)
    db.create_jobs(_jobs(moment, naive=timestamp_type == "timestamp"), id_type=id_type, timestamp_type=timestamp_type)
    try:
        yield db, id_type
    finally:
        db.drop()


@pytest.fixture
def now(moment: datetime) -> datetime:
    return moment


def _source(url: str, policy) -> SqlJobSource:
    source = SqlJobSource(policy.backend.database, url)
    source.check()
    return source


def test_orphaned_applies_every_rule_to_real_rows(
    table: tuple[JobDatabase, str], tmp_path: Path, now: datetime
) -> None:
    db, id_type = table
    make_files(tmp_path, FILES, now)
    policy = make_policy(tmp_path, db.reader_url)
    source = _source(db.reader_url, policy)

    status = execute(policy, run_spec("Orphaned"), source, now)

    expected = {
        "job_3_chunk_1_a.tmp": "OrphanFailedJob",
        "job_5_a.tmp": "OrphanFailedJob",
        "job_8_a.tmp": "OrphanFailedJob",
        "job_6_a.tmp": "OrphanFinishedJob",
        "deep/er/job_6_c.tmp": "OrphanFinishedJob",
        "job_404_a.tmp": "OrphanUnknownJob",
        "job_abc_a.tmp": "OrphanUnknownJob",
        "loose.tmp": "OrphanNoJobId",
    }
    if id_type == "text":  # '007' is not '7' in a text column
        expected["job_007_a.tmp"] = "OrphanUnknownJob"
    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert files_under(tmp_path) == set(FILES) - set(expected)
    assert status.deleted_by_reason == dict(Counter(expected.values()))
    assert status.job_queries == 1, "the 13 ids of this tree fit in one lookup"
    assert_no_password(status.model_dump_json())


def test_crash_recovery_deletes_every_file_of_jobs_failed_past_the_wait(
    table: tuple[JobDatabase, str], tmp_path: Path, now: datetime
) -> None:
    db, _ = table
    make_files(tmp_path, FILES, now)
    policy = make_policy(tmp_path, db.reader_url)

    status = execute(policy, run_spec("CrashRecovery"), _source(db.reader_url, policy), now)

    gone = {"job_3_chunk_1_a.tmp", "job_3_b.tmp", "job_5_a.tmp", "job_8_a.tmp", "job_8_b.tmp"}
    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert files_under(tmp_path) == set(FILES) - gone, "young files of failed jobs go; job 4 waits, 9 is kept"
    assert status.deleted_by_reason == {"FailedJob": len(gone)}
    assert status.job_queries == 1, "one query lists the failed jobs"


@pytest.mark.parametrize(
    ("job_id", "deleted", "note"),
    [
        pytest.param("3", {"job_3_chunk_1_a.tmp", "job_3_b.tmp"}, "1 failed job(s)", id="failed-past-wait"),
        pytest.param("4", set(), "job 4 failed less than 1 h ago", id="failed-recently"),
        pytest.param("9", set(), "job 9 failed less than 1 h ago", id="failed-at-unknown-time"),
        pytest.param("1", set(), "job 1 is 'running', not failed", id="active"),
        pytest.param("6", set(), "job 6 is 'completed', not failed", id="finished"),
        pytest.param("404", set(), "job 404 is not in the job table", id="unknown"),
    ],
)
def test_crash_recovery_of_one_job_says_why_it_kept_files(
    table: tuple[JobDatabase, str], tmp_path: Path, now: datetime, job_id: str, deleted: set[str], note: str
) -> None:
    db, _ = table
    make_files(tmp_path, FILES, now)
    policy = make_policy(tmp_path, db.reader_url)

    status = execute(policy, run_spec("CrashRecovery", jobId=job_id), _source(db.reader_url, policy), now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert note in status.message
    assert files_under(tmp_path) == set(FILES) - deleted


def test_a_status_enum_that_lacks_some_configured_statuses(job_db: JobDatabase, tmp_path: Path) -> None:
    """Statuses are compared as text: 'cancelled' and 'error' need not exist in the application's enum."""
    now = datetime.now(UTC)
    job_db.execute("CREATE TYPE job_state AS ENUM ('pending', 'running', 'failed', 'completed')")
    job_db.create_jobs(
        [(1, "running", ago(now, 40)), (2, "failed", ago(now, 3)), (3, "completed", ago(now, 40))],
        status_type="job_state",
    )
    make_files(tmp_path, {"job_1_a.tmp": OLD, "job_2_a.tmp": YOUNG, "job_3_a.tmp": OLD}, now)
    policy = make_policy(tmp_path, job_db.reader_url)

    crash = execute(policy, run_spec("CrashRecovery"), _source(job_db.reader_url, policy), now)
    orphaned = execute(policy, run_spec("Orphaned"), _source(job_db.reader_url, policy), now)

    assert (crash.phase, orphaned.phase) == (RunPhase.SUCCEEDED, RunPhase.SUCCEEDED), orphaned.message
    assert crash.deleted_by_reason == {"FailedJob": 1}
    assert orphaned.deleted_by_reason == {"OrphanFinishedJob": 1}
    assert files_under(tmp_path) == {"job_1_a.tmp"}


def test_statuses_compare_ignoring_case_and_spaces_and_unlisted_ones_keep_files(
    job_db: JobDatabase, tmp_path: Path, now: datetime
) -> None:
    """Issue 11 on PostgreSQL: the failed-jobs query and the counts normalize like the engine does."""
    job_db.create_jobs(
        [
            (1, " FAILED ", ago(now, 3)),
            (2, "Running", ago(now, 48)),
            (3, "queued", ago(now, 48)),
            (4, "Completed", ago(now, 48)),
        ]
    )
    root = tmp_path / "volume"
    make_files(root, {f"job_{job_id}_a.tmp": OLD for job_id in (1, 2, 3, 4)}, now)
    policy = make_policy(root, job_db.reader_url)
    source = SqlJobSource(policy.backend.database, job_db.reader_url)

    assert [record.job_id for record in source.failed_jobs()] == ["1"]
    assert (source.counts().active, source.counts().failed) == (1, 1)
    crash = execute(policy, run_spec("CrashRecovery"), source, now)
    orphans = execute(policy, run_spec("Orphaned"), SqlJobSource(policy.backend.database, job_db.reader_url), now)

    assert crash.deleted_by_reason == {"FailedJob": 1}
    assert orphans.deleted_by_reason == {"OrphanFinishedJob": 1}
    assert (orphans.files_kept_unrecognized_status, orphans.unrecognized_job_statuses) == (1, ["queued"])
    assert files_under(root) == {"job_2_a.tmp", "job_3_a.tmp"}
