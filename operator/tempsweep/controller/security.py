"""Which paths a policy may clean: the cluster admin's decision (allowed roots), not the policy author's."""

from __future__ import annotations

import os
from collections.abc import Iterable


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
