"""Policies sharded across operator replicas (`--shards N`): real processes, real Leases, the real API server.

What a platform team would check before running more than one replica: every policy's scheduled cleanup
runs once per slot, not once per replica (the history rows and events say so); a replica killed with
SIGKILL has its shards taken over, never before its Leases lapsed; a replica that comes back gets its
share again; and two replicas of the shipped Deployment's configuration, with the shipped RBAC, execute a
burst of CleanupRuns once each, including a run whose replica is killed in the middle of it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.operator_helpers import count_files, job_table, make_files, make_many, parse_time, policy, run
from support.controlplane import ControlPlane, Kubectl
from support.operator_process import Kube, OperatorProcess, StartOperator, wait_for
from support.service_account import SYSTEM_NAMESPACE, install_base, isolated_env, token_kubeconfig
from tempsweep.controller.shards import quota, shard_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 6  # short Leases so that a takeover takes seconds: a round every 2 s


def start_replicas(
    start_operator: StartOperator, namespace: str, names: list[str], shards: int, lease: int = LEASE_SECONDS
) -> dict[str, OperatorProcess]:
    options = ["--shards", str(shards), "--shard-lease-seconds", str(lease)]
    return {name: start_operator(namespace, options=options, POD_ID=name) for name in names}


def shard_leases(kubectl: Kubectl, namespace: str, shards: int) -> dict[int, dict[str, Any]]:
    """Shard -> the Lease's spec, for the Leases of this shard count in NAMESPACE."""
    listed = json.loads(kubectl("get", "leases", "-o", "json", namespace=namespace).stdout)["items"]
    found = {}
    for lease in listed:
        name = lease["metadata"]["name"]
        prefix = f"tempsweep-shard-{shards}-"
        if name.startswith(prefix):
            found[int(name[len(prefix) :])] = lease["spec"]
    return found


def holders(kubectl: Kubectl, namespace: str, shards: int) -> dict[int, str]:
    return {shard: spec.get("holderIdentity") or "" for shard, spec in shard_leases(kubectl, namespace, shards).items()}


def settled(kubectl: Kubectl, namespace: str, shards: int, live: list[str]) -> bool:
    """Every shard held by a live replica, each holding exactly its fair share."""
    held = holders(kubectl, namespace, shards)
    if sorted(held) != list(range(shards)) or not set(held.values()) <= set(live):
        return False
    counts = Counter(held.values())
    return all(counts[name] == quota(name, live, shards) for name in live)


def wait_settled(kubectl: Kubectl, namespace: str, shards: int, live: list[str]) -> dict[int, str]:
    wait_for(
        lambda: f"{shards} shards shared fairly by {live}: {holders(kubectl, namespace, shards)}",
        lambda: settled(kubectl, namespace, shards, live),
        timeout=90,
    )
    return holders(kubectl, namespace, shards)


def history_rows(database: Path) -> list[tuple[str, str, datetime]]:
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT policy, run_name, start_time FROM cleanup_history").fetchall()
    return [(policy, run_name, _utc(start)) for policy, run_name, start in rows]


def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def test_three_replicas_run_each_policy_slot_exactly_once(
    kube: Kube, kubectl: Kubectl, start_operator: StartOperator, operator_root: Path, tmp_path: Path
) -> None:
    """60 policies with a scheduled cleanup every minute on 3 replicas: one history row and one event per
    policy and slot, every replica working its share, for two slots in a row."""
    shards, count = 6, 60
    # the default Lease (15 s): at each minute boundary 60 cleanups load the two cores, and a 6 s Lease would
    # lapse now and then (the replica then stops the slot's cleanup, failing closed, as it must)
    replicas = start_replicas(start_operator, kube.namespace, ["rep-a", "rep-b", "rep-c"], shards, lease=15)
    wait_settled(kubectl, kube.namespace, shards, list(replicas))
    database = tmp_path / "jobs.db"
    url = job_table(database, {})
    names = [f"p-{index}" for index in range(count)]
    items = []
    for name in names:
        make_files(operator_root / name, [f"stray-{name}.tmp"], age_hours=30)  # an orphan for the first slot
        jobs = {"database": {"url": url, "historyTable": "cleanup_history"}}
        items.append(policy(name, operator_root / name, jobs=jobs, schedule={"scheduled": "* * * * *"}))
    kube.apply({"apiVersion": "v1", "kind": "List", "items": items})
    created = {name: parse_time(kube.get("cleanuppolicy", name)["metadata"]["creationTimestamp"]) for name in names}  # type: ignore[index]
    final_slot = minute(max(created.values())) + timedelta(minutes=2)  # the second boundary after the last one

    def slot_done(name: str) -> bool:
        last = kube.status("cleanuppolicy", name).get("lastScheduledTime")
        return last is not None and parse_time(last) >= final_slot

    for name in names:
        wait_for(f"{name}'s slot of {final_slot:%H:%M}", lambda name=name: slot_done(name), timeout=240)

    last_slot = {name: parse_time(kube.status("cleanuppolicy", name)["lastScheduledTime"]) for name in names}
    rows = [
        (policy_name, start) for policy_name, run_name, start in history_rows(database) if run_name == "timer-Scheduled"
    ]
    by_policy: dict[str, list[datetime]] = defaultdict(list)
    for policy_name, start in rows:
        by_policy[policy_name].append(minute(start))
    for name in names:
        slots = sorted(by_policy[name])
        assert len(slots) == len(set(slots)), f"{name} ran a slot twice: {slots}"  # exactly once per slot
        expected, boundary = [], minute(created[name]) + timedelta(minutes=1)
        while boundary <= last_slot[name]:
            expected.append(boundary)
            boundary += timedelta(minutes=1)
        assert set(expected) <= set(slots), f"{name}: slots {slots}, expected at least {expected}"
        assert all(slot <= last_slot[name] + timedelta(minutes=1) for slot in slots)
        assert not (operator_root / name / f"stray-{name}.tmp").exists()

    def scheduled_events(name: str) -> int:
        return sum(
            int(event.get("count") or 1)
            for event in kube.events(name)
            if event["reason"] == "CleanupFinished" and event["message"].startswith("Scheduled:")
        )

    for name in names:  # one event per slot that ran: posted once, by one replica
        runs = len(by_policy[name])
        wait_for(f"{name}'s {runs} events", lambda name=name, runs=runs: scheduled_events(name) >= runs)
        assert scheduled_events(name) in (runs, runs + 1), name  # +1: a slot that began after the rows were read

    logs = {replica: process.log() for replica, process in replicas.items()}
    worked = {
        replica: {name for name in names if f"{kube.namespace}/{name}: Scheduled:" in log}
        for replica, log in logs.items()
    }
    assert all(worked.values()), {replica: len(mine) for replica, mine in worked.items()}  # every replica did its share
    for name in names:
        assert sum(name in mine for mine in worked.values()) == 1, f"{name} was cleaned by several replicas"
    assert all(process.alive() for process in replicas.values())


