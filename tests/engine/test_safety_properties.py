"""Property: whatever the tree, job table and settings, the engine's safety promises hold.

For every generated case, on a real directory: no file of an active job is deleted (when the policy
knows job status), nothing outside the root and no symlink is touched, excluded files stay, a dry
run deletes nothing, no more than maxFilesPerRun files go, and every deletion is counted under a reason.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep_helpers import Tree, effective_policy, execute, job, regular_files, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import DeletionReason
from tempsweep.storage import VolumeStorage

JOB_IDS = [str(number) for number in range(8)]
ACTIVE, FAILED = ("pending", "running"), ("failed", "cancelled", "error")
STATUSES = [*ACTIVE, *FAILED, "completed", "unknown"]  # "unknown": no row in the table
AGES = [0.05, 0.5, 1.5, 3, 30, 500]  # hours
DIRECTORIES = ["", "a", "a/b", "a/b/c", "d"]


@dataclass(frozen=True)
class Case:
    files: list[tuple[str, str, float, int]]  # directory, name, age in hours, size
    links: list[tuple[str, str]]  # link name in the root, what it points to
    table: dict[str, tuple[str, float | None]]  # job id -> status, hours since its last update
    run: dict[str, Any]
    policy: dict[str, Any]


def _name(kind: str, job_id: str, chunk: int, serial: int) -> str:
    if kind == "job":
        return f"job_{job_id}_{serial}.tmp"
    if kind == "chunk":
        return f"job_{job_id}_chunk_{chunk}_{serial}.tmp"
    if kind == "lock":
        return f"job_{job_id}_{serial}.lock"
    return f"loose_{serial}.tmp"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    files = []
    for serial in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["job", "job", "chunk", "plain", "lock"]))
        name = _name(kind, draw(st.sampled_from(JOB_IDS)), draw(st.integers(0, 2)), serial)
        files.append(
            (draw(st.sampled_from(DIRECTORIES)), name, draw(st.sampled_from(AGES)), draw(st.integers(1, 300)))
        )
    links = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["in-root", "a/link", "a/b/link"]),
                st.sampled_from(["outside-file", "outside-dir", "dangling", "root-file", "root-dir"]),
            ),
            max_size=4,
            unique_by=lambda link: link[0],
        )
    )
    table = {}
    for job_id in JOB_IDS:
        status = draw(st.sampled_from(STATUSES))
        if status != "unknown":
            table[job_id] = (status, draw(st.sampled_from([None, *AGES])))
    kind = draw(st.sampled_from(["Orphaned", "CrashRecovery", "Emergency", "Scheduled", "Predictive"]))
    run: dict[str, Any] = {"type": kind}
    if kind == "Orphaned" and draw(st.booleans()):
        run["maxAgeHours"] = draw(st.sampled_from([0.01, 1, 24]))
    if kind == "CrashRecovery" and draw(st.booleans()):
        run["jobId"] = draw(st.sampled_from(JOB_IDS))
    if draw(st.booleans()):
        run["dryRun"] = draw(st.booleans())
    emergency = draw(st.integers(20, 100))
    policy: dict[str, Any] = {
        "thresholds": {
            "emergencyPercent": emergency,
            "warningPercent": emergency - 10,
            "emergencyBufferPercent": draw(st.integers(0, 19)),
            "minFreeSpace": draw(st.sampled_from([0, 100, 400])),  # below the smallest capacity
        },
        "orphans": {
            "maxAgeHours": draw(st.sampled_from([1, 24])),
            "emergencyMaxAgeHours": draw(st.sampled_from([1, 2])),
        },
        "failedJobs": {"cleanupAfterHours": draw(st.sampled_from([0, 1, 24]))},
        "limits": {
            "batchSize": draw(st.integers(1, 10)),
            "maxFilesPerRun": draw(st.integers(1, 40)),
            "parallelism": draw(st.integers(1, 3)),
        },
        "exclude": draw(st.sampled_from([[], ["*.lock"]])),
        "dryRun": draw(st.sampled_from([None, False, True])),
    }
    capacity = draw(st.sampled_from([None, 500, 2000, 100_000]))
    if capacity is not None:
        policy["storage"] = {"volume": {"capacity": capacity}}
    if draw(st.integers(0, 4)) > 0:  # mostly job-aware policies; some age-only ones
        policy["jobs"] = {"database": {"url": "sqlite://"}}
    return Case(files, links, table, run, policy)


def _fingerprint(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (symlinks as their targets, files as content digests)."""
    seen = {}
    for directory, dirnames, names in os.walk(root, followlinks=False):
        for name in dirnames + names:
            path = Path(directory, name)
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                seen[key] = "-> " + os.readlink(path)
            elif path.is_file():
                seen[key] = hashlib.sha256(path.read_bytes()).hexdigest() + f" {path.stat().st_mtime_ns}"
    return seen


