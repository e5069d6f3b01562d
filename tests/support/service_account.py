"""The operator as its ServiceAccount: manifests/base RBAC on the test control plane, a token kubeconfig,
and `tempsweep operator` running with it.

    install_base(kubectl)            applies manifests/base except the Deployment (namespace, CRDs,
                                     ServiceAccount, ClusterRoles and binding), waits for the CRDs, and
                                     for the built-in admin/edit/view roles to aggregate ours. Idempotent.
    token_kubeconfig(plane, kubectl, path)
                                     writes a kubeconfig that authenticates with a TokenRequest token
                                     of tempsweep-system/tempsweep (server and CA from the admin's).
    isolated_env(kubeconfig, settings)
                                     the environment for `support.operator_process.OperatorProcess`
                                     running with that kubeconfig and nothing inherited.

kube-controller-manager's clusterrole-aggregation controller fills in the aggregated ClusterRoles: each
built-in role gets the rules of every ClusterRole its ``aggregationRule`` selects. ``wait_for_aggregation``
waits until it has done so for ours, so they reach admin/edit/view only if they carry the labels the
built-in roles select.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from support.controlplane import ControlPlane, Kubectl
from support.probing import wait_for

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "manifests" / "base"
SYSTEM_NAMESPACE = "tempsweep-system"
SERVICE_ACCOUNT = "tempsweep"
OPERATOR_USER = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{SERVICE_ACCOUNT}"
CRD_NAMES = ("cleanuppolicies.tempsweep.io", "cleanupruns.tempsweep.io")
BUILT_IN_AGGREGATES = ("view", "edit", "admin")  # in this order: view feeds edit, edit feeds admin



def render(kubectl: Kubectl, directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIRECTORY` as a list of objects."""
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(directory)).stdout) if doc]


def install_base(kubectl: Kubectl) -> list[dict[str, Any]]:
    """Apply manifests/base for real, without the Deployment (no kubelet would run it); returns what was applied."""
    documents = [doc for doc in render(kubectl, BASE) if doc["kind"] != "Deployment"]
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    kubectl("wait", "--for=condition=established", "--timeout=60s", *(f"crd/{name}" for name in CRD_NAMES))
    wait_for_aggregation(kubectl)
    wait_for(
        "the operator's ClusterRoleBinding to take effect",
        lambda: can_i(kubectl, OPERATOR_USER, "list", "cleanuppolicies.tempsweep.io", all_namespaces=True),
    )
    return documents


def _selected(labels: dict[str, str], selectors: list[dict[str, Any]]) -> bool:
    for selector in selectors:
        assert not selector.get("matchExpressions"), f"aggregation by expressions is not checked: {selector}"
        if all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items()):
            return True
    return False


def wait_for_aggregation(kubectl: Kubectl, names: tuple[str, ...] = BUILT_IN_AGGREGATES) -> None:
    """Wait until each built-in role NAMES holds every rule of the ClusterRoles its aggregationRule selects."""

    def aggregated() -> bool:
        roles = json.loads(kubectl("get", "clusterroles", "-o", "json").stdout)["items"]
        for target in (role for role in roles if role["metadata"]["name"] in names):
            selectors = (target.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
            have = target.get("rules") or []
            for role in roles:
                selected = role is not target and _selected(role["metadata"].get("labels") or {}, selectors)
                if selected and any(rule not in have for rule in role.get("rules") or []):
                    return False
        return True

    wait_for(f"kube-controller-manager to aggregate our roles into {', '.join(names)}", aggregated, timeout=60)


def can_i(
    kubectl: Kubectl,
    user: str,
    verb: str,
    resource: str,
    *,
    namespace: str | None = None,
    subresource: str | None = None,
    all_namespaces: bool = False,
) -> bool:
    """`kubectl auth can-i VERB RESOURCE --as=USER`: True for yes, False for no (exit 1)."""
    args = ["auth", "can-i", verb, resource, f"--as={user}"]
    if subresource:
        args.append(f"--subresource={subresource}")
    if all_namespaces:
        args.append("--all-namespaces")
    result = kubectl(*args, namespace=namespace, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {verb} {resource}: {result.stdout}{result.stderr}"
    return answer == "yes"


def token_kubeconfig(
    plane: ControlPlane,
    kubectl: Kubectl,
    path: Path,
    *,
    duration: str = "1h",
    namespace: str | None = None,
    account: tuple[str, str] = (SYSTEM_NAMESPACE, SERVICE_ACCOUNT),
) -> Path:
    """Write PATH: a kubeconfig for a ServiceAccount's token (TokenRequest API), mode 0600; by default the
    operator's, or ACCOUNT = (namespace, name)."""
    token = kubectl("create", "token", account[1], f"--duration={duration}", namespace=account[0])
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c["cluster"] for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "tempsweep-test", "cluster": cluster}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token.stdout.strip()}}],
        "contexts": [
            {
                "name": SERVICE_ACCOUNT,
                "context": {
                    "cluster": "tempsweep-test",
                    "user": SERVICE_ACCOUNT,
                    "namespace": namespace or account[0],
                },
            }
        ],
        "current-context": SERVICE_ACCOUNT,
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def isolated_env(kubeconfig: Path, settings: dict[str, str]) -> dict[str, str]:
    """The operator's environment built from scratch for the settings that matter.

    No TEMP_STORAGE_CLEANUP_*, TEMPSWEEP_* or in-cluster (KUBERNETES_*) variables leak in from the test run.
    """
    keep = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEMP_STORAGE_CLEANUP_", "TEMPSWEEP_", "KUBERNETES_"))
    }
    return {**keep, "KUBECONFIG": str(kubeconfig), **settings}
