"""Engine fixtures: a real volume directory under ``tmp_path``, a directory outside it, and one instant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sweep_helpers import Tree
from tempsweep.storage import VolumeStorage


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def tree(tmp_path: Path, now: datetime) -> Tree:
    root = tmp_path / "volume"
    root.mkdir()
    return Tree(root, now)


@pytest.fixture
def outside(tmp_path: Path, now: datetime) -> Tree:
    """A directory next to the volume: nothing in it may ever be deleted."""
    root = tmp_path / "outside"
    root.mkdir()
    return Tree(root, now)


@pytest.fixture
def storage(tree: Tree) -> VolumeStorage:
    return VolumeStorage(str(tree.root))
