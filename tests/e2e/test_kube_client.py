"""The operator's own Kubernetes client (tempsweep.controller.kube) against the real API server.

Kopf runs sync handlers on WORKER_THREADS threads, and each may call the client at the same moment. With a
connection pool smaller than that (the client's default is cpu_count * 5: 10 on two cores), urllib3 opens
extra connections and throws them away after use, logging "Connection pool is full" for each.
A status write bound to a run's uid must never land on a new run that took the name.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kubernetes.config import kube_config

from support.controlplane import ControlPlane, Kubectl
from tempsweep.controller.kube import WORKER_THREADS, Kube, Written
from tempsweep.controller.writer import RUNS
from tempsweep.models import RunPhase
from tempsweep.models.resources import CleanupRunStatus

pytestmark = pytest.mark.e2e


@pytest.fixture
def kube(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Kube:
    """The operator's API clients, built from the test control plane's kubeconfig (not an in-cluster config)."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(Path(control_plane.kubeconfig)))
    return Kube()


def test_every_worker_thread_gets_a_pooled_connection(
    kube: Kube, kubectl: Kubectl, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    kubectl("create", "secret", "generic", "db", "--from-literal=url=postgresql://db", namespace=namespace)
    start = threading.Barrier(WORKER_THREADS)

    def handler() -> list[str]:
        start.wait(timeout=30)  # all at once, as Kopf's workers are during a burst
        return [kube.read_secret_value(namespace, "db", "url") for _ in range(5)]

    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"), ThreadPoolExecutor(WORKER_THREADS) as pool:
        results = [future.result(timeout=60) for future in [pool.submit(handler) for _ in range(WORKER_THREADS)]]

    assert results == [["postgresql://db"] * 5] * WORKER_THREADS
    discarded = [record.getMessage() for record in caplog.records if "pool is full" in record.getMessage()]
    assert discarded == []
    assert kube._api("core").api_client.configuration.connection_pool_maxsize >= WORKER_THREADS


def run_document(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "tempsweep.io/v1alpha1",
            "kind": "CleanupRun",
            "metadata": {"name": name},
            "spec": {"policyRef": {"name": "p"}, "type": "Orphaned"},
        }
    )


def test_a_status_write_bound_to_a_deleted_run_never_lands_on_its_successor(
    kube: Kube, kubectl: Kubectl, namespace: str, tempsweep_crds: tuple[str, ...]
) -> None:
    """A merge patch's metadata.uid is ignored on a status subresource: the binding must hold anyway."""
    kubectl("apply", "-f", "-", input=run_document("r"), namespace=namespace)
    old = json.loads(kubectl("get", "cleanuprun", "r", "-o", "json", namespace=namespace).stdout)["metadata"]["uid"]
    kubectl("delete", "cleanuprun", "r", namespace=namespace)
    kubectl("apply", "-f", "-", input=run_document("r"), namespace=namespace)

    def status() -> dict[str, object]:
        body = json.loads(kubectl("get", "cleanuprun", "r", "-o", "json", namespace=namespace).stdout)
        return dict(body.get("status") or {}) | {"uid": body["metadata"]["uid"]}

    new = str(status()["uid"])
    before_any = kube.patch_status(RUNS, namespace, "r", CleanupRunStatus(message="old, first"), uid=old)
    first = kube.patch_status(RUNS, namespace, "r", CleanupRunStatus(message="new", queue_position=2), uid=new)
    after = kube.patch_status(RUNS, namespace, "r", CleanupRunStatus(phase=RunPhase.CANCELLED), uid=old)
    again = kube.patch_status(RUNS, namespace, "r", CleanupRunStatus(queue_position=1), uid=new)

    assert (before_any, first, after, again) == (Written.GONE, Written.DONE, Written.GONE, Written.DONE)
    final = status()
    assert final["message"] == "new" and final["queuePosition"] == 1 and "phase" not in final
    assert kube.patch_status(RUNS, namespace, "gone", CleanupRunStatus(message="x"), uid=new) is Written.GONE