def test_a_killed_replicas_shards_are_taken_over_and_come_back_when_it_rejoins(
    kube: Kube, kubectl: Kubectl, start_operator: StartOperator, operator_root: Path
) -> None:
    shards = 6
    names = ["kill-a", "kill-b", "kill-c"]
    replicas = start_replicas(start_operator, kube.namespace, names, shards)
    for index in range(12):
        make_files(operator_root / f"v{index}", ["a.tmp"])
        kube.apply(policy(f"p-{index}", operator_root / f"v{index}", schedule={"statsInterval": "1s"}))
    before = wait_settled(kubectl, kube.namespace, shards, names)
    victim = "kill-a"
    victims = sorted(shard for shard, holder in before.items() if holder == victim)
    assert len(victims) == 2

    replicas[victim].kill()
    last_renewal = {shard: shard_leases(kubectl, kube.namespace, shards)[shard] for shard in victims}
    after = wait_settled(kubectl, kube.namespace, shards, ["kill-b", "kill-c"])

    leases = shard_leases(kubectl, kube.namespace, shards)
    for shard in victims:
        assert after[shard] != victim
        lapsed = parse_time(last_renewal[shard]["renewTime"]) + timedelta(seconds=LEASE_SECONDS)
        taken = parse_time(leases[shard]["acquireTime"])
        assert taken >= lapsed, (
            f"shard {shard} taken over at {taken}, before the dead replica's Lease lapsed ({lapsed})"
        )
    # the dead replica's policies are worked again: their statistics see a file that appears after the takeover
    orphaned = [f"p-{index}" for index in range(12) if shard_of(f"{kube.namespace}/p-{index}", shards) in victims]
    assert orphaned
    for name in orphaned:
        make_files(operator_root / f"v{name[2:]}", ["b.tmp"])
    for name in orphaned:
        kube.wait_status("cleanuppolicy", name, lambda s: s.get("tempFilesCount") == 2, "statistics after takeover")

    replicas[victim].start()  # the same pod name comes back
    back = wait_settled(kubectl, kube.namespace, shards, names)
    assert sorted(shard for shard, holder in back.items() if holder == victim) != []
    mine = [f"p-{index}" for index in range(12) if back[shard_of(f"{kube.namespace}/p-{index}", shards)] == victim]
    assert mine, back

    def worked_by_victim() -> bool:
        probe = replicas[victim].probe() or {}
        timers = probe.get("policies") or {}
        return all((timers.get(f"{kube.namespace}/{name}") or {}).get("lastSuccess") for name in mine)

    wait_for(lambda: f"{victim} working {mine}: {replicas[victim].probe()}", worked_by_victim, timeout=60)
    assert "acquired" in replicas[victim].log().split("start #2")[-1]


