"""An in-memory job source for engine tests and demos; counts queries like the SQL one does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tempsweep.engine.ports import JobCounts, JobRecord, JobSourceError
from tempsweep.models.statuses import normalize_status, normalized_set


class MemoryJobSource:
    """Job records in a dict; ``unavailable = True`` makes every call fail like a dead database."""

    def __init__(
        self,
        records: Iterable[JobRecord] = (),
        *,
        active_statuses: Iterable[str] = ("pending", "running"),
        failed_statuses: Iterable[str] = ("failed", "cancelled", "error"),
    ) -> None:
        self.records = {record.job_id: record for record in records}
        # compared like the policy compares them: ignoring case and surrounding whitespace
        self.active_statuses = normalized_set(active_statuses)
        self.failed_statuses = normalized_set(failed_statuses)
        self.unavailable = False
        self.lookups: list[int] = []
        self._queries = 0

    @property
    def query_count(self) -> int:
        return self._queries

    def _query(self) -> None:
        if self.unavailable:
            raise JobSourceError("job database unreachable (simulated)")
        self._queries += 1

    def lookup(self, job_ids: Sequence[str]) -> Mapping[str, JobRecord]:
        self._query()
        self.lookups.append(len(job_ids))
        return {job_id: self.records[job_id] for job_id in job_ids if job_id in self.records}

    def failed_jobs(self) -> Sequence[JobRecord]:
        self._query()
        return [
            record for record in self.records.values() if normalize_status(record.status) in self.failed_statuses
        ]

    def counts(self) -> JobCounts:
        self._query()
        statuses = [normalize_status(record.status) for record in self.records.values()]
        return JobCounts(
            active=sum(status in self.active_statuses for status in statuses),
            failed=sum(status in self.failed_statuses for status in statuses),
        )
