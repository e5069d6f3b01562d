"""`helm install` of charts/tempsweep into the real control plane, then the checks the kustomize install gets.

Objects created, CRDs Established, the Deployment admitted under the restricted Pod Security Standard (helm
prints the API server's PodSecurity warnings; a control proves it does), RBAC sufficient (`tempsweep
operator` with a token of the chart's ServiceAccount does a real cleanup without one Forbidden) and bounded
(`kubectl auth can-i` as that ServiceAccount: the same lists as tests/e2e/test_rbac.py), an upgrade, a
refused upgrade that leaves the release as it was, and `helm uninstall`, which leaves nothing stuck and keeps
the CRDs and so the users' policies.

The release gets its own name and namespace (its ClusterRoles are named after it), so it never collides with
manifests/base as other tests apply it; the CRDs it shares with them, applied first by `kubectl apply` as
a kustomize install does, are adopted (--take-ownership --force-conflicts, as README says for that move).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.test_node_agent_manifests import CAN as AGENT_CAN
from e2e.test_node_agent_manifests import CANNOT as AGENT_CANNOT
from e2e.test_node_agent_manifests import CANNOT_CLUSTER as AGENT_CANNOT_CLUSTER
from e2e.test_rbac import CAN, CANNOT, CANNOT_CLUSTER
from support.components import missing_component
from support.controlplane import ControlPlane, Kubectl
from support.helm import CHART, REPO, helm, values_args
from support.operator_process import OperatorProcess
from support.probing import wait_for
from support.security_world import OLD_HOURS, files, make_files, policy, run
from support.service_account import can_i, isolated_env, token_kubeconfig

pytestmark = pytest.mark.e2e

PSA_WARNING = "would violate PodSecurity"
POLICIES = "cleanuppolicies.tempsweep.io"
CRD_NAMES = (
    "cleanuppolicies.tempsweep.io",
    "cleanupruns.tempsweep.io",
    "clusterkopfpeerings.kopf.dev",
    "kopfpeerings.kopf.dev",
)
MONITORING_CRDS = REPO / ".local" / "share" / "monitoring-crds"
RESTRICTED = [f"pod-security.kubernetes.io/{mode}=restricted" for mode in ("enforce", "audit", "warn")]


@dataclass
class Release:
    """One installed release: its names, helm's answer to the install, and helm bound to its namespace."""

    name: str
    namespace: str
    fullname: str
    install: subprocess.CompletedProcess[str]
    env: dict[str, str]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    def manifest(self) -> list[dict[str, Any]]:
        text = self.helm("get", "manifest", self.name).stdout
        return [doc for doc in yaml.safe_load_all(text) if doc]

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return helm(*args, "--namespace", self.namespace, check=check, env=self.env)


@pytest.fixture(scope="module")
def release(
    control_plane: ControlPlane,
    kubectl: Kubectl,
    tempsweep_crds: tuple[str, ...],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Release]:
    """The chart installed over CRDs a kustomize install applied (tempsweep_crds: `kubectl apply`), as the
    README's move from kustomize to Helm does it."""
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"sweep-{suffix}", f"tempsweep-helm-{suffix}"
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, *RESTRICTED)
    workdir = tmp_path_factory.mktemp("helm")
    env = {"KUBECONFIG": str(control_plane.kubeconfig)}
    install = helm(
        "install", name, str(CHART), "--namespace", namespace, "--take-ownership", "--force-conflicts",
        *values_args({"monitoring": {"enabled": False}}, workdir), env=env,
    )
    installed = Release(name, namespace, f"{name}-tempsweep", install, env)
    try:
        yield installed
    finally:
        helm("uninstall", name, "--namespace", namespace, "--ignore-not-found", check=False, env=env)
        kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def test_the_install_succeeds_without_pod_security_warnings(release: Release) -> None:
    assert "STATUS: deployed" in release.install.stdout
    assert "in DRY RUN" in release.install.stdout  # NOTES.txt says so
    assert PSA_WARNING not in release.install.stderr, release.install.stderr


def test_helm_shows_pod_security_warnings_of_a_privileged_deployment(release: Release, tmp_path: Path) -> None:
    """The control for the test above: helm does print the API server's warnings in this namespace."""
    chart = tmp_path / "privileged"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: privileged\nversion: 0.1.0\n")
    (chart / "templates" / "deployment.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "privileged"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "x", "image": "x", "securityContext": {"privileged": True}}]},
            },
        },
    }))

    result = release.helm("install", "privileged", str(chart))
    release.helm("uninstall", "privileged")

    assert PSA_WARNING in result.stderr


