"""Two operators for the same namespace with Kopf peering (`--peering NAME --priority N`): one works, one waits.

Real processes against the real API server, with the KopfPeering CRD from manifests/base. Which operator
is active shows in the peering object's status (each operator's identity and priority) and in the logs:
a peered operator starts paused and says when it resumes (or pauses again), and only the active one
handles the objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import make_files, policy, run, tree
from support.controlplane import ControlPlane, Kubectl
from support.operator_process import Kube, OperatorProcess, StartOperator, wait_for
from support.service_account import OPERATOR_USER, can_i, install_base, isolated_env, token_kubeconfig

pytestmark = pytest.mark.e2e

PEERING_CRDS = Path(__file__).resolve().parents[2] / "manifests" / "base" / "kopf-peering-crds.yaml"
PEERING = "tempsweep"
PAUSED = ("Pausing operations in favour of", "Pausing all operators, including self")
RESUMED = "Resuming operations after the pause"
SAME_PRIORITY = "Possibly conflicting operators with the same priority"


@pytest.fixture
def peering(kubectl: Kubectl, kube: Kube) -> str:
    """The peering CRDs as shipped, and the namespaced peering object the operators of `namespace` share."""
    kubectl("apply", "-f", str(PEERING_CRDS))
    crds = ("crd/kopfpeerings.kopf.dev", "crd/clusterkopfpeerings.kopf.dev")
    kubectl("wait", "--for=condition=established", "--timeout=60s", *crds)
    wait_for(
        "the KopfPeering resource to be served",
        lambda: kube("get", "kopfpeerings", check=False).returncode == 0,
        timeout=60,
    )
    kube.apply({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}})
    return PEERING


def start_peer(start_operator: StartOperator, namespace: str, identity: str, priority: int) -> OperatorProcess:
    # POD_ID is what Kopf records as the operator's identity (in a pod: its name, from the downward API).
    return start_operator(namespace, options=["--peering", PEERING, "--priority", str(priority)], POD_ID=identity)


def peers(kube: Kube) -> dict[str, Any]:
    """The peering object's status: identity -> {priority, lifetime, lastseen}."""
    body = json.loads(kube("get", "kopfpeering", PEERING, "-o", "json").stdout)
    status: dict[str, Any] = body.get("status") or {}
    return status


def handled(process: OperatorProcess, namespace: str, name: str) -> bool:
    """The operator's log mentions the object (Kopf prefixes every line about one with [namespace/name])."""
    return f"[{namespace}/{name}]" in process.log()


def active(process: OperatorProcess) -> bool:
    """Kopf's last word on pausing was a resume (a peered operator starts paused and says nothing)."""
    lines = [line for line in process.log().splitlines() if RESUMED in line or any(p in line for p in PAUSED)]
    return bool(lines) and RESUMED in lines[-1]


def wait_active(process: OperatorProcess) -> None:
    wait_for(lambda: f"the operator to be active\n{process.tail()}", lambda: active(process), timeout=60)


def wait_for_line(process: OperatorProcess, text: str) -> None:
    wait_for(lambda: f"{text!r} in the log\n{process.tail()}", lambda: text in process.log(), timeout=60)


def finished_run(kube: Kube, volume: Path, name: str) -> dict[str, Any]:
    kube.apply(run(name, "p", "ChunkCompletion", jobId="7", chunkId=name[-1]))
    return kube.wait_run(name, timeout=60)


