"""Which paths may be a volume at all: absolute, normalised, and never a system directory.

The operator's allowed roots (``tempsweep.models.roots``) narrow this further; this is the floor that
no setting can lower. Checks on path strings only: what is on disk is the volume provider's job.
"""

from __future__ import annotations

import posixpath

#: Paths no policy may clean, even when an administrator lists them as allowed roots.
SYSTEM_PATHS = frozenset(
    {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc", "/root",
     "/run", "/sbin", "/srv", "/sys", "/usr", "/var", "/var/lib", "/var/run", "/var/log", "/tmp"}
)
_SYSTEM_TREES = ("/proc", "/sys", "/dev", "/etc", "/boot", "/usr", "/bin", "/sbin", "/lib")


def check_volume_path(value: str) -> str:
    """An absolute, normalised path that is not a system directory."""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is relative: the volume path must be absolute")
    if "\x00" in value:
        raise ValueError("the volume path contains a NUL byte")
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} contains '..': write the path without parent references")
    normal = posixpath.normpath(value)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    in_system_tree = any(normal == tree or normal.startswith(tree + "/") for tree in _SYSTEM_TREES)
    if normal in SYSTEM_PATHS or in_system_tree:
        raise ValueError(f"{normal!r} is a system path and is never cleaned")
    return normal
