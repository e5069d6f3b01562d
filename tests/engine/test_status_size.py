"""A run's status stays small whatever the file names: paths in it are shortened.

File names may hold any byte but '/' and NUL, and JSON writes a control character (or an undecodable
byte) as a six-character escape, so twenty 15 000-character paths made of such characters filled about
two megabytes of ``wouldDelete``: more than etcd stores (1.5 MiB), so the operator's status patch would
fail, which stops a Kopf timer for good (kopf #642). Anyone able to write to the volume could do it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from sweep_helpers import JOBS, Tree, effective_policy, execute, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.models.status import MAX_SHOWN_PATH
from tempsweep.storage import VolumeStorage

SEGMENT = "\x01" * 250


def _deep_old_files(tree: Tree, depth: int, names: list[str]) -> str:
    """Files under a chain of ``depth`` directories named with control characters; the chain's path."""
    fd = os.open(tree.root, os.O_RDONLY | os.O_DIRECTORY)
    stamp = tree.now.timestamp() - 1000 * 3600
    try:
        for level in range(depth):
            name = f"{SEGMENT}{level:03}"
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        for name in names:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY, dir_fd=fd))
            os.utime(name, (stamp, stamp), dir_fd=fd)
    finally:
        os.close(fd)
    return "/".join(f"{SEGMENT}{level:03}" for level in range(depth))


def test_would_delete_and_near_miss_examples_are_shortened(tree: Tree, now: datetime) -> None:
    names = [f"old{index:02}.tmp" for index in range(20)] + [f"job_4.{index}_x" for index in range(5)]
    chain = _deep_old_files(tree, 58, names)
    policy = effective_policy(tree.root, jobs=JOBS)

    storage = VolumeStorage(str(tree.root))
    status = execute(policy, storage, run_spec("Orphaned", dryRun=True), jobs=MemoryJobSource([]), now=now)

    assert status.would_delete_count == 20 and status.near_miss_files == 5
    shown = status.would_delete + status.near_miss_examples
    assert all(len(path) <= MAX_SHOWN_PATH for path in shown)
    assert all(path.startswith(chain[:100]) for path in shown), "a shortened path still shows where it is"
    assert {path.rpartition("/")[2] for path in status.would_delete} == set(names[:20]), "and which file it is"
    assert len(json.dumps(status.model_dump(mode="json", by_alias=True))) < 256 * 1024
