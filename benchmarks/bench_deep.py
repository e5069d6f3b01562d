"""Benchmark of deep trees (issue 12): scan and cleanup time of a chain 3 000 directories deep vs 1 000 deep.

A chain ``d/d/d/...`` with one old file per level. Linear work means a ratio near 3 (3x the
directories); the old walker, which reopened every directory from the root, grew with the square
(the issue measured 5 s at 1 000 and 59 s at 4 000). Times ``VolumeStorage.scan`` alone and a whole
Orphaned run (scan, deletions, removal of the emptied directories) in this process, best of
``--repeat``, each on a freshly built chain. Not a test: record the figures with the machine in
benchmarks/README.md.

    python benchmarks/bench_deep.py [--depths 1000 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tempsweep.engine import CleanupContext, run_cleanup
from tempsweep.models import CleanupPolicySpec, CleanupRunSpec, load_settings
from tempsweep.models.effective import resolve_policy
from tempsweep.storage import VolumeStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.deep_chains import remove_chain  # noqa: E402  (the tests' remover: rmtree fails this deep)

OLD = time.time() - 48 * 3600


def build_chain(root: Path, depth: int) -> None:
    """``depth`` nested directories with an old file in each, through descriptors (deeper than PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
            file_fd = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.close(file_fd)
            os.utime("f", (OLD, OLD), dir_fd=fd)
    finally:
        os.close(fd)


def age_chain(root: Path) -> None:
    """Make every directory of the chain old too (creating entries made them new)."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        while True:
            try:
                fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
            except FileNotFoundError:
                break
            if len(fds) > 256:
                os.utime(fds[1], (OLD, OLD))
                os.close(fds.pop(1))
        for fd in fds[1:]:
            os.utime(fd, (OLD, OLD))
    finally:
        for fd in fds:
            os.close(fd)


def time_scan(root: Path) -> float:
    storage = VolumeStorage(str(root))
    started = time.perf_counter()
    count = sum(1 for _ in storage.scan())
    elapsed = time.perf_counter() - started
    assert not storage.scan_errors(), storage.scan_errors()[:1]
    return elapsed if count else float("nan")


def time_run(root: Path, depth: int) -> float:
    spec = CleanupPolicySpec.model_validate(
        {
            "storage": {"volume": {"path": str(root)}},
            "orphans": {"maxAgeHours": 1},
            "thresholds": {"minFreeSpace": 0},
            # the chain is meant to be emptied: the blast-radius guard would (rightly) stop a 100 % plan
            "limits": {"maxFilesPerRun": depth + 10, "batchSize": 1000, "maxDeletePercent": 100},
        }
    )
    policy = resolve_policy("bench", spec, load_settings({}))
    run = CleanupRunSpec.model_validate({"policyRef": {"name": "bench"}, "type": "Orphaned"})
    started = time.perf_counter()
    status = run_cleanup(CleanupContext(policy=policy, storage=VolumeStorage(str(root)), now=datetime.now(UTC)), run)
    elapsed = time.perf_counter() - started
    assert status.files_deleted == depth and status.directories_removed == depth, status.message
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs=2, default=[1000, 3000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, Linux {platform.release()}, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tempsweep-bench-deep-") as base:
        for depth in args.depths:
            scans, runs = [], []
            for attempt in range(args.repeat):
                root = Path(base) / f"chain-{depth}-{attempt}"
                root.mkdir()
                build_chain(root, depth)
                age_chain(root)
                scans.append(time_scan(root))
                runs.append(time_run(root, depth))
                remove_chain(root)
                root.rmdir()
            results[depth] = (min(scans), min(runs))
            print(f"depth {depth}: scan {results[depth][0]:.3f} s, Orphaned run {results[depth][1]:.3f} s")
    small, large = args.depths
    scan_ratio = results[large][0] / results[small][0]
    run_ratio = results[large][1] / results[small][1]
    print(
        f"ratio {large}/{small} deep: scan {scan_ratio:.2f}x, run {run_ratio:.2f}x "
        f"(linear: {large / small:.1f}x; quadratic: {(large / small) ** 2:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
