"""The test control plane is a real Kubernetes API server with a controller manager: checked through kubectl.

Uses a CRD of its own (widgets.example.test) so it does not depend on tempsweep's CRDs.
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest
from kopf.testing import KopfRunner

from support.controlplane import ControlPlane, Kubectl
from support.probing import wait_for

pytestmark = pytest.mark.e2e

GO_MOD = Path(__file__).resolve().parents[1] / "controlplane" / "go.mod"
GROUP = "widgets.example.test"
CRD_NAME = f"widgets.{GROUP}"

WIDGET_CRD = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {CRD_NAME}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Phase, type: string, jsonPath: .status.phase}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {{type: integer, minimum: 1, maximum: 10}}
              color: {{type: string, enum: [red, green, blue]}}
          status:
            type: object
            properties:
              phase: {{type: string}}
              observedSize: {{type: integer}}
"""


def widget(name: str, size: int, color: str = "green") -> str:
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"size": size, "color": color},
        }
    )


def pinned_kubernetes_version() -> str:
    match = re.search(r"^\s*k8s\.io/kubernetes (v\d+\.\d+\.\d+)\s*$", GO_MOD.read_text(), re.MULTILINE)
    assert match, f"no k8s.io/kubernetes requirement in {GO_MOD}"
    return match.group(1)


@pytest.fixture(scope="module")
def widget_crd(kubectl: Kubectl) -> Iterator[str]:
    kubectl("apply", "-f", "-", input=WIDGET_CRD)
    kubectl("wait", "--for=condition=established", "--timeout=60s", f"crd/{CRD_NAME}")
    yield CRD_NAME
    kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--timeout=60s", check=False, timeout=90)


def test_kubectl_and_server_report_the_pinned_release(kubectl: Kubectl) -> None:
    expected = pinned_kubernetes_version()
    versions = json.loads(kubectl("version", "-o", "json").stdout)

    assert versions["clientVersion"]["gitVersion"] == expected
    assert versions["serverVersion"]["gitVersion"] == expected
    major, minor = expected[1:].split(".")[:2]
    assert (versions["serverVersion"]["major"], versions["serverVersion"]["minor"]) == (major, minor)
    assert versions["serverVersion"]["gitTreeState"] == "clean"


def test_default_namespace_and_control_plane_fixture(control_plane: ControlPlane, kubectl: Kubectl) -> None:
    assert control_plane.kubeconfig.is_file()
    assert control_plane.server.startswith("https://127.0.0.1:")
    assert kubectl("get", "namespace", "default", "-o", "name").stdout.strip() == "namespace/default"
    assert kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"  # admin is in system:masters


def test_custom_resource_lifecycle(kubectl: Kubectl, widget_crd: str, namespace: str) -> None:
    crd = json.loads(kubectl("get", "crd", widget_crd, "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert "widgets" in kubectl("api-resources", f"--api-group={GROUP}", "-o", "name").stdout

    kubectl("apply", "-f", "-", input=widget("w1", 3), namespace=namespace)
    got = json.loads(kubectl("get", "widget", "w1", "-o", "json", namespace=namespace).stdout)
    assert got["spec"] == {"size": 3, "color": "green"}
    assert "status" not in got or not got["status"].get("phase")

    # Status goes through the status subresource only.
    kubectl(
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"phase": "Ready", "observedSize": 3}}',
        namespace=namespace,
    )
    kubectl(
        "patch", "widget", "w1", "--type=merge", "-p", '{"status": {"phase": "Ignored"}}', namespace=namespace
    )
    status = json.loads(
        kubectl("get", "widget", "w1", "-o", "jsonpath={.status}", namespace=namespace).stdout
    )
    assert status == {"phase": "Ready", "observedSize": 3}

    table = kubectl("get", "widgets", namespace=namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SIZE", "PHASE"]
    assert table[1].split()[:3] == ["w1", "3", "Ready"]
    # The short name works too.
    assert kubectl("get", "wdg", "-o", "name", namespace=namespace).stdout.strip() == f"widget.{GROUP}/w1"


def test_server_side_dry_run_rejects_schema_violations(
    kubectl: Kubectl, widget_crd: str, namespace: str
) -> None:
    result = kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        input=widget("big", 100, color="purple"),
        namespace=namespace,
        check=False,
    )
    assert result.returncode != 0
    assert "spec.size: Invalid value: 100" in result.stderr
    assert "should be less than or equal to 10" in result.stderr
    assert 'spec.color: Unsupported value: "purple"' in result.stderr

    ok = kubectl("apply", "--dry-run=server", "-f", "-", input=widget("fine", 5), namespace=namespace)
    assert "(server dry run)" in ok.stdout
    # Neither was stored.
    assert kubectl("get", "widgets", "-o", "name", namespace=namespace).stdout.strip() == ""


