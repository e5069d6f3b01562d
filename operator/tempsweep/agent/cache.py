"""The agent's local copy of the policies and runs: list once, then watch, and list afresh every few minutes.

Every node runs an agent, so an agent that listed everything each tick would cost the API server one list
per node per tick. Instead each kind is listed once and then followed with a watch (one thread per kind
and namespace); the watch is closed by the API server after ``RELIST_SECONDS`` and the kind is listed
afresh, which also bounds how stale the copy can get if events were missed. A watch that fails (an
outage, 410 Gone) is followed by a new list after a short wait.

Fail closed: until every kind has been listed once, ``objects`` is None and the agent acts on nothing.
A run is read again from the API server before it is executed (``runs``); the copy decides only what to
look at.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tempsweep.controller.kube import REQUEST_TIMEOUT, Kube
from tempsweep.models import GROUP, VERSION

log = logging.getLogger("tempsweep.agent")

#: The API server ends each watch after this long; the kind is then listed afresh.
RELIST_SECONDS = 300
#: The wait after a failed list or watch before the next list.
RETRY_SECONDS = 2.0


class ObjectCache:
    """The objects of one plural in some namespaces (all when none), keyed by uid, kept current by watches."""

    def __init__(self, kube: Kube, plural: str, namespaces: list[str], stopping: threading.Event) -> None:
        self._kube, self._plural, self._stopping = kube, plural, stopping
        self._scopes: list[str | None] = list(namespaces) or [None]
        self._objects: dict[str | None, dict[str, dict[str, Any]]] = {}
        self._guard = threading.Lock()

    def start(self) -> None:
        for scope in self._scopes:
            name = f"watch-{self._plural}-{scope or 'all'}"
            threading.Thread(target=self._follow, args=(scope,), name=name, daemon=True).start()

    def objects(self) -> list[dict[str, Any]] | None:
        """Every object known now; None until each namespace has been listed once."""
        with self._guard:
            if len(self._objects) < len(self._scopes):
                return None
            return [body for scope in self._objects.values() for body in scope.values()]

    def _calls(self, scope: str | None) -> tuple[Any, tuple[Any, ...]]:
        api = self._kube._api("custom")
        if scope is None:
            return api.list_cluster_custom_object, (GROUP, VERSION, self._plural)
        return api.list_namespaced_custom_object, (GROUP, VERSION, scope, self._plural)

    def _follow(self, scope: str | None) -> None:
        import kubernetes

        while not self._stopping.is_set():
            try:
                call, args = self._calls(scope)
                listing = call(*args, _request_timeout=REQUEST_TIMEOUT)
                with self._guard:
                    self._objects[scope] = {_uid(body): body for body in listing.get("items") or []}
                version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                stream = kubernetes.watch.Watch().stream(  # type: ignore[no-untyped-call]
                    call,
                    *args,
                    resource_version=version,
                    timeout_seconds=RELIST_SECONDS,
                    _request_timeout=(REQUEST_TIMEOUT[0], RELIST_SECONDS + 30),
                )
                for event in stream:
                    self._apply(scope, event)
                    if self._stopping.is_set():
                        return
            except Exception as exc:  # an outage or 410 Gone: list afresh after a short wait
                log.debug("following %s: %s: %s; listing again", self._plural, type(exc).__name__, exc)
                self._stopping.wait(RETRY_SECONDS)

    def _apply(self, scope: str | None, event: dict[str, Any]) -> None:
        body = event.get("object")
        if not isinstance(body, dict) or event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
            return
        with self._guard:
            known = self._objects.setdefault(scope, {})
            if event["type"] == "DELETED":
                known.pop(_uid(body), None)
            else:
                known[_uid(body)] = body


def _uid(body: dict[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("uid") or "")
