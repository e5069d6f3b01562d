"""The one status writer: each object's status is written through a ``StatusWriter`` and nothing else.

A handler builds one status model for what it learned (``PolicyStatus`` or ``CleanupRunStatus``),
and the writer sends it; it becomes a merge patch (``status_patch``) only at the API call. Writing through the API
rather than through Kopf's ``patch`` keeps a failed write from stopping a timer for good (Kopf #642)
and lets a CleanupRun report progress while its handler is still running.

The writer carries the object's uid, so a uid precondition (a write that must not land on a newer
object of the same name, issue 14) is a change here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tempsweep.controller.kube import Kube
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

    def write(self, status: WireModel) -> None:
        """Send ``status`` as a merge patch (``status_patch`` in ``Kube.patch_status``: one serialiser)."""
        self.kube.patch_status(self.ref.plural, self.ref.namespace, self.ref.name, status)
