"""Benchmark of the Azure Blob backend (issue 6): Blob Batch deletes vs one Delete Blob request per blob.

Starts its own Azurite (``.local/azurite``, installed by ``make azurite``) on a free port with its
data in a temporary directory, then, in the same run and on identical containers of N zero-byte
blobs (default 20 000, in 20 virtual folders):

* listing: ``AzureBlobStorage.scan()`` of the whole prefix (pages of 5 000), blobs per second;
* batched: a real ``tempsweep`` Orphaned run through the engine (listing, planning, Blob Batch
  deletes of 256 with If-Match, ``--parallelism`` batches in flight, default 2);
* one request per blob: the same listing, then one conditional Delete Blob per blob on a pool of
  the same number of threads (and, for the small size only, also one thread).

A second, small size (default 2 000) is measured the same way; both paths are warmed up first.
For each phase it reports wall time, requests sent, Azurite's own CPU time (node process) and the
client's CPU time, because on Azurite the server's work per deleted blob is large and grows with
the number of blobs in the account (see results-azure.md). ``--one-way-ms`` puts a delay line
(``latency_proxy.py``) between the client and Azurite, so that each request pays an emulated
network round trip as it would against a storage account, instead of loopback's ~0.1 ms.
Not a test: the figures depend on the machine; record them in benchmarks/results-azure.md.

    python benchmarks/bench_azure.py [--blobs 20000] [--small 2000] [--parallelism 2] [--one-way-ms 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))

from tempsweep.engine import CleanupContext, RunRequest, run_cleanup  # noqa: E402
from tempsweep.models import RunType, load_settings, parse_policy, resolve_policy  # noqa: E402
from tempsweep.storage.azure_blob import AzureBlobStorage  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from support.azurite_server import AZURITE_BLOB, AzuriteServer  # noqa: E402
from support.probing import free_port  # noqa: E402


class Azurite:
    """The tests' AzuriteServer (a free port, data in a temporary directory), plus what this benchmark
    needs: node's CPU time, and optionally a delay line in front of it for the measured requests."""

    def __init__(self) -> None:
        if not os.access(AZURITE_BLOB, os.X_OK):
            raise SystemExit(f"{AZURITE_BLOB} not found: run `make azurite` first")
        base = Path(tempfile.mkdtemp(prefix="tempsweep-bench-azurite-"))
        self.server = AzuriteServer(AZURITE_BLOB, base, free_port())
        try:
            self.server.start()
        except RuntimeError as exc:
            self.server.destroy()
            raise SystemExit(str(exc)) from None
        assert self.server.pid is not None
        self.node = psutil.Process(self.server.pid)
        self.proxy: subprocess.Popen[str] | None = None
        self.client_port = self.server.port

    def add_latency(self, one_way_ms: float) -> None:
        """Route the measured requests through the delay line; filling the containers stays direct."""
        self.proxy = subprocess.Popen(
            [sys.executable, str(REPO / "benchmarks" / "latency_proxy.py"), "--target-port", str(self.server.port),
             "--one-way-ms", str(one_way_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proxy.stdout is not None
        self.client_port = int(self.proxy.stdout.readline())

    @property
    def connection_string(self) -> str:
        """Where the measured client connects: through the delay line when there is one."""
        return self.server.connection_string_via(self.client_port)

    @property
    def direct_connection_string(self) -> str:
        return self.server.connection_string

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in [self.node, *self.node.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.terminate()
            self.proxy.wait(timeout=15)
        self.server.destroy()


@dataclass
class Phase:
    name: str
    seconds: float
    requests: int
    server_cpu: float
    client_cpu: float
    blobs: int


def policy_for(container: str, connection_string: str, blobs: int, parallelism: int) -> Any:
    document = {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupPolicy",
        "metadata": {"name": "bench"},
        "spec": {
            "storage": {
                "azureBlob": {
                    "container": container,
                    "prefix": "tmp/",
                    "capacity": "1Ti",
                    "connectionString": connection_string,
                }
            },
            "orphans": {"maxAgeHours": 1},
            "thresholds": {"minFreeSpace": "1"},
            # every blob is meant to go: the blast-radius guard would (rightly) stop a 100 % plan
            "limits": {"maxFilesPerRun": blobs, "batchSize": 1000, "parallelism": parallelism, "maxDeletePercent": 100},
        },
    }
    parsed = parse_policy(document, source="bench")
    return resolve_policy("bench", parsed.spec, load_settings({}))


def fill(azurite: Azurite, container: str, blobs: int) -> Any:
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(azurite.direct_connection_string, container)
    client.create_container()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in pool.map(lambda i: client.upload_blob(f"tmp/d{i % 20:02d}/job_{i}_part.bin", b""), range(blobs)):
            pass
    return client


def storage_for(policy: Any) -> AzureBlobStorage:
    return AzureBlobStorage.from_spec(
        policy.backend.azure_blob, connection_string=policy.backend.azure_connection_string
    )


def listing(azurite: Azurite, policy: Any) -> tuple[float, list[Any]]:
    storage = storage_for(policy)
    started = time.perf_counter()
    entries = list(storage.scan())
    return time.perf_counter() - started, entries


def batched(azurite: Azurite, policy: Any, client: Any, blobs: int) -> Phase:
    storage = storage_for(policy)
    newest = max(blob.last_modified for blob in client.list_blobs(results_per_page=5000))
    ctx = CleanupContext(policy=policy, storage=storage, now=newest + timedelta(hours=2))
    cpu, own, started = azurite.cpu_seconds(), time.process_time(), time.perf_counter()
    status = run_cleanup(ctx, RunRequest(RunType.ORPHANED))
    seconds = time.perf_counter() - started
    if status.files_deleted != blobs:
        raise SystemExit(
            f"batched run deleted {status.files_deleted} of {blobs}: {status.message}; "
            f"first errors: {status.errors[:3]}"
        )
    pages = -(-blobs // storage.page_size)
    return Phase(
        f"tempsweep run, Blob Batch, {policy.rules.parallelism} in flight",
        seconds,
        storage.deleter.batch_requests + pages,
        azurite.cpu_seconds() - cpu,
        time.process_time() - own,
        blobs,
    )


def single(azurite: Azurite, policy: Any, container: str, blobs: int, threads: int) -> Phase:
    from azure.core import MatchConditions
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(azurite.connection_string, container)
    storage = storage_for(policy)
    cpu, own, started = azurite.cpu_seconds(), time.process_time(), time.perf_counter()
    entries = list(storage.scan())

    def delete(entry: Any) -> None:
        client.delete_blob(
            "tmp/" + entry.path,
            etag=entry.token,
            match_condition=MatchConditions.IfNotModified,
            delete_snapshots="include",
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(delete, entries):
            pass
    seconds = time.perf_counter() - started
    if len(entries) != blobs:
        raise SystemExit(f"listed {len(entries)} of {blobs}")
    pages = -(-blobs // storage.page_size)
    return Phase(
        f"list + 1 Delete Blob per blob, {threads} thread{'s' if threads > 1 else ''}",
        seconds,
        blobs + pages,
        azurite.cpu_seconds() - cpu,
        time.process_time() - own,
        blobs,
    )


def measure(azurite: Azurite, blobs: int, parallelism: int, sequential_too: bool) -> list[Phase]:
    phases: list[Phase] = []
    runs = [("batched", parallelism), ("single", parallelism)] + ([("single", 1)] if sequential_too else [])
    for index, (kind, threads) in enumerate(runs):
        container = f"bench-{blobs}-{index}"
        print(f"  filling {container} with {blobs} blobs ...", flush=True)
        started = time.perf_counter()
        client = fill(azurite, container, blobs)
        print(f"  filled in {time.perf_counter() - started:.0f} s", flush=True)
        policy = policy_for(container, azurite.connection_string, blobs, parallelism)
        if index == 0:
            seconds, entries = listing(azurite, policy)
            assert len(entries) == blobs
            phases.append(Phase("listing (scan, pages of 5000)", seconds, -(-blobs // 5000), 0.0, 0.0, blobs))
        phase = (
            batched(azurite, policy, client, blobs)
            if kind == "batched"
            else single(azurite, policy, container, blobs, threads)
        )
        print(f"  {phase.name}: {phase.seconds:.1f} s", flush=True)
        phases.append(phase)
        client.delete_container()
    return phases


def warm_up(azurite: Azurite, parallelism: int) -> None:
    """Both delete paths once on a few blobs, so neither measured phase pays node's JIT warm-up."""
    client = fill(azurite, "warm-up", 600)
    policy = policy_for("warm-up", azurite.connection_string, 600, parallelism)
    entries = list(storage_for(policy).scan())
    storage_for(policy).delete(entries[:300])
    for entry in entries[300:]:
        client.delete_blob("tmp/" + entry.path)
    client.delete_container()


def report(title: str, phases: list[Phase]) -> None:
    listing_phase, batch_phase, *singles = phases
    print(f"\n{title}")
    print(
        f"  listing: {listing_phase.blobs / listing_phase.seconds:,.0f} blobs/s "
        f"({listing_phase.seconds:.2f} s for {listing_phase.blobs})"
    )
    for phase in [batch_phase, *singles]:
        print(
            f"  {phase.name:48s} {phase.seconds:8.1f} s  {phase.requests:6d} requests  "
            f"Azurite CPU {1000 * phase.server_cpu / phase.blobs:6.2f} ms/blob  "
            f"client CPU {1000 * phase.client_cpu / phase.blobs:6.2f} ms/blob"
        )
    for phase in singles:
        print(f"  ratio ({phase.name}) / batched: {phase.seconds / batch_phase.seconds:.2f}x")


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = psutil.virtual_memory().total / 2**30
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    version = (REPO / "tests" / "azurite" / "package.json").read_text().split('"azurite": "')[1].split('"')[0]
    return (
        f"nproc {os.cpu_count()}, {memory:.0f} GiB, {cpu}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, node {node}, Azurite {version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blobs", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=2_000, help="a second, small size (0 to skip)")
    parser.add_argument(
        "--parallelism",
        type=int,
        default=2,
        help="batches / single requests in flight (default 2: Azurite is one node thread; at 20 000 blobs "
        "4 batches in flight queue over 60 s of work there, and node resets the waiting connections)",
    )
    parser.add_argument(
        "--one-way-ms",
        type=float,
        default=0.0,
        help="emulated network delay each way for the measured requests (0: straight to Azurite on loopback)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    network = f"{2 * args.one_way_ms:g} ms emulated round trip" if args.one_way_ms else "loopback"
    print(f"network between client and Azurite: {network}", flush=True)
    print(f"load average at the start: {' '.join(f'{load:.1f}' for load in os.getloadavg())}", flush=True)
    azurite = Azurite()
    if args.one_way_ms:
        azurite.add_latency(args.one_way_ms)
    try:
        warm_up(azurite, args.parallelism)
        sizes = [args.small] if args.small else []
        results = []
        for blobs in [*sizes, args.blobs]:
            print(f"{blobs} blobs:", flush=True)
            results.append((blobs, measure(azurite, blobs, args.parallelism, sequential_too=blobs == args.small)))
    finally:
        azurite.stop()
    for blobs, phases in results:
        report(f"{blobs} blobs", phases)
    print(f"\nload average at the end: {' '.join(f'{load:.1f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
