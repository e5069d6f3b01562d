"""CLI fixtures: a clean settings environment, a real volume with old files, and manifest writers."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sweep_helpers import Tree, Workspace


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TEMP_STORAGE_CLEANUP_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("TEMP_STORAGE_CLEANUP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    now = datetime.now(UTC)
    root = tmp_path / "volume"
    root.mkdir()
    tree = Tree(root, now)
    for name in ("stale.tmp", "job_1_a.tmp", "nested/old.tmp"):
        tree.file(name, age_hours=1000)
    return Workspace(tmp_path, tree)


@pytest.fixture
def write(workspace: Workspace) -> Callable[[str, Any], Path]:
    return workspace.write
