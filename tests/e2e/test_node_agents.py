"""Node scope on the real control plane: Nodes registered through the API, one `tempsweep agent` per node.

Each agent has its own directory standing for its node's disk. A policy of scope Node selects some of the
nodes by label; the tests check what a user would: which files are gone on which node, the per-node
entries and the aggregate in the policy's status, and a CleanupRun's per-node results.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import count_files, make_files, make_many, policy, run, tree
from support.controlplane import ControlPlane
from support.node_agents import NODE_PATH, TEST_LABEL, AgentProcess
from support.operator_process import Kube, OperatorProcess, StartOperator
from tempsweep.controller.kube import Kube as KubeClient
from tempsweep.controller.kube import Written
from tempsweep.controller.node_api import agent_manager, apply_status, remove_entries

pytestmark = pytest.mark.e2e

OLD = 100  # hours: older than the policies' orphan age
SLOW = {"limits": {"batchSize": 1, "parallelism": 1, "maxFilesPerRun": 100_000, "maxDeletePercent": 100}}


def node_policy(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A node-scoped policy selecting this test's nodes labelled disk=fast."""
    body = policy(name, NODE_PATH, orphans={"maxAgeHours": 1}, **spec)
    volume = body["spec"]["storage"]["volume"]
    volume.update(scope="Node", nodeSelector={TEST_LABEL: namespace, "disk": "fast"})
    volume.pop("capacity")  # the usage of each node's own filesystem
    return body


def entries(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["node"]: entry for entry in status.get("nodes") or []}


def seed(disk: Callable[[str], Path], node: str) -> None:
    make_files(disk(node), [f"old-{node}.tmp", "shared-name.tmp"], age_hours=OLD)
    make_files(disk(node), [f"new-{node}.tmp"])


@pytest.fixture
def fleet(
    register_nodes: Callable[..., dict[str, str]],
    start_agent: Callable[..., AgentProcess],
    disk: Callable[[str], Path],
) -> dict[str, str]:
    """Nodes a and b (disk=fast, selected) and c (disk=slow, not selected), each with its agent and files."""
    nodes = register_nodes(a={"disk": "fast"}, b={"disk": "fast"}, c={"disk": "slow"})
    for node in nodes.values():
        seed(disk, node)
        start_agent(node)
    return nodes


def test_each_node_is_cleaned_by_its_own_agent_and_the_status_adds_up(
    kube: Kube, operator: OperatorProcess, namespace: str, fleet: dict[str, str], disk: Callable[[str], Path]
) -> None:
    a, b, c = fleet["a"], fleet["b"], fleet["c"]
    kube.apply(node_policy("p", namespace, schedule={"statsInterval": "1s"}))

    status = kube.wait_status(
        "cleanuppolicy", "p", lambda s: (s.get("nodeSummary") or {}).get("reporting") == 2, "both nodes reporting"
    )
    assert set(entries(status)) == {a, b}  # c is not selected: no entry, nothing done there
    for node in (a, b):
        entry = entries(status)[node]
        assert entry["ready"] is True and entry["tempFilesCount"] == 3, entry
        assert entry["orphanedFilesCount"] == 2
    summary = status["nodeSummary"]
    assert summary["selected"] == 2 and summary["notReporting"] == []
    assert summary["tempFilesCount"] == 6 and summary["orphanedFilesCount"] == 4
    assert summary["fullestNode"] in (a, b)
    assert summary["health"] == status["health"] and status["health"] in ("Healthy", "Warning", "Critical")

    # a run on node a only: b keeps its old files, whatever their names
    kube.apply(run("only-a", "p", "Orphaned", nodeName=a))
    result = kube.wait_run("only-a")
    assert result["phase"] == "Succeeded", result
    assert result["targetNodes"] == [a]
    assert tree(disk(a)) == {f"new-{a}.tmp"}
    assert tree(disk(b)) == {f"old-{b}.tmp", "shared-name.tmp", f"new-{b}.tmp"}

    # a run on every selected node: per-node results, the figures summed; c never touched
    kube.apply(run("all", "p", "Orphaned"))
    result = kube.wait_run("all")
    assert result["phase"] == "Succeeded", result
    assert result["targetNodes"] == sorted([a, b])
    per_node = entries(result)
    assert per_node[a]["filesDeleted"] == 0 and per_node[b]["filesDeleted"] == 2
    assert per_node[a]["phase"] == per_node[b]["phase"] == "Succeeded"
    assert result["filesDeleted"] == 2
    assert tree(disk(b)) == {f"new-{b}.tmp"}
    assert tree(disk(c)) == {f"old-{c}.tmp", "shared-name.tmp", f"new-{c}.tmp"}
    assert kube.status("cleanuppolicy", "p")["lastCleanupPhase"] == "Succeeded"

    # the aggregate follows the nodes' figures
    kube.wait_status(
        "cleanuppolicy", "p", lambda s: (s.get("nodeSummary") or {}).get("tempFilesCount") == 2, "the new totals"
    )

    # relabelled: b leaves the policy (its entry goes), c joins it
    kube("label", "node", b, "disk=slow", "--overwrite", namespace=None)
    kube("label", "node", c, "disk=fast", "--overwrite", namespace=None)
    status = kube.wait_status(
        "cleanuppolicy", "p", lambda s: set(entries(s)) == {a, c} and s["nodeSummary"]["reporting"] == 2,
        "b's entry withdrawn and c reporting",
    )
    assert status["nodeSummary"]["selected"] == 2
    kube.apply(run("after-relabel", "p", "Orphaned"))
    result = kube.wait_run("after-relabel")
    assert result["targetNodes"] == sorted([a, c])
    assert tree(disk(c)) == {f"new-{c}.tmp"}


