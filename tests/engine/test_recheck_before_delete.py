"""Between planning and unlinking the world moves: each file is re-checked, and the run goes on.

The interference happens for real on the disk, in the window between the scan and the deletion:
either through a ``VolumeStorage`` whose first ``delete`` call first changes the tree, or by calling
``VolumeStorage.delete`` with entries from an earlier scan.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from sweep_helpers import Tree, effective_policy, execute, run_spec
from tempsweep.engine import DeleteResult, FileEntry, Outcome
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage

OLD = 1000.0


class InterferingVolume(VolumeStorage):
    """A real volume whose first deletion batch is preceded by ``interfere()``."""

    def __init__(self, root: Path, interfere: Callable[[], None]) -> None:
        super().__init__(str(root))
        self._interfere: Callable[[], None] | None = interfere
        self._lock = threading.Lock()

    def delete(self, entries: Sequence[FileEntry]) -> list[DeleteResult]:
        with self._lock:
            interfere, self._interfere = self._interfere, None
        if interfere is not None:
            interfere()
        return super().delete(entries)


def _orphaned(tree: Tree, storage: VolumeStorage, now: datetime):
    return execute(
        effective_policy(tree.root, orphans={"maxAgeHours": 1}), storage, run_spec("Orphaned"), now=now
    )


@pytest.fixture
def three_old(tree: Tree) -> Tree:
    for name in ("a.tmp", "b.tmp", "c.tmp"):
        tree.file(name, age_hours=OLD)
    return tree


def test_a_file_that_vanishes_mid_run_is_reported_and_the_others_still_go(
    three_old: Tree, now: datetime
) -> None:
    storage = InterferingVolume(three_old.root, lambda: (three_old.root / "b.tmp").unlink())

    status = _orphaned(three_old, storage, now)

    assert three_old.files() == set()
    assert status.files_deleted == 2
    assert status.error_count == 1
    assert status.errors == ["b.tmp: vanished before it could be deleted"]
    assert status.phase is RunPhase.SUCCEEDED  # someone deleting it first is not a failed cleanup


def test_a_file_modified_after_planning_is_not_deleted(three_old: Tree, now: datetime) -> None:
    def rewrite() -> None:
        with open(three_old.root / "b.tmp", "ab") as handle:
            handle.write(b"new data")

    status = _orphaned(three_old, InterferingVolume(three_old.root, rewrite), now)

    assert three_old.files() == {"b.tmp"}
    assert (three_old.root / "b.tmp").read_bytes().endswith(b"new data")
    assert status.files_deleted == 2
    assert status.files_skipped == 1
    assert "1 skipped because they changed since planned" in status.message


def test_a_file_replaced_under_the_same_name_is_not_deleted(tree: Tree, now: datetime) -> None:
    tree.file("a.tmp", age_hours=OLD, size=10)

    def replace() -> None:
        replacement = tree.root / "a.tmp.new"
        replacement.write_bytes(b"y" * 10)
        tree.age(replacement, OLD)  # same size, same mtime: only the inode differs
        os.replace(replacement, tree.root / "a.tmp")

    status = _orphaned(tree, InterferingVolume(tree.root, replace), now)

    assert (tree.root / "a.tmp").read_bytes() == b"y" * 10
    assert status.files_deleted == 0
    assert status.files_skipped == 1


def test_a_file_replaced_by_a_symlink_is_not_deleted_nor_followed(
    tree: Tree, outside: Tree, now: datetime
) -> None:
    tree.file("a.tmp", age_hours=OLD)
    victim = outside.file("victim.tmp", age_hours=OLD)
    storage = VolumeStorage(str(tree.root))
    entries = list(storage.scan())
    (tree.root / "a.tmp").unlink()
    (tree.root / "a.tmp").symlink_to(victim)

    (result,) = storage.delete(entries)

    assert result.outcome is Outcome.CHANGED
    assert victim.exists()
    assert (tree.root / "a.tmp").is_symlink()


def test_a_directory_swapped_for_a_symlink_between_scan_and_delete_is_not_followed(
    tree: Tree, outside: Tree, now: datetime
) -> None:
    """The swapped-in symlink leads to the very files that were scanned (same inodes, same tokens)."""
    for name in ("x.tmp", "y.tmp"):
        tree.file(f"sub/{name}", age_hours=OLD)
    tree.file("top.tmp", age_hours=OLD)
    storage = VolumeStorage(str(tree.root))
    entries = list(storage.scan())
    os.rename(tree.root / "sub", outside.root / "sub")
    (tree.root / "sub").symlink_to(outside.root / "sub", target_is_directory=True)

    results = {result.entry.path: result for result in storage.delete(entries)}

    assert outside.files() == {"sub/x.tmp", "sub/y.tmp"}
    assert results["top.tmp"].outcome is Outcome.DELETED
    assert results["sub/x.tmp"].outcome is Outcome.FAILED
    assert results["sub/y.tmp"].outcome is Outcome.FAILED
    assert (tree.root / "sub").is_symlink()


def test_a_swapped_directory_mid_run_is_an_error_of_the_run_not_a_deletion(
    tree: Tree, outside: Tree, now: datetime
) -> None:
    tree.file("sub/x.tmp", age_hours=OLD)
    tree.file("top.tmp", age_hours=OLD)

    def swap() -> None:
        os.rename(tree.root / "sub", outside.root / "sub")
        (tree.root / "sub").symlink_to(outside.root / "sub", target_is_directory=True)

    status = _orphaned(tree, InterferingVolume(tree.root, swap), now)

    assert outside.files() == {"sub/x.tmp"}
    assert status.files_deleted == 1
    assert status.error_count == 1
    assert status.errors[0].startswith("sub/x.tmp: not deleted")
    assert status.phase is RunPhase.FAILED


def test_a_root_replaced_during_the_run_is_refused(tmp_path: Path, tree: Tree, now: datetime) -> None:
    tree.file("a.tmp", age_hours=OLD)
    elsewhere = tmp_path / "elsewhere"

    def replace_root() -> None:
        os.rename(tree.root, elsewhere)
        tree.root.mkdir()
        shutil.copy2(elsewhere / "a.tmp", tree.root / "a.tmp")

    status = _orphaned(tree, InterferingVolume(tree.root, replace_root), now)

    assert (elsewhere / "a.tmp").exists()
    assert (tree.root / "a.tmp").exists()
    assert status.files_deleted == 0
    assert "replaced" in status.errors[0]
    assert status.phase is RunPhase.FAILED


# -- permission denied -----------------------------------------------------------------------------------


@pytest.fixture
def undeletable(tree: Tree) -> Iterator[Path]:
    """A file whose unlink fails for real (EPERM/EACCES): immutable as root, else in a read-only directory."""
    path = tree.file("locked/held.tmp", age_hours=OLD)
    if os.geteuid() != 0:
        os.chmod(path.parent, 0o555)
        yield path
        os.chmod(path.parent, 0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make an unlink fail")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this filesystem does not support immutable files: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_file_that_cannot_be_deleted_is_an_error_and_the_run_goes_on(
    tree: Tree, undeletable: Path, now: datetime
) -> None:
    tree.file("locked/free.tmp", age_hours=OLD)
    tree.file("other.tmp", age_hours=OLD)

    status = _orphaned(tree, VolumeStorage(str(tree.root)), now)

    assert tree.files() == {"locked/held.tmp"}
    assert status.files_deleted == 2
    assert status.error_count == 1
    assert status.errors[0].startswith("locked/held.tmp: ")
    assert "not permitted" in status.errors[0] or "denied" in status.errors[0]
    assert status.phase is RunPhase.FAILED


# -- mount points ------------------------------------------------------------------------------------------


@pytest.fixture
def mount_point(tree: Tree) -> Iterator[Path]:
    """A tmpfs mounted inside the volume root, holding an old file that must survive."""
    target = tree.root / "mounted"
    target.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"mount is not permitted here: {made.stderr.strip()}")
    try:
        tree.file("mounted/other-fs.tmp", age_hours=OLD)
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_mount_point_inside_the_root_is_not_entered(tree: Tree, mount_point: Path, now: datetime) -> None:
    tree.file("own.tmp", age_hours=OLD)

    status = _orphaned(tree, VolumeStorage(str(tree.root)), now)

    assert (mount_point / "other-fs.tmp").exists()
    assert not (tree.root / "own.tmp").exists()
    assert status.files_scanned == 1


def test_delete_refuses_a_file_on_another_filesystem(tree: Tree, mount_point: Path) -> None:
    info = (mount_point / "other-fs.tmp").stat()
    entry = FileEntry(
        "mounted/other-fs.tmp",
        info.st_size,
        info.st_mtime,
        (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns),
    )

    (result,) = VolumeStorage(str(tree.root)).delete([entry])

    assert result.outcome is Outcome.FAILED
    assert (mount_point / "other-fs.tmp").exists()
