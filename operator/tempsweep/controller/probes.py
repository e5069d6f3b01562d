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


class TimerStale(RuntimeError):
    """A policy's timer has not succeeded for too long."""


class TimerFreshness:
    """When each policy's timer last ticked and succeeded, keyed ``namespace/name``."""

    def __init__(self) -> None:
        self._last: dict[str, dict[str, str]] = {}
        self._seen: dict[str, datetime] = {}
        self._busy: dict[str, datetime] = {}
        self._guard = threading.Lock()

    def record(self, key: str, what: str, when: datetime) -> None:
        with self._guard:
            self._last.setdefault(key, {})[what] = when.isoformat()
            if what == "tick" or key not in self._seen:
                self._seen[key] = when

    @contextmanager
    def busy(self, key: str) -> Iterator[None]:
        """Mark a policy's timer as working; when the work ends the timer counts as freshly seen."""
        with self._guard:
            self._busy[key] = datetime.now(UTC)
        try:
            yield
        finally:
            with self._guard:
                self._busy.pop(key, None)
                if key in self._seen:
                    self._seen[key] = datetime.now(UTC)

    def forget(self, key: str) -> None:
        with self._guard:
            self._last.pop(key, None)
            self._seen.pop(key, None)

    def report(self, *, stale_after_seconds: float) -> dict[str, Any]:
        now = datetime.now(UTC)
        with self._guard:
            stale = [
                key
                for key, when in self._seen.items()
                if key not in self._busy and (now - when).total_seconds() > stale_after_seconds
            ]
            snapshot = {key: dict(value) for key, value in self._last.items()}
            for key, since in self._busy.items():
                if key in snapshot:
                    snapshot[key]["busySince"] = since.isoformat()
        if stale:
            raise TimerStale(f"no successful timer tick for {', '.join(sorted(stale))}")
        return snapshot