def test_every_object_of_the_release_exists(kubectl: Kubectl, release: Release) -> None:
    manifest = release.manifest()
    kinds = sorted({d["kind"] for d in manifest})

    assert kinds == [
        "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment", "Role", "RoleBinding",
        "ServiceAccount",
    ]
    for document in manifest:
        namespace = document["metadata"].get("namespace")
        assert namespace in (None, release.namespace)
        got = kubectl("get", document["kind"], document["metadata"]["name"], "-o", "json", namespace=namespace)
        assert json.loads(got.stdout)["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name


def test_the_crds_are_established_and_served(kubectl: Kubectl, release: Release) -> None:
    kubectl("wait", "--for=condition=established", "--timeout=60s", *(f"crd/{name}" for name in CRD_NAMES))

    wait_for(
        "the tempsweep resources to be served",
        lambda: kubectl("get", "tempsweep", "--all-namespaces", check=False).returncode == 0,
        timeout=60,
    )


def test_the_deployment_runs_the_operator_in_dry_run_as_the_releases_service_account(
    kubectl: Kubectl, release: Release
) -> None:
    deployment = json.loads(
        kubectl("get", "deployment", f"{release.fullname}-operator", "-o", "json", namespace=release.namespace).stdout
    )
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}

    assert pod["serviceAccountName"] == release.fullname
    assert env["TEMP_STORAGE_CLEANUP_CLEANUP_DRY_RUN"] == "true"
    assert deployment["spec"]["replicas"] == 2


def test_the_monitoring_objects_are_accepted_by_the_real_prometheus_operator_crds(
    kubectl: Kubectl, release: Release
) -> None:
    """With monitoring on, the chart's ServiceMonitor and PrometheusRule pass strict field validation."""
    crds = sorted(MONITORING_CRDS.glob("monitoring.coreos.com_*.yaml"))
    if len(crds) != 2:
        missing_component("the prometheus-operator CRDs", "run `make prometheus` (generates them with controller-gen)")
    for crd in crds:  # server-side: the ServiceMonitor schema is too big for the last-applied annotation
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kubectl("wait", "--for=condition=established", "--timeout=60s",
            "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com")
    rendered = release.helm("template", release.name, str(CHART), "--set", "monitoring.enabled=true").stdout
    monitoring = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in ("ServiceMonitor", "PrometheusRule")]

    result = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                     input=yaml.safe_dump_all(monitoring), namespace=release.namespace)

    assert len(monitoring) == 2
    assert "servicemonitor.monitoring.coreos.com" in result.stdout
    assert "prometheusrule.monitoring.coreos.com" in result.stdout


# -- RBAC bounded: the same lists as for manifests/base --------------------------------------------


@pytest.mark.parametrize(
    ("verb", "resource", "subresource"), CAN, ids=[f"{v}-{r}{'-' + s if s else ''}" for v, r, s in CAN]
)
def test_the_charts_service_account_can(
    kubectl: Kubectl, release: Release, verb: str, resource: str, subresource: str | None
) -> None:
    wait_for("the release's ClusterRoleBinding to take effect",
             lambda: can_i(kubectl, release.user, "list", "cleanuppolicies.tempsweep.io", all_namespaces=True))

    assert can_i(kubectl, release.user, verb, resource, namespace="team-x", subresource=subresource)


@pytest.mark.parametrize(("verb", "resource"), CANNOT, ids=[f"{v}-{r}" for v, r in CANNOT])
def test_the_charts_service_account_cannot(kubectl: Kubectl, release: Release, verb: str, resource: str) -> None:
    for namespace in ("team-x", "kube-system", release.namespace):
        assert not can_i(kubectl, release.user, verb, resource, namespace=namespace)


@pytest.mark.parametrize(("verb", "resource"), CANNOT_CLUSTER, ids=[f"{v}-{r}" for v, r in CANNOT_CLUSTER])
def test_the_charts_service_account_cannot_touch_the_cluster(
    kubectl: Kubectl, release: Release, verb: str, resource: str
) -> None:
    assert not can_i(kubectl, release.user, verb, resource)


@pytest.mark.parametrize("verb", ["list", "create", "update", "delete"])
def test_the_charts_shard_leases_are_only_in_the_release_namespace(
    kubectl: Kubectl, release: Release, verb: str
) -> None:
    leases = "leases.coordination.k8s.io"

    assert can_i(kubectl, release.user, verb, leases, namespace=release.namespace)
    assert not can_i(kubectl, release.user, verb, leases, namespace="team-x")
    assert not can_i(kubectl, release.user, verb, leases, namespace="kube-system")
    assert not can_i(kubectl, release.user, "patch", leases, namespace=release.namespace)


# -- RBAC sufficient: the operator does a real cleanup as the chart's ServiceAccount ----------------


