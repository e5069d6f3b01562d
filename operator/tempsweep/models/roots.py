"""Which paths a policy may clean: the admin's decision (allowed roots), not the policy author's.

Pure string checks, here in ``models`` so the operator (``controller.runtime``) and the offline CLI apply
the same rule with the same message. Two settings decide: ``TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS`` bounds every policy,
and ``TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS`` reserves roots for namespaces. A root reserved for one
namespace is closed to every other, a listed namespace may use only its own roots, and a path
belongs to the namespace of the longest reserved root containing it. ``/`` and system paths are
never cleaned and never count as roots, whatever the settings list.

These checks are on path strings. What is on disk (symlinks, mount points) is the volume
provider's job: it opens the root without following any symlink and never leaves its mount.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from tempsweep.models.paths import check_volume_path
from tempsweep.models.settings import OperatorSettings

FIELD = "spec.storage.volume.path"


def within_allowed_roots(path: str, roots: Iterable[str | os.PathLike[str]]) -> bool:
    """True when the normalised ``path`` is one of ``roots`` or lies beneath one (no '..' tricks)."""
    candidate = os.path.normpath(path)
    if not os.path.isabs(candidate) or ".." in path.split("/"):
        return False
    for root in roots:
        base = os.path.normpath(os.fspath(root))
        if not os.path.isabs(base):
            continue
        if candidate == base or candidate.startswith(base.rstrip("/") + "/"):
            return True
    return False


def _usable_root(root: str) -> bool:
    """Relative roots, roots with '..', ``/`` and system paths grant nothing."""
    try:
        check_volume_path(root)
    except ValueError:
        return False
    return True


def _owner(path: str, namespace_roots: Mapping[str, tuple[str, ...]]) -> str | None:
    """The namespace whose reserved root is the longest one containing ``path``, if any."""
    best: tuple[int, str] | None = None
    for namespace, roots in namespace_roots.items():
        for root in roots:
            if within_allowed_roots(path, [root]) and (best is None or len(root) > best[0]):
                best = (len(root), namespace)
    return best[1] if best else None


def volume_path_refusal(
    path: str, namespace: str, settings: OperatorSettings, *, field: str = FIELD
) -> str | None:
    """None when a policy in ``namespace`` may clean ``path``; otherwise why not, fit for status and events.

    The message names the policy's own namespace roots but never another namespace's. ``field`` is what
    the message calls the path (the CLI says ``--path`` when the path came from there).
    """
    try:
        normal = check_volume_path(path)
    except ValueError as exc:
        return f"{field}: {exc}"
    configured = [os.fspath(root) for root in settings.allowed_root_paths]
    roots = [root for root in configured if _usable_root(root)]
    if not within_allowed_roots(normal, roots):
        ignored = [root for root in configured if root not in roots]
        note = f"; {', '.join(ignored)} never count as roots (system or relative paths)" if ignored else ""
        return (
            f"{field} {normal} is not under an allowed root ({':'.join(roots) or 'none'}); "
            f"TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS decides{note}"
        )
    reserved = settings.namespace_root_paths
    own = reserved.get(namespace)
    owner = _owner(normal, reserved)
    if owner == namespace or (owner is None and own is None):
        return None
    decides = "TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS decides"
    if owner is None:
        assert own is not None
        return f"{field} {normal} is not under the roots of namespace {namespace} ({':'.join(own)}); {decides}"
    yours = f" (namespace {namespace} may use {':'.join(own)})" if own else ""
    return f"{field} {normal} is under a root reserved for another namespace{yours}; {decides}"
