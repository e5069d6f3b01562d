"""ChunkCompletion: the caller names a finished chunk (and optionally its files); exactly those go."""

from __future__ import annotations

from datetime import datetime

import pytest

from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import CleanupRun, InputError, RunPhase, parse_run
from tempsweep.storage import VolumeStorage

CHUNK_FILES = ["job_42_chunk_7_image1.jpg", "job_42_chunk_7_image2.jpg", "job_42_chunk_7_image3.jpg"]
BYSTANDERS = [
    "job_42_chunk_70_image1.jpg",  # a chunk whose id starts with the same digit
    "job_42_chunk_8_image1.jpg",  # another chunk of the same job
    "job_420_chunk_7_image1.jpg",  # another job whose id starts with the same digits
    "job_4_chunk_7_image1.jpg",
    "job_42_image1.jpg",  # a file of the job outside any chunk
    "image1.jpg",  # no job at all
]


@pytest.fixture
def chunk_tree(tree: Tree) -> Tree:
    for name in CHUNK_FILES + BYSTANDERS:
        tree.file(name)
    tree.file("nested/deeper/job_42_chunk_7_image4.jpg")
    return tree


def test_without_completed_files_every_file_of_the_chunk_goes(chunk_tree: Tree, now: datetime) -> None:
    policy = effective_policy(chunk_tree.root)
    status = execute(
        policy,
        VolumeStorage(str(chunk_tree.root)),
        run_spec("ChunkCompletion", jobId="42", chunkId="7"),
        now=now,
    )

    assert status.phase is RunPhase.SUCCEEDED
    assert chunk_tree.files() == set(BYSTANDERS)
    assert status.files_deleted == len(CHUNK_FILES) + 1
    assert status.deleted_by_reason == {"ChunkCompleted": len(CHUNK_FILES) + 1}
    assert status.bytes_freed == 10 * (len(CHUNK_FILES) + 1)


def test_completed_files_limits_the_deletion_to_those_names(chunk_tree: Tree, now: datetime) -> None:
    policy = effective_policy(chunk_tree.root)
    spec = run_spec("ChunkCompletion", jobId="42", chunkId="7", completedFiles=["image1.jpg", "image3.jpg"])
    status = execute(policy, VolumeStorage(str(chunk_tree.root)), spec, now=now)

    remaining = chunk_tree.files()
    assert "job_42_chunk_7_image1.jpg" not in remaining
    assert "job_42_chunk_7_image3.jpg" not in remaining
    assert "job_42_chunk_7_image2.jpg" in remaining
    assert "nested/deeper/job_42_chunk_7_image4.jpg" in remaining
    assert set(BYSTANDERS) <= remaining
    assert status.files_deleted == 2


def test_a_completed_name_that_matches_no_file_deletes_nothing(chunk_tree: Tree, now: datetime) -> None:
    before = chunk_tree.files()
    spec = run_spec("ChunkCompletion", jobId="42", chunkId="7", completedFiles=["missing.jpg"])
    status = execute(effective_policy(chunk_tree.root), VolumeStorage(str(chunk_tree.root)), spec, now=now)

    assert chunk_tree.files() == before
    assert status.files_deleted == 0
    assert status.phase is RunPhase.SUCCEEDED


def test_the_chunk_of_an_active_job_is_deleted_because_the_caller_named_it(
    chunk_tree: Tree, now: datetime
) -> None:
    """The documented exception to "never delete a file of an active job": the chunk is finished."""
    jobs = MemoryJobSource([job("42", "running", 0, now)])
    status = execute(
        effective_policy(chunk_tree.root, jobs=JOBS),
        VolumeStorage(str(chunk_tree.root)),
        run_spec("ChunkCompletion", jobId="42", chunkId="7"),
        jobs=jobs,
        now=now,
    )

    assert status.files_deleted == len(CHUNK_FILES) + 1
    assert chunk_tree.files() == set(BYSTANDERS)
    assert jobs.query_count == 0, "a chunk completion needs no job status"


def test_a_custom_chunk_pattern_is_honoured(tree: Tree, now: datetime) -> None:
    tree.file("crawl-5.part-2.a.bin")
    tree.file("crawl-5.part-3.a.bin")
    policy = effective_policy(
        tree.root, naming={"jobPattern": "crawl-{job_id}.", "chunkPattern": "crawl-{job_id}.part-{chunk_id}."}
    )
    status = execute(
        policy, VolumeStorage(str(tree.root)), run_spec("ChunkCompletion", jobId="5", chunkId="2"), now=now
    )

    assert tree.files() == {"crawl-5.part-3.a.bin"}
    assert status.files_deleted == 1


@pytest.mark.parametrize(
    "entry",
    ["../job_42_chunk_7_image1.jpg", "sub/image1.jpg", "/etc/passwd", "..", ".", "", "image\x001.jpg"],
    ids=["parent-reference", "slash", "absolute", "dot-dot", "dot", "empty", "nul-byte"],
)
def test_a_bad_completed_files_entry_rejects_the_whole_run(entry: str) -> None:
    document = {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupRun",
        "metadata": {"name": "chunk"},
        "spec": {
            "policyRef": {"name": "p"},
            "type": "ChunkCompletion",
            "jobId": "42",
            "chunkId": "7",
            "completedFiles": ["image1.jpg", entry],
        },
    }
    with pytest.raises(InputError) as raised:
        parse_run(document, source="run.yaml")

    message = str(raised.value)
    assert message.startswith("run.yaml: spec.completedFiles:")
    assert "entry 1" in message


def test_a_valid_run_parses_to_the_names_given() -> None:
    run: CleanupRun = parse_run(
        {
            "apiVersion": "tempsweep.io/v1alpha1",
            "kind": "CleanupRun",
            "metadata": {"name": "c"},
            "spec": {
                "policyRef": {"name": "p"},
                "type": "ChunkCompletion",
                "jobId": "42",
                "chunkId": "7",
                "completedFiles": ["a.jpg", "b..c.jpg"],
            },
        },
        source="run.yaml",
    )
    assert run.spec.completed_files == ["a.jpg", "b..c.jpg"]
