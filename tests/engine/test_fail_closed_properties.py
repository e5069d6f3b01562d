"""Property (issue 11): whatever the job table says, and however it spells it, no scenario but
ChunkCompletion deletes a file of an active job, of a job in an unrecognized status, or a file younger
than the age that applies to it.

Random job tables (statuses from the policy's lists and outside them, in random case with random
surrounding whitespace, some arbitrary text, some jobs missing from the table), random trees with
random ages, random guard limits, on a real directory through the real VolumeStorage and either the
in-memory job source or a real SQLite table read through SQLAlchemy. The applicable age, per reason a
file can go for:

* Orphaned: older than the run's ``maxAgeHours`` (or the policy's ``orphans.maxAgeHours``);
* CrashRecovery: the file's job is failed and its last update older than ``failedJobs.cleanupAfterHours``
  (crash recovery takes a failed job's files whatever their age, as the original service did);
* Emergency: older than ``orphans.emergencyMaxAgeHours``, unless the run says it needed the later
  tiers (EmergencyFailedJob, EmergencyOldest), whose files have no age floor;
* Scheduled: either of the above.

The expected classification is computed here from the lists, independently of the engine.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep_helpers import Tree, effective_policy, execute, job, regular_files, run_spec, sqlite_jobs
from tempsweep.jobs import MemoryJobSource
from tempsweep.jobs.sql import SqlJobSource
from tempsweep.models import RunPhase
from tempsweep.models.enums import RunReason
from tempsweep.storage import VolumeStorage

JOB_IDS = [str(number) for number in range(8)]
ACTIVE = ["pending", "running"]
FAILED = ["failed", "cancelled", "error"]
FINISHED = ["completed", "succeeded", "done", "finished", "success"]
UNLISTED = ["queued", "processing", "paused", "running-late", "complete", "unknown", "fail"]
AGES = [0.02, 0.5, 0.99, 1.01, 1.5, 3, 23.9, 24.1, 30, 500]  # hours, some either side of the limits
WHITESPACE = ["", "", " ", "  ", "\t", "\n"]


@dataclass(frozen=True)
class Case:
    files: list[tuple[str, str, float]]  # directory, name, age in hours
    table: dict[str, tuple[str, float | None]]  # job id -> status as stored, hours since its last update
    run: dict[str, Any]
    policy: dict[str, Any]
    sql: bool


@st.composite
def spellings(draw: st.DrawFn) -> str:
    """A status as a job table might hold it."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(min_size=0, max_size=12))
    word = draw(st.sampled_from(ACTIVE + FAILED + FINISHED + UNLISTED))
    case = draw(st.sampled_from(["lower", "upper", "title", "mixed"]))
    if case == "upper":
        word = word.upper()
    elif case == "title":
        word = word.title()
    elif case == "mixed":
        word = "".join(c.upper() if draw(st.booleans()) else c for c in word)
    return draw(st.sampled_from(WHITESPACE)) + word + draw(st.sampled_from(WHITESPACE))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    files = []
    for serial in range(draw(st.integers(1, 24))):
        job_id = draw(st.sampled_from(JOB_IDS))
        kind = draw(st.sampled_from(["job", "job", "chunk", "plain"]))
        name = {
            "job": f"job_{job_id}_{serial}.tmp",
            "chunk": f"job_{job_id}_chunk_{draw(st.integers(0, 2))}_{serial}.tmp",
            "plain": f"loose_{serial}.tmp",
        }[kind]
        files.append((draw(st.sampled_from(["", "a", "a/b"])), name, draw(st.sampled_from(AGES))))
    table = {}
    for job_id in JOB_IDS:
        if draw(st.integers(0, 5)) > 0:  # some jobs are missing from the table
            table[job_id] = (draw(spellings()), draw(st.sampled_from([None, *AGES])))
    kind = draw(st.sampled_from(["Orphaned", "CrashRecovery", "Emergency", "Scheduled"]))
    run: dict[str, Any] = {"type": kind}
    if kind == "Orphaned" and draw(st.booleans()):
        run["maxAgeHours"] = draw(st.sampled_from([0.5, 1, 24]))
    if kind == "CrashRecovery" and draw(st.booleans()):
        run["jobId"] = draw(st.sampled_from(JOB_IDS))
    for flag in ("dryRun", "force"):
        if draw(st.integers(0, 4)) == 0:
            run[flag] = True
    emergency = draw(st.integers(20, 100))
    policy: dict[str, Any] = {
        "storage": {"volume": {"capacity": draw(st.sampled_from([500, 1000, 5000, 100_000]))}},
        "thresholds": {
            "emergencyPercent": emergency,
            "warningPercent": emergency - 10,
            "emergencyBufferPercent": draw(st.integers(0, 19)),
        },
        "orphans": {
            "maxAgeHours": draw(st.sampled_from([1, 24])),
            "emergencyMaxAgeHours": draw(st.sampled_from([1, 2])),
        },
        "failedJobs": {"cleanupAfterHours": draw(st.sampled_from([0, 1, 24]))},
        "limits": {
            "batchSize": draw(st.integers(1, 10)),
            "maxFilesPerRun": draw(st.integers(1, 40)),
            "maxDeletePercent": draw(st.sampled_from([0, 10, 50, 50, 90, 100])),
            "emergencyMaxDeletePercent": draw(st.sampled_from([0, 50, 100])),
        },
    }
    return Case(files, table, run, policy, draw(st.booleans()))


