"""The volume provider on real directories: no symlink is followed, no mount point is crossed.

The allowed-roots check works on strings; these are the attacks it cannot see, so each one is a real
tree with bait outside the volume: old files that the cleanup would delete if it could reach them.
The policy's own old files beside the attack are the positive control: they are deleted, so the
cleanup did run where the bait would have been found.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from security.trees import BAIT_FILES, OLD
from support.mounts import Mounts
from sweep_helpers import Tree, effective_policy, execute, run_spec
from tempsweep.engine import StorageError
from tempsweep.engine.ports import Outcome
from tempsweep.models import RunPhase
from tempsweep.models.status import RunStatus
from tempsweep.storage import VolumeStorage


def orphaned(root: Path, now: datetime) -> RunStatus:
    """An Orphaned cleanup that deletes every file older than an hour under ROOT."""
    return execute(
        effective_policy(root, orphans={"maxAgeHours": 1}),
        VolumeStorage(str(root)),
        run_spec("Orphaned"),
        now=now,
    )


def test_a_root_that_is_a_symlink_is_refused(tmp_path: Path, bait: Tree, now: datetime) -> None:
    link = tmp_path / "volume-link"
    link.symlink_to(bait.root, target_is_directory=True)

    with pytest.raises(StorageError, match="is a symlink or passes through one"):
        list(VolumeStorage(str(link)).scan())
    status = orphaned(link, now)

    assert status.phase is RunPhase.FAILED
    assert "symlink" in status.message
    assert bait.files() == BAIT_FILES


def test_a_root_reached_through_a_symlinked_directory_is_refused(
    tmp_path: Path, volume: Tree, bait: Tree, now: datetime
) -> None:
    """volumes/link/deep lies under the allowed root as a string, but link leads outside."""
    (volume.root / "link").symlink_to(bait.root, target_is_directory=True)
    path = volume.root / "link" / "deep"

    status = orphaned(path, now)

    assert status.phase is RunPhase.FAILED
    assert "passes through" in status.message
    assert bait.files() == BAIT_FILES


def test_a_symlink_inside_the_root_to_a_directory_outside_is_not_entered(
    volume: Tree, bait: Tree, now: datetime
) -> None:
    volume.file("own/job_1_chunk_7_image2.jpg", age_hours=OLD)
    (volume.root / "own" / "escape").symlink_to(bait.root, target_is_directory=True)
    (volume.root / "escape-file.tmp").symlink_to(bait.root / "victim.tmp")

    status = orphaned(volume.root, now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert volume.files() == set()  # the control was deleted ...
    assert (volume.root / "own" / "escape").is_symlink()  # ... the links were left alone ...
    assert (volume.root / "escape-file.tmp").is_symlink()
    assert bait.files() == BAIT_FILES  # ... and nothing behind them was touched


def test_a_tmpfs_mounted_inside_the_root_is_not_entered(volume: Tree, mounts: Mounts, now: datetime) -> None:
    volume.file("own.tmp", age_hours=OLD)
    other = Tree(mounts.tmpfs(volume.root / "mnt"), now)
    other.file("victim.tmp", age_hours=OLD)
    other.file("deep/victim.tmp", age_hours=OLD)

    status = orphaned(volume.root, now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == 1
    assert not (volume.root / "own.tmp").exists()
    assert other.files() == {"victim.tmp", "deep/victim.tmp"}


def test_a_bind_mount_of_the_same_filesystem_inside_the_root_is_not_entered(
    volume: Tree, bait: Tree, mounts: Mounts, now: datetime
) -> None:
    """Same st_dev as the root, so only the mount id tells it apart."""
    volume.file("own.tmp", age_hours=OLD)
    target = mounts.bind(bait.root, volume.root / "bound")
    assert os.stat(target).st_dev == os.stat(volume.root).st_dev

    status = orphaned(volume.root, now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == 1
    assert bait.files() == BAIT_FILES


def test_a_root_that_is_itself_a_mount_point_is_cleaned(tmp_path: Path, mounts: Mounts, now: datetime) -> None:
    root = Tree(mounts.tmpfs(tmp_path / "mounted-volume"), now)
    root.file("old.tmp", age_hours=OLD)
    root.file("deep/old.tmp", age_hours=OLD)
    root.file("new.tmp")

    status = orphaned(root.root, now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert root.files() == {"new.tmp"}


def test_a_directory_swapped_for_a_symlink_after_the_scan_is_not_followed(
    volume: Tree, bait: Tree, now: datetime
) -> None:
    volume.file("deep/victim.tmp", age_hours=OLD)
    storage = VolumeStorage(str(volume.root))
    entries = list(storage.scan())
    (volume.root / "deep" / "victim.tmp").unlink()
    (volume.root / "deep").rmdir()
    (volume.root / "deep").symlink_to(bait.root / "deep", target_is_directory=True)

    (result,) = storage.delete(entries)

    assert result.outcome is Outcome.FAILED
    assert result.detail == "not deleted: directory is now a symlink"
    assert bait.files() == BAIT_FILES


def test_a_root_replaced_after_the_scan_is_not_cleaned(tmp_path: Path, volume: Tree, now: datetime) -> None:
    volume.file("victim.tmp", age_hours=OLD)
    storage = VolumeStorage(str(volume.root))
    entries = list(storage.scan())
    volume.root.rename(tmp_path / "moved")
    impostor = Tree(volume.root, now)
    impostor.root.mkdir()
    impostor.file("victim.tmp", age_hours=OLD)

    with pytest.raises(StorageError, match="was replaced"):
        storage.delete(entries)
    assert impostor.files() == {"victim.tmp"}
    assert (tmp_path / "moved" / "victim.tmp").exists()