def shipped_options() -> list[str]:
    """The shipped Deployment's arguments, without the liveness and metrics ports (the test process picks
    free ones: two replicas on one machine cannot both listen on 8081)."""
    args: list[str] = []
    documents = [
        doc for doc in yaml.safe_load_all((REPO / "manifests" / "base" / "deployment.yaml").read_text()) if doc
    ]
    shipped = documents[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    skip = False
    for arg in shipped:
        if skip:
            skip = False
        elif arg in ("--liveness", "--metrics-port"):
            skip = True
        else:
            args.append(arg)
    return args


def test_two_shipped_replicas_execute_a_run_burst_once_even_when_one_dies_mid_run(
    control_plane: ControlPlane, kubectl: Kubectl, kube: Kube, operator_root: Path, tmp_path: Path
) -> None:
    """manifests/base's RBAC and the Deployment's arguments, two replicas: 24 runs over 4 policies each
    executed and counted once; a long run whose replica is SIGKILLed is finished by the other one, its
    figures continuing from the last progress report."""
    install_base(kubectl)
    options = shipped_options()
    assert "--shards" in options
    kubeconfig = token_kubeconfig(control_plane, kubectl, tmp_path / "operator.kubeconfig")
    suffix = uuid.uuid4().hex[:6]
    replicas = {}
    for name in (f"ship-a-{suffix}", f"ship-b-{suffix}"):
        settings = {
            "TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": str(operator_root),
            "POD_ID": name,
            "POD_NAMESPACE": SYSTEM_NAMESPACE,  # as the Deployment sets it
            "TEMPSWEEP_TICK_SECONDS": "1",
            "TEMPSWEEP_RUN_LEASE_SECONDS": "10",
        }
        replicas[name] = OperatorProcess(
            namespaces=[kube.namespace],
            env=isolated_env(kubeconfig, settings),
            log_path=tmp_path / f"{name}.log",
            options=options,
        )
    shards = int(options[options.index("--shards") + 1])
    try:
        for process in replicas.values():
            process.start()
        wait_settled(kubectl, SYSTEM_NAMESPACE, shards, list(replicas))
        slow = {"limits": {"batchSize": 1, "parallelism": 1, "maxFilesPerRun": 100_000}}
        for index in range(4):
            for chunk in range(6):
                make_files(operator_root / f"v{index}", [f"job_5_chunk_{chunk}_{i}.tmp" for i in range(40)])
            kube.apply(policy(f"p-{index}", operator_root / f"v{index}"))
        total = 40_000
        make_many(operator_root / "long", "job_9_chunk_3_", total)
        kube.apply(policy("long-p", operator_root / "long", **slow))
        for name in [f"p-{index}" for index in range(4)] + ["long-p"]:
            kube.wait_status("cleanuppolicy", name, lambda s: s.get("observedGeneration"), "validation", timeout=60)

        kube.apply(run("long", "long-p", "ChunkCompletion", jobId="9", chunkId="3"))
        running = kube.wait_status(
            "cleanuprun",
            "long",
            lambda s: s.get("phase") == "Running" and (s.get("progress") or {}).get("filesDeleted", 0) > 0,
            "progress while Running",
            timeout=120,
        )
        burst = [(f"r-{index}-{chunk}", f"p-{index}", chunk) for index in range(4) for chunk in range(6)]
        items = [
            run(name, policy_name, "ChunkCompletion", jobId="5", chunkId=str(chunk))
            for name, policy_name, chunk in burst
        ]
        kube.apply({"apiVersion": "v1", "kind": "List", "items": items})  # the burst, in one request
        holder = running["claim"]["holder"]
        replicas[holder].kill()
        left = count_files(operator_root / "long")
        assert 0 < left < total, f"the run was not interrupted mid-way ({left} of {total} left): make it longer"
        reported = kube.status("cleanuprun", "long")["progress"]["filesDeleted"]
        survivor = next(name for name in replicas if name != holder)

        result = kube.wait_run("long", timeout=240)
        assert result["phase"] == "Succeeded", result
        assert result["claim"]["holder"] == survivor  # taken over once the claim and the shard lapsed
        assert result["filesDeleted"] == reported + left  # counts continue from the last report
        assert f"including {reported} files" in result["message"]
        assert count_files(operator_root / "long") == 0

        for run_name, _policy, _chunk in burst:
            status = kube.wait_run(run_name, timeout=240)
            assert status["phase"] == "Succeeded", (run_name, status)
            assert status["filesDeleted"] == 40, (run_name, status)  # one pass did it all: counted once

            def finished(run_name: str = run_name) -> list[dict[str, Any]]:
                return [e for e in kube.events(run_name) if e["reason"] == "CleanupFinished"]

            if status["claim"]["holder"] == survivor:
                wait_for(f"{run_name}'s event", finished)
            # Kopf posts events from a queue after the status is written: a run the killed replica finished
            # just before the SIGKILL may have lost its event, never gained a second one
            assert len(finished()) <= 1 and all(int(e.get("count") or 1) == 1 for e in finished()), finished()
        for index in range(4):
            assert count_files(operator_root / f"v{index}") == 0
        said = "\n".join(
            line.split("] ", 1)[-1] for process in replicas.values() for line in process.log().splitlines()
        )
        assert "Forbidden" not in said and "refused: check the operator's RBAC" not in said
    finally:
        for process in replicas.values():
            process.stop()
