"""The `outage` fixture: the API server (or the whole control plane) stops mid-test and comes back with its data.

Fault tests of the operator build on it (an API outage of N seconds), so its own promises are tested here
through kubectl, as the operator would see them: unreachable while down, the same server and the same
objects afterwards.
"""

from __future__ import annotations

import json
import uuid

import pytest

from support.controlplane import ControlPlane, Kubectl, Outage
from support.probing import wait_for

pytestmark = pytest.mark.e2e

UNREACHABLE = ("connection refused", "was refused", "Unable to connect to the server")


def configmap(kubectl: Kubectl, namespace: str, name: str) -> dict[str, object] | None:
    result = kubectl("get", "configmap", name, "-o", "json", namespace=namespace, check=False, timeout=20)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    body: dict[str, object] = json.loads(result.stdout)
    return body


def unreachable(kubectl: Kubectl) -> str:
    """kubectl's complaint when it cannot reach the API server (fails the test if it can)."""
    result = kubectl("get", "namespaces", "--request-timeout=5s", check=False, timeout=30)
    assert result.returncode != 0, f"the API server still answers: {result.stdout}"
    assert any(text in result.stderr for text in UNREACHABLE), result.stderr
    return result.stderr


def test_objects_survive_an_api_server_outage(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, outage: Outage
) -> None:
    kubectl("create", "configmap", "kept", "--from-literal=answer=42", namespace=namespace)
    before = configmap(kubectl, namespace, "kept")
    assert before is not None

    with outage.down():  # the API server only; etcd and the controller manager keep running
        unreachable(kubectl)

    after = configmap(kubectl, namespace, "kept")
    assert after is not None
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # type: ignore[index]
    assert after["data"] == {"answer": "42"}
    server = json.loads(kubectl("config", "view", "--minify", "-o", "json").stdout)["clusters"][0]["cluster"]
    assert server["server"] == control_plane.server  # the same port: every client's kubeconfig still works
    kubectl("create", "configmap", "written-after", namespace=namespace)


def test_an_outage_can_be_ended_by_hand_and_the_fixture_cleans_up(
    kubectl: Kubectl, namespace: str, outage: Outage
) -> None:
    outage.stop("kube-apiserver")
    assert outage.stopped == {"kube-apiserver"}
    unreachable(kubectl)

    outage.start()

    assert not outage.stopped
    assert kubectl("get", "namespace", namespace, "-o", "name").stdout.strip() == f"namespace/{namespace}"


def test_the_whole_control_plane_restarts_with_etcds_data(kubectl: Kubectl, namespace: str, outage: Outage) -> None:
    kubectl("create", "configmap", "kept", "--from-literal=answer=42", namespace=namespace)
    doomed = f"doomed-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", doomed)

    with outage.down("etcd", "kube-apiserver", "kube-controller-manager"):
        unreachable(kubectl)

    kept = configmap(kubectl, namespace, "kept")
    assert kept is not None and kept["data"] == {"answer": "42"}
    # the controller manager is back too: a namespace deleted now is really removed
    kubectl("delete", "namespace", doomed, "--wait=false")
    wait_for(
        f"namespace {doomed} to disappear after the restart",
        lambda: "NotFound" in kubectl("get", "namespace", doomed, check=False).stderr,
        timeout=60,
    )