def test_rbac_denies_a_service_account_until_a_role_grants_it(
    kubectl: Kubectl, widget_crd: str, namespace: str
) -> None:
    kubectl("create", "serviceaccount", "reader", namespace=namespace)
    kubectl("apply", "-f", "-", input=widget("w1", 2), namespace=namespace)
    who = f"--as=system:serviceaccount:{namespace}:reader"

    def can_i(verb: str) -> str:
        return kubectl(
            "auth", "can-i", verb, f"widgets.{GROUP}", who, namespace=namespace, check=False
        ).stdout.strip()

    assert can_i("get") == "no"
    denied = kubectl("get", "widget", "w1", who, namespace=namespace, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f'"system:serviceaccount:{namespace}:reader" cannot get resource "widgets"' in denied.stderr

    kubectl(
        "create",
        "role",
        "widget-reader",
        "--verb=get,list,watch",
        f"--resource=widgets.{GROUP}",
        namespace=namespace,
    )
    kubectl(
        "create",
        "rolebinding",
        "widget-reader",
        "--role=widget-reader",
        f"--serviceaccount={namespace}:reader",
        namespace=namespace,
    )

    wait_for("the Role to take effect", lambda: can_i("get") == "yes")
    assert kubectl("get", "widget", "w1", "-o", "name", who, namespace=namespace).stdout.strip() == (
        f"widget.{GROUP}/w1"
    )
    assert can_i("delete") == "no"
    # Granted in this namespace only.
    other = kubectl("auth", "can-i", "get", f"widgets.{GROUP}", who, "--namespace=default", check=False)
    assert other.stdout.strip() == "no"


OPERATOR = f"""
import kopf


@kopf.on.login()
def login(**kwargs):
    # Read $KUBECONFIG now: the kubernetes client library fixes its default path at import time.
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.create("{GROUP}", "v1", "widgets")
def seen(spec, patch, logger, **_):
    patch.status["phase"] = "Seen"
    patch.status["observedSize"] = spec["size"]
    logger.info("widget seen by the test operator")
"""


def test_kopf_operator_sees_an_object_and_patches_its_status(
    control_plane: ControlPlane,
    kubectl: Kubectl,
    widget_crd: str,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operator = tmp_path / "widget_operator.py"
    operator.write_text(textwrap.dedent(OPERATOR))
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))

    def phase() -> str:
        return kubectl("get", "widget", "w1", "-o", "jsonpath={.status.phase}", namespace=namespace).stdout

    previous_registry = kopf.get_default_registry()
    try:
        args = ["run", "--standalone", "--namespace", namespace, "--verbose", str(operator)]
        with KopfRunner(args, registry=kopf.OperatorRegistry(), timeout=60) as runner:
            kubectl("apply", "-f", "-", input=widget("w1", 7), namespace=namespace)
            wait_for("the operator to set status.phase", lambda: phase() == "Seen", timeout=60)
    finally:
        kopf.set_default_registry(previous_registry)

    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output
    assert "widget seen by the test operator" in runner.output
    status = json.loads(
        kubectl("get", "widget", "w1", "-o", "jsonpath={.status}", namespace=namespace).stdout
    )
    assert status == {"phase": "Seen", "observedSize": 7}


# -- kube-controller-manager: what a real cluster does after a deletion -----------------------------


def test_a_deleted_namespace_is_emptied_and_removed(kubectl: Kubectl) -> None:
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl("create", "configmap", "inside", "--from-literal=a=b", namespace=name)
    kubectl("create", "serviceaccount", "worker", namespace=name)

    kubectl("delete", "namespace", name, "--wait=false")

    wait_for(
        f"namespace {name} to disappear",
        lambda: "NotFound" in kubectl("get", "namespace", name, check=False).stderr,
        timeout=60,
    )


def test_garbage_collection_deletes_an_owned_object_after_its_owner(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "owner", namespace=namespace)
    uid = kubectl("get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}", namespace=namespace).stdout
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(child), namespace=namespace)
    kubectl("create", "configmap", "bystander", namespace=namespace)

    kubectl("delete", "configmap", "owner", namespace=namespace)

    wait_for(
        "the owned ConfigMap to be garbage-collected",
        lambda: "NotFound" in kubectl("get", "configmap", "child", namespace=namespace, check=False).stderr,
        timeout=60,
    )
    assert kubectl("get", "configmap", "bystander", "-o", "name", namespace=namespace).stdout.strip() == (
        "configmap/bystander"
    )


def test_every_namespace_gets_a_default_service_account(kubectl: Kubectl, namespace: str) -> None:
    wait_for(
        "the default ServiceAccount",
        lambda: kubectl("get", "serviceaccount", "default", namespace=namespace, check=False).returncode == 0,
        timeout=60,
    )
