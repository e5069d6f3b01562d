"""Files in use: a flock held by another process keeps a file, or a whole directory, in every scenario.

The lock holder is a real child process (``support.locks``). Every file here would be deleted by
every scenario if it were not locked (job 7 failed two days ago, files are old, usage is over the
emergency threshold); an unlocked twin shows each run did delete what it could.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import pytest

from support.locks import HeldLock
from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.engine import compute_stats
from tempsweep.engine.context import CleanupContext
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage
from tempsweep.storage.locking import PROCESS_LOCKS

OLD = 48.0
LOCKED_FILE = "job_7_chunk_1_locked.tmp"
LOCKED_DIR = "job_7_chunk_1_work"
INSIDE = f"{LOCKED_DIR}/job_7_chunk_1_inner.tmp"
FREE = "job_7_chunk_1_free.tmp"

SCENARIOS: list[tuple[str, dict[str, Any]]] = [
    ("Orphaned", {}),
    ("CrashRecovery", {}),
    ("Scheduled", {}),
    ("Emergency", {}),
    ("ChunkCompletion", {"jobId": "7", "chunkId": "1"}),
    ("Orphaned", {"dryRun": True}),
]


def _policy(tree: Tree):
    # 300 bytes in 100: an emergency that needs every file, and the emergency age (1 h) lets them all go
    return effective_policy(
        tree.root, jobs=JOBS, storage={"volume": {"capacity": 100}}, failedJobs={"cleanupAfterHours": 1}
    )


def _run(tree: Tree, now: datetime, kind: str, fields: dict[str, Any]):
    jobs = MemoryJobSource([job("7", "failed", OLD, now)])
    return execute(_policy(tree), VolumeStorage(str(tree.root)), run_spec(kind, **fields), jobs=jobs, now=now)


@pytest.fixture
def locked_tree(tree: Tree) -> Tree:
    for path in (LOCKED_FILE, INSIDE, FREE):
        tree.file(path, age_hours=OLD, size=100)
    tree.age(tree.root / LOCKED_DIR, OLD)
    return tree


@pytest.mark.parametrize(
    ("kind", "fields"), SCENARIOS, ids=[k + ("-dry" if f.get("dryRun") else "") for k, f in SCENARIOS]
)
def test_locked_file_and_directory_survive_and_are_counted(
    locked_tree: Tree, now: datetime, kind: str, fields: dict[str, Any]
) -> None:
    with HeldLock(locked_tree.root / LOCKED_FILE), HeldLock(locked_tree.root / LOCKED_DIR):
        status = _run(locked_tree, now, kind, fields)

    assert {LOCKED_FILE, INSIDE} <= locked_tree.files()
    assert status.files_skipped_in_use == 2, status.message
    assert "another process holds a lock" in status.message
    if fields.get("dryRun"):
        assert status.would_delete == [FREE], "a locked file is not reported as 'would delete'"
    else:
        assert FREE not in locked_tree.files(), "the run deleted what was not locked"
    assert status.error_count == 0, "a file in use is not an error"
    if kind in ("Emergency", "Scheduled") and not fields.get("dryRun"):
        # usage is measured after deleting: the locked bytes are still there, and the run says so
        assert status.phase is RunPhase.FAILED and "could not bring usage below" in status.message
    else:
        assert status.phase is RunPhase.SUCCEEDED, status.message


@pytest.mark.parametrize(("kind", "fields"), SCENARIOS[:5], ids=[k for k, _ in SCENARIOS[:5]])
def test_once_released_the_next_run_deletes_them(
    locked_tree: Tree, now: datetime, kind: str, fields: dict[str, Any]
) -> None:
    with HeldLock(locked_tree.root / LOCKED_FILE), HeldLock(locked_tree.root / LOCKED_DIR):
        _run(locked_tree, now, kind, fields)

    status = _run(locked_tree, now, kind, fields)

    assert locked_tree.files() == set()
    assert status.files_skipped_in_use == 0


def test_a_shared_lock_protects_too(locked_tree: Tree, now: datetime) -> None:
    with HeldLock(locked_tree.root / LOCKED_FILE, shared=True):
        status = _run(locked_tree, now, "Orphaned", {})

    assert locked_tree.files() == {LOCKED_FILE}
    assert status.files_skipped_in_use == 1


def test_a_lock_on_a_directory_protects_everything_below_it(tree: Tree, now: datetime) -> None:
    tree.file("job_7_run/a/b/job_7_deep.tmp", age_hours=OLD)
    with HeldLock(tree.root / "job_7_run"):
        status = _run(tree, now, "Orphaned", {})

    assert tree.files() == {"job_7_run/a/b/job_7_deep.tmp"}
    assert (tree.root / "job_7_run/a/b").is_dir()
    assert status.files_skipped_in_use == 1


def test_a_directory_locked_after_the_scan_still_protects_its_files(locked_tree: Tree, now: datetime) -> None:
    """The lock is taken again on every directory on the way down at deletion time, not only when scanning."""
    storage = VolumeStorage(str(locked_tree.root))
    entries = {entry.path: entry for entry in storage.scan()}

    with HeldLock(locked_tree.root / LOCKED_DIR):
        (result,) = storage.delete([entries[INSIDE]])

    assert result.outcome.value == "in-use"
    assert INSIDE in locked_tree.files()


def test_statistics_count_locked_directories(locked_tree: Tree, now: datetime) -> None:
    with HeldLock(locked_tree.root / LOCKED_DIR):
        stats = compute_stats(
            CleanupContext(policy=_policy(locked_tree), storage=VolumeStorage(str(locked_tree.root)), now=now)
        )

    assert stats.files_skipped_in_use == 1
    assert stats.temp_files_count == 2, "the locked directory's file is not counted"


def test_a_directory_this_process_holds_is_not_another_processs_lock(locked_tree: Tree, now: datetime) -> None:
    """The operator scans a policy's statistics while its cleanup of the same volume holds a directory's
    lock, each with a storage object of its own: the scan must not take the cleanup's lock for a user's
    (nor the cleanup the scan's check), or files go uncounted and undeleted. A real other process's lock
    still keeps the directory out (the control)."""
    cleanup = os.open(locked_tree.root / LOCKED_DIR, os.O_RDONLY | os.O_DIRECTORY)
    try:
        held = PROCESS_LOCKS.acquire(cleanup)  # what the cleanup's path cursor holds while it deletes there
        try:
            stats = compute_stats(
                CleanupContext(policy=_policy(locked_tree), storage=VolumeStorage(str(locked_tree.root)))
            )
            status = _run(locked_tree, now, "Orphaned", {"dryRun": True})
        finally:
            PROCESS_LOCKS.release(held)
    finally:
        os.close(cleanup)
    assert stats.temp_files_count == 3
    assert status.files_skipped_in_use == 0 and INSIDE in status.would_delete

    with HeldLock(locked_tree.root / LOCKED_DIR):
        stats = compute_stats(CleanupContext(policy=_policy(locked_tree), storage=VolumeStorage(str(locked_tree.root))))
    assert stats.temp_files_count == 2
