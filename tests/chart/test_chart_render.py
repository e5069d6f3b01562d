"""charts/tempsweep through the real helm: `helm lint`, `helm template` with several values sets, and the
values it refuses (each refusal names the value, and nothing is rendered).

The environment the chart gives the operator is read by the operator's own settings loader, so a value
the chart writes in a form the operator does not accept fails here, not in a user's cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helm import CHART, NAMESPACE, helm, refused, template
from tempsweep.models import load_settings

LINT_VALUES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "monitoring": {"monitoring": {"enabled": True, "serviceMonitor": {"labels": {"release": "prometheus"}}}},
    "no-dry-run": {"dryRun": False},
    "namespace-roots": {
        "allowedRoots": ["/var/lib/tempsweep/volumes"],
        "namespaceRoots": {"team-a": ["/var/lib/tempsweep/volumes/a"], "team-b": ["/var/lib/tempsweep/volumes/b"]},
    },
    "no-rbac-no-crds": {"rbac": {"create": False, "userRoles": False}, "crds": {"install": False}},
}


def one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    spec = one(documents, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["operator"]
    operator: dict[str, Any] = spec["containers"][0]
    return operator


def env(documents: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(documents)["env"] if "value" in e}


@pytest.mark.parametrize("values", LINT_VALUES.values(), ids=LINT_VALUES.keys())
def test_helm_lint_strict_passes(values: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))

    result = helm("lint", "--strict", str(CHART), "--values", str(tmp_path / "values.yaml"))

    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", LINT_VALUES.values(), ids=LINT_VALUES.keys())
def test_the_operator_accepts_the_settings_the_chart_gives_it(values: dict[str, Any], tmp_path: Path) -> None:
    settings = load_settings(env(template(values, tmp_path)))

    assert settings.cleanup_dry_run is values.get("dryRun", True)
    assert [str(p) for p in settings.allowed_root_paths] == values.get("allowedRoots", ["/var/lib/tempsweep/volumes"])
    assert settings.namespace_root_paths == {k: tuple(v) for k, v in values.get("namespaceRoots", {}).items()}


def test_the_defaults_ship_in_dry_run_with_two_sharded_replicas_and_no_monitoring(tmp_path: Path) -> None:
    documents = template(None, tmp_path)
    deployment = one(documents, "Deployment", "tempsweep-operator")
    args = container(documents)["args"]

    assert env(documents)["TEMP_STORAGE_CLEANUP_CLEANUP_DRY_RUN"] == "true"
    assert deployment["spec"]["replicas"] == 2
    assert args[args.index("--shards") + 1] == "12"
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS" not in env(documents)
    assert {d["kind"] for d in documents} == {
        "ServiceAccount", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
        "Deployment",
    }
    assert one(documents, "Role")["metadata"]["namespace"] == NAMESPACE
    # the operator always serves /metrics on its own port (manifests/base does too); monitoring adds the rest
    assert {p["name"]: p["containerPort"] for p in container(documents)["ports"]} == {"health": 8080, "metrics": 8081}
    assert args[args.index("--metrics-port") + 1] == "8081"
    assert all(d["metadata"].get("namespace", NAMESPACE) == NAMESPACE for d in documents)


def test_monitoring_adds_the_metrics_port_service_monitor_rule_and_dashboard(tmp_path: Path) -> None:
    documents = template({"monitoring": {"enabled": True, "serviceMonitor": {"labels": {"release": "kps"}}}}, tmp_path)
    monitor = one(documents, "ServiceMonitor")
    service = one(documents, "Service")

    assert {p["name"]: p["containerPort"] for p in container(documents)["ports"]} == {"health": 8080, "metrics": 8081}
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert one(documents, "ConfigMap")["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert one(documents, "PrometheusRule")["spec"]["groups"]


def test_one_replica_without_shards_is_recreated_and_holds_no_leases(tmp_path: Path) -> None:
    documents = template({"operator": {"replicas": 1, "shards": 0}}, tmp_path)
    deployment = one(documents, "Deployment")

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--shards" not in container(documents)["args"]
    assert not [d for d in documents if d["kind"] in ("Role", "RoleBinding")]


def test_replicas_and_shards_are_values(tmp_path: Path) -> None:
    documents = template({"operator": {"replicas": 3, "shards": 30}}, tmp_path)
    args = container(documents)["args"]

    assert one(documents, "Deployment")["spec"]["replicas"] == 3
    assert args[args.index("--shards") + 1] == "30"


def test_monitoring_parts_can_be_left_out(tmp_path: Path) -> None:
    off = {"enabled": False}
    documents = template(
        {"monitoring": {"enabled": True, "serviceMonitor": off, "prometheusRule": off, "dashboard": off}}, tmp_path
    )

    assert {d["kind"] for d in documents} >= {"Service"}
    assert not {d["kind"] for d in documents} & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_another_release_name_renames_every_object_and_the_alert_follows_the_service(tmp_path: Path) -> None:
    documents = template({"monitoring": {"enabled": True}}, tmp_path, release="sweeper", namespace="ops")
    service = one(documents, "Service")["metadata"]["name"]
    rules = [r for g in one(documents, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    down = next(r for r in rules if r.get("alert") == "TempsweepOperatorDown")
    binding = one(documents, "ClusterRoleBinding")

    assert service == "sweeper-tempsweep-operator-metrics"
    assert f'job="{service}"' in down["expr"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sweeper-tempsweep", "namespace": "ops"}]
    assert binding["roleRef"]["name"] == "sweeper-tempsweep-operator"
    assert one(documents, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "sweeper-tempsweep"
    for document in documents:
        if document["kind"] != "CustomResourceDefinition":
            assert document["metadata"]["name"].startswith("sweeper-tempsweep"), document["metadata"]["name"]


def test_an_existing_service_account_is_used_and_still_bound(tmp_path: Path) -> None:
    documents = template({"serviceAccount": {"create": False, "name": "mine"}}, tmp_path)

    assert not [d for d in documents if d["kind"] == "ServiceAccount"]
    assert one(documents, "ClusterRoleBinding")["subjects"][0]["name"] == "mine"


def test_the_crds_are_kept_on_uninstall_unless_told_otherwise(tmp_path: Path) -> None:
    kept = [d for d in template(None, tmp_path) if d["kind"] == "CustomResourceDefinition"]
    dropped = [d for d in template({"crds": {"keep": False}}, tmp_path) if d["kind"] == "CustomResourceDefinition"]

    assert {d["metadata"]["name"] for d in kept} == {
        "cleanuppolicies.tempsweep.io", "cleanupruns.tempsweep.io",
        "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev",
    }
    assert all(d["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"} for d in kept)
    assert all("helm.sh/resource-policy" not in d["metadata"].get("annotations", {}) for d in dropped)


SCRATCH = "/var/lib/tempsweep/volumes/scratch"


def test_a_volume_may_be_mounted_at_an_allowed_root_itself(tmp_path: Path) -> None:
    root = {"name": "root", "mountPath": "/var/lib/tempsweep/volumes", "persistentVolumeClaim": {"claimName": "x"}}

    mounts = container(template({"volumes": [root]}, tmp_path))["volumeMounts"]

    assert {"name": "root", "mountPath": "/var/lib/tempsweep/volumes"} in mounts


def test_extra_settings_args_and_volumes_reach_the_pod(tmp_path: Path) -> None:
    documents = template(
        {
            "settings": {"MAX_ORPHAN_AGE_HOURS": 12},
            "operator": {"extraArgs": ["--namespace", "team-a"]},
            "volumes": [{"name": "scratch", "mountPath": SCRATCH, "nfs": {"server": "nfs.example", "path": "/x"}}],
        },
        tmp_path,
    )
    pod = one(documents, "Deployment")["spec"]["template"]["spec"]

    assert load_settings(env(documents)).max_orphan_age_hours == 12
    assert container(documents)["args"][-2:] == ["--namespace", "team-a"]
    assert {"name": "scratch", "nfs": {"server": "nfs.example", "path": "/x"}} in pod["volumes"]
    assert {"name": "scratch", "mountPath": SCRATCH} in container(documents)["volumeMounts"]


# -- refused values -------------------------------------------------------------------------------

REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "replicas-2-without-shards": (
        {"operator": {"replicas": 2, "shards": 0}},
        "operator.replicas: 2 replicas without operator.shards would each run every policy's timers",
    ),
    "volume-outside-the-roots": (
        {"volumes": [{"name": "v", "mountPath": "/data/v", "emptyDir": {}}]},
        "volumes[0] (v): mountPath /data/v is not under allowedRoots (/var/lib/tempsweep/volumes)",
    ),
    "volume-beside-the-root": (
        {"volumes": [{"name": "v", "mountPath": "/var/lib/tempsweep/volumes-other", "emptyDir": {}}]},
        "mountPath /var/lib/tempsweep/volumes-other is not under allowedRoots",
    ),
    "volume-above-the-root": (
        {"volumes": [{"name": "v", "mountPath": "/var/lib/tempsweep", "emptyDir": {}}]},
        "mountPath /var/lib/tempsweep is not under allowedRoots",
    ),
    "host-path": (
        {"volumes": [{"name": "v", "mountPath": "/var/lib/tempsweep/volumes/v", "hostPath": {"path": "/mnt"}}]},
        "volumes[0] (v): hostPath is not allowed for the operator",
    ),
    "namespace-root-outside": (
        {"namespaceRoots": {"team-a": ["/srv/a"]}},
        "namespaceRoots.team-a: /srv/a is not under allowedRoots",
    ),
    "setting-with-its-own-value": (
        {"settings": {"CLEANUP_DRY_RUN": "false"}},
        "settings.CLEANUP_DRY_RUN: set it with its own value",
    ),
    "typo": ({"dryrun": False}, "dryrun"),
    "dry-run-as-string": ({"dryRun": "false"}, "dryRun"),
    "relative-root": ({"allowedRoots": ["var/lib"]}, "allowedRoots"),
    "dotdot-root": ({"allowedRoots": ["/var/lib/tempsweep/../../etc"]}, "allowedRoots"),
    "no-root": ({"allowedRoots": []}, "allowedRoots"),
    "threshold-over-100": ({"warningThreshold": 150}, "warningThreshold"),
    "no-service-account-name": ({"serviceAccount": {"create": False}}, "serviceAccount.name"),
}


@pytest.mark.parametrize(("values", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_bad_values_are_refused_naming_the_value(values: dict[str, Any], message: str, tmp_path: Path) -> None:
    assert message in refused(values, tmp_path)


# -- the node agent -----------------------------------------------------------------------------------

AGENT = {"nodeAgent": {"enabled": True}}


def agent_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    [agent] = one(documents, "DaemonSet")["spec"]["template"]["spec"]["containers"]
    return dict(agent)


def test_the_node_agent_is_off_by_default(tmp_path: Path) -> None:
    documents = template(None, tmp_path)

    assert not [d for d in documents if d["kind"] == "DaemonSet" or "agent" in d["metadata"]["name"]]
    assert not [d for d in documents if d["metadata"]["name"].endswith("-nodes")]


def test_each_agent_root_is_mounted_from_the_node_at_the_same_path_and_nothing_else(tmp_path: Path) -> None:
    roots = ["/var/lib/tempsweep/node", "/mnt/scratch"]
    documents = template({"nodeAgent": {"enabled": True, "allowedRoots": roots}}, tmp_path)
    pod = one(documents, "DaemonSet")["spec"]["template"]["spec"]
    host = {v["name"]: v["hostPath"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["name"]: m["mountPath"] for m in agent_container(documents)["volumeMounts"]}

    assert sorted(p["path"] for p in host.values()) == sorted(roots)
    assert all(mounts[name] == path["path"] and path["type"] == "Directory" for name, path in host.items())
    assert set(mounts) == {"tmp", *host}
    assert load_settings(env_of(agent_container(documents))).allowed_root_paths == [Path(r) for r in roots]


def env_of(operator: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in operator["env"] if "value" in e}


def test_the_agent_follows_dry_run_and_its_namespace_roots_load(tmp_path: Path) -> None:
    values = {
        "dryRun": False,
        "nodeAgent": {"enabled": True, "namespaceRoots": {"team-a": ["/var/lib/tempsweep/node/a"]}},
    }
    settings = load_settings(env_of(agent_container(template(values, tmp_path))))

    assert settings.cleanup_dry_run is False
    assert settings.namespace_root_paths == {"team-a": ("/var/lib/tempsweep/node/a",)}


def system_paths() -> list[str]:
    from tempsweep.models import paths

    return sorted({*paths.SYSTEM_PATHS, *paths._SYSTEM_TREES, *(f"{tree}/x" for tree in paths._SYSTEM_TREES)})


@pytest.mark.parametrize("path", system_paths())
def test_a_system_path_is_never_an_agent_root(path: str, tmp_path: Path) -> None:
    """The chart's list is the operator's (tempsweep.models.paths): each of its paths is refused."""
    values = {"nodeAgent": {"enabled": True, "allowedRoots": ["/var/lib/tempsweep/node", path]}}

    assert f"nodeAgent.allowedRoots[1]: {path} is a system path" in refused(values, tmp_path)


AGENT_REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "namespace-root-outside": (
        {"namespaceRoots": {"team-a": ["/srv/a"]}},
        "nodeAgent.namespaceRoots.team-a: /srv/a is not under nodeAgent.allowedRoots",
    ),
    "setting-with-its-own-value": ({"settings": {"ALLOWED_ROOTS": "/"}}, "nodeAgent.settings.ALLOWED_ROOTS"),
    "dotdot": ({"allowedRoots": ["/var/lib/tempsweep/../../etc"]}, "nodeAgent"),
    "typo": ({"allowedroots": ["/x"]}, "allowedroots"),
}


@pytest.mark.parametrize(("values", "message"), AGENT_REFUSED.values(), ids=AGENT_REFUSED.keys())
def test_bad_agent_values_are_refused(values: dict[str, Any], message: str, tmp_path: Path) -> None:
    assert message in refused({"nodeAgent": {"enabled": True, **values}}, tmp_path)
