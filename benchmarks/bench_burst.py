"""Benchmark of the operator under a burst (issue 14): runs/s on one volume, and what else waits meanwhile.

N tiny ChunkCompletion CleanupRuns on one volume are applied at once (one `kubectl apply` of a List); the
clock runs from the apply to the moment every run is in a final phase (polled once a second). Right after
the burst, a one-file run on another volume and a new policy are applied: the time until that run is
final and until the policy's status is written is what one volume's backlog costs everything else.
Meanwhile a thread asks `/healthz` every 200 ms with a 5 s timeout (a timeout counts as 5 s): its p50,
p99 and max are what a liveness probe would have seen during the burst. Figures only; nothing passes or
fails here.

With `--baseline REF` (default `main`) the same burst is measured first with the operator of that git
ref (`git archive` of its `operator/` put first on PYTHONPATH), then with this tree's, on the same
control plane in the same invocation, and the report gives each figure as a ratio: both numbers come
from one machine under one load. `--baseline ''` measures this tree only.

Self-contained like bench_operator.py (its own control plane in a temporary directory, torn down after).

    python benchmarks/bench_burst.py [--runs 300] [--files 5] [--baseline main] [--output benchmarks/results-burst.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
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


def burst(bench: Bench, runs: int, files: int, label: str) -> dict[str, Any]:
    namespace = f"bench-burst-{label}"
    bench.kubectl("create", "namespace", namespace)
    volume, other, later = bench.root / f"burst-{label}", bench.root / f"other-{label}", bench.root / f"later-{label}"
    for directory in (volume, other, later):
        directory.mkdir()
    (other / "job_1_chunk_1_a.tmp").write_bytes(b"o" * 64)
    bench.apply(namespace, policy("burst", volume), policy("other", other))
    bench.start_operator(namespace)
    bench.wait_policies(namespace, 2)
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
    bench.apply(namespace, cleanup_run("elsewhere", "other", 1, ["a.tmp"]), policy("later", later))
    elsewhere: float | None = None
    validated: float | None = None
    drained: float | None = None
    finished = 0
    while finished < runs or elsewhere is None or validated is None:
        time.sleep(0.5)
        items = json.loads(bench.kubectl("-n", namespace, "get", "cleanupruns", "-o", "json").stdout)["items"]
        phases = {item["metadata"]["name"]: (item.get("status") or {}).get("phase") for item in items}
        finished = sum(1 for name, phase in phases.items() if name.startswith("run-") and phase in FINAL)
        now = time.perf_counter() - started
        if elsewhere is None and phases.get("elsewhere") in FINAL:
            elsewhere = now
        if validated is None:
            later_status = json.loads(
                bench.kubectl("-n", namespace, "get", "cleanuppolicy", "later", "-o", "json").stdout
            )
            validated = now if (later_status.get("status") or {}).get("observedGeneration") else None
        if finished == runs and drained is None:
            drained = now
        if now > 1800:
            raise RuntimeError(f"only {finished} of {runs} runs finished in 30 min")
    assert drained is not None
    elapsed = drained
    sampler.done.set()
    sampler.join(timeout=PROBE_TIMEOUT + 1)
    bench.stop_operator()
    left = sum(1 for path in volume.iterdir() if path.is_file())
    return {
        "label": label,
        "runs": runs,
        "files": files,
        "seconds": elapsed,
        "runs_per_second": runs / elapsed,
        "elsewhere_seconds": elsewhere,
        "validated_seconds": validated,
        "files_left": left,
        "probes": len(sampler.latencies),
        "probe_failures": sampler.failures,
        "probe_p50": statistics.median(sampler.latencies),
        "probe_p99": percentile(sampler.latencies, 0.99),
        "probe_max": max(sampler.latencies),
    }


@contextlib.contextmanager
def operator_source(ref: str | None, work: Path) -> Iterator[str]:
    """PYTHONPATH set to REF's operator/ for the operators started in the block (nothing for this tree)."""
    if not ref:
        yield "this tree"
        return
    target = work / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "operator"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(target / "operator") + (os.pathsep + before if before else "")
    try:
        yield f"{ref} ({commit.stdout.strip()})"
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _liveness_url(bench: Bench) -> str:
    """The URL the operator was started with (bench_operator passes it on the command line)."""
    assert bench.operator is not None
    args = bench.operator.args
    assert isinstance(args, list)
    return str(args[args.index("--liveness") + 1])


def report(rows: list[dict[str, Any]], where: str) -> str:
    lines = [
        "# Operator burst benchmark (issue 14)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python benchmarks/bench_burst.py` on: {where}",
        "",
        f"{rows[-1]['runs']} ChunkCompletion runs of {rows[-1]['files']} files each on one volume, applied at once;"
        " right after them, a one-file run on another volume and a new policy. Each column is one operator, "
        "measured one after the other on the same control plane in the same invocation.",
        "",
        "| figure | " + " | ".join(row["label"] for row in rows) + (" | ratio |" if len(rows) == 2 else " |"),
        "|---|" + "---|" * (len(rows) + (1 if len(rows) == 2 else 0)),
    ]

    def line(name: str, cells: list[str], ratio: str = "") -> None:
        lines.append(f"| {name} | " + " | ".join(cells) + (f" | {ratio} |" if len(rows) == 2 else " |"))

    def ratio(key: str, better_high: bool = False) -> str:
        old, new = rows[0][key], rows[-1][key]
        if not old or not new:
            return ""
        return f"{new / old:.2f}x" if better_high else f"{new / old:.3f}x of the baseline's"

    line("burst throughput (runs/s)", [f"{r['runs_per_second']:.2f} ({r['seconds']:.1f} s)" for r in rows],
         ratio("runs_per_second", better_high=True))  # fmt: skip
    line("run on another volume: final after (s)", [f"{r['elsewhere_seconds']:.1f}" for r in rows],
         ratio("elsewhere_seconds"))  # fmt: skip
    line("new policy: status written after (s)", [f"{r['validated_seconds']:.1f}" for r in rows],
         ratio("validated_seconds"))  # fmt: skip
    line("/healthz p99 during the burst (ms)", [f"{r['probe_p99'] * 1000:.0f}" for r in rows], ratio("probe_p99"))
    line("/healthz p50 / max (ms)", [f"{r['probe_p50'] * 1000:.0f} / {r['probe_max'] * 1000:.0f}" for r in rows])
    line("/healthz requests (failed)", [f"{r['probes']} ({r['probe_failures']})" for r in rows])
    line("files left on the burst's volume", [str(r["files_left"]) for r in rows])
    return "\n".join([*lines, ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--baseline", default="main", help="git ref to measure first ('' for none)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results-burst.md")
    args = parser.parse_args()
    if not (BIN_DIR / "kubectl").exists():
        log(f"no control plane binaries in {BIN_DIR}: run `make controlplane`")
        return 2
    where = machine()
    work = Path(tempfile.mkdtemp(prefix="tempsweep-bench-burst-"))
    bench = Bench(work)
    rows = []
    try:
        log(f"starting a control plane in {bench.cluster_dir}")
        bench.cluster("up")
        bench.install_crds()
        for ref in ([args.baseline] if args.baseline else []) + [None]:
            with operator_source(ref, work) as label:
                row = burst(bench, args.runs, args.files, "baseline" if ref else "current")
                row["label"] = label
            log(f"burst: {row}")
            rows.append(row)
    finally:
        bench.stop_operator()
        try:
            bench.cluster("down")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    text = report(rows, where)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
