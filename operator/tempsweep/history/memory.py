"""An in-memory history recorder for tests: the runs it was given, in order."""

from __future__ import annotations

from tempsweep.models.status import RunStatus


class MemoryHistory:
    """Keeps ``(run_name, status)`` pairs."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, RunStatus]] = []

    def record(self, run_name: str, status: RunStatus) -> str | None:
        self.rows.append((run_name, status))
        return None
