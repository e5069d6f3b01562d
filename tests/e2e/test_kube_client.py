"""The operator's own Kubernetes client (tempsweep.controller.kube) against the real API server.

Kopf runs sync handlers on WORKER_THREADS threads, and each may call the client at the same moment. With a
connection pool smaller than that (the client's default is cpu_count * 5: 10 on two cores), urllib3 opens
extra connections and throws them away after use, logging "Connection pool is full" for each.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kubernetes.config import kube_config

from support.controlplane import ControlPlane, Kubectl
from tempsweep.controller.kube import WORKER_THREADS, Kube

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
