"""Emergency success is measured, not summed: on a real 20 MiB tmpfs, deleting a sparse file, one name of a
hard-linked file, or a file another process holds open frees nothing, and the run says so.

Usage on the tmpfs is real: 12 MiB of data under ``keep/`` (excluded, so never a candidate) puts it at
60 %, over the 50 % emergency threshold; relief needs usage below 40 %. Each case offers exactly one
candidate whose size alone would relieve it, and whose deletion frees nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from support.mounts import Mounts
from sweep_helpers import Tree, effective_policy, execute, run_spec
from tempsweep.engine import CleanupContext, Progress, RunRequest, run_cleanup
from tempsweep.models import RunPhase, RunStatus
from tempsweep.storage import VolumeStorage

MiB = 2**20
THRESHOLDS = {"emergencyPercent": 50, "warningPercent": 40, "emergencyBufferPercent": 10, "minFreeSpace": 0}


@pytest.fixture
def tmpfs(tmp_path: Path, now: datetime) -> Iterator[Tree]:
    """A fresh 20 MiB tmpfs, 60 % full of data that is excluded from cleanup; unmounted afterwards."""
    with Mounts(required=True) as mounts:
        root = mounts.tmpfs(tmp_path / "tmpfs", size="20m")
        tree = Tree(root, now)
        tree.file("keep/data.bin", size=12 * MiB)
        yield tree


def _policy(tree: Tree, **overrides: object):
    return effective_policy(
        tree.root,
        thresholds=THRESHOLDS,
        exclude=["keep/*"],
        orphans={"emergencyMaxAgeHours": 1},
        **overrides,
    )


def _run(tree: Tree, now: datetime, kind: str = "Emergency") -> RunStatus:
    return execute(_policy(tree), VolumeStorage(str(tree.root)), run_spec(kind), now=now)


def _df_percent(root: Path) -> float:
    info = os.statvfs(root)
    used = (info.f_blocks - info.f_bfree) * info.f_frsize
    return 100.0 * used / (used + info.f_bavail * info.f_frsize)


def _assert_freed_nothing(status: RunStatus, tree: Tree) -> None:
    assert status.phase is RunPhase.FAILED
    assert status.files_deleted == 1  # the candidate is gone ...
    assert status.storage_before_percent is not None and status.storage_before_percent >= 59
    # ... but usage is what the filesystem says, not the deleted size subtracted
    assert status.storage_after_percent == pytest.approx(_df_percent(tree.root), abs=0.5)
    assert status.storage_after_percent >= 59
    assert "0B freed (measured)" in status.message
    assert "could not bring usage below 40%" in status.message and "more must go" in status.message


def test_deleting_a_sparse_file_frees_nothing_and_the_emergency_fails(tmpfs: Tree, now: datetime) -> None:
    sparse = tmpfs.root / "stale-sparse.tmp"
    with open(sparse, "wb") as handle:
        handle.truncate(100 * MiB)  # 100 MiB by its size, no blocks on disk
    tmpfs.age(sparse, 5)

    status = _run(tmpfs, now)

    assert not sparse.exists()
    _assert_freed_nothing(status, tmpfs)
    assert status.bytes_freed == 100 * MiB  # the sizes of what was deleted, reported apart from usage


def test_deleting_one_name_of_a_hard_linked_file_frees_nothing(tmpfs: Tree, now: datetime) -> None:
    link = tmpfs.root / "stale-link.tmp"
    os.link(tmpfs.root / "keep" / "data.bin", link)
    tmpfs.age(link, 5)  # the data under keep/ shares the inode, so its age too; it stays excluded

    status = _run(tmpfs, now)

    assert not link.exists() and (tmpfs.root / "keep" / "data.bin").exists()
    _assert_freed_nothing(status, tmpfs)


@pytest.fixture
def held_open(tmpfs: Tree) -> Iterator[Path]:
    """A 12 MiB orphan that a child process keeps open until the test ends (then it exits).

    The excluded data shrinks to 6 MiB to make room: 18 of 20 MiB, 90 %."""
    (tmpfs.root / "keep" / "data.bin").write_bytes(b"x" * 6 * MiB)
    path = tmpfs.file("stale-open.tmp", age_hours=5, size=12 * MiB)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; f = open(sys.argv[1], 'rb'); print('open', flush=True); sys.stdin.read()",
         str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "open"
    try:
        yield path
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


def test_deleting_a_file_held_open_frees_nothing(tmpfs: Tree, held_open: Path, now: datetime) -> None:
    status = _run(tmpfs, now)

    assert not held_open.exists()
    _assert_freed_nothing(status, tmpfs)


def test_the_scheduled_runs_emergency_phase_is_measured_too(tmpfs: Tree, now: datetime) -> None:
    sparse = tmpfs.root / "stale-sparse.tmp"
    with open(sparse, "wb") as handle:
        handle.truncate(100 * MiB)
    tmpfs.age(sparse, 5)

    status = _run(tmpfs, now, "Scheduled")

    assert status.phase is RunPhase.FAILED
    assert not sparse.exists()
    assert "0B freed (measured)" in status.message and "more must go" in status.message


def test_real_deletions_succeed_with_the_measured_usage(tmpfs: Tree, now: datetime) -> None:
    (tmpfs.root / "keep" / "data.bin").write_bytes(b"x" * 4 * MiB)
    tmpfs.file("stale-real.tmp", age_hours=5, size=12 * MiB)  # 16 of 20 MiB: 80 %

    status = _run(tmpfs, now)

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.storage_before_percent is not None and status.storage_before_percent >= 79
    assert status.storage_after_percent == pytest.approx(_df_percent(tmpfs.root), abs=0.5)
    assert status.storage_after_percent < 40
    assert "12.0MiB freed (measured)" in status.message


def test_in_capacity_mode_a_writer_during_the_run_is_seen_by_the_new_listing(tree: Tree, now: datetime) -> None:
    """Capacity mode counts the bytes of the files under the root, so the measurement is a new listing:
    a job writing while the emergency deletes is in it, and the run does not claim a relief it did not get."""
    tree.file("keep/data.bin", size=500)
    tree.file("stale.tmp", age_hours=5, size=300)  # 800 of 1000 bytes: 80 %; relief is below 40 %
    policy = _policy(tree, storage={"volume": {"capacity": 1000}})

    def writer(progress: Progress) -> None:
        tree.file("keep/new.bin", size=200)

    ctx = CleanupContext(policy=policy, storage=VolumeStorage(str(tree.root)), now=now, progress=writer)
    status = run_cleanup(ctx, RunRequest.from_spec(run_spec("Emergency")))

    assert status.files_deleted == 1 and status.bytes_freed == 300
    assert status.storage_after_percent == 70.0  # 500 + 200 bytes, not 800 - 300
    assert status.phase is RunPhase.FAILED
    assert "100B freed (measured)" in status.message


def test_in_capacity_mode_the_remaining_name_of_a_hard_link_still_counts(tree: Tree, now: datetime) -> None:
    data = tree.file("keep/data.bin", size=300)
    os.link(data, tree.root / "stale.tmp")
    tree.age(data, 5)
    tree.file("keep/more.bin", size=200)  # 300 + 300 + 200 of 1000: 80 %
    policy = _policy(tree, storage={"volume": {"capacity": 1000}})

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec("Emergency"), now=now)

    assert status.files_deleted == 1
    assert status.storage_after_percent == 50.0  # keep/data.bin's 300 bytes are still listed
    assert status.phase is RunPhase.FAILED
    assert "more must go" in status.message
