"""The operator as its ServiceAccount: manifests/base RBAC on the test control plane, a token kubeconfig,
and `tempsweep operator` running with it.

    install_base(kubectl)            applies manifests/base except the Deployment (namespace, CRDs,
                                     ServiceAccount, ClusterRoles and binding), waits for the CRDs, and
                                     aggregates the built-in admin/edit/view roles. Idempotent.
    token_kubeconfig(plane, kubectl, path)
                                     writes a kubeconfig that authenticates with a TokenRequest token
                                     of tempsweep-system/tempsweep (server and CA from the admin's).
    isolated_env(kubeconfig, settings)
                                     the environment for `support.operator_process.OperatorProcess`
                                     running with that kubeconfig and nothing inherited.

The control plane has no kube-controller-manager, so nothing fills in aggregated ClusterRoles;
``aggregate_cluster_roles`` does what its clusterrole-aggregation controller would: each built-in
role gets the rules of every ClusterRole its own ``aggregationRule`` selects, read from the server.
Our roles therefore reach admin/edit/view only if they carry the labels the built-in roles select.
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
    aggregate_cluster_roles(kubectl)
    wait_for(
        "the operator's ClusterRoleBinding to take effect",
        lambda: can_i(kubectl, OPERATOR_USER, "list", "cleanuppolicies.tempsweep.io", all_namespaces=True),
    )
    return documents


def _selected(labels: dict[str, str], selectors: list[dict[str, Any]]) -> bool:
    for selector in selectors:
        assert not selector.get("matchExpressions"), f"aggregation by expressions is not emulated: {selector}"
        if all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items()):
            return True
    return False


def aggregate_cluster_roles(kubectl: Kubectl, names: tuple[str, ...] = BUILT_IN_AGGREGATES) -> None:
    """Fill the aggregated ClusterRoles NAMES as kube-controller-manager would (see the module docstring)."""
    for _ in range(len(names) + 1):  # roles feed each other (view -> edit -> admin): repeat until stable
        roles = sorted(
            json.loads(kubectl("get", "clusterroles", "-o", "json").stdout)["items"],
            key=lambda role: role["metadata"]["name"],
        )
        changed = False
        for target in (role for role in roles if role["metadata"]["name"] in names):
            selectors = (target.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
            rules: list[dict[str, Any]] = []
            for role in roles:
                if role is not target and _selected(role["metadata"].get("labels") or {}, selectors):
                    rules.extend(rule for rule in role.get("rules") or [] if rule not in rules)
            if rules != (target.get("rules") or []):
                patch = json.dumps({"rules": rules})
                kubectl("patch", "clusterrole", target["metadata"]["name"], "--type=merge", "-p", patch)
                changed = True
        if not changed:
            return
    raise AssertionError(f"the aggregated roles {names} did not settle")


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
    plane: ControlPlane, kubectl: Kubectl, path: Path, *, duration: str = "1h", namespace: str | None = None
) -> Path:
    """Write PATH: a kubeconfig for the operator's ServiceAccount token (TokenRequest API), mode 0600."""
    token = kubectl("create", "token", SERVICE_ACCOUNT, f"--duration={duration}", namespace=SYSTEM_NAMESPACE)
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
                    "namespace": namespace or SYSTEM_NAMESPACE,
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
