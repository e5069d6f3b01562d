"""Directories a cleanup emptied are removed bottom-up; the root, mount points, young, non-empty, locked
and job directories that may still be written to are kept."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from support.locks import HeldLock
from support.mounts import Mounts
from sweep_helpers import JOBS, Tree, effective_policy, execute, job, run_spec
from tempsweep.engine import Outcome
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage

OLD = 48.0  # hours; the orphan age here is 1 h


def _dirs(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir() and not p.is_symlink()}


def _old_tree(tree: Tree, *files: str) -> None:
    """Old files, then every directory made old too (creating files made them young)."""
    for path in files:
        tree.file(path, age_hours=OLD)
    for directory in sorted(_dirs(tree.root), key=len, reverse=True):
        tree.age(tree.root / directory, OLD)


def _run(tree: Tree, now: datetime, kind: str = "Orphaned", *, jobs: MemoryJobSource | None = None, **overrides):
    fields = overrides.pop("fields", {})
    if jobs is not None:
        overrides["jobs"] = JOBS
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 1}, failedJobs={"cleanupAfterHours": 1}, **overrides)
    return execute(policy, VolumeStorage(str(tree.root)), run_spec(kind, **fields), jobs=jobs, now=now)


def test_directories_emptied_by_the_run_go_bottom_up_and_the_root_stays(tree: Tree, now: datetime) -> None:
    _old_tree(tree, "job_42/a/x.bin", "job_42/a/b/y.bin", "loose/z.bin")

    status = _run(tree, now)

    assert tree.files() == set()
    assert _dirs(tree.root) == set()
    assert tree.root.is_dir(), "the volume root is never removed"
    assert status.directories_removed == 4
    assert "removed 4 emptied directories" in status.message
    assert status.phase is RunPhase.SUCCEEDED


def test_a_directory_that_keeps_anything_stays(tree: Tree, now: datetime) -> None:
    _old_tree(tree, "young/old.bin", "linked/old.bin", "excluded/old.bin", "excluded/keep.lock", "gone/old.bin")
    tree.file("young/new.bin", age_hours=0)
    (tree.root / "linked" / "link").symlink_to("/etc/hostname")
    tree.age(tree.root / "linked", OLD)

    status = _run(tree, now, exclude=["*.lock"])

    assert tree.files() == {"young/new.bin", "excluded/keep.lock"}
    assert _dirs(tree.root) == {"young", "linked", "excluded"}
    assert status.directories_removed == 1


def test_an_empty_directory_goes_only_when_older_than_the_orphan_age(tree: Tree, now: datetime) -> None:
    (tree.root / "old-empty" / "inner").mkdir(parents=True)
    (tree.root / "young-empty").mkdir()
    for directory in ("old-empty/inner", "old-empty"):
        tree.age(tree.root / directory, OLD)

    status = _run(tree, now)

    assert _dirs(tree.root) == {"young-empty"}
    assert status.directories_removed == 2


def test_a_locked_directory_stays_and_is_counted(tree: Tree, now: datetime) -> None:
    (tree.root / "held").mkdir()
    tree.age(tree.root / "held", OLD)

    with HeldLock(tree.root / "held"):
        status = _run(tree, now)

    assert _dirs(tree.root) == {"held"}
    assert status.files_skipped_in_use == 1


@pytest.mark.parametrize("kind", ["bind", "tmpfs"])
def test_a_mount_point_is_never_removed(tree: Tree, tmp_path: Path, now: datetime, kind: str) -> None:
    _old_tree(tree, "mnt/parent-file.bin")
    source = tmp_path / "bind-source"
    source.mkdir()
    with Mounts() as mounts:
        target = tree.root / "mnt" / "point"
        if kind == "bind":
            mounts.bind(source, target)
        else:
            mounts.tmpfs(target)
        tree.age(target, OLD)
        tree.age(tree.root / "mnt", OLD)

        status = _run(tree, now)

        assert target.is_dir()
        assert f" {target} " in Path("/proc/self/mountinfo").read_text(), "still mounted"
        assert _dirs(tree.root) >= {"mnt", "mnt/point"}, "the mount point and its parent stay"
    assert status.phase is RunPhase.SUCCEEDED
    assert status.directories_removed == 0


def test_a_dry_run_reports_what_it_would_remove(tree: Tree, now: datetime) -> None:
    _old_tree(tree, "job_42/a/x.bin", "keep/y.bin")
    tree.file("keep/new.bin")

    status = _run(tree, now, fields={"dryRun": True})

    assert status.would_remove_directories == 2
    assert status.directories_removed == 0
    assert "would remove 2 emptied directories" in status.message
    assert _dirs(tree.root) == {"job_42", "job_42/a", "keep"}


def test_the_switch_turns_it_off(tree: Tree, now: datetime) -> None:
    _old_tree(tree, "a/x.bin")

    status = _run(tree, now, removeEmptyDirectories=False)

    assert tree.files() == set()
    assert _dirs(tree.root) == {"a"}
    assert status.directories_removed == 0


def _job_tree(tree: Tree, now: datetime) -> MemoryJobSource:
    _old_tree(
        tree,
        "job_41/job_41_out.bin",  # running: kept, and so is its directory
        "job_42/job_42_out.bin",  # finished
        "job_43/sub/job_43_out.bin",  # failed long ago
        "job_44/job_44_out.bin",  # not in the table
    )
    for empty in ("job_41/empty", "job_44/empty"):
        (tree.root / empty).mkdir()
        tree.age(tree.root / empty, OLD)
    (tree.root / "job_45").mkdir()  # running, empty: about to be written into
    tree.age(tree.root / "job_45", OLD)
    return MemoryJobSource(
        [
            job("41", "running", OLD, now),
            job("42", "completed", OLD, now),
            job("43", "failed", OLD, now),
            job("45", "running", OLD, now),
        ]
    )


def test_orphaned_keeps_directories_of_active_and_unknown_jobs(tree: Tree, now: datetime) -> None:
    jobs = _job_tree(tree, now)

    status = _run(tree, now, jobs=jobs)

    assert tree.files() == {"job_41/job_41_out.bin"}
    assert _dirs(tree.root) == {"job_41", "job_41/empty", "job_44", "job_44/empty", "job_45"}
    assert status.directories_removed == 3  # job_42, job_43/sub, job_43


def test_crash_recovery_removes_only_the_failed_jobs_directories(tree: Tree, now: datetime) -> None:
    jobs = _job_tree(tree, now)

    status = _run(tree, now, "CrashRecovery", jobs=jobs)

    assert "job_43" not in _dirs(tree.root)
    assert {"job_41", "job_42", "job_44", "job_45"} <= _dirs(tree.root)
    assert status.directories_removed == 2


def test_chunk_completion_never_removes_directories(tree: Tree, now: datetime) -> None:
    _old_tree(tree, "job_7_chunk_1_dir/job_7_chunk_1_a.bin")
    jobs = MemoryJobSource([job("7", "running", 0.1, now)])

    status = _run(tree, now, "ChunkCompletion", jobs=jobs, fields={"jobId": "7", "chunkId": "1"})

    assert tree.files() == set()
    assert _dirs(tree.root) == {"job_7_chunk_1_dir"}, "its job is running and may write there next"
    assert status.directories_removed == 0


def test_a_near_miss_job_directory_is_kept(tree: Tree, now: datetime) -> None:
    _old_tree(tree, "job_4.1/x.bin")

    _run(tree, now, jobs=MemoryJobSource([]))

    assert _dirs(tree.root) == {"job_4.1"}


def test_removal_rechecks_the_directory(tree: Tree, now: datetime) -> None:
    """A directory replaced (the old one moved aside, so the inode differs), filled or turned into a
    symlink after the scan is kept."""
    for name in ("replaced", "filled", "symlinked"):
        (tree.root / name).mkdir()
    storage = VolumeStorage(str(tree.root))
    list(storage.scan())
    scanned = {d.path: d for d in storage.directories()}
    (tree.root / "replaced").rename(tree.root / "moved-aside")
    (tree.root / "replaced").mkdir()
    (tree.root / "filled" / "new.bin").write_bytes(b"x")
    (tree.root / "symlinked").rmdir()
    (tree.root / "symlinked").symlink_to(tree.root / "filled")

    results = {r.directory.path: r.outcome for r in storage.remove_directories(list(scanned.values()))}

    assert results == {"replaced": Outcome.CHANGED, "filled": Outcome.CHANGED, "symlinked": Outcome.CHANGED}
    assert (tree.root / "filled" / "new.bin").exists()
    assert (tree.root / "replaced").is_dir()
