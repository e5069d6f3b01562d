"""Where a path really lies: its filesystem and its path inside that filesystem, through bind mounts.

Why: the audit directory must lie outside the cleaned volume, and resolving symlinks is not enough -- the
same directory can be mounted twice (a bind mount, a volume mounted again with a subPath), so
``/audit`` may be ``/data/tmp/records`` under another name. Linux says, for every mount, which device it
is and which directory of that device it shows (``/proc/self/mountinfo``, fields 3 and 4); with that, a
path becomes (device, path inside the device), and two such places compare exactly.

Best effort where there is no ``/proc`` (a CLI on another system): None, and the caller keeps its other
checks (the lexical one and the resolved symlinks).
"""

from __future__ import annotations

import os
import posixpath
import re

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes a space, tab, newline and backslash in a path as ``\\040`` and so on."""
    return _OCTAL.sub(lambda found: chr(int(found.group(1), 8)), field)


def _inside(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def device_location(path: str, mountinfo: str = MOUNTINFO) -> tuple[str, str] | None:
    """(``major:minor``, the path inside that device) for ``path`` with its symlinks resolved; None when
    the mount table cannot be read or does not cover it."""
    real = os.path.realpath(path)
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as table:
            lines = table.read().splitlines()
    except OSError:
        return None
    best: tuple[str, str, str] | None = None  # mount point, device, root shown there
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        device, root, point = fields[2], _unescape(fields[3]), _unescape(fields[4])
        # the longest mount point above the path; of equal ones the last listed is on top
        if _inside(real, point) and (best is None or len(point) >= len(best[0])):
            best = (point, device, root)
    if best is None:
        return None
    point, device, root = best
    below = posixpath.relpath(real, point)
    return device, posixpath.normpath(posixpath.join(root, below)) if below != "." else root
