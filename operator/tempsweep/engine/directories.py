"""Which directories a run removes after its deletions: pure planning, like the rules for files.

A directory goes only when all of this holds (fail closed: any doubt keeps it):

* ``removeEmptyDirectories`` is on, the storage has real directories (a volume), and the scenario
  may remove directories at all: Orphaned, CrashRecovery and Scheduled may; ChunkCompletion never
  (its job is running and may write into them), Emergency never (directories free no space; the
  next scheduled run takes them).
* It is empty once this run's deletions are done: everything the scan counted in it (files,
  directories, symlinks, excluded or unreadable entries alike) was a file this phase deleted (or,
  in a dry run, would delete) or a directory this plan removes, bottom-up. A directory that was
  already empty when scanned must also be older than the orphan age (``orphans.maxAgeHours``).
* The scenario's own rule would delete a file with the directory's path and modification time:
  the same age, and the same job decision for the deepest job id in the path.
* With a job source, every job id found in the path's components (a name starting with the job
  pattern, or its directory form: ``job_41`` for ``job_{job_id}_``) is a job the table knows as
  finished or failed: never a directory of an active job, of a job the table does not know (it
  may be starting and about to write into it), or of one whose status could not be read. A
  component that starts like a job's name but does not parse keeps the directory, with or without
  a job source.

The scan must have listed the directory completely (the root, mount points, symlinks, locked,
excluded, unreadable and too-deep directories are never offered). The storage then re-checks each
one before its ``rmdir``, which itself refuses a directory that is no longer empty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from tempsweep.engine.applier import Applier
from tempsweep.engine.context import CleanupContext
from tempsweep.engine.inventory import JobResolver, JobState, Owner, ScannedFile
from tempsweep.engine.ports import DirectoryEntry, FileEntry, FilesystemStorage, Outcome
from tempsweep.engine.rules import Clock, Rule
from tempsweep.models.effective import EffectivePolicy

Allowed = Callable[[DirectoryEntry, bool], bool]
_REMOVABLE_JOB_STATES = frozenset({JobState.FINISHED, JobState.FAILED})


class PathJobs:
    """Job ids named by the components of directory paths, outermost first; None when a component only
    looks like a job's name.

    A component names a job when it starts with the job pattern or is its directory form (``job_41``
    for ``job_{job_id}_``). One that starts with the pattern's literal beginning but does not parse
    (``job_4.1``) is a near miss: the directory is kept, since nobody can say whose it is. Results are
    remembered per directory and built from the parent's, so a chain of N directories costs N
    matches, not N squared.
    """

    def __init__(self, policy: EffectivePolicy) -> None:
        self._naming = policy.rules.naming
        self._memo: dict[str, tuple[str, ...] | None] = {"": ()}

    def of(self, path: str) -> tuple[str, ...] | None:
        climbing: list[str] = []
        while path not in self._memo:
            climbing.append(path)
            path = path.rpartition("/")[0]
        ids = self._memo[path]
        for below in reversed(climbing):
            if ids is not None:
                ids = self._component(below.rpartition("/")[2], ids)
            self._memo[below] = ids
        return ids

    def _component(self, part: str, ids: tuple[str, ...]) -> tuple[str, ...] | None:
        job_id, near_miss = self._naming.job_of_segment(part)  # the same rule as for files' paths
        if job_id is not None:
            return ids if job_id in ids else (*ids, job_id)
        return None if near_miss else ids


def directory_rule(
    policy: EffectivePolicy, rule: Rule, resolver: JobResolver, clock: Clock, path_jobs: PathJobs
) -> Allowed:
    """A predicate: may this directory go, given whether this run emptied it (or it was already empty)."""
    oldest_empty = clock.timestamp - policy.rules.orphan_max_age_hours * 3600.0

    def allowed(directory: DirectoryEntry, emptied_by_run: bool) -> bool:
        if not emptied_by_run and directory.mtime >= oldest_empty:
            return False
        ids = path_jobs.of(directory.path)
        if ids is None:
            return False
        owners = tuple(Owner(job_id) for job_id in ids)
        if policy.rules.has_job_source:
            resolver.resolve(ids)
            owners = tuple(Owner(job_id, *resolver.get(job_id)) for job_id in ids)
            if any(owner.state not in _REMOVABLE_JOB_STATES for owner in owners):
                return False
        as_file = FileEntry(path=directory.path, size=0, mtime=directory.mtime)
        # every job named on the path owns the directory, as for files: the rule must allow each of them
        return rule(ScannedFile(as_file, owners)) is not None

    return allowed


def plan_removals(
    directories: Iterable[DirectoryEntry], freed: Mapping[str, int], allowed: Allowed, limit: int
) -> list[DirectoryEntry]:
    """The directories to rmdir, deepest first; ``freed`` counts this phase's deleted files per directory."""
    removed_below: Counter[str] = Counter()
    chosen: list[DirectoryEntry] = []
    for directory in sorted(directories, key=lambda d: (-d.depth, d.path)):
        if not directory.path or len(chosen) >= limit:
            continue  # the root is never offered; checked here too
        gone = freed.get(directory.path, 0) + removed_below[directory.path]
        if directory.entries > gone or not allowed(directory, gone > 0):
            continue
        chosen.append(directory)
        removed_below[directory.parent] += 1
    return chosen


def _resolve_candidates(
    path_jobs: PathJobs, resolver: JobResolver, directories: Iterable[DirectoryEntry], freed: Mapping[str, int]
) -> None:
    """One batched lookup for the job ids of every directory that could end up empty."""
    listed = list(directories)
    children = Counter(d.parent for d in listed)
    ids = {
        job_id
        for d in listed
        if d.entries <= freed.get(d.path, 0) + children[d.path]
        for job_id in path_jobs.of(d.path) or ()
    }
    resolver.resolve(ids)


def remove_emptied(ctx: CleanupContext, applier: Applier, rule: Rule, resolver: JobResolver, clock: Clock) -> None:
    """After a phase's deletions: plan the directories it emptied and remove them (or count them, dry)."""
    storage = ctx.storage
    if not ctx.policy.rules.remove_empty_directories or not isinstance(storage, FilesystemStorage):
        return
    tally = applier.tally
    freed = tally.take_emptying()
    directories = storage.directories()
    path_jobs = PathJobs(ctx.policy)
    if ctx.policy.rules.has_job_source:
        _resolve_candidates(path_jobs, resolver, directories, freed)
    allowed = directory_rule(ctx.policy, rule, resolver, clock, path_jobs)
    plan = plan_removals(directories, freed, allowed, ctx.policy.rules.max_files_per_run)
    if applier.dry_run:
        tally.would_remove_directories += len(plan)
        return
    for result in storage.remove_directories(plan) if plan else []:
        path = result.directory.path + "/"
        if result.outcome is Outcome.DELETED:
            tally.directories_removed += 1
        elif result.outcome is Outcome.IN_USE:
            tally.in_use.add(path)
        elif result.outcome is Outcome.FAILED:
            tally.add_error(f"{path}: not removed: {result.detail}")
