"""Helpers shared by the engine, CLI and model tests: policies in wire form, real file trees, job tables.

Everything here builds real things (directories under pytest's ``tmp_path``, SQLite files, pydantic
objects parsed from their wire form); nothing is mocked.
"""

from __future__ import annotations

import copy
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tempsweep.engine import CleanupContext, JobRecord, RunRequest, run_cleanup
from tempsweep.models import CleanupPolicySpec, CleanupRunSpec, EffectivePolicy, RunStatus, load_settings
from tempsweep.models.effective import resolve_policy

API_VERSION = "tempsweep.io/v1alpha1"
POLICY_NAME = "test-policy"
HOUR = 3600.0
#: a database section that makes a policy job-aware; engine tests hand the job source in directly
JOBS = {"database": {"url": "sqlite://"}}


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A deep merge of two wire-form dicts (override wins; a None value removes the key)."""
    result = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def policy_spec(root: Path | str, **overrides: Any) -> dict[str, Any]:
    """A policy ``spec`` in wire form for a volume at ``root``: generous limits, no free-space floor.

    The blast-radius guard is off (``maxDeletePercent: 100``): most tests build small trees where most
    files are meant to go. The guard's own tests (and the property test) set the limit they test.
    """
    base: dict[str, Any] = {
        "storage": {"volume": {"path": str(root)}},
        "thresholds": {"minFreeSpace": 0},
        "limits": {"batchSize": 100, "maxFilesPerRun": 10_000, "parallelism": 2, "maxDeletePercent": 100},
    }
    return merge(base, overrides)


def policy_document(root: Path | str, *, name: str = POLICY_NAME, **overrides: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "CleanupPolicy",
        "metadata": {"name": name},
        "spec": policy_spec(root, **overrides),
    }


def run_document(kind: str, *, policy: str = POLICY_NAME, name: str = "test-run", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "CleanupRun",
        "metadata": {"name": name},
        "spec": {"policyRef": {"name": policy}, "type": kind, **spec},
    }


def effective_policy(root: Path | str, *, env: Mapping[str, str] | None = None, **overrides: Any) -> EffectivePolicy:
    """The resolved policy the engine runs, with settings from ``env`` only (not the process environment)."""
    spec = CleanupPolicySpec.model_validate(policy_spec(root, **overrides))
    return resolve_policy(POLICY_NAME, spec, load_settings(dict(env or {})))


def run_spec(kind: str, **fields: Any) -> CleanupRunSpec:
    return CleanupRunSpec.model_validate({"policyRef": {"name": POLICY_NAME}, "type": kind, **fields})


@dataclass
class Tree:
    """A real directory tree whose files get chosen sizes and ages relative to ``now``."""

    root: Path
    now: datetime

    def file(self, relative: str, *, age_hours: float = 0.0, size: int = 10) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        self.age(path, age_hours)
        return path

    def age(self, path: Path, age_hours: float) -> None:
        stamp = self.now.timestamp() - age_hours * HOUR
        os.utime(path, (stamp, stamp), follow_symlinks=False)

    def files(self) -> set[str]:
        """Relative paths of the regular files under the root (symlinks are not followed or listed)."""
        return regular_files(self.root)


@dataclass
class Workspace:
    """A directory holding manifests next to a volume tree."""

    base: Path
    tree: Tree

    def write(self, name: str, content: Any) -> Path:
        """A manifest file: a dict is dumped as YAML, a string is written as it is."""
        path = self.base / name
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path


def regular_files(root: Path) -> set[str]:
    found = set()
    for directory, _, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                found.add(path.relative_to(root).as_posix())
    return found


def job(job_id: str, status: str, hours_ago: float | None, now: datetime) -> JobRecord:
    updated = None if hours_ago is None else now - timedelta(hours=hours_ago)
    return JobRecord(job_id=job_id, status=status, updated_at=updated)


def sqlite_jobs(path: Path, rows: Iterable[tuple[Any, str, datetime | None]], *, table: str = "crawl_jobs") -> str:
    """A real SQLite job table (id, status, updated_at as naive UTC text); returns its SQLAlchemy URL."""
    connection = sqlite3.connect(path)
    try:
        connection.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, status TEXT, updated_at TIMESTAMP)")
        connection.executemany(
            f"INSERT INTO {table} (id, status, updated_at) VALUES (?, ?, ?)",
            [
                (
                    job_id,
                    status,
                    None if updated is None else updated.astimezone(UTC).replace(tzinfo=None).isoformat(" "),
                )
                for job_id, status, updated in rows
            ],
        )
        connection.commit()
    finally:
        connection.close()
    return f"sqlite:///{path}"


def execute(
    policy: EffectivePolicy,
    storage: Any,
    spec: CleanupRunSpec,
    *,
    jobs: Any = None,
    now: datetime,
) -> RunStatus:
    """Run one cleanup through the engine's public entry point."""
    return run_cleanup(CleanupContext(policy=policy, storage=storage, jobs=jobs, now=now), RunRequest.from_spec(spec))