def _class(status: str) -> str:
    normal = status.strip().lower()
    for name, listed in (("active", ACTIVE), ("failed", FAILED), ("finished", FINISHED)):
        if normal in listed:
            return name
    return "unrecognized"


def _owner(path: str) -> str | None:
    name = path.rpartition("/")[2]
    return name.split("_")[1] if name.startswith("job_") else None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_no_file_of_an_active_or_unrecognized_job_and_no_file_too_young_is_deleted(case: Case) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="tempsweep-fail-closed-") as base_name:
        base = Path(base_name)
        tree = Tree(base / "volume", now)
        tree.root.mkdir()
        ages = {}
        for directory, name, age in case.files:
            path = f"{directory}/{name}" if directory else name
            tree.file(path, age_hours=age, size=50)
            ages[path] = age
        records = [job(job_id, status, hours, now) for job_id, (status, hours) in case.table.items()]
        url = "sqlite://"
        if case.sql:
            rows = [(int(r.job_id), r.status, r.updated_at) for r in records]
            url = sqlite_jobs(base / "jobs.db", rows)
        policy = effective_policy(tree.root, jobs={"database": {"url": url}}, **case.policy)
        jobs: Any = SqlJobSource(policy.backend.database, url) if case.sql else MemoryJobSource(records)
        spec = run_spec(case.run["type"], **{key: value for key, value in case.run.items() if key != "type"})
        before = regular_files(tree.root)

        status = execute(policy, VolumeStorage(str(tree.root)), spec, jobs=jobs, now=now)

        deleted = before - regular_files(tree.root)
        kind = case.run["type"]
        classes = {job_id: _class(text) for job_id, (text, _) in case.table.items()}
        for path in deleted:
            owner = _owner(path)
            assert classes.get(owner) not in ("active", "unrecognized"), (
                f"{path}: job {owner} is {case.table[owner][0]!r} ({status.message})"
            )
        # the applicable age
        failed_ready = {
            job_id
            for job_id, (text, hours) in case.table.items()
            if _class(text) == "failed"
            and hours is not None
            and hours >= case.policy["failedJobs"]["cleanupAfterHours"]
        }
        orphan_age = case.run.get("maxAgeHours", case.policy["orphans"]["maxAgeHours"])
        emergency_age = case.policy["orphans"]["emergencyMaxAgeHours"]
        later_tiers = bool({"EmergencyFailedJob", "EmergencyOldest"} & set(status.deleted_by_reason))
        for path in deleted:
            age, owner = ages[path], _owner(path)
            if kind == "Orphaned":
                assert age >= orphan_age, f"{path} is {age} h old"
            elif kind == "CrashRecovery":
                assert owner in failed_ready, f"{path}: job {owner} is not failed past its wait"
            elif kind == "Emergency":
                assert age >= emergency_age or later_tiers, f"{path} is {age} h old"
            else:
                assert age >= min(orphan_age, emergency_age) or owner in failed_ready or later_tiers, path
        # the guard and dry runs delete nothing
        if status.reason is RunReason.BLAST_RADIUS_EXCEEDED or status.dry_run:
            assert deleted == set()
        if status.reason is RunReason.BLAST_RADIUS_EXCEEDED:
            assert status.phase is RunPhase.FAILED and not case.run.get("force")
        # within the limits: each phase deletes at most its limit's share of what it scanned
        limits = case.policy["limits"]
        allowed = {
            "Orphaned": limits["maxDeletePercent"],
            "CrashRecovery": limits["maxDeletePercent"],
            "Emergency": limits["emergencyMaxDeletePercent"],
            "Scheduled": limits["maxDeletePercent"] + limits["emergencyMaxDeletePercent"],
        }[kind]
        if not case.run.get("force"):
            assert 100 * len(deleted) <= allowed * max(status.files_scanned, 1), status.message
        # what was kept for an unrecognized status is counted and named
        if kind != "CrashRecovery":
            unrecognized = {job_id for job_id, name in classes.items() if name == "unrecognized"}
            expected = sum(1 for path in before if _owner(path) in unrecognized)
            assert status.files_kept_unrecognized_status == expected
            named = {case.table[job_id][0].strip().lower() for job_id in unrecognized if _has_files(before, job_id)}
            assert set(status.unrecognized_job_statuses) == {
                name[:63] + "…" if len(name) > 64 else name for name in named
            }


def _has_files(paths: set[str], job_id: str) -> bool:
    return any(_owner(path) == job_id for path in paths)
