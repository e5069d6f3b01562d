"""What the engine knows about each scanned file: the jobs named on its path, and their states.

Job statuses are resolved in batches as the scan streams past (one ``lookup`` per
``LOOKUP_BATCH`` new ids, cached for the run), so a run makes a handful of queries, never one per
file, and never holds the whole tree in memory. Side-effect free apart from the job-source reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from tempsweep.engine.exclusion import exclusion_matcher
from tempsweep.engine.ownership import OwnershipReader
from tempsweep.engine.ports import FileEntry, JobRecord, JobSource, JobSourceError
from tempsweep.models.effective import EffectivePolicy
from tempsweep.models.statuses import MAX_UNRECOGNIZED_STATUSES, StatusClass, shown_status

LOOKUP_BATCH = 1000
#: at most this many files wait for their job's lookup (about 15 MB): memory stays bounded when jobs own
#: many files each, at the price of an extra lookup per this many files in that case
MAX_PENDING_FILES = 50 * LOOKUP_BATCH
#: near-miss paths listed in a run's status (all are counted)
NEAR_MISS_EXAMPLES = 5


class JobState(StrEnum):
    """A file's job as the rules see it. Only FINISHED, FAILED and UNKNOWN jobs' files may ever be orphans."""

    ACTIVE = "active"
    FAILED = "failed"
    FINISHED = "finished"
    UNKNOWN = "unknown"  # the table has no such job (the original service's orphan case)
    UNRECOGNIZED_STATUS = "unrecognizedStatus"  # the job exists, its status is in none of the lists: kept
    UNAVAILABLE = "unavailable"  # the job source could not be read: never delete on this basis


#: Jobs whose files no rule outside ChunkCompletion may delete.
KEPT_STATES = frozenset({JobState.ACTIVE, JobState.UNRECOGNIZED_STATUS, JobState.UNAVAILABLE})

_STATE_OF_CLASS = {
    StatusClass.ACTIVE: JobState.ACTIVE,
    StatusClass.FAILED: JobState.FAILED,
    StatusClass.FINISHED: JobState.FINISHED,
    StatusClass.UNRECOGNIZED: JobState.UNRECOGNIZED_STATUS,
}


@dataclass(slots=True, eq=False)
class Owner:
    """One job named on a file's path, with its state (None when the run did not look it up)."""

    job_id: str
    state: JobState | None = None
    record: JobRecord | None = None


@dataclass(slots=True, eq=False)
class ScannedFile:
    """A file with what the rules need to decide about it.

    ``owners`` are the jobs named on its path (see ``ownership``): none for a file without a job,
    more than one when its name and a directory name different jobs; a rule deletes a file only
    when every owner allows it. ``near_miss`` marks a path that looks like a job's but does not parse.
    """

    entry: FileEntry
    owners: tuple[Owner, ...] = ()
    near_miss: bool = False

    @property
    def job_id(self) -> str | None:
        """The first owner's id (the file name's job when it names one)."""
        return self.owners[0].job_id if self.owners else None


class JobResolver:
    """Caches job records for one run and turns them into states."""

    def __init__(self, policy: EffectivePolicy, source: JobSource | None) -> None:
        self._policy = policy
        self._source = source
        self._cache: dict[str, tuple[JobState, JobRecord | None]] = {}
        self.error: str | None = None
        #: distinct unrecognized statuses met (normalized), at most MAX_UNRECOGNIZED_STATUSES of them
        self.unrecognized: set[str] = set()

    def state_of(self, record: JobRecord | None) -> JobState:
        if record is None:
            return JobState.UNKNOWN
        state = _STATE_OF_CLASS[self._policy.rules.classify_status(record.status)]
        if state is JobState.UNRECOGNIZED_STATUS and len(self.unrecognized) < MAX_UNRECOGNIZED_STATUSES:
            self.unrecognized.add(shown_status(record.status))
        return state

    def resolve(self, job_ids: Iterable[str]) -> None:
        """Load the states of ids not seen yet, in batches; a failing source marks them unavailable."""
        missing = sorted({job_id for job_id in job_ids if job_id not in self._cache})
        if self._source is None:
            return
        for start in range(0, len(missing), LOOKUP_BATCH):
            batch = missing[start : start + LOOKUP_BATCH]
            try:
                found = self._source.lookup(batch)
            except JobSourceError as exc:
                self.error = self.error or str(exc)
                for job_id in batch:
                    self._cache[job_id] = (JobState.UNAVAILABLE, None)
                continue
            for job_id in batch:
                record = found.get(job_id)
                self._cache[job_id] = (self.state_of(record), record)

    def known(self, job_id: str) -> bool:
        """True when the job's state is already cached (no lookup needed)."""
        return job_id in self._cache

    def get(self, job_id: str) -> tuple[JobState, JobRecord | None]:
        return self._cache.get(job_id, (JobState.UNAVAILABLE, None))