def test_an_agent_killed_mid_run_finishes_its_node_after_restart(
    kube: Kube,
    operator: OperatorProcess,
    namespace: str,
    register_nodes: Callable[..., dict[str, str]],
    start_agent: Callable[..., AgentProcess],
    disk: Callable[[str], Path],
) -> None:
    nodes = register_nodes(a={"disk": "fast"}, b={"disk": "fast"})
    a, b = nodes["a"], nodes["b"]
    total = 16_000
    make_many(disk(a) / "chunk", "job_9_chunk_3_", total)
    make_many(disk(b) / "chunk", "job_9_chunk_3_", 100)
    for node in (a, b):
        make_files(disk(node), ["job_9_chunk_4_keep.tmp", "stray.tmp"], age_hours=OLD)
    agent_a = start_agent(a)
    start_agent(b)
    kube.apply(node_policy("p", namespace, **SLOW))
    kube.wait_status("cleanuppolicy", "p", lambda s: len(s.get("nodes") or []) == 2, "both nodes' entries")
    kube.apply(run("long", "p", "ChunkCompletion", jobId="9", chunkId="3"))

    running = kube.wait_status(
        "cleanuprun",
        "long",
        lambda s: entries(s).get(a, {}).get("filesDeleted", 0) > 0
        and entries(s).get(b, {}).get("phase") == "Succeeded",
        "node a deleting, node b done",
    )
    assert running["phase"] == "Running"  # not complete while a node is still working
    agent_a.kill()
    left = count_files(disk(a) / "chunk")
    assert 0 < left < total, f"the run was not interrupted mid-way ({left} of {total} files left): make it longer"
    interrupted = entries(kube.status("cleanuprun", "long"))[a]
    assert interrupted["phase"] == "Running"
    reported = interrupted["filesDeleted"]

    agent_a.start()  # a new identity: it takes the part over once the dead agent's claim lapses
    result = kube.wait_run("long", timeout=120)
    assert result["phase"] == "Succeeded", result
    part = entries(result)[a]
    assert part["phase"] == "Succeeded"
    assert part["filesDeleted"] == reported + left
    assert f"including {reported} files" in part["message"]
    assert entries(result)[b]["filesDeleted"] == 100
    assert result["filesDeleted"] == reported + left + 100
    for node in (a, b):
        assert count_files(disk(node) / "chunk") == 0
        assert tree(disk(node)) == {"job_9_chunk_4_keep.tmp", "stray.tmp"}
    assert agent_a.starts == 2


