"""Which jobs a file belongs to: every job named by a segment of its path, and whether any segment is a near miss.

A segment (a directory on the path, or the file name) names a job by the rule in
``tempsweep.models.naming.Naming``: it starts with the job pattern, or it is exactly the pattern's
directory form (``job_41`` for ``job_{job_id}_``). So ``job_41/frames/0001.png`` is job 41's file.
When the file name and directories name different jobs, the file belongs to all of them, and a
rule may delete it only when every one of those jobs allows it (fail closed: a running job's
directory protects whatever lies below it, whatever the file is called). A near miss anywhere on
the path (``job_4.1/x``, ``job_41.log``) means the name does not parse but looks as if it tried:
job rules keep such files and the run counts them.

Paths are '/'-separated and relative to the storage root for every backend (blob names after the
prefix included, whose folders are virtual), so this is backend-neutral. Directory results are
cached, since a scan yields the files of one directory together, and each directory's result is
built from its parent's, so a directory costs one segment, not its whole path. Pure: no I/O.

A path that names more than ``MAX_PATH_JOBS`` different jobs is read as a near miss (kept and
counted, its jobs not looked up): nobody nests that many jobs on purpose, and anyone able to write to
the volume could otherwise nest thousands of job directories and make every file below them cost a
check of every job above it (quadratic time and memory in the depth, a run-long stall per timer).
"""

from __future__ import annotations

from tempsweep.models.naming import Naming

#: directories remembered per run; the cache is simply emptied when full (scans are mostly depth-first)
DIRECTORY_CACHE = 4096
#: the most different jobs one path may name; a path naming more is a near miss (kept, not checked)
MAX_PATH_JOBS = 16


#: the jobs named on a path (the file name's first, then directories nearest first, no repeats), and
#: whether a segment is a near miss; a plain tuple because it is made for every scanned file
Ownership = tuple[tuple[str, ...], bool]

_NOBODY: Ownership = ((), False)


class OwnershipReader:
    """Reads ownership from paths under one policy's naming."""

    def __init__(self, naming: Naming) -> None:
        self._naming = naming
        self._directories: dict[str, tuple[tuple[str, ...], bool]] = {}

    def read(self, path: str) -> Ownership:
        directory, _, name = path.rpartition("/")
        name_job, name_miss = self._naming.job_of_segment(name)
        directory_jobs, directory_miss = self._directory(directory) if directory else ((), False)
        if not directory_jobs:
            if name_job is None:
                return _NOBODY if not (name_miss or directory_miss) else ((), True)
            return (name_job,), name_miss or directory_miss
        jobs: tuple[str, ...] = (name_job,) if name_job is not None else ()
        jobs += tuple(job for job in directory_jobs if job != name_job)
        return jobs, name_miss or directory_miss

    def _directory(self, directory: str) -> tuple[tuple[str, ...], bool]:
        cached = self._directories.get(directory)
        if cached is not None:
            return cached
        below: list[str] = []  # directories under the nearest one already known, deepest first
        known = directory
        result: tuple[tuple[str, ...], bool] = ((), False)
        while known:
            hit = self._directories.get(known)
            if hit is not None:
                result = hit
                break
            below.append(known)
            known = known.rpartition("/")[0]
        for path in reversed(below):
            result = self._extend(result, path.rpartition("/")[2])
            if len(self._directories) >= DIRECTORY_CACHE:
                self._directories.clear()
            self._directories[path] = result
        return result

    def _extend(self, parent: tuple[tuple[str, ...], bool], segment: str) -> tuple[tuple[str, ...], bool]:
        """A directory's jobs (nearest first) and near-miss flag, from its parent's and its own name."""
        jobs, near_miss = parent
        job, miss = self._naming.job_of_segment(segment)
        if job is None:
            return jobs, near_miss or miss
        if job in jobs:  # nearest first: the job moves to the front
            return (job, *(other for other in jobs if other != job)), near_miss or miss
        if len(jobs) >= MAX_PATH_JOBS:
            return jobs, True  # too many jobs on one path to check: kept as a near miss
        return (job, *jobs), near_miss or miss
