"""Timer freshness for the liveness probe: a timer that silently stopped must make the pod unhealthy."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

_last: dict[str, dict[str, str]] = {}
_seen: dict[str, datetime] = {}
_guard = threading.Lock()


class TimerStale(RuntimeError):
    """A policy's timer has not succeeded for too long."""


def record(namespace: str, name: str, what: str, when: datetime) -> None:
    key = f"{namespace}/{name}"
    with _guard:
        _last.setdefault(key, {})[what] = when.isoformat()
        if what == "tick" or key not in _seen:
            _seen[key] = when


def forget(namespace: str, name: str) -> None:
    key = f"{namespace}/{name}"
    with _guard:
        _last.pop(key, None)
        _seen.pop(key, None)


def report(*, stale_after_seconds: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    with _guard:
        stale = [key for key, when in _seen.items() if (now - when).total_seconds() > stale_after_seconds]
        snapshot = {key: dict(value) for key, value in _last.items()}
    if stale:
        raise TimerStale(f"no successful timer tick for {', '.join(sorted(stale))}")
    return snapshot
