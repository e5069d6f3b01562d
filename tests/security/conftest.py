"""Security fixtures: a volume root, bait outside it, and real mounts (skipped only where mount is refused)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from security.trees import BAIT_FILES, OLD
from support.mounts import Mounts
from sweep_helpers import Tree


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def volume(tmp_path: Path, now: datetime) -> Tree:
    """The volume a policy cleans; it is also the operator's only allowed root."""
    root = tmp_path / "volumes"
    root.mkdir()
    return Tree(root, now)


@pytest.fixture
def bait(tmp_path: Path, now: datetime) -> Tree:
    """Old files outside the volume: any deletion here is an escape."""
    tree = Tree(tmp_path / "outside", now)
    for name in BAIT_FILES:
        tree.file(name, age_hours=OLD, size=1000)
    return tree


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    """Real tmpfs and bind mounts, undone at teardown; skips the test where mount is not permitted."""
    with Mounts() as made:
        yield made
