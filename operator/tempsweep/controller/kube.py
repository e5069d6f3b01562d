"""The few Kubernetes API calls the operator makes itself (Kopf handles watching and its own patches).

The official client is synchronous; every function here is called from Kopf's sync handlers, which
run in worker threads, so the event loop and the watches never wait on them.
"""

from __future__ import annotations

import base64
import enum
import logging
import threading
from typing import Any

from tempsweep.models.base import WireModel
from tempsweep.models.documents import GROUP, VERSION
from tempsweep.models.resources import status_patch

log = logging.getLogger(__name__)

#: Every call the operator makes gives up after this long (connect, read): during an API outage a thread
#: must come back with an error, not wait on a half-open connection while the liveness probe or a
#: cancellation waits for it.
REQUEST_TIMEOUT = (5.0, 30.0)

#: Kopf's worker threads for sync handlers.
WORKER_THREADS = 16
#: The Kubernetes client's connection pool: Kopf's workers plus the operator's own threads that call the API
#: (each storage's queue thread and finisher, the queue's position refresher and cancellation recorder, a
#: lease renewer per executing run, the shard Lease loop and shard catch-up reads), so a connection is not
#: thrown away after use ("Connection pool is full") in a burst.
CLIENT_CONNECTIONS = 2 * WORKER_THREADS


class NotFound(LookupError):
    """The object does not exist (or is not visible to the operator)."""


class Written(enum.Enum):
    """What became of a status write."""

    DONE = "done"
    GONE = "gone"  # the object is gone, or replaced by a new one of the same name (another uid)
    CONFLICT = "conflict"  # the resourceVersion precondition failed: someone wrote first
    FAILED = "failed"  # the API server did not take it (outage, timeout, a 5xx, 429); worth retrying
    REFUSED = "refused"  # any other 4xx: the same write would be refused again


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
                # The default pool is cpu_count * 5 (10 on two cores): fewer than the threads that use it.
                configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, CLIENT_CONNECTIONS)
                client = kubernetes.client.ApiClient(configuration)
                self._clients["client"] = client
                self._clients["custom"] = kubernetes.client.CustomObjectsApi(client)
                self._clients["core"] = kubernetes.client.CoreV1Api(client)
                self._clients["coordination"] = kubernetes.client.CoordinationV1Api(client)
            return self._clients[kind]

    def coordination(self) -> Any:
        """The coordination.k8s.io/v1 API (shard Leases: ``leases``)."""
        return self._api("coordination")

    def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        """The decoded value of one key; NotFound names the secret and key, never the value."""
        from kubernetes.client.exceptions import ApiException

        try:
            secret = self._api("core").read_namespaced_secret(name, namespace, _request_timeout=REQUEST_TIMEOUT)
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
                GROUP, VERSION, namespace, plural, name, _request_timeout=REQUEST_TIMEOUT
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

    def patch_status(
        self, plural: str, namespace: str, name: str, status: WireModel, *, uid: str = "", resource_version: str = ""
    ) -> Written:
        """Patch the status subresource with ``status_patch(status)`` (nothing when it is empty).

        ``resource_version`` makes it conditional on nobody having written since (a claim): a merge patch
        carrying it, which the API server refuses (409) for any other version, hence any other object.
        ``uid`` binds the write to one object, so a deleted run's last words never land on its successor.
        A ``metadata.uid`` in a merge patch does not do that on a status subresource (the API server
        replaces the patch's metadata with the stored object's before checking it: measured, the write of
        a deleted run landed on the new run of that name), so a uid-bound write is a JSON patch whose
        first operation tests ``/metadata/uid`` and whose others set each top-level status key (``add``
        replaces a key or adds it; a null is pruned by the structural schema, as in a merge patch). Never
        raises: a failure is logged and returned, and the caller decides whether it is worth another try.
        """
        patch = status_patch(status)
        if not patch:
            return Written.DONE
        if uid and not resource_version:
            return self._patch_bound(plural, namespace, name, patch, uid)
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return self._patch(plural, namespace, name, body)

    def _patch(self, plural: str, namespace: str, name: str, body: Any, content_type: str | None = None) -> Written:
        try:
            self._api("custom").patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                body,
                _request_timeout=REQUEST_TIMEOUT,
                _content_type=content_type,
            )
        except Exception as exc:  # an ApiException, or a connection error of urllib3 during an outage
            outcome = _write_failure(exc)
            if outcome in (Written.FAILED, Written.REFUSED) and not (content_type and outcome is Written.REFUSED):
                log.warning("status patch of %s %s/%s failed: %s", plural, namespace, name, _describe(exc))
            return outcome
        return Written.DONE

    def _patch_bound(self, plural: str, namespace: str, name: str, patch: dict[str, Any], uid: str) -> Written:
        """The status keys of ``patch``, written only if the object called ``name`` is still ``uid``."""
        operations = [{"op": "test", "path": "/metadata/uid", "value": uid}]
        operations += [
            {"op": "add", "path": f"/status/{_pointer(key)}", "value": value} for key, value in patch.items()
        ]
        for _ in range(3):
            outcome = self._patch(plural, namespace, name, operations, "application/json-patch+json")
            if outcome is not Written.REFUSED:
                return outcome
            # 422 says only that an operation failed: another uid, no status yet, or a value the schema refuses
            try:
                current = self._get_custom(plural, plural, namespace, name)
            except NotFound:
                return Written.GONE
            except Exception:
                return Written.FAILED
            meta = current.get("metadata") or {}
            if meta.get("uid") != uid:
                return Written.GONE
            if "status" in current:  # the value itself was refused: the same write would be refused again
                log.warning("status patch of %s %s/%s refused: %s", plural, namespace, name, sorted(patch))
                return Written.REFUSED
            # the object's first status: a merge patch conditional on the version just read (this very object);
            # a conflict means someone wrote first (another first status): then the JSON patch applies
            version = meta.get("resourceVersion")
            first = self._patch(plural, namespace, name, {"metadata": {"resourceVersion": version}, "status": patch})
            if first is not Written.CONFLICT:
                return first
        return Written.FAILED

    def delete_run(self, namespace: str, name: str, *, uid: str = "") -> None:
        """Delete a CleanupRun; with ``uid``, only that object (a new run of the same name is left alone)."""
        import kubernetes
        from kubernetes.client.exceptions import ApiException

        options = kubernetes.client.V1DeleteOptions(preconditions=kubernetes.client.V1Preconditions(uid=uid or None))
        try:
            self._api("custom").delete_namespaced_custom_object(
                GROUP, VERSION, namespace, "cleanupruns", name, body=options, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone, or the name belongs to another run now
                raise


def _pointer(key: str) -> str:
    """A JSON pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _write_failure(exc: Exception) -> Written:
    status = getattr(exc, "status", None)
    if status == 404:
        return Written.GONE
    if status == 409:
        # a uid precondition names "UID in precondition"; anything else is a resourceVersion conflict
        return Written.GONE if "UID in precondition" in str(getattr(exc, "body", "") or exc) else Written.CONFLICT
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        return Written.REFUSED
    return Written.FAILED


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status is not None:
        return f"{status} {getattr(exc, 'reason', '')}".strip()
    return f"{type(exc).__name__}: {exc}"[:300]
