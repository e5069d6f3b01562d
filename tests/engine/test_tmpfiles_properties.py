"""Property: on random trees with locks, excludes and empty directories, the tmpfiles rules hold.

For every generated case, on a real directory with real ``flock`` locks (held on descriptors of
this test, which the kernel treats like any other holder's): the root stays; no locked file, nothing
inside a locked directory and no locked directory goes; no path an exclude pattern protects goes
(checked against a plain model of each pattern, not against the matcher under test); a removed
directory held nothing that survived, lay in no job directory the table calls active or does not
know, and was old or emptied by the run; a dry run changes nothing.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep_helpers import Tree, effective_policy, execute, job, regular_files, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.storage import VolumeStorage

DIRECTORIES = ["a", "a/b", "a/b/c", "keep", "a/keep", "cache", "cache/sub", "job_1", "job_1/w", "job_2", "job_3/x"]
NAMES = ["x.bin", "y.lock", "job_1_p.bin", "job_2_q.bin", "job_3_r.bin", "z.bin"]
AGES = [0.1, 5, 100]  # hours; the orphan age is 1 or 24
STATUSES = ["running", "failed", "completed", "unknown"]

#: each exclude pattern with a plain model of what it protects
PATTERNS: dict[str, Callable[[str], bool]] = {
    "keep": lambda path: "keep" in path.split("/"),
    "/a/b": lambda path: path == "a/b" or path.startswith("a/b/"),
    "*.lock": lambda path: path.endswith(".lock"),
    "cache/": lambda path: path.startswith("cache/") or "/cache/" in f"/{path}" and not path.endswith("/cache"),
    "a/**/z.bin": lambda path: path.startswith("a/") and path.endswith("/z.bin"),
}
#: re-includes no file the patterns above protect in git's reading (x.bin only ever sits in a protected
#: directory or in none); a matcher that re-included files inside an excluded directory would fail
NEGATIONS = {"cache/": "!x.bin"}


@dataclass(frozen=True)
class Case:
    files: list[tuple[str, str, float]]
    empty_dirs: list[str]
    dir_ages: dict[str, float]
    locked_files: list[str]
    locked_dirs: list[str]
    patterns: list[str]
    table: dict[str, str]
    run: str
    dry_run: bool
    max_age: float
    capacity: int | None  # with a capacity excluded directories are listed (their bytes count), not pruned


@st.composite
def cases(draw: st.DrawFn) -> Case:
    files = draw(
        st.lists(
            st.tuples(st.sampled_from(["", *DIRECTORIES]), st.sampled_from(NAMES), st.sampled_from(AGES)),
            max_size=14,
            unique_by=lambda f: (f[0], f[1]),
        )
    )
    paths = [f"{d}/{n}" if d else n for d, n, _ in files]
    empty_dirs = draw(st.lists(st.sampled_from(DIRECTORIES), max_size=4, unique=True))
    all_dirs = {d for d in DIRECTORIES if any(p.startswith(d + "/") for p in paths) or d in empty_dirs}
    closure = {"/".join(d.split("/")[:i]) for d in all_dirs for i in range(1, d.count("/") + 2)}
    dir_ages = {d: draw(st.sampled_from(AGES)) for d in sorted(closure)}
    locked_files = draw(st.lists(st.sampled_from(paths), max_size=2, unique=True)) if paths else []
    locked_dirs = draw(st.lists(st.sampled_from(sorted(closure)), max_size=2, unique=True)) if closure else []
    patterns = draw(st.lists(st.sampled_from(sorted(PATTERNS)), max_size=2, unique=True))
    table = {job_id: draw(st.sampled_from(STATUSES)) for job_id in ("1", "2", "3")}
    return Case(
        files,
        empty_dirs,
        dir_ages,
        locked_files,
        locked_dirs,
        patterns,
        {k: v for k, v in table.items() if v != "unknown"},
        draw(st.sampled_from(["Orphaned", "Scheduled", "CrashRecovery"])),
        draw(st.booleans()),
        draw(st.sampled_from([1.0, 24.0])),
        draw(st.sampled_from([None, 1_000_000])),
    )


def _dirs(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir() and not p.is_symlink()}


def _build(tree: Tree, case: Case) -> None:
    for directory, name, age in case.files:
        tree.file(f"{directory}/{name}" if directory else name, age_hours=age)
    for directory in case.empty_dirs:
        (tree.root / directory).mkdir(parents=True, exist_ok=True)
    for directory in sorted(case.dir_ages, key=lambda d: -d.count("/")):
        tree.age(tree.root / directory, case.dir_ages[directory])


def _lock(paths: list[Path]) -> list[int]:
    fds = []
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)
    return fds


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_locks_excludes_and_directory_removal_are_safe(case: Case) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="tempsweep-tmpfiles-") as base:
        tree = Tree(Path(base) / "volume", now)
        tree.root.mkdir()
        _build(tree, case)
        files_before, dirs_before = regular_files(tree.root), _dirs(tree.root)
        patterns = case.patterns + [NEGATIONS[p] for p in case.patterns if p in NEGATIONS]
        overrides: dict[str, Any] = {
            "jobs": {"database": {"url": "sqlite://"}},
            "orphans": {"maxAgeHours": case.max_age},
            "failedJobs": {"cleanupAfterHours": 1},
            "exclude": patterns,
            "dryRun": case.dry_run,
        }
        if case.capacity is not None:
            overrides["storage"] = {"volume": {"capacity": case.capacity}}
        jobs = MemoryJobSource([job(job_id, status, 50, now) for job_id, status in case.table.items()])
        fds = _lock([tree.root / p for p in case.locked_files + case.locked_dirs])
        try:
            status = execute(
                effective_policy(tree.root, **overrides),
                VolumeStorage(str(tree.root)),
                run_spec(case.run),
                jobs=jobs,
                now=now,
            )
        finally:
            for fd in fds:
                os.close(fd)

        files_after, dirs_after = regular_files(tree.root), _dirs(tree.root)
        removed = dirs_before - dirs_after
        assert tree.root.is_dir()
        if case.dry_run:
            assert (files_after, dirs_after) == (files_before, dirs_before)
        for path in files_before:
            protected = any(PATTERNS[p](path) for p in case.patterns)
            locked = path in case.locked_files or any(_under(path, d) for d in case.locked_dirs)
            assert path in files_after or not (protected or locked), f"{path} went ({status.message})"
        for directory in removed:
            assert not any(_under(directory, d) or _under(d, directory) for d in case.locked_dirs)
            assert not any(_under(f, directory) for f in files_after | set(case.locked_files))
            owners = [part.split("_")[1] for part in directory.split("/") if part.startswith("job_")]
            assert all(case.table.get(owner) in ("failed", "completed") for owner in owners), directory
            emptied = any(_under(f, directory) for f in files_before - files_after) or any(
                _under(d, directory) and d != directory for d in removed
            )
            assert emptied or case.dir_ages[directory] > case.max_age, f"{directory} was young and untouched"
        assert status.directories_removed == len(removed)
