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
cached, since a scan yields the files of one directory together. Pure: no I/O.
"""

from __future__ import annotations

from tempsweep.models.naming import Naming

#: directories remembered per run; the cache is simply emptied when full (scans are mostly depth-first)
DIRECTORY_CACHE = 4096


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
        jobs: list[str] = []
        near_miss = False
        for segment in reversed(directory.split("/")):
            job, miss = self._naming.job_of_segment(segment)
            near_miss = near_miss or miss
            if job is not None and job not in jobs:
                jobs.append(job)
        if len(self._directories) >= DIRECTORY_CACHE:
            self._directories.clear()
        result = (tuple(jobs), near_miss)
        self._directories[directory] = result
        return result
