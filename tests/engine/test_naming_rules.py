"""Names in the engine: a job is named by its file name or a directory on the path; near misses are kept.

Real directories, real runs through ``run_cleanup``. Job 41 is running, 42 and 44 failed long ago,
43 finished: a file of 41 by name or by directory must survive every scenario but ChunkCompletion.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.engine import CleanupContext, compute_stats
from tempsweep.engine.ownership import MAX_PATH_JOBS, OwnershipReader
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import RunPhase
from tempsweep.storage import MemoryStorage, VolumeStorage

OLD = 1000.0  # hours: older than every age in these policies


@pytest.fixture
def jobs(now: datetime) -> MemoryJobSource:
    return MemoryJobSource(
        [
            job("41", "running", 0, now),
            job("42", "failed", 50, now),
            job("43", "completed", 50, now),
            job("44", "failed", 50, now),
            job("12", "running", 0, now),
            job("13", "completed", 50, now),
        ]
    )


def _run(tree: Tree, jobs: MemoryJobSource, now: datetime, kind: str, naming: dict | None = None, **fields):
    policy = effective_policy(
        tree.root,
        jobs=JOBS,
        failedJobs={"cleanupAfterHours": 1},
        naming=naming or {},
        thresholds={"emergencyPercent": 1, "warningPercent": 0.5},
        storage={"volume": {"capacity": 100}},
    )
    return execute(policy, VolumeStorage(str(tree.root)), run_spec(kind, **fields), jobs=jobs, now=now)


@pytest.mark.parametrize("kind", ["Orphaned", "Scheduled", "Emergency", "CrashRecovery"])
@pytest.mark.parametrize(
    "path",
    ["job_41/frames/0001.png", "job_41_output/0001.png", "a/job_41/b/c/0001.png", "job_43/job_41/x.bin"],
    ids=["directory-form", "directory-starting-with-pattern", "deep-below", "inside-a-finished-jobs-directory"],
)
def test_a_running_jobs_directory_keeps_everything_below_it(
    tree: Tree, jobs: MemoryJobSource, now: datetime, path: str, kind: str
) -> None:
    tree.file(path, age_hours=OLD)
    tree.file("loose.tmp", age_hours=OLD)

    status = _run(tree, jobs, now, kind)

    assert path in tree.files(), status.message


@pytest.mark.parametrize(
    ("path", "reason"),
    [("job_43/frames/0001.png", "OrphanFinishedJob"), ("job_44_out/0001.png", "OrphanFailedJob")],
    ids=["finished-jobs-directory", "failed-jobs-directory"],
)
def test_files_in_an_inactive_jobs_directory_are_that_jobs_orphans(
    tree: Tree, jobs: MemoryJobSource, now: datetime, path: str, reason: str
) -> None:
    tree.file(path, age_hours=OLD)

    status = _run(tree, jobs, now, "Orphaned")

    assert tree.files() == set()
    assert status.deleted_by_reason == {reason: 1}


@pytest.mark.parametrize("fields", [{"jobId": "44"}, {}], ids=["one-job", "every-failed-job"])
def test_crash_recovery_deletes_the_files_in_a_failed_jobs_directory(
    tree: Tree, jobs: MemoryJobSource, now: datetime, fields: dict
) -> None:
    tree.file("job_44/frames/0001.png")
    tree.file("job_44/job_44_chunk_1_a.bin")
    tree.file("job_41/frames/0001.png")

    status = _run(tree, jobs, now, "CrashRecovery", **fields)

    assert tree.files() == {"job_41/frames/0001.png"}
    assert status.deleted_by_reason == {"FailedJob": 2}


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        ("job_41/job_42_a.bin", True),  # 42 failed but 41, whose directory holds it, runs
        ("job_42/job_41_a.bin", True),  # the other way round
        ("job_44/job_42_a.bin", False),  # both failed: both allow it
    ],
    ids=["failed-name-in-running-directory", "running-name-in-failed-directory", "both-failed"],
)
def test_a_file_named_by_two_jobs_goes_only_when_both_allow_it(
    tree: Tree, jobs: MemoryJobSource, now: datetime, path: str, kept: bool
) -> None:
    tree.file(path)

    _run(tree, jobs, now, "CrashRecovery")

    assert (path in tree.files()) is kept


@pytest.mark.parametrize("kind", ["Orphaned", "Scheduled", "Emergency"])
@pytest.mark.parametrize(
    "path",
    ["job_4.1_frames.png", "job_41.log", "job_4.1/frames/0001.png", "job_/x.bin", "JOB_41/x.bin", "Job_41_x.tmp"],
    ids=[
        "dot-in-id",
        "directory-form-with-extension",
        "near-miss-directory",
        "prefix-without-id",
        "upper-case-directory",
        "capitalised-prefix",
    ],
)
def test_a_near_miss_name_is_kept_and_counted(
    tree: Tree, jobs: MemoryJobSource, now: datetime, path: str, kind: str
) -> None:
    tree.file(path, age_hours=OLD)
    tree.file("loose.tmp", age_hours=OLD)

    status = _run(tree, jobs, now, kind)

    assert tree.files() == {path}, "the file without any job-like name goes, the near miss stays"
    assert status.near_miss_files == 1
    assert status.near_miss_examples == [path]
    assert "does not parse under spec.naming" in status.message


def test_an_age_only_policy_reads_no_names(tree: Tree, now: datetime) -> None:
    tree.file("job_4.1/frames/0001.png", age_hours=OLD)
    policy = effective_policy(tree.root)

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned"), now=now)

    assert tree.files() == set()
    assert status.near_miss_files == 0


def test_the_issue_example_with_dash_separators_and_digit_ids(tree: Tree, jobs: MemoryJobSource, now: datetime) -> None:
    """``job-{job_id}-`` is refused with the default ids; with digit-only ids it is unambiguous."""
    naming = {"idCharacters": "0-9", "jobPattern": "job-{job_id}-", "chunkPattern": "job-{job_id}-chunk-{chunk_id}-"}
    tree.file("job-12-chunk-3-data", age_hours=OLD)
    tree.file("job-13-chunk-3-data", age_hours=OLD)
    tree.file("job-1a-data", age_hours=OLD)

    status = _run(tree, jobs, now, "Orphaned", naming)

    assert tree.files() == {"job-12-chunk-3-data", "job-1a-data"}
    assert status.deleted_by_reason == {"OrphanFinishedJob": 1}
    assert status.near_miss_files == 1


@pytest.mark.parametrize(
    ("path", "deleted"),
    [
        ("job_42_chunk_7_a.jpg", True),
        ("job_42/job_42_chunk_7_a.jpg", True),
        ("job_41/job_42_chunk_7_a.jpg", False),
        ("job_42_chunk_7/a.jpg", False),
        ("job_4.2/job_42_chunk_7_a.jpg", False),
    ],
    ids=[
        "chunk-file",
        "chunk-file-in-its-jobs-directory",
        "chunk-file-in-another-jobs-directory",
        "file-in-a-chunk-directory",
        "chunk-file-below-a-near-miss",
    ],
)
def test_chunk_completion_takes_only_files_whose_own_name_carries_the_chunk(
    tree: Tree, jobs: MemoryJobSource, now: datetime, path: str, deleted: bool
) -> None:
    tree.file(path)

    status = _run(tree, jobs, now, "ChunkCompletion", jobId="42", chunkId="7")

    assert (path not in tree.files()) is deleted
    assert status.phase is RunPhase.SUCCEEDED


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"jobId": "4_2", "chunkId": "7"}, "spec.jobId"), ({"jobId": "42", "chunkId": "7.1"}, "spec.chunkId")],
    ids=["job-id-with-underscore", "chunk-id-with-dot"],
)
def test_a_run_id_the_policy_cannot_name_fails_and_deletes_nothing(
    tree: Tree, jobs: MemoryJobSource, now: datetime, fields: dict, field: str
) -> None:
    tree.file("job_42_chunk_7_a.jpg")

    status = _run(tree, jobs, now, "ChunkCompletion", **fields)

    assert status.phase is RunPhase.FAILED
    assert status.message.startswith("ChunkCompletion: deleted 0 files")
    assert f"{field}: " in status.message and "naming.idCharacters" in status.message
    assert tree.files() == {"job_42_chunk_7_a.jpg"}


def test_statistics_count_near_misses_and_directory_files_as_their_jobs(
    tree: Tree, jobs: MemoryJobSource, now: datetime
) -> None:
    tree.file("job_41/frames/0001.png", age_hours=OLD)  # running job: not an orphan
    tree.file("job_43/frames/0001.png", age_hours=OLD)  # finished job: an orphan
    tree.file("job_4.1.png", age_hours=OLD)  # near miss: kept, counted
    policy = effective_policy(tree.root, jobs=JOBS)

    stats = compute_stats(CleanupContext(policy=policy, storage=VolumeStorage(str(tree.root)), jobs=jobs, now=now))

    assert stats.orphaned_files_count == 1
    assert stats.near_miss_files_count == 1


@pytest.mark.parametrize("kind", ["Orphaned", "Scheduled", "CrashRecovery"])
def test_blob_style_virtual_folders_follow_the_same_rule(jobs: MemoryJobSource, now: datetime, kind: str) -> None:
    """The engine sees '/'-separated paths from every backend: in-memory blobs behave like the volume."""
    storage = MemoryStorage()
    old = now.timestamp() - OLD * 3600
    for path in ("job_41/frames/0001.png", "job_44/frames/0001.png", "job_4.1/x.png", "runs//job_41/y.png"):
        storage.put(path, 10, old)
    policy = effective_policy(
        "/data/tmp", jobs=JOBS, failedJobs={"cleanupAfterHours": 1}, storage={"volume": {"capacity": 10_000}}
    )

    execute(policy, storage, run_spec(kind), jobs=jobs, now=now)

    assert storage.paths() == {"job_41/frames/0001.png", "job_4.1/x.png", "runs//job_41/y.png"}


@pytest.mark.parametrize(
    ("depth", "kept"),
    [(MAX_PATH_JOBS, False), (MAX_PATH_JOBS + 1, True)],
    ids=["as-many-jobs-as-checked", "one-job-too-many"],
)
@pytest.mark.parametrize("kind", ["Orphaned", "Scheduled", "CrashRecovery"])
def test_a_path_naming_more_jobs_than_are_checked_is_kept_as_a_near_miss(
    tree: Tree, now: datetime, depth: int, kept: bool, kind: str
) -> None:
    # Anyone who can write to the volume can nest job directories; checking every job on such a path made
    # the scan quadratic (or worse) in the depth. Beyond MAX_PATH_JOBS jobs the file is kept, not checked.
    ids = [str(1000 + level) for level in range(depth)]
    path = "/".join(f"job_{job_id}" for job_id in ids) + "/x.bin"
    tree.file(path, age_hours=OLD)
    jobs = MemoryJobSource([job(job_id, "failed", 50, now) for job_id in ids])

    status = _run(tree, jobs, now, kind)

    assert (path in tree.files()) is kept, status.message
    assert status.near_miss_files == (1 if kept else 0)


def test_reading_a_deep_chain_of_job_directories_holds_a_bounded_number_of_jobs_per_path() -> None:
    naming = effective_policy("/tmp/unused", jobs=JOBS).rules.naming
    reader = OwnershipReader(naming)
    path = ""
    for level in range(3000):
        path = f"{path}/job_{level}" if path else f"job_{level}"
        job_ids, near_miss = reader.read(f"{path}/f")
        assert len(job_ids) <= MAX_PATH_JOBS
        assert near_miss is (level + 1 > MAX_PATH_JOBS)


BARE_ID = {"jobPattern": "{job_id}_", "chunkPattern": "{job_id}_{chunk_id}_", "idCharacters": "0-9"}


@pytest.mark.parametrize("kind", ["Orphaned", "Scheduled", "Emergency", "CrashRecovery"])
@pytest.mark.parametrize(
    "path",
    ["41/frames/0001.png", "renders/41/0001.exr", "43/41/x.bin"],
    ids=["bare-id-directory", "deep-below", "inside-a-finished-jobs-directory"],
)
def test_a_bare_id_directory_is_its_jobs_when_the_pattern_starts_with_the_id(
    tree: Tree, jobs: MemoryJobSource, now: datetime, path: str, kind: str
) -> None:
    tree.file(path, age_hours=OLD)

    _run(tree, jobs, now, kind, naming=BARE_ID)

    assert path in tree.files(), "job 41 is running: its directory keeps its files"


@pytest.mark.parametrize(
    "path",
    ["43/old.bin", "42/old.bin", "99/old.bin", "cache/old.bin"],
    ids=["finished-job", "failed-job", "job-missing-from-the-table", "not-an-id"],
)
def test_other_bare_id_directories_still_go_when_old(
    tree: Tree, jobs: MemoryJobSource, now: datetime, path: str
) -> None:
    tree.file(path, age_hours=OLD)

    _run(tree, jobs, now, "Orphaned", naming=BARE_ID)

    assert path not in tree.files()