class Inventory:
    """The scan as a stream of ScannedFiles: excluded files dropped (``exclusion``), job ids parsed, states resolved.

    Iterate it once. ``files_scanned`` and ``bytes_scanned`` count what went past (excluded files
    are not counted), so usage in capacity mode comes from the same single pass.
    """

    def __init__(
        self,
        entries: Iterable[FileEntry],
        policy: EffectivePolicy,
        resolver: JobResolver,
        *,
        resolve_jobs: bool = True,
    ) -> None:
        self._entries = entries
        self._policy = policy
        self._resolver = resolver
        self._resolve_jobs = resolve_jobs and policy.rules.has_job_source
        self.files_scanned = 0
        self.bytes_scanned = 0
        self.bytes_total = 0  # excluded and archived files included: they take space too
        self.archived_count = 0
        self.archived_bytes = 0
        self.near_miss_count = 0
        self.near_miss_examples: list[str] = []
        self._resolved: dict[tuple[str, ...], tuple[Owner, ...]] = {}
        self.unrecognized_files = 0  # files of jobs in an unrecognized status (all of them kept)

    def __iter__(self) -> Iterator[ScannedFile]:
        excluded = exclusion_matcher(self._policy.rules.exclude)
        reader = OwnershipReader(self._policy.rules.naming)
        include_archived = self._policy.rules.include_archived
        with_jobs = self._resolve_jobs
        count_near_misses = self._policy.rules.has_job_source  # an age-only policy does not read names
        resolver = self._resolver
        # Files whose jobs are not known yet wait here until LOOKUP_BATCH distinct new ids have gathered, so
        # the number of lookups follows the number of jobs, not the number of files.
        pending: list[tuple[FileEntry, tuple[str, ...]]] = []
        unresolved: set[str] = set()
        for entry in self._entries:
            self.bytes_total += entry.size
            if excluded is not None and excluded.excludes(entry.path):
                continue
            if entry.archived:
                self.archived_count += 1
                self.archived_bytes += entry.size
                if not include_archived:
                    continue
            self.files_scanned += 1
            self.bytes_scanned += entry.size
            job_ids, near_miss = reader.read(entry.path)
            if near_miss:
                if count_near_misses:
                    self.near_miss_count += 1
                    if len(self.near_miss_examples) < NEAR_MISS_EXAMPLES:
                        self.near_miss_examples.append(entry.path)
                # kept by every job rule whatever its owners' states: no lookup needed
                yield ScannedFile(entry, tuple(Owner(job_id) for job_id in job_ids), True)
            elif not job_ids:
                yield ScannedFile(entry)
            elif not with_jobs:
                yield ScannedFile(entry, tuple(Owner(job_id) for job_id in job_ids))
            elif (owners := self._resolved.get(job_ids)) is not None:
                yield self._owned(entry, owners)
            elif all(resolver.known(job_id) for job_id in job_ids):
                yield self._owned(entry, self._owners(job_ids))
            else:
                pending.append((entry, job_ids))
                unresolved.update(job_id for job_id in job_ids if not resolver.known(job_id))
                if len(unresolved) >= LOOKUP_BATCH or len(pending) >= MAX_PENDING_FILES:
                    yield from self._flush(pending, unresolved)
                    pending, unresolved = [], set()
        yield from self._flush(pending, unresolved)

    def _owned(self, entry: FileEntry, owners: tuple[Owner, ...]) -> ScannedFile:
        """A file with resolved owners, counted when one of them is in an unrecognized status."""
        if any(owner.state is JobState.UNRECOGNIZED_STATUS for owner in owners):
            self.unrecognized_files += 1
        return ScannedFile(entry, owners)

    def _owners(self, job_ids: tuple[str, ...]) -> tuple[Owner, ...]:
        """The resolved owners of a combination of ids, made once per run (files share them: read-only)."""
        owners = self._resolved.get(job_ids)
        if owners is None:
            owners = tuple(Owner(job_id, *self._resolver.get(job_id)) for job_id in job_ids)
            self._resolved[job_ids] = owners
        return owners

    def _flush(
        self, pending: list[tuple[FileEntry, tuple[str, ...]]], unresolved: set[str]
    ) -> Iterator[ScannedFile]:
        if unresolved:
            self._resolver.resolve(unresolved)
        for entry, job_ids in pending:
            yield self._owned(entry, self._owners(job_ids))
