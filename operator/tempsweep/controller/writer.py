"""The one status writer: each object's status is written through a ``StatusWriter`` and nothing else.

A handler builds one status model for what it learned (``PolicyStatus`` or ``CleanupRunStatus``),
and the writer sends it; it becomes a merge patch (``status_patch``) only at the API call. Writing through the API
rather than through Kopf's ``patch`` keeps a failed write from stopping a timer for good (Kopf #642)
and lets a CleanupRun report progress while its handler is still running.

The writer carries the object's uid and every write is bound to it: a write meant for a deleted object
never lands on a newer object of the same name (the API server refuses it; ``Written.GONE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tempsweep.controller.kube import Kube, Written
from tempsweep.models.base import WireModel

POLICIES, RUNS = "cleanuppolicies", "cleanupruns"


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
        bound to the object's uid when the reference has one; best effort, never raises."""
        return self.kube.patch_status(
            self.ref.plural,
            self.ref.namespace,
            self.ref.name,
            status,
            uid=self.ref.uid,
            resource_version=resource_version,
        )
