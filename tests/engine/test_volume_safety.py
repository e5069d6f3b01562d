"""Safety on a real volume: symlinks are not followed, the root is never left, excluded files stay.

Each test builds a real tree under ``tmp_path`` with bait outside the volume root (old files that
every rule would delete if it could reach them) and checks the bait survives.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from sweep_helpers import Tree, effective_policy, execute, run_spec
from tempsweep.engine import FileEntry, Outcome, StorageError
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage

OLD = 1000.0  # hours: older than every age limit used here


def _orphaned(tree: Tree, now: datetime, **overrides):
    return execute(
        effective_policy(tree.root, orphans={"maxAgeHours": 1}, **overrides),
        VolumeStorage(str(tree.root)),
        run_spec("Orphaned"),
        now=now,
    )


@pytest.fixture
def bait(outside: Tree) -> Tree:
    outside.file("victim.tmp", age_hours=OLD)
    outside.file("dir/victim.tmp", age_hours=OLD)
    outside.file("dir/job_1_victim.tmp", age_hours=OLD)
    return outside


def test_a_symlink_to_a_file_outside_the_root_is_neither_followed_nor_removed(
    tree: Tree, bait: Tree, now: datetime
) -> None:
    link = tree.root / "link-to-victim.tmp"
    link.symlink_to(bait.root / "victim.tmp")
    tree.age(link, OLD)

    status = _orphaned(tree, now)

    assert bait.files() == {"victim.tmp", "dir/victim.tmp", "dir/job_1_victim.tmp"}
    assert link.is_symlink()
    assert status.files_scanned == 0
    assert status.phase is RunPhase.SUCCEEDED


def test_a_symlink_to_a_directory_outside_the_root_is_not_entered(
    tree: Tree, bait: Tree, now: datetime
) -> None:
    (tree.root / "sub").mkdir()
    (tree.root / "sub" / "escape").symlink_to(bait.root / "dir", target_is_directory=True)
    tree.file("sub/own.tmp", age_hours=OLD)

    status = _orphaned(tree, now)

    assert bait.files() == {"victim.tmp", "dir/victim.tmp", "dir/job_1_victim.tmp"}
    assert (tree.root / "sub" / "escape").is_symlink()
    assert tree.files() == set()
    assert status.files_scanned == 1


def test_dangling_symlinks_and_symlink_loops_are_left_alone(tree: Tree, now: datetime) -> None:
    dangling = tree.root / "dangling.tmp"
    dangling.symlink_to(tree.root / "does-not-exist")
    (tree.root / "loop").symlink_to(tree.root, target_is_directory=True)
    tree.file("real.tmp", age_hours=OLD)

    status = _orphaned(tree, now)

    assert dangling.is_symlink()
    assert (tree.root / "loop").is_symlink()
    assert status.files_deleted == 1
    assert status.files_scanned == 1
    assert status.error_count == 0


def test_special_files_are_never_deleted(tree: Tree, now: datetime) -> None:
    fifo = tree.root / "pipe.tmp"
    os.mkfifo(fifo)
    tree.age(fifo, OLD)

    status = _orphaned(tree, now)

    assert fifo.exists()
    assert status.files_scanned == 0


def test_files_in_nested_directories_are_found_and_the_directories_kept(tree: Tree, now: datetime) -> None:
    deep = "/".join(f"level{depth}" for depth in range(40))
    tree.file(f"{deep}/deep.tmp", age_hours=OLD)
    tree.file("a/b/c.tmp", age_hours=OLD)
    tree.file("a/b/young.tmp", age_hours=0)

    status = _orphaned(tree, now)

    assert tree.files() == {"a/b/young.tmp"}
    assert (tree.root / deep).is_dir(), "cleanup removes files, never directories"
    assert status.files_deleted == 2


@pytest.mark.parametrize(
    ("exclude", "kept"),
    [
        (["*.lock"], {"job.lock", "sub/deep/other.lock"}),
        (["keep/*"], {"keep/a.tmp", "keep/inner/b.tmp"}),
        (["important-*"], {"important-1.tmp"}),
        (["*.lock", "keep/*"], {"job.lock", "sub/deep/other.lock", "keep/a.tmp", "keep/inner/b.tmp"}),
    ],
    ids=["by-name", "by-relative-path", "by-prefix", "several-globs"],
)
def test_excluded_globs_are_never_touched(
    tree: Tree, now: datetime, exclude: list[str], kept: set[str]
) -> None:
    for name in (
        "job.lock",
        "sub/deep/other.lock",
        "keep/a.tmp",
        "keep/inner/b.tmp",
        "important-1.tmp",
        "plain.tmp",
    ):
        tree.file(name, age_hours=OLD)

    status = _orphaned(tree, now, exclude=exclude)

    assert tree.files() == kept
    assert status.files_scanned == 6 - len(kept), "excluded files are not even counted as scanned"


def test_excluded_files_are_not_emergency_candidates_but_count_as_used_space(
    tree: Tree, now: datetime
) -> None:
    for index in range(9):
        tree.file(f"held{index}.lock", age_hours=OLD, size=100)
    tree.file("free-me.tmp", age_hours=OLD, size=100)
    policy = effective_policy(tree.root, exclude=["*.lock"], storage={"volume": {"capacity": 1000}})

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec("Emergency"), now=now)

    assert tree.files() == {f"held{index}.lock" for index in range(9)}
    assert status.storage_before_percent == 100.0
    assert status.phase is RunPhase.FAILED


def test_a_root_that_is_a_symlink_is_refused(tmp_path: Path, bait: Tree, now: datetime) -> None:
    link = tmp_path / "volume-link"
    link.symlink_to(bait.root, target_is_directory=True)

    status = execute(effective_policy(link), VolumeStorage(str(link)), run_spec("Orphaned"), now=now)

    assert status.phase is RunPhase.FAILED
    assert "symlink" in status.message
    assert len(bait.files()) == 3


def test_a_missing_root_fails_the_run_with_its_path(tmp_path: Path, now: datetime) -> None:
    missing = tmp_path / "nowhere"

    status = execute(effective_policy(missing), VolumeStorage(str(missing)), run_spec("Orphaned"), now=now)

    assert status.phase is RunPhase.FAILED
    assert str(missing) in status.message
    assert "does not exist" in status.message


def test_a_relative_root_is_refused() -> None:
    with pytest.raises(StorageError, match="not absolute"):
        VolumeStorage("relative/volume")


@pytest.mark.parametrize(
    "path",
    [
        "../outside/victim.tmp",
        "sub/../../outside/victim.tmp",
        "ABSOLUTE",
        "./../outside/victim.tmp",
        "sub//../outside/victim.tmp",
        "/../outside/victim.tmp",
        "sub/..",
        "../outside/victim.tmp\x00",
    ],
    ids=["parent", "parent-inside", "absolute", "dot", "empty-component", "leading-slash", "name-dotdot", "nul"],
)
def test_delete_refuses_entries_that_point_outside_the_root(tree: Tree, bait: Tree, path: str) -> None:
    """Entries naming the bait itself (with the bait's own version token) must still be refused."""
    victim = bait.root / "victim.tmp"
    (tree.root / "sub").mkdir()
    info = victim.stat()
    token = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    entry = FileEntry(str(victim) if path == "ABSOLUTE" else path, info.st_size, info.st_mtime, token)

    (result,) = VolumeStorage(str(tree.root)).delete([entry])

    assert result.outcome is Outcome.FAILED
    assert victim.exists()
