"""The one status writer: each object's status is written through a ``StatusWriter`` and nothing else.

A handler builds one status model for what it learned (``PolicyStatus`` or ``CleanupRunStatus``),
and the writer sends it; it becomes a merge patch (``status_patch``) only at the API call. Writing through the API
rather than through Kopf's ``patch`` keeps a failed write from stopping a timer for good (Kopf #642)
and lets a CleanupRun report progress while its handler is still running.

A policy's conditions are set per type on the latest object (``write`` reads it, and writes with its
resourceVersion, again on a conflict): a status part carries only the conditions its writer decided, so
the create handler and a timer tick that judged from an older status never drop each other's conditions
(a merge patch replaces a list whole; a tick's stale write once removed the create handler's
StorageHealthy, and could remove a Ready=False the same way).

The writer carries the object's uid and every write is bound to it: a write meant for a deleted object
never lands on a newer object of the same name (the API server refuses it; ``Written.GONE``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tempsweep.controller.conditions import read_conditions, set_condition
from tempsweep.controller.kube import Kube, NotFound, Written
from tempsweep.models.base import WireModel

log = logging.getLogger(__name__)

POLICIES, RUNS = "cleanuppolicies", "cleanupruns"

#: Conflicting writers of one policy are two or three (create handler, tick, a run's summary): a few
#: rounds settle it; past them the write is reported as a conflict, as any failed write is.
MERGE_ATTEMPTS = 5


@dataclass(frozen=True)
class ObjectRef:
    """Which object: plural, namespace, name and uid."""

    plural: str
    namespace: str
    name: str
    uid: str = ""

    @classmethod
    def of(cls, plural: str, meta: Any) -> ObjectRef:
        """From an object's metadata (Kopf's ``meta`` or a body's ``metadata``)."""
        return cls(plural, meta.get("namespace") or "default", meta.get("name") or "?", str(meta.get("uid") or ""))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class StatusWriter:
    """Writes the status of one object."""

    kube: Kube
    ref: ObjectRef

    def write(self, status: WireModel, *, resource_version: str = "") -> Written:
        """Send ``status`` as a merge patch (``status_patch`` in ``Kube.patch_status``: one serialiser),
        bound to the object's uid when the reference has one; best effort, never raises. A policy's
        conditions are merged per type into the latest object's (``_merged``)."""
        if self.ref.plural == POLICIES and not resource_version and getattr(status, "conditions", None):
            return self._merged(status)
        return self._patch(status, resource_version)

    def _merged(self, status: WireModel) -> Written:
        """Set each condition of ``status`` on the latest object's conditions (the others kept as the API
        server has them), written only if nobody wrote since it was read."""
        outcome = Written.CONFLICT
        for _ in range(MERGE_ATTEMPTS):
            try:
                latest = self.kube.get_policy(self.ref.namespace, self.ref.name)
            except NotFound:
                return Written.GONE
            except Exception as exc:  # an outage: the caller's next event or tick tries again
                log.warning("status read of %s failed: %s: %s", self.ref.key, type(exc).__name__, exc)
                return Written.FAILED
            meta = latest.get("metadata") or {}
            if self.ref.uid and meta.get("uid") != self.ref.uid:
                return Written.GONE
            conditions = read_conditions((latest.get("status") or {}).get("conditions"))
            for item in getattr(status, "conditions", None) or []:
                conditions = set_condition(conditions, item)
            merged = status.model_copy(update={"conditions": conditions})
            outcome = self._patch(merged, str(meta.get("resourceVersion") or ""))
            if outcome is not Written.CONFLICT:
                return outcome
        log.warning("status of %s not written: %d conflicting writes in a row", self.ref.key, MERGE_ATTEMPTS)
        return outcome

    def _patch(self, status: WireModel, resource_version: str) -> Written:
        return self.kube.patch_status(
            self.ref.plural,
            self.ref.namespace,
            self.ref.name,
            status,
            uid=self.ref.uid,
            resource_version=resource_version,
        )
