"""Dry run, keepForDebugging, maxFilesPerRun and batches: the knobs that keep one run bounded and safe."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sweep_helpers import Tree, effective_policy, execute, run_spec
from tempsweep.engine import DeleteResult, FileEntry
from tempsweep.models import RunPhase
from tempsweep.models.status import MAX_WOULD_DELETE
from tempsweep.storage import VolumeStorage

OLD = 1000.0


class RecordingVolume(VolumeStorage):
    """A real volume that remembers the size of every deletion batch it was handed."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def delete(self, entries: Sequence[FileEntry]) -> list[DeleteResult]:
        with self._lock:
            self.batches.append(len(entries))
        return super().delete(entries)


def _old_files(tree: Tree, count: int) -> set[str]:
    return {
        tree.file(f"d{index % 3}/old{index}.tmp", age_hours=OLD, size=7).relative_to(tree.root).as_posix()
        for index in range(count)
    }


def _orphaned(
    tree: Tree,
    now: datetime,
    *,
    storage: VolumeStorage | None = None,
    env: dict[str, str] | None = None,
    run: dict[str, Any] | None = None,
    **overrides: Any,
):
    policy = effective_policy(tree.root, env=env, orphans={"maxAgeHours": 1}, **overrides)
    return execute(
        policy, storage or VolumeStorage(str(tree.root)), run_spec("Orphaned", **(run or {})), now=now
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"run": {"dryRun": True}},
        {"dryRun": True},
        {"keepForDebugging": True},
        {"env": {"TEMP_STORAGE_CLEANUP_CLEANUP_DRY_RUN": "true"}},
        {"env": {"TEMP_STORAGE_CLEANUP_KEEP_TEMP_FILES_FOR_DEBUGGING": "true"}},
    ],
    ids=[
        "run-dry-run",
        "policy-dry-run",
        "policy-keep-for-debugging",
        "setting-dry-run",
        "setting-keep-files",
    ],
)
def test_dry_run_and_keep_for_debugging_delete_nothing_and_report_what_would_go(
    tree: Tree, now: datetime, overrides: dict[str, Any]
) -> None:
    old = _old_files(tree, 25)
    tree.file("young.tmp", age_hours=0)
    storage = RecordingVolume(tree.root)

    status = _orphaned(tree, now, storage=storage, **overrides)

    assert tree.files() == old | {"young.tmp"}
    assert storage.batches == [], "a dry run never reaches the provider's delete"
    assert status.dry_run
    assert status.files_deleted == 0
    assert status.would_delete_count == 25
    assert status.would_free_bytes == 25 * 7
    assert status.would_delete_by_reason == {"Expired": 25}
    assert len(status.would_delete) == MAX_WOULD_DELETE
    assert set(status.would_delete) <= old
    assert status.message.startswith("Orphaned: dry run: would delete 25 files")
    assert status.phase is RunPhase.SUCCEEDED


def test_an_explicit_false_on_the_run_does_not_override_a_dry_run_policy(tree: Tree, now: datetime) -> None:
    old = _old_files(tree, 3)

    status = _orphaned(tree, now, dryRun=True, run={"dryRun": False})

    assert tree.files() == old
    assert status.dry_run


@pytest.mark.parametrize(
    ("limit", "files", "deleted", "reached"),
    [(1, 5, 1, True), (3, 5, 3, True), (5, 5, 5, False), (7, 5, 5, False)],
    ids=["one", "below-count", "exactly-count", "above-count"],
)
def test_max_files_per_run_caps_the_deletions(
    tree: Tree, now: datetime, limit: int, files: int, deleted: int, reached: bool
) -> None:
    _old_files(tree, files)

    status = _orphaned(tree, now, limits={"maxFilesPerRun": limit, "batchSize": 2})

    assert len(tree.files()) == files - deleted
    assert status.files_deleted == deleted
    assert status.limit_reached is reached
    assert ("stopped at maxFilesPerRun" in status.message) is reached


def test_max_files_per_run_caps_a_dry_run_too(tree: Tree, now: datetime) -> None:
    _old_files(tree, 6)

    status = _orphaned(tree, now, dryRun=True, limits={"maxFilesPerRun": 4})

    assert status.would_delete_count == 4
    assert status.limit_reached


def test_max_files_per_run_is_one_budget_for_all_phases_of_a_scheduled_run(tree: Tree, now: datetime) -> None:
    for index in range(10):
        tree.file(f"f{index}.tmp", age_hours=OLD, size=100)
    policy = effective_policy(
        tree.root,
        storage={"volume": {"capacity": 1000}},
        limits={"maxFilesPerRun": 4},
        orphans={"maxAgeHours": 1},
    )

    status = execute(policy, VolumeStorage(str(tree.root)), run_spec("Scheduled"), now=now)

    assert status.files_deleted == 4
    assert len(tree.files()) == 6
    assert status.limit_reached


@pytest.mark.parametrize(
    ("batch_size", "files", "batches"),
    [(1, 4, [1, 1, 1, 1]), (2, 5, [1, 2, 2]), (2, 6, [2, 2, 2]), (3, 6, [3, 3]), (100, 6, [6])],
    ids=["batch-of-one", "remainder", "exact-multiple", "exact-multiple-of-three", "one-partial-batch"],
)
def test_deletions_go_in_batches_of_batch_size(
    tree: Tree, now: datetime, batch_size: int, files: int, batches: list[int]
) -> None:
    _old_files(tree, files)
    storage = RecordingVolume(tree.root)

    status = _orphaned(tree, now, storage=storage, limits={"batchSize": batch_size})

    assert sorted(storage.batches) == batches
    assert tree.files() == set()
    assert status.files_deleted == files


def test_a_batch_stops_at_the_per_run_limit(tree: Tree, now: datetime) -> None:
    _old_files(tree, 9)
    storage = RecordingVolume(tree.root)

    status = _orphaned(tree, now, storage=storage, limits={"batchSize": 4, "maxFilesPerRun": 6})

    assert sorted(storage.batches) == [2, 4]
    assert status.files_deleted == 6
