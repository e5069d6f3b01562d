"""Benchmark of the operator under a burst (issue 14): runs/s on one volume, and /healthz latency meanwhile.

N tiny ChunkCompletion CleanupRuns on one volume are applied at once (one `kubectl apply` of a List); the
clock runs from the apply to the moment every run is in a final phase (polled once a second). Meanwhile a
thread asks `/healthz` every 200 ms with a 5 s timeout (a timeout counts as 5 s): its p50, p99 and max are
what a liveness probe would have seen during the burst. Figures only; nothing passes or fails here.

Self-contained like bench_operator.py (its own control plane in a temporary directory, torn down after).

    python benchmarks/bench_burst.py [--runs 300] [--files 5] [--output benchmarks/results-burst.md]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_operator import BIN_DIR, REPO, Bench, cleanup_run, log, machine, policy  # noqa: E402

FINAL = ("Succeeded", "Failed", "Cancelled")
PROBE_TIMEOUT = 5.0


class ProbeSampler(threading.Thread):
    """Asks the liveness endpoint every 200 ms and keeps each answer's latency (a timeout counts in full)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.failures = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=PROBE_TIMEOUT) as response:
                    if response.status != 200:
                        self.failures += 1
            except OSError:
                self.failures += 1
            self.latencies.append(min(time.perf_counter() - started, PROBE_TIMEOUT))
            self.done.wait(0.2)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def burst(bench: Bench, runs: int, files: int) -> dict[str, Any]:
    namespace = "bench-burst"
    bench.kubectl("create", "namespace", namespace)
    volume = bench.root / "burst"
    volume.mkdir()
    bench.apply(namespace, policy("burst", volume))
    bench.start_operator(namespace)
    bench.wait_policies(namespace, 1)
    documents = []
    for index in range(runs):
        names = [f"f{n}.tmp" for n in range(files)]
        for name in names:
            (volume / f"job_1_chunk_{index}_{name}").write_bytes(b"b" * 64)
        documents.append(cleanup_run(f"run-{index:04d}", "burst", index, names))
    url = _liveness_url(bench)
    sampler = ProbeSampler(url)
    sampler.start()
    started = time.perf_counter()
    bench.apply(namespace, *documents)
    finished = 0
    while finished < runs:
        time.sleep(1)
        items = json.loads(bench.kubectl("-n", namespace, "get", "cleanupruns", "-o", "json").stdout)["items"]
        finished = sum(1 for item in items if (item.get("status") or {}).get("phase") in FINAL)
        if time.perf_counter() - started > 1800:
            raise RuntimeError(f"only {finished} of {runs} runs finished in 30 min")
    elapsed = time.perf_counter() - started
    sampler.done.set()
    sampler.join(timeout=PROBE_TIMEOUT + 1)
    bench.stop_operator()
    left = sum(1 for path in volume.iterdir() if path.is_file())
    return {
        "runs": runs,
        "files": files,
        "seconds": elapsed,
        "runs_per_second": runs / elapsed,
        "files_left": left,
        "probes": len(sampler.latencies),
        "probe_failures": sampler.failures,
        "probe_p50": statistics.median(sampler.latencies),
        "probe_p99": percentile(sampler.latencies, 0.99),
        "probe_max": max(sampler.latencies),
    }


def _liveness_url(bench: Bench) -> str:
    """The URL the operator was started with (bench_operator passes it on the command line)."""
    assert bench.operator is not None
    args = bench.operator.args
    assert isinstance(args, list)
    return str(args[args.index("--liveness") + 1])


def report(row: dict[str, Any], where: str) -> str:
    return "\n".join(
        [
            "# Operator burst benchmark (issue 14)",
            "",
            f"Machine: {where}",
            "",
            f"{row['runs']} ChunkCompletion runs of {row['files']} files each on one volume, applied at once.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| burst throughput | {row['runs_per_second']:.2f} runs/s ({row['seconds']:.1f} s for all) |",
            f"| files left on the volume | {row['files_left']} |",
            f"| /healthz during the burst | p50 {row['probe_p50'] * 1000:.0f} ms, "
            f"p99 {row['probe_p99'] * 1000:.0f} ms, max {row['probe_max'] * 1000:.0f} ms "
            f"({row['probes']} requests, {row['probe_failures']} failed) |",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results-burst.md")
    args = parser.parse_args()
    if not (BIN_DIR / "kubectl").exists():
        log(f"no control plane binaries in {BIN_DIR}: run `make controlplane`")
        return 2
    where = machine()
    work = Path(tempfile.mkdtemp(prefix="tempsweep-bench-burst-"))
    bench = Bench(work)
    try:
        log(f"starting a control plane in {bench.cluster_dir}")
        bench.cluster("up")
        bench.install_crds()
        row = burst(bench, args.runs, args.files)
        log(f"burst: {row}")
    finally:
        bench.stop_operator()
        try:
            bench.cluster("down")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    text = report(row, where)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
