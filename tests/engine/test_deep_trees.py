"""Deep trees: scanned with a bounded number of descriptors, and cut off (reported, untouched) past MAX_DEPTH.

Chains deeper than PATH_MAX are built and torn down here through directory descriptors, since no
path string can reach their bottom (and Python 3.11's rmtree recurses once per level).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from support.deep_chains import remove_chain
from sweep_helpers import Tree, effective_policy, execute, run_spec
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage
from tempsweep.storage.walker import MAX_DEPTH, MAX_OPEN

OLD = 48.0


def build_chain(root: Path, depth: int, *, old: float, file_every: int = 0) -> None:
    """``depth`` levels of ``d/d/...`` below ``root``, a file ``f`` every ``file_every`` levels and at the bottom."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for level in range(1, depth + 1):
            os.mkdir("d", dir_fd=fds[-1])
            fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
            if level == depth or (file_every and level % file_every == 0):
                fd = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fds[-1])
                os.write(fd, b"x")
                os.close(fd)
                os.utime("f", (old, old), dir_fd=fds[-1], follow_symlinks=False)
            if len(fds) > 64:  # keep a window open only: this is a test helper, not a walker
                os.close(fds.pop(-2))
        for fd in reversed(fds):
            os.utime(fd, (old, old))
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture
def chain_root(tree: Tree) -> Iterator[Tree]:
    yield tree
    remove_chain(tree.root)


def _orphaned(tree: Tree, now: datetime):
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 1})
    return execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned"), now=now)


def test_a_tree_deeper_than_the_limit_is_reported_and_left_alone(chain_root: Tree, now: datetime) -> None:
    old = now.timestamp() - OLD * 3600
    build_chain(chain_root.root, MAX_DEPTH + 3, old=old, file_every=1000)

    status = _orphaned(chain_root, now)

    assert status.phase is RunPhase.FAILED, "a subtree it could not scan is an error for a person to see"
    assert any(f"deeper than {MAX_DEPTH} directories" in error for error in status.errors)
    assert status.files_deleted == MAX_DEPTH // 1000, "the files above the limit went"
    assert status.directories_removed == 0, "every directory on the chain still holds the rest of it"
    bottom = os.open(chain_root.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(MAX_DEPTH + 3):
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=bottom)
            os.close(bottom)
            bottom = below
        assert os.path.exists(f"/proc/self/fd/{bottom}/f"), "the file past the limit is untouched"
    finally:
        os.close(bottom)


def _comb(tree: Tree, depth: int) -> set[str]:
    """A spine ``s/s/s...`` where every level also has a side directory with a file, and a file of its own."""
    expected = set()
    spine = ""
    for _ in range(depth):
        spine = f"{spine}s/" if spine else "s/"
        expected |= {f"{spine}own.bin", f"{spine}side/x.bin"}
    for path in expected:
        tree.file(path, age_hours=OLD)
    return expected


def test_a_comb_deeper_than_the_descriptor_window_is_scanned_completely(tree: Tree, now: datetime) -> None:
    """Going back up past closed descriptors reopens them through '..', so nothing is missed."""
    expected = _comb(tree, MAX_OPEN * 3)
    storage = VolumeStorage(str(tree.root))
    baseline = len(os.listdir("/proc/self/fd"))
    most = 0
    found = set()
    for entry in storage.scan():
        found.add(entry.path)
        most = max(most, len(os.listdir("/proc/self/fd")) - baseline)

    assert found == expected
    assert storage.scan_errors() == []
    assert most <= MAX_OPEN + 3, "descriptors stay bounded whatever the depth"


def test_a_deep_comb_is_cleaned_completely(tree: Tree, now: datetime) -> None:
    _comb(tree, MAX_OPEN * 2)
    for directory in sorted((p for p in tree.root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        tree.age(directory, OLD)

    status = _orphaned(tree, now)

    assert tree.files() == set()
    assert list(tree.root.iterdir()) == []
    assert status.directories_removed == MAX_OPEN * 2 * 2  # every spine level and its side directory
    assert status.phase is RunPhase.SUCCEEDED


def test_a_directory_moved_away_during_the_scan_is_reported_not_followed(tree: Tree) -> None:
    """On the way back up, a closed directory is reopened through its child's '..': if the child was moved
    elsewhere meanwhile, '..' is another directory, so the rest is reported, not scanned from there."""
    _comb(tree, MAX_OPEN * 2)
    storage = VolumeStorage(str(tree.root))
    scan = storage.scan()
    seen = []
    for entry in scan:
        seen.append(entry.path)
        if entry.path.count("/") >= MAX_OPEN + 20:
            break
    (tree.root / "s/s/s/s/s/s").rename(tree.root / "moved")  # its old parent's descriptor was closed
    seen.extend(entry.path for entry in scan)

    errors = storage.scan_errors()
    assert any("cannot be reopened; the rest of it was not scanned" in error for error in errors), errors
    assert not any(path.startswith("moved/") for path in seen)
