"""`tempsweep scan` / `run` fail closed: unlisted job statuses keep files, oversized plans delete nothing.

Real volumes and a real SQLite job table; the JSON printed is what a user reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sweep_helpers import Workspace, policy_document, run_document, sqlite_jobs
from tempsweep.cli import main

#: the workspace holds stale.tmp, job_1_a.tmp and nested/old.tmp, all 1000 h old
VARIANTS = ["RUNNING", "Running", "queued", "processing", " pending"]
UNLISTED = {"queued", "processing"}


def _args(workspace: Workspace, command: str, policy: dict[str, Any], run: dict[str, Any] | None = None) -> list[str]:
    policy_path = workspace.write("policy.yaml", policy)
    if command == "scan":
        return ["scan", "--policy", str(policy_path)]
    return ["run", "-f", str(workspace.write("run.yaml", run)), "--policy", str(policy_path)]


def _job_policy(workspace: Workspace, rows: list[tuple[int, str]], **overrides: Any) -> dict[str, Any]:
    old = datetime.now(UTC) - timedelta(days=9)
    url = sqlite_jobs(workspace.base / "jobs.db", [(job_id, status, old) for job_id, status in rows])
    return policy_document(workspace.tree.root, jobs={"database": {"url": url}}, **overrides)


@pytest.mark.parametrize("status", VARIANTS, ids=lambda s: s.strip() + ("-leading-space" if s[0] == " " else ""))
@pytest.mark.parametrize("command", ["run", "scan"])
def test_a_job_in_a_variant_or_unlisted_status_is_kept_and_reported(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], status: str, command: str
) -> None:
    policy = _job_policy(workspace, [(1, status)])

    code = main(_args(workspace, command, policy, run_document("Orphaned")))

    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert "job_1_a.tmp" in workspace.tree.files()
    unlisted = status.strip().lower() in UNLISTED
    assert printed["filesKeptUnrecognizedStatus"] == (1 if unlisted else 0)
    assert printed["unrecognizedJobStatuses"] == ([status.strip().lower()] if unlisted else [])
    if command == "run":
        assert printed["deletedByReason"] == {"OrphanNoJobId": 2}
    else:
        assert printed["orphanedFilesCount"] == 2


def _blocked_case(workspace: Workspace) -> tuple[dict[str, Any], set[str]]:
    """A job table that lost its rows: 3 of the 4 files look like orphans (75 %)."""
    workspace.tree.file("fresh.tmp", age_hours=0)
    return _job_policy(workspace, [(5, "running")], limits={"maxDeletePercent": None}), workspace.tree.files()


@pytest.mark.parametrize("extra", [[], ["--dry-run"]], ids=["run", "dry-run"])
def test_an_oversized_plan_deletes_nothing_and_exits_1(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    policy, before = _blocked_case(workspace)

    code = main(_args(workspace, "run", policy, run_document("Orphaned")) + extra)

    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert code == 1
    assert workspace.tree.files() == before
    assert printed["phase"] == "Failed"
    assert printed["reason"] == "BlastRadiusExceeded"
    assert printed["wouldDeleteCount"] == 3
    assert printed["wouldDeleteByReason"] == {"OrphanNoJobId": 2, "OrphanUnknownJob": 1}
    assert "plans to delete 3 of 4 scanned files (75.0%), more than limits.maxDeletePercent (50%)" in captured.err


def test_force_on_the_run_accepts_the_plan(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    policy, _ = _blocked_case(workspace)

    code = main(_args(workspace, "run", policy, run_document("Orphaned", force=True)))

    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["filesDeleted"] == 3
    assert workspace.tree.files() == {"fresh.tmp"}
