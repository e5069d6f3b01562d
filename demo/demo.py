"""``make demo``: the main job on embedded defaults, with nothing to configure.

A script of the repository, not of the package: it uses the repository's examples, CRDs and
control-plane launcher, which an installed ``tempsweep`` does not carry. ``--offline`` runs part 1
(the CLI, no cluster, so it needs no control-plane build), ``--cluster`` part 2 (the operator on the
local control plane); without a flag, both.

Part 1 builds a sample volume and a SQLite job table (running, failed, finished, cancelled-just-now and
unknown jobs, orphans without a job id, a lock file that is excluded), then runs every example in
``manifests/examples`` through the real CLI and shows the storage statistics before and after.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tempsweep.cli import main as cli_main

HOUR = 3600.0
EXAMPLE_RUNS = [
    "run-chunk-completion.yaml",
    "run-crash-recovery.yaml",
    "run-orphaned.yaml",
    "run-crash-recovery-all.yaml",
    "run-emergency.yaml",
    "run-scheduled.yaml",
]
# job id -> (status, hours since its last update)
JOBS = {
    "1001": ("running", 0.2),
    "1002": ("failed", 3.0),
    "1003": ("completed", 30.0),
    "1004": ("cancelled", 0.25),
    "1005": ("pending", 0.1),
    "1006": ("error", 50.0),
}
# relative path -> age in hours
FILES = {
    "job_1001_chunk_7_image1.jpg": 0.5,
    "job_1001_chunk_7_image2.jpg": 0.5,
    "job_1001_chunk_7_image3.jpg": 0.5,
    "job_1001_chunk_8_image1.jpg": 30.0,
    "job_1002_chunk_1_page.html": 5.0,
    "job_1002_chunk_2_page.html": 4.0,
    "crawl/job_1003_chunk_1_frame.png": 40.0,
    "crawl/job_1003_chunk_2_frame.png": 2.0,
    "crawl/job_1004_chunk_1_frame.png": 30.0,
    "crawl/job_1005_chunk_1_frame.png": 48.0,
    "media/deep/job_1006_clip.mp4": 60.0,
    "media/deep/job_9999_left_behind.bin": 26.0,
    "media/job_9999_recent.bin": 1.0,
    "scratch/forgotten.tmp": 72.0,
    "scratch/fresh.tmp": 0.1,
    "scratch/worker.lock": 100.0,
}


def build_sample(root: Path, database: Path) -> None:
    now = time.time()
    if root.exists():
        shutil.rmtree(root)
    for relative, age_hours in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(4096 + 1024 * len(relative)))
        os.utime(path, (now - age_hours * HOUR, now - age_hours * HOUR))
    database.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TABLE crawl_jobs (id INTEGER PRIMARY KEY, status TEXT NOT NULL, updated_at TIMESTAMP)")
        utc_now = datetime.now(UTC).replace(tzinfo=None)
        db.executemany(
            "INSERT INTO crawl_jobs VALUES (?, ?, ?)",
            [
                (int(job), status, (utc_now - timedelta(hours=hours)).isoformat(sep=" "))
                for job, (status, hours) in JOBS.items()
            ],
        )
        db.commit()


def _cli(*args: str) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(list(args))
    return code, json.loads(out.getvalue()) if out.getvalue().strip() else {}


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def main() -> int:
    repo = Path(__file__).resolve().parents[1]
    examples = repo / "manifests" / "examples"
    work = repo / ".local" / "demo"
    volume, database = work / "volumes" / "sample", work / "jobs.db"
    work.mkdir(parents=True, exist_ok=True)
    offline = 0 if "--cluster" in sys.argv[1:] else run_offline_demo(examples, volume, database)
    if "--offline" in sys.argv[1:]:
        return offline
    from demo_cluster import run_cluster_demo  # beside this script

    build_sample(volume, database)
    ordered = [examples / "policy.yaml", *(examples / name for name in EXAMPLE_RUNS)]
    return run_cluster_demo(repo, work, volume, database, ordered) or offline


def run_offline_demo(examples: Path, volume: Path, database: Path) -> int:
    """Part 1: the CLI, no cluster."""
    print("=== Part 1: the offline CLI (tempsweep scan / tempsweep run) ===")
    build_sample(volume, database)
    os.environ["TEMP_STORAGE_CLEANUP_DATABASE_URL"] = f"sqlite:///{database}"
    policy = str(examples / "policy.yaml")
    print(f"Sample volume: {volume} ({len(FILES)} files); job table: {database}")
    print("Jobs: " + ", ".join(f"{job}={status}" for job, (status, _) in JOBS.items()) + "\n")

    code, before = _cli("scan", "--policy", policy, "--path", str(volume))
    if code:
        return code
    print("Before:", json.dumps(before))
    failures = 0
    for name in EXAMPLE_RUNS:
        code, status = _cli("run", "-f", str(examples / name), "--policy", policy, "--path", str(volume))
        failures += code != 0
        print(f"\n== {name}: {status.get('phase')} (exit {code})\n   {status.get('message')}")
        for reason, count in dict(status.get("deletedByReason") or {}).items():  # type: ignore[call-overload]
            print(f"   {reason}: {count}")
    code, after = _cli("scan", "--policy", policy, "--path", str(volume))
    print("\nAfter: ", json.dumps(after))
    print("\nFiles left:\n  " + "\n  ".join(_tree(volume)))
    return 1 if failures or code else 0


if __name__ == "__main__":
    sys.exit(main())
