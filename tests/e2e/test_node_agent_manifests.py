"""manifests/node-agent: the DaemonSet as restricted as hostPath allows, and the agent's RBAC proven both ways.

Not excessive: `kubectl auth can-i --as=<the agent's ServiceAccount>` after applying the component.
Sufficient: `tempsweep agent` runs with a TokenRequest token of that ServiceAccount and does its whole job
(its node's entry in a policy's status, its part of a CleanupRun) without one Forbidden.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.operator_helpers import make_files, run, tree
from e2e.test_node_agents import OLD, entries, node_policy
from support.controlplane import ControlPlane, Kubectl
from support.node_agents import AgentProcess
from support.operator_process import Kube, OperatorProcess
from support.probing import wait_for
from support.service_account import OPERATOR_USER, REPO, can_i, install_base, render, token_kubeconfig

pytestmark = pytest.mark.e2e

COMPONENT = REPO / "manifests" / "node-agent"
AGENT_NAMESPACE, AGENT_ACCOUNT = "tempsweep-node-agent", "tempsweep-agent"
AGENT_USER = f"system:serviceaccount:{AGENT_NAMESPACE}:{AGENT_ACCOUNT}"
POLICIES, RUNS = "cleanuppolicies.tempsweep.io", "cleanupruns.tempsweep.io"


@pytest.fixture(scope="module")
def rendered(kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """manifests/base with the component, as an overlay of a user would have it."""
    overlay = tmp_path_factory.mktemp("overlay")
    relative = os.path.relpath(REPO / "manifests", overlay)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [f"{relative}/base"], "components": [f"{relative}/node-agent"]})
    )
    return render(kubectl, overlay)


@pytest.fixture(scope="module")
def installed(kubectl: Kubectl, rendered: list[dict[str, Any]]) -> None:
    """The base and the component for real, except the pods' controllers (no kubelet would run them)."""
    install_base(kubectl)
    kinds = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([doc for doc in rendered if doc["kind"] in kinds]))
    wait_for("the agent's ClusterRoleBinding to take effect", lambda: can_i(kubectl, AGENT_USER, "list", POLICIES))


def daemonset(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = [doc for doc in rendered if doc["kind"] == "DaemonSet"]
    return found


# -- the DaemonSet -------------------------------------------------------------------------------------


def test_the_api_server_accepts_the_daemonset(
    kubectl: Kubectl, installed: None, rendered: list[dict[str, Any]]
) -> None:
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(daemonset(rendered)), check=False)

    assert result.returncode == 0, result.stderr
    assert "daemonset.apps/tempsweep-agent" in result.stdout
    # the namespace warns where the pod departs from restricted: hostPath, root and two capabilities, no more
    warning = result.stderr
    for expected in ('restricted volume type "hostPath"', "DAC_OVERRIDE", "FOWNER", "runAsNonRoot", "runAsUser=0"):
        assert expected in warning, warning
    for never in ("privileged (", "allowPrivilegeEscalation", "seccompProfile", "host namespaces", "hostPort"):
        assert never not in warning, warning


def test_the_agent_pod_is_as_restricted_as_hostpath_allows(rendered: list[dict[str, Any]]) -> None:
    ds = daemonset(rendered)
    assert ds["metadata"]["namespace"] == AGENT_NAMESPACE
    assert ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] == 0  # never two agents on one node
    pod = ds["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == AGENT_ACCOUNT
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context.get("privileged") is not True
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["DAC_OVERRIDE", "FOWNER"]}
    assert container["command"] == ["tempsweep", "agent"]
    env = {item["name"]: item for item in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["TEMP_STORAGE_CLEANUP_CLEANUP_DRY_RUN"]["value"] == "true"  # ship safe


def test_hostpath_mounts_are_exactly_the_allowed_roots(rendered: list[dict[str, Any]]) -> None:
    pod = daemonset(rendered)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    roots = container_env(container)["TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS"].split(":")
    host = {volume["name"]: volume["hostPath"] for volume in pod["volumes"] if "hostPath" in volume}
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}

    assert sorted(path["path"] for path in host.values()) == sorted(roots)
    for name, path in host.items():
        assert mounts[name]["mountPath"] == path["path"]  # policies name node paths: the same path inside
        assert path["type"] == "Directory"  # never created on a node that lacks it
    assert all(v.get("emptyDir") is not None or "hostPath" in v for v in pod["volumes"])


def container_env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}


