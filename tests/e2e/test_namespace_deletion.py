"""Deleting a namespace that holds CleanupPolicies and CleanupRuns, with kube-controller-manager doing it for real.

The namespace controller deletes every object in the namespace and removes the namespace once they are
gone; an object with a finalizer stays until someone removes it. Kopf puts tempsweep.io/finalizer on the
objects it handles, and only a running operator takes it off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import make_files, policy, run
from support.controlplane import Kubectl
from support.operator_process import Kube, OperatorProcess, StartOperator, wait_for

pytestmark = pytest.mark.e2e

FINALIZER = "tempsweep.io/finalizer"
GONE_TIMEOUT = 60  # seconds; without finalizers in the way the namespace controller needs a few


def populate(kube: Kube, volume: Path) -> None:
    """A validated policy, a finished run kept for a day, and a second policy (all handled by the operator)."""
    make_files(volume, ["job_3_chunk_1_a.tmp", "job_3_chunk_2_a.tmp"])
    kube.apply(policy("p", volume))
    kube.apply(policy("other", volume / "other"))
    kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration"), "validation")
    kube.apply(run("done", "p", "ChunkCompletion", jobId="3", chunkId="1", ttlSecondsAfterFinished=86400))
    assert kube.wait_run("done")["phase"] == "Succeeded"


def namespace_gone(kubectl: Kubectl, name: str) -> bool:
    result = kubectl("get", "namespace", name, check=False)
    return result.returncode != 0 and "NotFound" in result.stderr


def describe(kubectl: Kubectl, name: str) -> str:
    """What is holding the namespace: its conditions, and every tempsweep object left with its finalizers."""
    found = kubectl("get", "namespace", name, "-o", "json", check=False)
    conditions = json.loads(found.stdout).get("status", {}).get("conditions", []) if found.returncode == 0 else []
    left = kubectl("get", "cleanuppolicies,cleanupruns", "-o", "json", namespace=name, check=False)
    items: list[dict[str, Any]] = json.loads(left.stdout)["items"] if left.returncode == 0 else []
    held = [f"{i['kind']}/{i['metadata']['name']} finalizers={i['metadata'].get('finalizers')}" for i in items]
    messages = [f"{c['type']}: {c.get('message', '')}" for c in conditions if c.get("status") == "True"]
    return f"namespace {name} to disappear; conditions: {messages}; left: {held}"


def test_deleting_a_namespace_completes_while_the_operator_runs(
    kube: Kube, kubectl: Kubectl, operator: OperatorProcess, operator_root: Path
) -> None:
    populate(kube, operator_root / "vol")

    kubectl("delete", "namespace", kube.namespace, "--wait=false")

    wait_for(lambda: describe(kubectl, kube.namespace), lambda: namespace_gone(kubectl, kube.namespace), GONE_TIMEOUT)
    assert operator.alive(), operator.tail()


def test_an_operator_started_again_finishes_a_namespace_deletion_begun_without_it(
    kube: Kube, kubectl: Kubectl, start_operator: StartOperator, operator_root: Path
) -> None:
    """The way out documented in the README: deleted while the operator was gone, done once it is back."""
    first = start_operator(kube.namespace)
    populate(kube, operator_root / "vol")
    first.stop()

    kubectl("delete", "namespace", kube.namespace, "--wait=false")
    start_operator(kube.namespace)

    wait_for(lambda: describe(kubectl, kube.namespace), lambda: namespace_gone(kubectl, kube.namespace), GONE_TIMEOUT)


# -- after the operator is gone (uninstalled, scaled to zero, crashed for good) ----------------------
# No object carries a finalizer of the operator: policy timers are registered without one, and finished
# runs expire from one sweeper instead of a timer per run (issue 14).


def test_a_finished_run_can_be_deleted_after_the_operator_is_gone(
    kube: Kube, start_operator: StartOperator, operator_root: Path
) -> None:
    operator = start_operator(kube.namespace)
    populate(kube, operator_root / "vol")
    operator.stop()
    assert all(
        FINALIZER not in (kube.get(kind, name) or {}).get("metadata", {}).get("finalizers", [])
        for kind, name in [("cleanuprun", "done"), ("cleanuppolicy", "p"), ("cleanuppolicy", "other")]
    )

    deleted = kube("delete", "cleanuprun", "done", "--timeout=20s", check=False, timeout=60)

    assert deleted.returncode == 0, deleted.stderr
    assert kube.get("cleanuprun", "done") is None


def test_deleting_a_namespace_completes_after_the_operator_is_gone(
    kube: Kube, kubectl: Kubectl, start_operator: StartOperator, operator_root: Path
) -> None:
    """Uninstalled first, namespace deleted later: nothing may be left waiting for an operator."""
    operator = start_operator(kube.namespace)
    populate(kube, operator_root / "vol")
    operator.stop()

    kubectl("delete", "namespace", kube.namespace, "--wait=false")

    wait_for(lambda: describe(kubectl, kube.namespace), lambda: namespace_gone(kubectl, kube.namespace), GONE_TIMEOUT)
