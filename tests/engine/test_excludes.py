"""``exclude`` on a real volume: .gitignore semantics, and excluded directories not even listed."""

from __future__ import annotations

from datetime import datetime

import pytest

from exclude_cases import CASES, FILES
from support.locks import HeldLock
from sweep_helpers import Tree, effective_policy, execute, run_spec
from tempsweep.engine.exclusion import ExclusionMatcher
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage

OLD = 1000.0


def _orphaned(tree: Tree, now: datetime, **overrides):
    policy = effective_policy(tree.root, orphans={"maxAgeHours": 1}, removeEmptyDirectories=False, **overrides)
    return execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned"), now=now)


@pytest.mark.parametrize(("patterns", "kept"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_exclude_follows_gitignore(tree: Tree, now: datetime, patterns: list[str], kept: set[str]) -> None:
    for path in FILES:
        tree.file(path, age_hours=OLD)

    status = _orphaned(tree, now, exclude=patterns)

    assert tree.files() == kept
    assert status.files_deleted == len(FILES) - len(kept)
    assert status.phase is RunPhase.SUCCEEDED


@pytest.mark.parametrize(("patterns", "kept"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_excluded_directories_protect_their_files_with_a_capacity_too(
    tree: Tree, now: datetime, patterns: list[str], kept: set[str]
) -> None:
    """With a capacity the walk enters excluded directories (their bytes are used space) but deletes nothing there."""
    for path in FILES:
        tree.file(path, age_hours=OLD)

    status = _orphaned(tree, now, exclude=patterns, storage={"volume": {"capacity": 10_000}})

    assert tree.files() == kept
    assert status.phase is RunPhase.SUCCEEDED


def test_an_excluded_directory_is_not_listed(tree: Tree, now: datetime) -> None:
    """A locked directory inside an excluded one is never met: the walk did not go there."""
    tree.file("keep/inner/x.tmp", age_hours=OLD)
    tree.file("other/inner/y.tmp", age_hours=OLD)
    with HeldLock(tree.root / "keep/inner"), HeldLock(tree.root / "other/inner"):
        status = _orphaned(tree, now, exclude=["keep/"])

    assert status.files_skipped_in_use == 1, "only other/inner was entered and found locked"
    assert tree.files() == {"keep/inner/x.tmp", "other/inner/y.tmp"}


def test_an_excluded_directory_keeps_its_parent(tree: Tree, now: datetime) -> None:
    tree.file("job/keep/x.tmp", age_hours=OLD)
    tree.file("job/y.tmp", age_hours=OLD)
    for directory in ("job/keep", "job"):
        tree.age(tree.root / directory, OLD)

    policy = effective_policy(tree.root, orphans={"maxAgeHours": 1}, exclude=["keep"])
    execute(policy, VolumeStorage(str(tree.root)), run_spec("Orphaned"), now=now)

    assert tree.files() == {"job/keep/x.tmp"}


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["keep"], "keep", True),
        (["keep"], "a/b/keep/c/d", True),
        (["keep/"], "keep", False),  # a file called keep: the pattern names directories only
        (["/keep"], "a/keep/x", False),
        (["**/deep/x"], "deep/x", True),
        (["a/*.bin"], "a/b/c.bin", False),  # '*' does not cross '/'
        (["a/**/*.bin"], "a/b/c.bin", True),
        (["logs/", "!logs/x"], "logs/x", True),
        (["*.log", "!a.log"], "d/a.log", False),
    ],
)
def test_matcher(patterns: list[str], path: str, excluded: bool) -> None:
    assert ExclusionMatcher(patterns).excludes(path) is excluded
