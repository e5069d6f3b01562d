"""Benchmark of the volume engine (issue 2): `tempsweep run` vs `find -delete`, `tempsweep scan` vs `du -sb`.

Builds identical trees of N files (default 200 000 in directories of 1 000), times each tool on
its own fresh copy in the same run, and reports ratios plus tempsweep's peak RSS (from wait4).
Not a test: figures depend on the machine; record them with the machine in benchmarks/README.md.

    python benchmarks/bench_engine.py [--files N] [--per-dir 1000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPSWEEP = str(Path(sys.executable).with_name("tempsweep"))

POLICY = """apiVersion: tempsweep.io/v1alpha1
kind: CleanupPolicy
metadata: {{name: bench}}
spec:
  storage: {{volume: {{path: {root}}}}}
  orphans: {{maxAgeHours: 0.0001}}
  limits: {{maxFilesPerRun: {limit}, batchSize: 1000, parallelism: {parallelism}, maxDeletePercent: 100}}
"""
# maxDeletePercent 100: every file is eligible here by design, which the blast-radius guard would refuse
RUN = """apiVersion: tempsweep.io/v1alpha1
kind: CleanupRun
metadata: {name: bench-orphaned}
spec: {policyRef: {name: bench}, type: Orphaned}
"""


def build_tree(root: Path, files: int, per_dir: int) -> None:
    root.mkdir(parents=True)
    payload = b"x" * 64
    for index in range(files):
        if index % per_dir == 0:
            directory = root / f"d{index // per_dir:05d}"
            directory.mkdir()
        fd = os.open(directory / f"job_{index % 5000}_chunk_{index % 7}_f{index}.tmp", os.O_WRONLY | os.O_CREAT,
                     0o644)
        os.write(fd, payload)
        os.close(fd)


def timed(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0,):
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
    return elapsed, usage.ru_maxrss


def remaining(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {cpu}, {platform.system()} {platform.release()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--per-dir", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--workdir", default=None, help="where to build trees (default: a temp dir)")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="tempsweep-bench-", dir=args.workdir))
    print(f"machine: {machine()}")
    print(f"tree: {args.files} files in directories of {args.per_dir}, under {base}")
    try:
        policy = base / "policy.yaml"
        run = base / "run.yaml"
        run.write_text(RUN)
        results: dict[str, float] = {}
        rss: dict[str, int] = {}

        tree = base / "scan"
        build_tree(tree, args.files, args.per_dir)
        policy.write_text(POLICY.format(root=tree, limit=args.files * 2, parallelism=args.parallelism))
        timed(["du", "-sb", str(tree)])  # warm the cache the same way for both
        results["du"], _ = timed(["du", "-sb", str(tree)])
        results["scan"], rss["scan"] = timed([TEMPSWEEP, "scan", "--policy", str(policy)])
        shutil.rmtree(tree)

        for tool in ("find", "tempsweep"):
            tree = base / tool
            build_tree(tree, args.files, args.per_dir)
            time.sleep(1.0)  # every file older than maxAgeHours (0.36 s)
            policy.write_text(POLICY.format(root=tree, limit=args.files * 2, parallelism=args.parallelism))
            if tool == "find":
                results["find"], _ = timed(["find", str(tree), "-type", "f", "-delete"])
            else:
                results["run"], rss["run"] = timed([TEMPSWEEP, "run", "-f", str(run), "--policy", str(policy)])
            left = remaining(tree)
            if left:
                raise SystemExit(f"{tool} left {left} files behind")
            shutil.rmtree(tree)

        print(f"delete: tempsweep run {results['run']:.2f}s, find -delete {results['find']:.2f}s, "
              f"ratio {results['run'] / results['find']:.2f}x (target <= 0.6x)")
        print(f"scan:   tempsweep scan {results['scan']:.2f}s, du -sb {results['du']:.2f}s, "
              f"ratio {results['scan'] / results['du']:.2f}x (target <= 1.0x)")
        print(f"peak RSS: run {rss['run'] / 1024:.0f} MiB, scan {rss['scan'] / 1024:.0f} MiB")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