def test_the_operator_cleans_as_the_charts_service_account_without_a_forbidden(
    control_plane: ControlPlane, kubectl: Kubectl, release: Release, namespace: str, tmp_path: Path
) -> None:
    root = tmp_path / "volumes"
    volume = root / "scratch"
    make_files(volume, ["old/a.tmp"], age_hours=OLD_HOURS)
    make_files(volume, ["new/b.tmp", "new/c.tmp"])
    kubeconfig = token_kubeconfig(
        control_plane, kubectl, tmp_path / "sa.kubeconfig", account=(release.namespace, release.fullname)
    )
    settings = {
        "TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": str(root),
        "TEMPSWEEP_TICK_SECONDS": "1",
        "TEMPSWEEP_TTL_CHECK_SECONDS": "1",
        "POD_NAMESPACE": release.namespace,  # as the chart's Deployment sets it: where the shard Leases live
    }
    operator = OperatorProcess(  # sharded as the chart's default, so the Lease Role is proven sufficient too
        namespaces=[namespace], env=isolated_env(kubeconfig, settings), log_path=tmp_path / "operator.log",
        options=("--shards", "2"),
    )

    def apply(document: dict[str, Any]) -> None:
        kubectl("apply", "-f", "-", input=yaml.safe_dump(document), namespace=namespace)

    def get(kind: str, name: str) -> dict[str, Any] | None:
        found = kubectl("get", kind, name, "-o", "json", "--ignore-not-found", namespace=namespace).stdout
        return json.loads(found) if found.strip() else None

    apply(policy("scratch", volume, schedule={"statsInterval": "1s"}))
    operator.start()
    try:
        wait_for("statistics in the policy's status",
                 lambda: ((get("cleanuppolicy", "scratch") or {}).get("status") or {}).get("tempFilesCount") == 3)
        apply(run("now", "scratch", "Orphaned", maxAgeHours=1, ttlSecondsAfterFinished=1))
        wait_for("the run to finish and expire (deleted by its TTL)", lambda: get("cleanuprun", "now") is None)
        events = json.loads(kubectl("get", "events", "-o", "json", namespace=namespace).stdout)["items"]
        log = operator.log()
    finally:
        operator.stop()

    assert files(volume) == {"new/b.tmp", "new/c.tmp"}
    leases = json.loads(kubectl("get", "leases", "-o", "json", namespace=release.namespace).stdout)["items"]
    assert leases, "the sharded operator wrote no Lease in the release's namespace"
    assert any(e["involvedObject"]["kind"] == "CleanupRun" for e in events), "no event about the run"
    for sign in ("forbidden", "'code': 403", "(403)"):
        assert sign not in log.lower(), f"{sign!r} in the operator log\n{operator.tail(80)}"


# -- upgrades ----------------------------------------------------------------------------------------


def test_an_upgrade_turns_dry_run_off_and_a_refused_one_changes_nothing(kubectl: Kubectl, release: Release) -> None:
    def dry_run() -> str:
        deployment = json.loads(kubectl("get", "deployment", f"{release.fullname}-operator", "-o", "json",
                                        namespace=release.namespace).stdout)
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        return str(env["TEMP_STORAGE_CLEANUP_CLEANUP_DRY_RUN"])

    refused = release.helm("upgrade", release.name, str(CHART), "--reuse-values",
                           "--set", "operator.replicas=2", "--set", "operator.shards=0", check=False)
    assert refused.returncode != 0 and "operator.replicas" in refused.stderr
    assert dry_run() == "true"

    upgraded = release.helm("upgrade", release.name, str(CHART), "--reuse-values", "--set", "dryRun=false")

    assert "REVISION: 2" in upgraded.stdout
    assert dry_run() == "false"


# -- the node agent, switched on by an upgrade ----------------------------------------------------------


