"""Manifests, temp-file trees and job tables for the operator's end-to-end tests (no fixtures here)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sweep_helpers import merge

API_VERSION = "tempsweep.io/v1alpha1"
#: A cron slot that never comes during a test run (midnight on 1 January): timers stay quiet unless a test
#: asks for them.
NEVER = "0 0 1 1 *"


def policy(name: str, path: Path | str, **spec: Any) -> dict[str, Any]:
    """A CleanupPolicy on a volume with quiet timers, a 1 GiB capacity and 1 KiB minimum free space.

    The blast-radius guard is off (``maxDeletePercent: 100``): these tests build small volumes that are
    meant to be emptied. The guard's own tests pass ``limits={"maxDeletePercent": None}`` for the default.
    """
    base: dict[str, Any] = {
        "storage": {"volume": {"path": str(path), "capacity": "1Gi"}},
        "thresholds": {"minFreeSpace": "1Ki"},
        "limits": {"maxDeletePercent": 100},
        "schedule": {"scheduled": NEVER, "orphaned": NEVER, "statsInterval": "1h", "emergencyCheckInterval": "1h"},
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "CleanupPolicy",
        "metadata": {"name": name},
        "spec": merge(base, spec),
    }


def run(name: str, policy_name: str, type_: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "CleanupRun",
        "metadata": {"name": name},
        "spec": {"policyRef": {"name": policy_name}, "type": type_, **spec},
    }


def make_files(directory: Path, names: Iterable[str], *, size: int = 100, age_hours: float = 0.0) -> list[Path]:
    """Create files of SIZE bytes, modified AGE_HOURS ago."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.time() - age_hours * 3600
    payload = b"x" * size
    made = []
    for name in names:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        os.utime(path, (stamp, stamp))
        made.append(path)
    return made


def make_many(directory: Path, prefix: str, count: int, *, size: int = 16, per_dir: int = 1000) -> None:
    """COUNT files named PREFIX<i>.tmp spread over subdirectories (fast: raw os calls)."""
    payload = b"y" * size
    for index in range(count):
        sub = directory / f"d{index // per_dir:04d}"
        if index % per_dir == 0:
            sub.mkdir(parents=True, exist_ok=True)
        fd = os.open(sub / f"{prefix}{index}.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, payload)
        os.close(fd)


def tree(directory: Path) -> set[str]:
    """Every file under DIRECTORY, as paths relative to it."""
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}


def count_files(directory: Path, prefix: str = "") -> int:
    total = 0
    for _root, _dirs, files in os.walk(directory):
        total += sum(1 for name in files if name.startswith(prefix))
    return total


def job_table(path: Path, jobs: Mapping[str, tuple[str, float]]) -> str:
    """A SQLite crawl_jobs table (id, status, updated_at): JOBS maps id -> (status, hours since update).

    Returns its SQLAlchemy URL.
    """
    now = datetime.now(UTC)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS crawl_jobs (id INTEGER PRIMARY KEY, status TEXT, updated_at TEXT)")
        for job_id, (status, hours) in jobs.items():
            updated = (now - timedelta(hours=hours)).isoformat()
            db.execute("INSERT OR REPLACE INTO crawl_jobs VALUES (?, ?, ?)", (int(job_id), status, updated))
    return f"sqlite:///{path}"


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
