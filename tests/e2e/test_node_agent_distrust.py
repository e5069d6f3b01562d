"""The node agent distrusts its own copy of a policy: before a timer cleanup deletes anything on the node it
reads the policy again from the API server, and a policy deleted, edited or no longer selecting the node
since the copy was made cleans nothing (fail closed: the copy decides what to look at, never what to delete).

The agent runs in this process against the real control plane, its node's disk a temp directory
(``--host-root``); the copy it acts on is the policy as read before the change, which is what an agent
whose watch lags or failed still holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import make_files, policy, tree
from e2e.operator_helpers import run as run_document
from support.controlplane import ControlPlane
from support.node_agents import NODE_PATH, NODE_ROOT, TEST_LABEL
from support.operator_process import Kube, OperatorProcess
from tempsweep.agent.hostroot import HostRoot
from tempsweep.agent.loop import Agent
from tempsweep.agent.policies import tick_policy
from tempsweep.controller.kube import Kube as KubeClient
from tempsweep.models import load_settings

pytestmark = pytest.mark.e2e

OLD = 100  # hours: older than the emergency orphan age
ALWAYS_EMERGENCY = {
    "thresholds": {"minFreeSpace": 0, "warningPercent": 0.5, "emergencyPercent": 1},  # any real disk is above
    "limits": {"maxDeletePercent": 100, "emergencyMaxDeletePercent": 100},
    "schedule": {"emergencyCheckInterval": "1s"},
}


def emergency_policy(name: str, namespace: str, path: str = NODE_PATH) -> dict[str, Any]:
    body = policy(name, path, **ALWAYS_EMERGENCY)
    volume = body["spec"]["storage"]["volume"]
    volume.update(scope="Node", nodeSelector={TEST_LABEL: namespace, "disk": "fast"})
    volume.pop("capacity")
    return body


@pytest.fixture
def agent_of(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], Agent]]:
    # the client reads KUBECONFIG once, when it is imported
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(control_plane.kubeconfig))
    agents: list[Agent] = []

    def make(node: str) -> Agent:
        settings = load_settings({"TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": NODE_ROOT})
        host = HostRoot(str(tmp_path / "disks" / node))
        agent = Agent(node=node, settings=settings, namespaces=[namespace], host=host, kube=KubeClient())
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.shutdown()


@pytest.fixture
def node_a(register_nodes: Callable[..., dict[str, str]], disk: Callable[[str], Path]) -> str:
    node = register_nodes(a={"disk": "fast"})["a"]
    make_files(disk(node), ["old.tmp"], age_hours=OLD)
    return node


def test_a_fresh_copy_cleans_so_the_cases_below_are_not_vacuous(
    kube: Kube, namespace: str, node_a: str, disk: Callable[[str], Path], agent_of: Callable[[str], Agent]
) -> None:
    kube.apply(emergency_policy("p", namespace))
    tick_policy(agent_of(node_a), kube.get("cleanuppolicy", "p"))
    assert tree(disk(node_a)) == set()


@pytest.mark.parametrize("change", ["deleted", "path-edited", "relabelled-away", "suspended"])
def test_a_stale_copy_of_the_policy_deletes_nothing(
    change: str, kube: Kube, namespace: str, node_a: str, disk: Callable[[str], Path],
    agent_of: Callable[[str], Agent],
) -> None:
    kube.apply(emergency_policy("p", namespace))
    stale = kube.get("cleanuppolicy", "p")
    if change == "deleted":
        kube("delete", "cleanuppolicy", "p")
    elif change == "path-edited":
        kube.apply(emergency_policy("p", namespace, path=f"{NODE_ROOT}/elsewhere"))
    elif change == "relabelled-away":
        kube("label", "node", node_a, "disk=slow", "--overwrite", namespace=None)
    else:
        kube("patch", "cleanuppolicy", "p", "--type=merge", "-p", '{"spec":{"suspend":true}}')

    agent = agent_of(node_a)
    agent.labels = {TEST_LABEL: namespace, "disk": "fast"}  # as read before the change, too
    tick_policy(agent, stale)

    assert tree(disk(node_a)) == {"old.tmp"}


@pytest.mark.parametrize("change", ["relabelled-away", "node-deleted"])
def test_a_run_part_reads_the_nodes_labels_again_before_it_deletes(
    change: str, kube: Kube, namespace: str, node_a: str, disk: Callable[[str], Path],
    agent_of: Callable[[str], Agent],
) -> None:
    """The operator targeted node a; the node changed since, and the agent's labels are as read before."""
    from tempsweep.agent.runs import execute_node_run

    body = emergency_policy("p", namespace)
    body["spec"]["thresholds"] = {"minFreeSpace": "1Ki"}  # no emergency: only the run deletes
    kube.apply(body)
    kube.apply(run_document("r", "p", "Orphaned"))
    kube("patch", "cleanuprun", "r", "--subresource=status", "--type=merge",
         "-p", json.dumps({"status": {"phase": "Running", "targetNodes": [node_a]}}))
    if change == "relabelled-away":
        kube("label", "node", node_a, "disk=slow", "--overwrite", namespace=None)
    else:
        kube("delete", "node", node_a, namespace=None)

    agent = agent_of(node_a)
    agent.labels = {TEST_LABEL: namespace, "disk": "fast"}
    execute_node_run(agent, kube.get("cleanuprun", "r"))

    assert tree(disk(node_a)) == {"old.tmp"}
    part = {entry["node"]: entry for entry in kube.status("cleanuprun", "r").get("nodes") or []}[node_a]
    assert part["phase"] == "Failed" and "nothing was done here" in part["message"], part


def test_a_node_named_twice_in_target_nodes_is_counted_once(
    kube: Kube, operator: OperatorProcess, namespace: str, node_a: str, control_plane: ControlPlane,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """targetNodes is a plain list in the schema: a hand-edited one may name a node twice; its part counts once."""
    from tempsweep.controller.node_api import agent_manager, apply_status

    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(control_plane.kubeconfig))
    body = emergency_policy("p", namespace)
    body["spec"]["thresholds"] = {"minFreeSpace": "1Ki"}
    kube.apply(body)
    kube.apply(run_document("r", "p", "Orphaned"))  # no agent: the operator waits for node a's part
    kube.wait_status("cleanuprun", "r", lambda s: s.get("targetNodes") == [node_a], "the run targeting node a")
    kube("patch", "cleanuprun", "r", "--subresource=status", "--type=merge",
         "-p", json.dumps({"status": {"targetNodes": [node_a, node_a]}}))
    part = {"node": node_a, "phase": "Succeeded", "message": "done", "filesDeleted": 2, "bytesFreed": 200,
            "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:00:01Z"}
    apply_status(KubeClient(), "cleanupruns", {"name": "r", "namespace": namespace}, {"nodes": [part]},
                 manager=agent_manager(node_a))

    result = kube.wait_run("r")
    assert result["filesDeleted"] == 2 and result["bytesFreed"] == 200, result