def _build(base: Path, case: Case, now: datetime) -> tuple[Tree, Path]:
    tree = Tree(base / "volume", now)
    tree.root.mkdir()
    outside = base / "outside"
    bait = Tree(outside, now)
    outside.mkdir()
    for job_id in JOB_IDS:
        bait.file(f"job_{job_id}_bait.tmp", age_hours=1000)
        bait.file(f"dir/job_{job_id}_chunk_0_bait.tmp", age_hours=1000)
    bait.file("loose_bait.tmp", age_hours=1000)
    for directory, name, age, size in case.files:
        tree.file(f"{directory}/{name}" if directory else name, age_hours=age, size=size)
    targets = {
        "outside-file": outside / "job_0_bait.tmp",
        "outside-dir": outside / "dir",
        "dangling": base / "nowhere",
        "root-file": tree.file("link-target.tmp", age_hours=1000),
        "root-dir": tree.root,
    }
    for link, target in case.links:
        path = tree.root / link
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(targets[target])
    return tree, outside


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_no_active_job_file_nothing_outside_the_root_and_every_deletion_has_a_reason(case: Case) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="tempsweep-property-") as base_name:
        base = Path(base_name)
        tree, outside = _build(base, case, now)
        outside_before = _fingerprint(outside)
        links_before = {
            key: value for key, value in _fingerprint(tree.root).items() if value.startswith("-> ")
        }
        files_before = regular_files(tree.root)
        jobs = MemoryJobSource(
            [job(job_id, status, hours, now) for job_id, (status, hours) in case.table.items()]
        )
        policy = effective_policy(tree.root, **case.policy)
        spec = run_spec(case.run["type"], **{key: value for key, value in case.run.items() if key != "type"})

        status = execute(policy, VolumeStorage(str(tree.root)), spec, jobs=jobs, now=now)

        files_after = regular_files(tree.root)
        deleted = files_before - files_after
        assert files_after <= files_before
        assert _fingerprint(outside) == outside_before, "nothing outside the root may change"
        links_after = {
            key: value for key, value in _fingerprint(tree.root).items() if value.startswith("-> ")
        }
        assert links_after == links_before, "symlinks are never followed nor removed"
        assert status.files_deleted == len(deleted)
        assert sum(status.deleted_by_reason.values()) == status.files_deleted
        assert set(status.deleted_by_reason) <= {reason.value for reason in DeletionReason}
        assert sum(status.freed_bytes_by_reason.values()) == status.bytes_freed
        assert set(status.freed_bytes_by_reason) == set(status.deleted_by_reason)
        assert status.files_deleted <= policy.rules.max_files_per_run
        assert not any(path.endswith(".lock") for path in deleted) or not policy.rules.exclude
        if status.dry_run:
            assert deleted == set()
            assert sum(status.would_delete_by_reason.values()) == status.would_delete_count
        if policy.rules.has_job_source:
            active = {job_id for job_id, (state, _) in case.table.items() if state in ACTIVE}
            for path in deleted:
                name = path.rpartition("/")[2]
                owner = name.split("_")[1] if name.startswith("job_") else None
                assert owner not in active, f"{path} belongs to active job {owner} ({status.message})"