# -- the agent's RBAC: not excessive ------------------------------------------------------------------

CAN = [
    ("get", POLICIES, None),
    ("list", POLICIES, None),
    ("get", RUNS, None),
    ("list", RUNS, None),
    ("watch", POLICIES, None),
    ("watch", RUNS, None),
    ("patch", POLICIES, "status"),
    ("patch", RUNS, "status"),
]
CANNOT = [
    ("patch", POLICIES, None),
    ("update", POLICIES, None),
    ("delete", POLICIES, None),
    ("create", POLICIES, None),
    ("create", RUNS, None),
    ("delete", RUNS, None),
    ("patch", RUNS, None),
    ("update", RUNS, "status"),
    ("deletecollection", RUNS, None),
    ("get", "secrets", None),
    ("list", "secrets", None),
    ("get", "configmaps", None),
    ("get", "pods", None),
    ("delete", "pods", None),
    ("create", "pods", None),
    ("create", "pods", "exec"),
    ("create", "events", None),
    ("create", "serviceaccounts", "token"),
]
CANNOT_CLUSTER = [
    ("list", "nodes"),
    ("watch", "nodes"),
    ("patch", "nodes"),
    ("update", "nodes"),
    ("delete", "nodes"),
    ("patch", "nodes/status"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
    ("delete", "namespaces"),
    ("*", "*"),
]


@pytest.mark.parametrize(("verb", "resource", "sub"), CAN, ids=[f"{v}-{r}{'-' + s if s else ''}" for v, r, s in CAN])
def test_the_agent_can(kubectl: Kubectl, installed: None, verb: str, resource: str, sub: str | None) -> None:
    assert can_i(kubectl, AGENT_USER, verb, resource, namespace="team-x", subresource=sub)


@pytest.mark.parametrize(
    ("verb", "resource", "sub"), CANNOT, ids=[f"{v}-{r}{'-' + s if s else ''}" for v, r, s in CANNOT]
)
def test_the_agent_cannot(kubectl: Kubectl, installed: None, verb: str, resource: str, sub: str | None) -> None:
    assert not can_i(kubectl, AGENT_USER, verb, resource, namespace="team-x", subresource=sub)
    assert not can_i(kubectl, AGENT_USER, verb, resource, namespace=AGENT_NAMESPACE, subresource=sub)


@pytest.mark.parametrize(("verb", "resource"), CANNOT_CLUSTER, ids=[f"{v}-{r}" for v, r in CANNOT_CLUSTER])
def test_the_agent_cannot_touch_the_cluster(kubectl: Kubectl, installed: None, verb: str, resource: str) -> None:
    assert not can_i(kubectl, AGENT_USER, verb, resource)


def test_the_agent_reads_nodes_one_at_a_time_and_the_operator_lists_them(kubectl: Kubectl, installed: None) -> None:
    assert can_i(kubectl, AGENT_USER, "get", "nodes")
    assert can_i(kubectl, OPERATOR_USER, "list", "nodes")
    for verb in ("get", "watch", "patch", "delete"):
        assert not can_i(kubectl, OPERATOR_USER, verb, "nodes")


# -- the agent's RBAC: sufficient ---------------------------------------------------------------------


def test_the_agent_does_its_whole_job_with_its_own_service_account(
    kubectl: Kubectl,
    control_plane: ControlPlane,
    installed: None,
    kube: Kube,
    operator: OperatorProcess,
    namespace: str,
    register_nodes: Callable[..., dict[str, str]],
    start_agent: Callable[..., AgentProcess],
    disk: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    [node] = register_nodes(a={"disk": "fast"}).values()
    make_files(disk(node), ["old.tmp"], age_hours=OLD)
    make_files(disk(node), ["new.tmp"])
    config = token_kubeconfig(control_plane, kubectl, tmp_path / "agent.kubeconfig",
                              account=(AGENT_NAMESPACE, AGENT_ACCOUNT))
    agent = start_agent(node, KUBECONFIG=str(config))
    kube.apply(node_policy("p", namespace))
    kube.wait_status("cleanuppolicy", "p", lambda s: entries(s).get(node, {}).get("ready"), "the node's entry")

    kube.apply(run("r", "p", "Orphaned"))
    result = kube.wait_run("r")

    assert result["phase"] == "Succeeded", result
    assert entries(result)[node]["filesDeleted"] == 1
    assert tree(disk(node)) == {"new.tmp"}
    assert "Forbidden" not in agent.log() and "403" not in agent.log()
