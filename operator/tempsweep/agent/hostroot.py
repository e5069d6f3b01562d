"""Where the node's filesystem is in the agent's container: ``--host-root`` (default ``/``, the same paths).

A node-scoped policy names paths as they are on the node -- the path its batch pods mount with
``hostPath``. The shipped DaemonSet mounts each allowed root at the same path, so no translation is
needed; with ``--host-root /host`` (node-exporter's ``--path.rootfs`` pattern) the agent finds the node's
``/var/lib/x`` at ``/host/var/lib/x``. The tests use it to give each agent process its own directory as
its node's disk.

The admin's rules apply to the node path first, with the agent's own settings (allowed roots, namespace
roots, never ``/`` or a system path); only a path that passes is translated, and the translated path is
checked again against the translated roots before ``controller.runtime`` opens it, with the same
no-symlink, same-filesystem walk as everywhere.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from tempsweep.controller.runtime import PolicyNotReady
from tempsweep.models import OperatorSettings
from tempsweep.models.roots import volume_path_refusal


class HostRoot:
    """Translates node paths to the agent's view of them; the identity when the root is ``/``."""

    def __init__(self, root: str = "/") -> None:
        normal = os.path.normpath(root or "/")
        if not os.path.isabs(normal):
            raise ValueError(f"{root!r} is relative: the host root must be absolute")
        self.root = normal

    def path(self, node_path: str) -> str:
        return node_path if self.root == "/" else os.path.normpath(self.root + "/" + node_path.lstrip("/"))

    def settings(self, settings: OperatorSettings) -> OperatorSettings:
        """The settings with every root translated (what ``controller.runtime`` checks the translated path with)."""
        if self.root == "/":
            return settings
        roots = ":".join(self.path(str(root)) for root in settings.allowed_root_paths)
        namespaces = ",".join(
            f"{namespace}={':'.join(self.path(root) for root in owned)}"
            for namespace, owned in settings.namespace_root_paths.items()
        )
        return settings.model_copy(
            update={
                "temp_storage_path": type(settings.temp_storage_path)(self.path(str(settings.temp_storage_path))),
                "allowed_roots": roots,
                "namespace_roots": namespaces or None,
            }
        )

    def policy(self, body: Any, settings: OperatorSettings) -> dict[str, Any]:
        """The policy object with its volume path translated; PolicyNotReady when the node path is not allowed."""
        meta = body.get("metadata") or {}
        volume = ((body.get("spec") or {}).get("storage") or {}).get("volume")
        if not isinstance(volume, dict):
            return dict(body)
        node_path = str(volume.get("path") or settings.temp_storage_path)
        refusal = volume_path_refusal(node_path, str(meta.get("namespace") or "default"), settings)
        if refusal is not None:
            raise PolicyNotReady("PathNotAllowed", refusal)
        if self.root == "/":
            return dict(body)
        translated = copy.deepcopy(dict(body))
        translated["spec"]["storage"]["volume"]["path"] = self.path(node_path)
        return translated

