"""Benchmark of the operator (issue 4) on a real control plane: run latency, and the cost of sitting idle.

1. Latency: the time from `kubectl apply` of a ChunkCompletion CleanupRun naming 1 000 files to the moment a
   watch sees phase Succeeded, median of 20 (target <= 1 s). The clock starts before kubectl is spawned, so
   the figure includes kubectl itself, the finalizer round trip, the engine and the final status patch.
2. Idle: the operator's CPU (utime + stime from /proc/PID/stat) and memory (VmRSS from /proc/PID/status)
   over a 60 s window with 100 policies (target < 2 % of one core, < 200 MB RSS), with the operator's
   default timer tick (10 s). Twice: age-only policies, and policies whose job status lives in a database
   named by a Secret (as the example policy), which every tick reads.

Self-contained: starts its own control plane (tests/controlplane/cluster.py up, in a private
TEMPSWEEP_CLUSTER_DIR), applies the CRDs, runs `tempsweep operator` as a subprocess, and tears it all down.

    python benchmarks/bench_operator.py [--runs 20] [--files 1000] [--policies 100] [--idle-seconds 60]
                                        [--output benchmarks/results-operator.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "controlplane" / "cluster.py"
BIN_DIR = Path(os.environ.get("TEMPSWEEP_BIN_DIR") or REPO / ".local" / "bin")
API = "tempsweep.io/v1alpha1"
NEVER = "0 0 1 1 *"  # keep the cron cleanups out of the idle window


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.cluster_dir = work / "cluster"
        self.root = work / "volumes"
        self.root.mkdir()
        self.env = {**os.environ, "TEMPSWEEP_CLUSTER_DIR": str(self.cluster_dir)}
        self.kubeconfig = self.cluster_dir / "kubeconfig"
        self.operator: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    # -- the control plane and kubectl -----------------------------------------------------------------
    def cluster(self, command: str) -> None:
        subprocess.run([sys.executable, str(CLUSTER), command], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(BIN_DIR / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stderr}")
        return result

    def apply(self, namespace: str, *documents: dict[str, Any]) -> None:
        body = {"apiVersion": "v1", "kind": "List", "items": list(documents)}
        self.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(body))

    def install_crds(self) -> None:
        crds = [p for p in sorted((REPO / "crds").glob("*.yaml")) if "kind: CustomResourceDefinition" in p.read_text()]
        self.kubectl("apply", *(arg for path in crds for arg in ("-f", str(path))))
        self.kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
        deadline = time.monotonic() + 60
        while self.kubectl("get", "tempsweep", "-A", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the tempsweep resources are not served")
            time.sleep(0.2)

    # -- the operator ------------------------------------------------------------------------------------
    def start_operator(self, namespace: str, *, metrics: bool = True) -> int:
        """Start ``tempsweep operator`` for NAMESPACE (metrics on a free port, or off: ``--metrics-port 0``)."""
        port = free_port()
        self.metrics_port = free_port() if metrics else 0
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMP_STORAGE_CLEANUP_", "TEMPSWEEP_"))}
        env.update(KUBECONFIG=str(self.kubeconfig), TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS=str(self.root))
        log_file = open(self.work / f"operator-{namespace}.log", "wb")  # noqa: SIM115 - closed with the process
        url = f"http://127.0.0.1:{port}/healthz"
        command = [sys.executable, "-m", "tempsweep.cli", "operator", "--namespace", namespace, "--liveness", url,
                   "--metrics-port", str(self.metrics_port)]  # fmt: skip
        self.operator = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return self.operator.pid
            except OSError:
                pass
            if self.operator.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the operator did not start; see {log_file.name}")
            time.sleep(0.1)

    def stop_operator(self) -> None:
        if self.operator is not None and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait()
        self.operator = None

    # -- 1. latency ----------------------------------------------------------------------------------------
    def latency(self, runs: int, files: int) -> dict[str, Any]:
        namespace = "bench-latency"
        self.kubectl("create", "namespace", namespace)
        volume = self.root / "latency"
        volume.mkdir()
        self.apply(namespace, policy("bench", volume))
        self.start_operator(namespace)
        self.wait_policies(namespace, 1)

        watch = subprocess.Popen(
            [str(BIN_DIR / "kubectl"), f"--kubeconfig={self.kubeconfig}", "-n", namespace, "get", "cleanupruns",
             "--watch", "-o", "jsonpath={.metadata.name} {.status.phase}{\"\\n\"}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        seen: queue.Queue[tuple[float, str]] = queue.Queue()

        def read() -> None:
            assert watch.stdout is not None
            for line in watch.stdout:
                seen.put((time.perf_counter(), line.strip()))

        threading.Thread(target=read, daemon=True).start()
        latencies, engine, apply_only = [], [], []
        for index in range(runs):
            names = [f"f{n:04d}.jpg" for n in range(files)]
            chunk_dir = volume / f"chunk{index}"
            chunk_dir.mkdir()
            for name in names:
                (chunk_dir / f"job_1_chunk_{index}_{name}").write_bytes(b"z" * 512)
            document = cleanup_run(f"chunk-{index}", "bench", index, names)
            started = time.perf_counter()
            self.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(document))
            apply_only.append(time.perf_counter() - started)
            deadline = started + 60
            while True:
                stamp, line = seen.get(timeout=max(0.1, deadline - time.perf_counter()))
                if line == f"chunk-{index} Succeeded":
                    break
                if line == f"chunk-{index} Failed":
                    raise RuntimeError(f"run chunk-{index} failed")
            latencies.append(stamp - started)
            got = self.kubectl("-n", namespace, "get", "cleanuprun", f"chunk-{index}", "-o", "json")
            status = json.loads(got.stdout)
            assert status["status"]["filesDeleted"] == files, status["status"]
            assert not any(chunk_dir.iterdir())
            engine.append(status["status"]["durationSeconds"])
            log(f"run {index + 1}/{runs}: {latencies[-1] * 1000:.0f} ms")
        watch.terminate()
        self.stop_operator()
        return {
            "median": statistics.median(latencies),
            "min": min(latencies),
            "max": max(latencies),
            "p90": sorted(latencies)[int(0.9 * (len(latencies) - 1))],
            "engine_median": statistics.median(engine),
            "apply_median": statistics.median(apply_only),
            "runs": runs,
            "files": files,
        }

    # -- 2. idle -----------------------------------------------------------------------------------------
    def idle(self, policies: int, seconds: float, with_database: bool, stats_interval: str) -> dict[str, Any]:
        namespace = f"bench-idle-{'db' if with_database else 'age'}-{stats_interval}"
        self.kubectl("create", "namespace", namespace)
        documents: list[dict[str, Any]] = []
        if with_database:
            database = self.root / f"{namespace}.db"
            now = datetime.now(UTC).isoformat()
            with sqlite3.connect(database) as db:
                db.execute("CREATE TABLE crawl_jobs (id INTEGER PRIMARY KEY, status TEXT, updated_at TEXT)")
                db.execute("INSERT INTO crawl_jobs VALUES (1, 'running', ?)", (now,))
            documents.append(
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "jobs-db"},
                 "stringData": {"url": f"sqlite:///{database}"}}
            )  # fmt: skip
        for index in range(policies):
            volume = self.root / namespace / f"v{index:03d}"
            volume.mkdir(parents=True)
            for n in range(10):
                (volume / f"job_1_chunk_{n}_file.tmp").write_bytes(b"i" * 100)
            extra = {"jobs": {"database": {"urlSecretRef": {"name": "jobs-db", "key": "url"}}}} if with_database else {}
            documents.append(policy(f"p{index:03d}", volume, stats_interval, **extra))
        self.apply(namespace, *documents)
        pid = self.start_operator(namespace)
        self.wait_policies(namespace, policies)
        time.sleep(15)  # let the start-up work (statistics, first emergency checks) settle
        ticks = os.sysconf("SC_CLK_TCK")
        cpu_before, wall_before = cpu_seconds(pid, ticks), time.monotonic()
        samples = []
        while time.monotonic() - wall_before < seconds:
            time.sleep(1)
            samples.append(rss_kib(pid))
        cpu_after, wall_after = cpu_seconds(pid, ticks), time.monotonic()
        peak = peak_kib(pid)
        self.stop_operator()
        return {
            "policies": policies,
            "database": with_database,
            "stats_interval": stats_interval,
            "seconds": wall_after - wall_before,
            "cpu_percent": 100 * (cpu_after - cpu_before) / (wall_after - wall_before),
            "rss_mib_median": statistics.median(samples) / 1024,
            "rss_mib_max": max(samples) / 1024,
            "hwm_mib": peak / 1024,
        }

    def wait_policies(self, namespace: str, count: int) -> None:
        deadline = time.monotonic() + 180
        while True:
            items = json.loads(self.kubectl("-n", namespace, "get", "cleanuppolicies", "-o", "json").stdout)["items"]
            ready = [i for i in items if (i.get("status") or {}).get("observedGeneration")]
            if len(ready) >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(ready)} of {count} policies were validated")
            time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def policy(name: str, path: Path, stats_interval: str = "30s", **spec: Any) -> dict[str, Any]:
    body = {
        "storage": {"volume": {"path": str(path), "capacity": "1Gi"}},
        "thresholds": {"minFreeSpace": "1Mi"},
        "schedule": {"scheduled": NEVER, "orphaned": NEVER, "statsInterval": stats_interval},
        **spec,
    }
    return {"apiVersion": API, "kind": "CleanupPolicy", "metadata": {"name": name}, "spec": body}


def cleanup_run(name: str, policy_name: str, chunk: int, files: list[str]) -> dict[str, Any]:
    spec = {"policyRef": {"name": policy_name}, "type": "ChunkCompletion", "jobId": "1", "chunkId": str(chunk),
            "completedFiles": files}  # fmt: skip
    return {"apiVersion": API, "kind": "CleanupRun", "metadata": {"name": name}, "spec": spec}


def cpu_seconds(pid: int, ticks: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def peak_kib(pid: int) -> int:
    return _status_kib(pid, "VmHWM")


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    memory = _meminfo_gib()
    load = os.getloadavg()
    import kopf

    server = "unknown"
    try:
        versions = subprocess.run([str(BIN_DIR / "kubectl"), "version", "--client", "-o", "json"],
                                  capture_output=True, text=True, timeout=30)  # fmt: skip
        server = json.loads(versions.stdout)["clientVersion"]["gitVersion"]
    except (OSError, ValueError, KeyError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, Kopf {kopf.__version__}, Kubernetes {server} (etcd + kube-apiserver "
        f"on the same machine); load average at the start {load[0]:.1f}"
    )


def _meminfo_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def report(latency: dict[str, Any], idle: list[dict[str, Any]], where: str) -> str:
    verdict = "meets" if latency["median"] <= 1.0 else "misses"
    lines = [
        "# Operator benchmark (issue 4)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python benchmarks/bench_operator.py` on: {where}.",
        "",
        "## Run latency: `kubectl apply` of a ChunkCompletion run to phase Succeeded",
        "",
        f"{latency['runs']} runs, each naming {latency['files']} files of 512 bytes in `completedFiles`; the clock "
        "starts before `kubectl apply` is spawned and stops when a `kubectl get --watch` started beforehand "
        "prints phase Succeeded.",
        "",
        "| median | p90 | min | max | of which `kubectl apply` (median) | engine `durationSeconds` (median) |",
        "|---|---|---|---|---|---|",
        f"| **{latency['median'] * 1000:.0f} ms** | {latency['p90'] * 1000:.0f} ms | {latency['min'] * 1000:.0f} ms "
        f"| {latency['max'] * 1000:.0f} ms | {latency['apply_median'] * 1000:.0f} ms "
        f"| {latency['engine_median'] * 1000:.0f} ms |",
        "",
        f"Target <= 1 s: {verdict} it.",
        "",
        "## Idle: 100 policies, default timer tick (10 s), emergencyCheckInterval 5 m (the default)",
        "",
        "CPU is utime + stime of the operator process (all threads) from /proc/PID/stat over the window, after 15 s "
        "of settling; memory is VmRSS from /proc/PID/status sampled every second (VmHWM is the peak since start).",
        "",
        "| policies | job status | statsInterval | window | CPU (% of one core) | RSS median | RSS max | VmHWM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in idle:
        source = "SQLite via urlSecretRef" if row["database"] else "none (age-only)"
        lines.append(
            f"| {row['policies']} | {source} | {row['stats_interval']} | {row['seconds']:.0f} s "
            f"| **{row['cpu_percent']:.2f} %** "
            f"| {row['rss_mib_median']:.0f} MiB | {row['rss_mib_max']:.0f} MiB | {row['hwm_mib']:.0f} MiB |"
        )
    worst_cpu = max(row["cpu_percent"] for row in idle)
    worst_rss = max(row["rss_mib_max"] for row in idle)
    lines += [
        "",
        f"Targets < 2 % of a core and < 200 MB RSS: worst case {worst_cpu:.2f} % and {worst_rss:.0f} MiB.",
        "",
        "What idle costs, as profiled (py-spy) while tuning: a tick that finds nothing due is decided on the "
        "event loop from the spec and the times in status, without a thread hand-off; statistics are recomputed "
        "every statsInterval but written to status only when a figure changes (or every 5 minutes); a policy's "
        "job source is reused between ticks instead of reading the Secret and checking the table each time. What "
        "remains is mostly the statistics themselves: a scan of each volume and, with a job table, its counting "
        "and lookup queries, 100 times per statsInterval -- hence the lower figure with statsInterval 2m.",
        "",
        "Figures depend on the machine and on what else runs on it (the load average above: other work shared "
        "these two cores); the control plane shares the same cores.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results-operator.md")
    args = parser.parse_args()
    if not (BIN_DIR / "kubectl").exists():
        log(f"no control plane binaries in {BIN_DIR}: run `make controlplane`")
        return 2
    where = machine()
    work = Path(tempfile.mkdtemp(prefix="tempsweep-bench-operator-"))
    bench = Bench(work)
    try:
        log(f"starting a control plane in {bench.cluster_dir}")
        bench.cluster("up")
        bench.install_crds()
        latency = bench.latency(args.runs, args.files)
        log(f"latency median {latency['median'] * 1000:.0f} ms")
        idle = [
            bench.idle(args.policies, args.idle_seconds, with_database=database, stats_interval=interval)
            for database, interval in ((False, "30s"), (True, "30s"), (True, "2m"))
        ]
        for row in idle:
            log(f"idle: {row}")
    finally:
        bench.stop_operator()
        try:
            bench.cluster("down")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    text = report(latency, idle, where)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