def test_a_node_without_an_agent_is_never_reported_as_cleaned(
    kube: Kube,
    start_operator: StartOperator,
    namespace: str,
    register_nodes: Callable[..., dict[str, str]],
    start_agent: Callable[..., AgentProcess],
    disk: Callable[[str], Path],
) -> None:
    nodes = register_nodes(a={"disk": "fast"}, lonely={"disk": "fast"})
    a, lonely = nodes["a"], nodes["lonely"]
    start_operator(namespace, TEMPSWEEP_NODE_RUN_WAIT_SECONDS="4")
    seed(disk, a)
    seed(disk, lonely)
    start_agent(a)  # none on the other node
    kube.apply(node_policy("p", namespace))

    status = kube.wait_status(
        "cleanuppolicy", "p", lambda s: (s.get("nodeSummary") or {}).get("reporting") == 1, "node a reporting"
    )
    assert status["nodeSummary"]["notReporting"] == [lonely]
    assert status["health"] == "Unknown"  # a node nobody can see might be full
    assert lonely in status["nodeSummary"]["message"]

    kube.apply(run("r", "p", "Orphaned"))
    result = kube.wait_run("r", timeout=60)
    assert result["phase"] == "Failed", result
    assert result["reason"] == "NodesNotReached"
    assert lonely in result["message"]
    assert entries(result)[a]["phase"] == "Succeeded"
    assert lonely not in entries(result)
    assert tree(disk(a)) == {f"new-{a}.tmp"}
    assert tree(disk(lonely)) == {f"old-{lonely}.tmp", "shared-name.tmp", f"new-{lonely}.tmp"}


def test_runs_that_cannot_run_on_nodes_fail_at_once(
    kube: Kube, operator: OperatorProcess, namespace: str, operator_root: Path,
    register_nodes: Callable[..., dict[str, str]],
) -> None:
    nodes = register_nodes(a={"disk": "fast"}, c={"disk": "slow"})
    kube.apply(policy("shared", operator_root / "vol"))
    kube.apply(node_policy("p", namespace))
    nobody = node_policy("none", namespace)
    nobody["spec"]["storage"]["volume"]["nodeSelector"]["disk"] = "absent"
    kube.apply(nobody)

    cases = {
        "shared-with-node": run("shared-with-node", "shared", "Orphaned", nodeName=nodes["a"]),
        "not-selected": run("not-selected", "p", "Orphaned", nodeName=nodes["c"]),
        "no-nodes": run("no-nodes", "none", "Orphaned"),
    }
    for case in cases.values():
        kube.apply(case)
    reasons = {name: kube.wait_run(name) for name in cases}

    assert all(result["phase"] == "Failed" for result in reasons.values()), reasons
    complete = {name: next(c for c in r["conditions"] if c["type"] == "Complete") for name, r in reasons.items()}
    assert complete["shared-with-node"]["reason"] == "InvalidSpec"
    assert complete["not-selected"]["reason"] == "InvalidSpec"
    assert complete["no-nodes"]["reason"] == "NoNodesSelected"


def test_the_api_server_refuses_a_node_selector_without_node_scope(kube: Kube, operator_root: Path) -> None:
    body = policy("bad", operator_root / "vol", storage={"volume": {"nodeSelector": {"disk": "fast"}}})

    result = kube.apply(body, check=False)

    assert result.returncode != 0
    assert "nodeSelector only applies to scope Node" in result.stderr


def test_an_agent_for_a_node_that_does_not_exist_is_bad_input(control_plane: ControlPlane, namespace: str) -> None:
    env = {**control_plane.env(), "TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": "/data"}
    command = [sys.executable, "-m", "tempsweep.cli", "agent", "--node-name", f"{namespace}-nowhere", "--liveness", ""]

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"tempsweep: error: --node-name: node '{namespace}-nowhere' not found"


def test_the_operator_removes_only_the_entries_it_names_and_only_as_it_read_them(
    kube: Kube, namespace: str, control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pruning of dead nodes' entries: a JSON patch that tests each entry's place before removing it."""
    # the client reads KUBECONFIG once, when it is imported
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(control_plane.kubeconfig))
    client = KubeClient()
    kube.apply(node_policy("p", namespace))
    meta = {"name": "p", "namespace": namespace}
    for node in ("gone", "alive", "late"):
        apply_status(client, "cleanuppolicies", meta, {"nodes": [{"node": node}]}, manager=agent_manager(node))
    read = kube.status("cleanuppolicy", "p")

    assert remove_entries(client, "cleanuppolicies", meta, read, {"gone"}) is Written.DONE
    assert set(entries(kube.status("cleanuppolicy", "p"))) == {"alive", "late"}
    # with the list as read before, "late" is no longer where it was: refused, nothing removed
    assert remove_entries(client, "cleanuppolicies", meta, read, {"late"}) is Written.REFUSED
    assert set(entries(kube.status("cleanuppolicy", "p"))) == {"alive", "late"}
