"""A job-source outage reaches the engine as a source that says it is unavailable, whatever the caller.

The CLI and the operator hand the engine the same ``UnavailableJobSource``; the engine keeps every
file whose fate depends on job status and says so in the one message both print.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sweep_helpers import Tree, effective_policy, execute, run_spec
from tempsweep.engine import CleanupContext, compute_stats
from tempsweep.jobs.unavailable import UnavailableJobSource
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage

OLD = 1000.0
OUTAGE = "job database sqlite:////nowhere/jobs.db is unreachable"


@pytest.fixture
def outage_tree(tree: Tree) -> Tree:
    for name in ("job_1_a.tmp", "job_2_chunk_3_x.tmp", "loose.tmp"):
        tree.file(name, age_hours=OLD)
    return tree


def _policy(tree: Tree, **overrides):
    return effective_policy(
        tree.root, jobs={"database": {"url": "sqlite:////nowhere/jobs.db"}}, orphans={"maxAgeHours": 1}, **overrides
    )


@pytest.mark.parametrize("kind", ["Orphaned", "Emergency", "Scheduled", "CrashRecovery"])
def test_an_outage_keeps_every_file_of_a_job_and_fails_the_run_saying_why(
    outage_tree: Tree, now: datetime, kind: str
) -> None:
    # a capacity the three files fill: the emergency is needed, so job status matters to it too
    policy = _policy(
        outage_tree,
        storage={"volume": {"path": str(outage_tree.root), "capacity": "31"}},
        thresholds={"minFreeSpace": "1"},
    )
    storage = VolumeStorage(str(outage_tree.root))

    status = execute(policy, storage, run_spec(kind), jobs=UnavailableJobSource(OUTAGE), now=now)

    assert status.phase is RunPhase.FAILED
    assert f"job status unavailable, files of jobs were kept: {OUTAGE}" in status.message or (
        kind == "Scheduled" and f"crash recovery skipped: {OUTAGE}" in status.message
    )
    assert {"job_1_a.tmp", "job_2_chunk_3_x.tmp"} <= outage_tree.files()
    assert status.job_queries == 0


def test_chunk_completion_needs_no_job_status_so_an_outage_does_not_fail_it(outage_tree: Tree, now: datetime) -> None:
    policy = _policy(outage_tree)
    storage = VolumeStorage(str(outage_tree.root))

    status = execute(
        policy, storage, run_spec("ChunkCompletion", jobId="2", chunkId="3"), jobs=UnavailableJobSource(OUTAGE), now=now
    )

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert "job_2_chunk_3_x.tmp" not in outage_tree.files()
    assert {"job_1_a.tmp", "loose.tmp"} <= outage_tree.files()


def test_statistics_name_the_outage(outage_tree: Tree, now: datetime) -> None:
    ctx = CleanupContext(
        policy=_policy(outage_tree),
        storage=VolumeStorage(str(outage_tree.root)),
        jobs=UnavailableJobSource(OUTAGE),
        now=now,
    )
    stats = compute_stats(ctx)
    assert stats.job_source_error == OUTAGE
    assert stats.active_jobs_count == 0 and stats.failed_jobs_count == 0