def test_only_the_operator_with_the_highest_priority_works(
    kube: Kube, peering: str, start_operator: StartOperator, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["job_7_chunk_1_a.tmp", "job_7_chunk_1_b.tmp", "job_7_chunk_2_a.tmp"])
    high = start_peer(start_operator, kube.namespace, "op-high", 100)
    low = start_peer(start_operator, kube.namespace, "op-low", 10)

    wait_for("both operators in the peering object", lambda: {"op-high", "op-low"} <= set(peers(kube)))
    status = peers(kube)
    assert (status["op-high"]["priority"], status["op-low"]["priority"]) == (100, 10)
    wait_active(high)

    kube.apply(policy("p", volume))
    kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration"), "validation")
    result = finished_run(kube, volume, "chunk-1")

    assert result["phase"] == "Succeeded", result
    assert result["filesDeleted"] == 2
    assert tree(volume) == {"job_7_chunk_2_a.tmp"}
    assert handled(high, kube.namespace, "chunk-1") and handled(high, kube.namespace, "p")
    assert not handled(low, kube.namespace, "chunk-1") and not handled(low, kube.namespace, "p"), low.tail()
    assert not active(low), low.tail()
    assert active(high), high.tail()


def test_the_waiting_operator_takes_over_when_the_active_one_stops(
    kube: Kube, peering: str, start_operator: StartOperator, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["job_7_chunk_1_a.tmp", "job_7_chunk_2_a.tmp", "job_7_chunk_3_a.tmp"])
    high = start_peer(start_operator, kube.namespace, "op-high", 100)
    low = start_peer(start_operator, kube.namespace, "op-low", 10)
    wait_active(high)
    kube.apply(policy("p", volume))
    assert finished_run(kube, volume, "chunk-1")["filesDeleted"] == 1

    high.stop()  # SIGTERM: Kopf removes its own entry from the peering object on the way out

    wait_for("the stopped operator to leave the peering object", lambda: "op-high" not in peers(kube))
    wait_active(low)
    result = finished_run(kube, volume, "chunk-2")
    assert result["phase"] == "Succeeded" and result["filesDeleted"] == 1, result
    assert handled(low, kube.namespace, "chunk-2")
    assert tree(volume) == {"job_7_chunk_3_a.tmp"}


def test_operators_of_the_same_priority_all_pause_and_say_so(
    kube: Kube, peering: str, start_operator: StartOperator
) -> None:
    """Kopf's rule, and why every replica needs its own --priority: equal peers cannot tell who should work."""
    first = start_peer(start_operator, kube.namespace, "op-a", 0)
    second = start_peer(start_operator, kube.namespace, "op-b", 0)

    for process in (first, second):
        wait_for_line(process, SAME_PRIORITY)
    wait_for(lambda: f"both operators paused\n{first.tail()}", lambda: not active(first) and not active(second))


def test_the_service_accounts_rbac_lets_a_peered_operator_work(
    control_plane: ControlPlane, kubectl: Kubectl, kube: Kube, peering: str, operator_root: Path, tmp_path: Path
) -> None:
    """manifests/base grants what peering needs (read the peering object, patch its own entry) and no more."""
    install_base(kubectl)
    for resource in ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):
        for verb in ("get", "list", "watch", "patch"):
            assert can_i(kubectl, OPERATOR_USER, verb, resource, namespace=kube.namespace), (verb, resource)
        for verb in ("create", "update", "delete"):
            assert not can_i(kubectl, OPERATOR_USER, verb, resource, namespace=kube.namespace), (verb, resource)
    kubeconfig = token_kubeconfig(control_plane, kubectl, tmp_path / "operator.kubeconfig")
    settings = {"TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": str(operator_root), "POD_ID": "op-sa"}
    operator = OperatorProcess(
        namespaces=[kube.namespace],
        env=isolated_env(kubeconfig, settings),
        log_path=tmp_path / "operator.log",
        options=["--peering", PEERING, "--priority", "5"],
    )
    try:
        operator.start()
        wait_for("the operator in the peering object", lambda: "op-sa" in peers(kube))
        wait_active(operator)
        kube.apply(policy("p", operator_root / "vol"))
        kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration"), "validation")
    finally:
        operator.stop()
    # without each line's "[date time,millis]" prefix: a timestamp ending in ",403" is not a refusal
    said = "\n".join(line.split("] ", 1)[-1] for line in operator.log().splitlines())
    assert "Forbidden" not in said and "403" not in said, operator.tail()
