"""Cleanup history: where finished runs are recorded (``tempsweep.engine.ports.HistoryRecorder``).

A port of its own beside the job source: job status is read, history is written, and a policy may
have either without the other. ``open_history`` gives the policy's recorder, or None.
"""

from __future__ import annotations

from tempsweep.engine.ports import HistoryRecorder
from tempsweep.history.memory import MemoryHistory
from tempsweep.models.effective import Backend

__all__ = ["MemoryHistory", "open_history"]


def open_history(backend: Backend, policy_name: str, namespace: str | None = None) -> HistoryRecorder | None:
    """The recorder for ``jobs.database.historyTable`` when the policy has one (and a URL to write to)."""
    database = backend.database
    if database is None or not database.history_table or not backend.database_url:
        return None
    from tempsweep.history.sql import SqlHistory

    return SqlHistory(database, backend.database_url, policy_name, namespace)
