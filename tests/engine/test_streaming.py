"""The scan streams: nothing builds a list of the whole tree before the first file is decided."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator
from datetime import datetime

from sweep_helpers import JOBS, Tree, effective_policy, execute, run_spec
from tempsweep.engine import FileEntry
from tempsweep.engine.inventory import LOOKUP_BATCH, Inventory, JobResolver
from tempsweep.jobs import MemoryJobSource
from tempsweep.storage import VolumeStorage


def test_the_volume_scan_is_a_generator_that_lists_directories_only_when_reached(tree: Tree) -> None:
    tree.file("top.tmp")
    tree.file("a/first.tmp")
    tree.file("b/first.tmp")

    scan = VolumeStorage(str(tree.root)).scan()
    assert inspect.isgenerator(scan)
    first = next(scan)
    # the subdirectories have not been listed yet: what changes in them now is what the scan sees
    tree.file("a/added-later.tmp")
    tree.file("b/added-later.tmp")
    rest = [entry.path for entry in scan]

    assert first.path == "top.tmp"
    assert "a/added-later.tmp" in rest
    assert "b/added-later.tmp" in rest


def _endless(counter: itertools.count[int], *, job_ids: bool) -> Iterator[FileEntry]:
    for number in counter:
        name = f"job_{number}_x.tmp" if job_ids else f"file{number}.tmp"
        yield FileEntry(name, 1, 0.0, number)


def test_the_inventory_decides_files_without_a_job_as_they_stream_past(tree: Tree) -> None:
    counter = itertools.count()
    policy = effective_policy(tree.root, jobs=JOBS)
    inventory = Inventory(_endless(counter, job_ids=False), policy, JobResolver(policy, MemoryJobSource()))

    first = list(itertools.islice(inventory, 5))

    assert [item.entry.path for item in first] == [f"file{number}.tmp" for number in range(5)]
    assert next(counter) <= 6, "an endless scan must not be read ahead"


def test_the_inventory_holds_back_at_most_one_lookup_batch_of_new_jobs(tree: Tree) -> None:
    counter = itertools.count()
    source = MemoryJobSource()
    policy = effective_policy(tree.root, jobs=JOBS)
    inventory = Inventory(_endless(counter, job_ids=True), policy, JobResolver(policy, source))

    first = list(itertools.islice(inventory, 5))

    assert [item.job_id for item in first] == ["0", "1", "2", "3", "4"]
    assert next(counter) <= LOOKUP_BATCH + 1
    assert source.lookups == [LOOKUP_BATCH]


def test_a_large_tree_is_deleted_without_a_whole_tree_list(tree: Tree, now: datetime) -> None:
    """The applier pulls decisions from the scan: deletions start before the scan has finished."""
    for directory in range(4):
        for index in range(50):
            tree.file(f"d{directory}/f{index}.tmp", age_hours=100)
    storage = VolumeStorage(str(tree.root))
    seen_when_first_deleted: list[int] = []
    scanned = 0
    original_scan, original_delete = storage.scan, storage.delete

    def counting_scan() -> Iterator[FileEntry]:
        nonlocal scanned
        for entry in original_scan():
            scanned += 1
            yield entry

    def noting_delete(entries):  # type: ignore[no-untyped-def]
        if not seen_when_first_deleted:
            seen_when_first_deleted.append(scanned)
        return original_delete(entries)

    storage.scan, storage.delete = counting_scan, noting_delete  # type: ignore[method-assign]

    status = execute(
        effective_policy(tree.root, limits={"batchSize": 10, "parallelism": 1}),
        storage,
        run_spec("Orphaned"),
        now=now,
    )

    assert status.files_deleted == 200
    assert seen_when_first_deleted and seen_when_first_deleted[0] < 200