@pytest.fixture(scope="module")
def with_agent(kubectl: Kubectl, release: Release) -> Iterator[tuple[str, subprocess.CompletedProcess[str]]]:
    """`helm upgrade --set nodeAgent.enabled=true` into a namespace labelled like manifests/node-agent's."""
    namespace = f"{release.namespace}-agent"
    labels = yaml.safe_load((REPO / "manifests" / "node-agent" / "namespace.yaml").read_text())["metadata"]["labels"]
    kubectl("create", "namespace", namespace)
    kubectl("label", "namespace", namespace, *(f"{k}={v}" for k, v in labels.items()))
    upgraded = release.helm("upgrade", release.name, str(CHART), "--reuse-values",
                            "--set", "nodeAgent.enabled=true", "--set", f"nodeAgent.namespace={namespace}")
    try:
        yield namespace, upgraded
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def test_the_agent_departs_from_restricted_only_where_hostpath_needs_it(
    kubectl: Kubectl, release: Release, with_agent: tuple[str, subprocess.CompletedProcess[str]]
) -> None:
    namespace, upgraded = with_agent
    warning = upgraded.stderr.replace('\\"', '"')  # helm logs the API server's warning with quotes escaped

    assert "STATUS: deployed" in upgraded.stdout
    assert kubectl("get", "daemonset", f"{release.fullname}-agent", "-o", "name", namespace=namespace).stdout.strip()
    for expected in ('restricted volume type "hostPath"', "DAC_OVERRIDE", "FOWNER", "runAsNonRoot", "runAsUser=0"):
        assert expected in warning, warning
    for never in ("privileged (", "allowPrivilegeEscalation", "seccompProfile", "host namespaces", "hostPort"):
        assert never not in warning, warning


def agent_user(release: Release, namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:{release.fullname}-agent"


@pytest.mark.parametrize(
    ("verb", "resource", "sub"), AGENT_CAN, ids=[f"{v}-{r}{'-' + s if s else ''}" for v, r, s in AGENT_CAN]
)
def test_the_charts_agent_can(
    kubectl: Kubectl, release: Release, with_agent: tuple[str, Any], verb: str, resource: str, sub: str | None
) -> None:
    user = agent_user(release, with_agent[0])
    wait_for("the agent's ClusterRoleBinding to take effect", lambda: can_i(kubectl, user, "list", POLICIES))

    assert can_i(kubectl, user, verb, resource, namespace="team-x", subresource=sub)


@pytest.mark.parametrize(
    ("verb", "resource", "sub"), AGENT_CANNOT, ids=[f"{v}-{r}{'-' + s if s else ''}" for v, r, s in AGENT_CANNOT]
)
def test_the_charts_agent_cannot(
    kubectl: Kubectl, release: Release, with_agent: tuple[str, Any], verb: str, resource: str, sub: str | None
) -> None:
    user = agent_user(release, with_agent[0])
    for namespace in ("team-x", with_agent[0], release.namespace):
        assert not can_i(kubectl, user, verb, resource, namespace=namespace, subresource=sub)


@pytest.mark.parametrize(
    ("verb", "resource"), AGENT_CANNOT_CLUSTER, ids=[f"{v}-{r}" for v, r in AGENT_CANNOT_CLUSTER]
)
def test_the_charts_agent_cannot_touch_the_cluster(
    kubectl: Kubectl, release: Release, with_agent: tuple[str, Any], verb: str, resource: str
) -> None:
    assert not can_i(kubectl, agent_user(release, with_agent[0]), verb, resource)


def test_with_the_agent_the_operator_lists_nodes_and_does_nothing_else_with_them(
    kubectl: Kubectl, release: Release, with_agent: tuple[str, Any]
) -> None:
    wait_for("the operator's node binding to take effect", lambda: can_i(kubectl, release.user, "list", "nodes"))

    assert can_i(kubectl, agent_user(release, with_agent[0]), "get", "nodes")
    for verb in ("get", "watch", "patch", "delete"):
        assert not can_i(kubectl, release.user, verb, "nodes")


# -- uninstall: last ---------------------------------------------------------------------------------


def test_uninstall_leaves_nothing_stuck_and_keeps_the_crds_and_policies(
    kubectl: Kubectl, release: Release, namespace: str
) -> None:
    manifest = release.manifest()
    kubectl("apply", "-f", "-", namespace=namespace,
            input=yaml.safe_dump(policy("survives", "/var/lib/tempsweep/volumes/x")))

    result = release.helm("uninstall", release.name, "--wait", "--timeout", "60s")

    assert f'release "{release.name}" uninstalled' in result.stdout
    for document in manifest:
        kind, name = document["kind"], document["metadata"]["name"]
        found = kubectl("get", kind, name, "--ignore-not-found", "-o", "name",
                        namespace=document["metadata"].get("namespace")).stdout.strip()
        if kind == "CustomResourceDefinition":
            assert found, f"{name} was deleted: the CRDs are kept (crds.keep)"
        else:
            assert not found, f"{kind} {name} is still there after uninstall"
    assert kubectl("get", "cleanuppolicy", "survives", "-o", "name", namespace=namespace).stdout.strip()
    assert release.helm("list", "-q").stdout.strip() == ""
    # nothing holds the release's namespace: it goes away like any empty namespace
    kubectl("delete", "namespace", release.namespace, "--timeout=60s")
    assert not kubectl("get", "namespace", release.namespace, "--ignore-not-found", "-o", "name").stdout.strip()
