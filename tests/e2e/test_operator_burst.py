"""A burst of 300 CleanupRuns on one volume starves nothing else (issue 14, finding 3); a full queue drops nothing.

The runs wait in their volume's queue (Pending, with their place), never in Kopf's worker threads: a run
on another volume and a policy created after the burst are done while the burst is still draining, and
the liveness endpoint answers throughout. Every run of the burst is executed exactly once, with its own
counts. Ordering only: what is asserted is that the others finished *before* the burst did.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import make_files, make_many, policy, run, tree
from support.operator_process import Kube, OperatorProcess, StartOperator, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

BURST = 300
FINAL = ("Succeeded", "Failed", "Cancelled")


def as_list(documents: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": documents})


def runs_by_name(kube: Kube) -> dict[str, dict[str, Any]]:
    items = json.loads(kube("get", "cleanupruns", "-o", "json").stdout)["items"]
    return {item["metadata"]["name"]: item for item in items}


def unfinished(runs: dict[str, dict[str, Any]], prefix: str = "burst-") -> int:
    phases = [(item.get("status") or {}).get("phase") for name, item in runs.items() if name.startswith(prefix)]
    return sum(1 for phase in phases if phase not in FINAL)


def test_a_burst_on_one_volume_holds_up_no_other_volume_no_policy_and_no_probe(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    busy, quiet, later = operator_root / "busy", operator_root / "quiet", operator_root / "later"
    for index in range(BURST):
        make_files(busy, [f"job_1_chunk_{index}_a.tmp", f"job_1_chunk_{index}_b.tmp"])
    make_files(busy, ["job_1_chunk_9999_keep.tmp"])
    make_files(quiet, ["job_2_chunk_1_a.tmp", "job_2_chunk_1_b.tmp", "job_2_chunk_2_keep.tmp"])
    later.mkdir()
    kube.apply(policy("busy", busy))
    kube.apply(policy("quiet", quiet))
    for name in ("busy", "quiet"):
        kube.wait_status("cleanuppolicy", name, lambda s: s.get("observedGeneration"), "validation")

    burst = [
        run(f"burst-{index:03d}", "busy", "ChunkCompletion", jobId="1", chunkId=str(index)) for index in range(BURST)
    ]
    kube.apply(as_list(burst))
    # then, while the burst is queued: a run on another volume, and a new policy
    kube.apply(run("other-volume", "quiet", "ChunkCompletion", jobId="2", chunkId="1"))
    kube.apply(policy("new-policy", later))

    probes: list[bool] = []
    seen_waiting: list[dict[str, Any]] = []

    def others_done() -> bool:
        probes.append(operator.healthy())
        runs = runs_by_name(kube)
        seen_waiting.extend(
            item["status"]
            for name, item in runs.items()
            if name.startswith("burst-") and (item.get("status") or {}).get("queuePosition", 0) > 1
        )
        other = (runs.get("other-volume") or {}).get("status") or {}
        validated = kube.status("cleanuppolicy", "new-policy").get("observedGeneration")
        if other.get("phase") in FINAL and validated:
            state["left"] = unfinished(runs)
            return True
        return False

    state: dict[str, int] = {}
    wait_for("the other volume's run and the new policy", others_done, timeout=240, interval=0.5)

    assert state["left"] > 0, "the burst had drained before the other volume's run was done"
    assert kube.status("cleanuprun", "other-volume")["phase"] == "Succeeded"
    assert kube.status("cleanuprun", "other-volume")["filesDeleted"] == 2
    assert kube.condition("cleanuppolicy", "new-policy", "Ready")["status"] == "True"
    assert seen_waiting, "no run of the burst was seen waiting in the queue"
    example = seen_waiting[0]
    assert example["phase"] == "Pending"
    assert example["message"].startswith(f"waiting for volume {busy}: {example['queuePosition']} of ")

    def drained() -> bool:
        probes.append(operator.healthy())
        return unfinished(runs_by_name(kube)) == 0

    wait_for("the burst to drain", drained, timeout=600, interval=1.0)
    assert all(probes), f"/healthz failed {probes.count(False)} of {len(probes)} times during the burst"

    runs = runs_by_name(kube)
    statuses = [runs[f"burst-{index:03d}"]["status"] for index in range(BURST)]
    assert Counter(status["phase"] for status in statuses) == {"Succeeded": BURST}
    assert all(status["filesDeleted"] == 2 and status["queuePosition"] == 0 for status in statuses)
    assert all(status["claim"]["holder"] == statuses[0]["claim"]["holder"] for status in statuses)
    finished = Counter(
        event["involvedObject"]["name"] for event in kube.events() if event["reason"] == "CleanupFinished"
    )
    assert all(finished[f"burst-{index:03d}"] == 1 for index in range(BURST)), "a run was executed twice"
    assert tree(busy) == {"job_1_chunk_9999_keep.tmp"}
    assert tree(quiet) == {"job_2_chunk_2_keep.tmp"}


def test_a_run_that_finds_its_queue_full_stays_pending_and_runs_later(
    kube: Kube, start_operator: StartOperator, namespace: str, operator_root: Path
) -> None:
    operator = start_operator(namespace, TEMPSWEEP_RUN_QUEUE_LIMIT="1")
    volume = operator_root / "vol"
    make_many(volume / "long", "job_5_chunk_1_", 20_000)
    make_files(volume, ["job_5_chunk_2_a.tmp", "job_5_chunk_3_a.tmp"])
    kube.apply(policy("p", volume, limits={"batchSize": 1, "parallelism": 1, "maxFilesPerRun": 100_000}))
    kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration"), "validation")
    kube.apply(run("long", "p", "ChunkCompletion", jobId="5", chunkId="1"))
    kube.wait_status("cleanuprun", "long", lambda s: s.get("phase") == "Running", "the long run to start")

    kube.apply(run("queued", "p", "ChunkCompletion", jobId="5", chunkId="2"))
    kube.wait_status("cleanuprun", "queued", lambda s: s.get("queuePosition") == 1, "its place in the queue")
    kube.apply(run("one-too-many", "p", "ChunkCompletion", jobId="5", chunkId="3"))
    full = kube.wait_status("cleanuprun", "one-too-many", lambda s: "is full" in (s.get("message") or ""), "full")

    assert full["phase"] == "Pending"
    assert full["message"].startswith(f"the queue of volume {volume} is full (1 runs waiting): not queued yet")
    results = {name: kube.wait_run(name, timeout=240) for name in ("long", "queued", "one-too-many")}
    assert {name: status["phase"] for name, status in results.items()} == dict.fromkeys(results, "Succeeded")
    assert results["one-too-many"]["filesDeleted"] == 1 and results["queued"]["filesDeleted"] == 1
    finished = [e for e in kube.events("one-too-many") if e["reason"] == "CleanupFinished"]
    assert len(finished) == 1, "retried by Kopf, executed once"
    assert tree(volume) == set()
    assert operator.healthy()
