"""The few Kubernetes API calls the operator makes itself (Kopf handles watching and its own patches).

The official client is synchronous; every function here is called from Kopf's sync handlers, which
run in worker threads, so the event loop and the watches never wait on them.
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

from tempsweep.models.base import WireModel
from tempsweep.models.documents import GROUP, VERSION
from tempsweep.models.resources import status_patch

log = logging.getLogger(__name__)

#: Kopf's worker threads for sync handlers; the Kubernetes client's connection pool is at least this large,
#: so a thread never waits for a connection another one holds (nor is a connection thrown away after use).
WORKER_THREADS = 16


class NotFound(LookupError):
    """The object does not exist (or is not visible to the operator)."""


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


class Kube:
    """The API clients, configured on first use (in-cluster, else the kubeconfig); one per operator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def _api(self, kind: str) -> Any:
        with self._lock:
            if not self._clients:
                import kubernetes

                configuration = kubernetes.client.Configuration()
                try:
                    kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                except kubernetes.config.ConfigException:
                    kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                # The default pool is cpu_count * 5 (10 on two cores): fewer than Kopf's worker threads.
                configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, WORKER_THREADS)
                client = kubernetes.client.ApiClient(configuration)
                self._clients["client"] = client
                self._clients["custom"] = kubernetes.client.CustomObjectsApi(client)
                self._clients["core"] = kubernetes.client.CoreV1Api(client)
            return self._clients[kind]

    def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        """The decoded value of one key; NotFound names the secret and key, never the value."""
        from kubernetes.client.exceptions import ApiException

        try:
            secret = self._api("core").read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if _not_found(exc):
                raise NotFound(f"secret {namespace}/{name} not found") from None
            raise NotFound(f"secret {namespace}/{name} cannot be read: {exc.status} {exc.reason}") from None
        data = secret.data or {}
        if key not in data:
            raise NotFound(f"secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode("utf-8").strip()

    def _get_custom(self, plural: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            body: dict[str, Any] = self._api("custom").get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if _not_found(exc):
                raise NotFound(f"{kind} {name!r} not found in namespace {namespace}") from None
            raise
        return body

    def get_policy(self, namespace: str, name: str) -> dict[str, Any]:
        return self._get_custom("cleanuppolicies", "CleanupPolicy", namespace, name)

    def get_run(self, namespace: str, name: str) -> dict[str, Any]:
        return self._get_custom("cleanupruns", "CleanupRun", namespace, name)

    def patch_status(self, plural: str, namespace: str, name: str, status: WireModel) -> None:
        """Merge-patch the status subresource with ``status_patch(status)`` (nothing when it is empty); a
        failure is logged (the object may be gone), never raised."""
        from kubernetes.client.exceptions import ApiException

        patch = status_patch(status)
        if not patch:
            return
        try:
            self._api("custom").patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, {"status": patch}
            )
        except ApiException as exc:
            if not _not_found(exc):
                log.warning(
                    "status patch of %s %s/%s failed: %s %s", plural, namespace, name, exc.status, exc.reason
                )

    def delete_run(self, namespace: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._api("custom").delete_namespaced_custom_object(GROUP, VERSION, namespace, "cleanupruns", name)
        except ApiException as exc:
            if not _not_found(exc):
                raise
