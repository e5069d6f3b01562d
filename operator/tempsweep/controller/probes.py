"""Timer freshness for the liveness probe: a timer that silently stopped must make the pod unhealthy.

A timer that is busy (a scheduled cleanup of a big volume can take many minutes) has not stopped: it
is reported with ``busySince`` and is not stale, so the probe never kills an operator in the middle
of honest work -- a restart would only start that work again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_last: dict[str, dict[str, str]] = {}
_seen: dict[str, datetime] = {}
_busy: dict[str, datetime] = {}
_guard = threading.Lock()


class TimerStale(RuntimeError):
    """A policy's timer has not succeeded for too long."""


def record(namespace: str, name: str, what: str, when: datetime) -> None:
    key = f"{namespace}/{name}"
    with _guard:
        _last.setdefault(key, {})[what] = when.isoformat()
        if what == "tick" or key not in _seen:
            _seen[key] = when


@contextmanager
def busy(namespace: str, name: str) -> Iterator[None]:
    """Mark a policy's timer as working; when the work ends the timer counts as freshly seen."""
    key = f"{namespace}/{name}"
    with _guard:
        _busy[key] = datetime.now(UTC)
    try:
        yield
    finally:
        with _guard:
            _busy.pop(key, None)
            if key in _seen:
                _seen[key] = datetime.now(UTC)


def forget(namespace: str, name: str) -> None:
    key = f"{namespace}/{name}"
    with _guard:
        _last.pop(key, None)
        _seen.pop(key, None)


def report(*, stale_after_seconds: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    with _guard:
        stale = [
            key
            for key, when in _seen.items()
            if key not in _busy and (now - when).total_seconds() > stale_after_seconds
        ]
        snapshot = {key: dict(value) for key, value in _last.items()}
        for key, since in _busy.items():
            if key in snapshot:
                snapshot[key]["busySince"] = since.isoformat()
    if stale:
        raise TimerStale(f"no successful timer tick for {', '.join(sorted(stale))}")
    return snapshot
