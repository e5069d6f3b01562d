"""A job source that cannot be read: every question fails with the reason it is unavailable.

This is how an outage reaches the engine (a database that does not answer, a secret that is
missing): not as a missing source patched onto results afterwards, but as a source that says so
whenever it is asked. The engine then keeps every file whose fate depends on job status and fails
the run with that reason, the same way in the CLI and in the operator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn

from tempsweep.engine.ports import JobCounts, JobRecord, JobSourceError


class UnavailableJobSource:
    """Answers every call with ``JobSourceError(message)``; ``reason`` is the condition reason."""

    def __init__(self, message: str, *, reason: str = "QueryFailed") -> None:
        self.message = message
        self.reason = reason

    @property
    def query_count(self) -> int:
        return 0

    def _fail(self) -> NoReturn:
        raise JobSourceError(self.message)

    def lookup(self, job_ids: Sequence[str]) -> Mapping[str, JobRecord]:
        self._fail()

    def failed_jobs(self) -> Sequence[JobRecord]:
        self._fail()

    def counts(self) -> JobCounts:
        self._fail()
