"""`tempsweep run` with naming: ambiguous patterns refused (exit 2), job directories kept, near misses reported.

Real directories, a real SQLite job table: job 41 runs, 43 finished, 44 failed two days ago.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sweep_helpers import Workspace, policy_document, run_document, sqlite_jobs
from tempsweep.cli import main

OLD = 1000.0


def _jobs(workspace: Workspace) -> dict[str, Any]:
    now = datetime.now(UTC)
    two_days = now - timedelta(days=2)
    url = sqlite_jobs(
        workspace.base / "jobs.db", [(41, "running", now), (43, "completed", two_days), (44, "failed", two_days)]
    )
    return {"database": {"url": url}}


def _arguments(workspace: Workspace, run: dict[str, Any], **policy: Any) -> list[str]:
    policy_path = workspace.write("policy.yaml", policy_document(workspace.tree.root, **policy))
    run_path = workspace.write("run.yaml", run)
    return ["run", "-f", str(run_path), "--policy", str(policy_path)]


@pytest.mark.parametrize(
    ("naming", "expected"),
    [
        (
            {"jobPattern": "job-{job_id}-", "chunkPattern": "job-{job_id}-chunk-{chunk_id}-"},
            "spec.naming.jobPattern: '-' right after {job_id} may also occur inside an id",
        ),
        ({"idCharacters": "A-Za-z0-9_-"}, "spec.naming.jobPattern: '_' right after {job_id}"),
        (
            {"chunkPattern": "chunk_{chunk_id}_job_{job_id}_"},
            "spec.naming.chunkPattern: must start with the job pattern",
        ),
        (
            {"jobPattern": "job_{job_id}", "chunkPattern": "job_{job_id}_c{chunk_id}_"},
            "spec.naming.jobPattern: the pattern ends",
        ),
    ],
    ids=["issue-example-dash-separators", "underscore-allowed-in-ids", "chunk-pattern-not-under-job", "ends-with-id"],
)
def test_an_ambiguous_naming_exits_2_naming_the_field_and_deletes_nothing(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], naming: dict[str, Any], expected: str
) -> None:
    before = workspace.tree.files()
    policy_file = workspace.base / "policy.yaml"

    code = main(_arguments(workspace, run_document("Orphaned"), naming=naming))

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"tempsweep: error: {policy_file}: {expected}"), err
    assert len(err.splitlines()) == 1
    assert workspace.tree.files() == before


@pytest.mark.parametrize(
    ("running", "gone"),
    [
        (["job_41/frames/0001.png", "job_41/frames/0002.png"], ["job_43/frames/0001.png"]),
        (["renders/job_41_out/a.exr", "job_43/job_41_b.exr"], ["renders/job_43_out/a.exr", "stale.tmp"]),
    ],
    ids=["directory-form", "directory-starting-with-the-pattern"],
)
def test_files_in_a_running_jobs_directory_stay_and_a_finished_jobs_go(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], running: list[str], gone: list[str]
) -> None:
    for path in running + gone:
        workspace.tree.file(path, age_hours=OLD)

    code = main(_arguments(workspace, run_document("Orphaned"), jobs=_jobs(workspace)))

    status = json.loads(capsys.readouterr().out)
    remaining = workspace.tree.files()
    assert code == 0
    assert set(running) <= remaining
    assert not set(gone) & remaining, status["message"]


@pytest.mark.parametrize("job_id", ["44", None], ids=["named-job", "every-failed-job"])
def test_crash_recovery_empties_a_failed_jobs_directory(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], job_id: str | None
) -> None:
    workspace.tree.file("job_44/frames/0001.png")
    workspace.tree.file("job_41/frames/0001.png")
    fields = {"jobId": job_id} if job_id else {}

    code = main(_arguments(workspace, run_document("CrashRecovery", **fields), jobs=_jobs(workspace)))

    status = json.loads(capsys.readouterr().out)
    assert code == 0
    assert "job_44/frames/0001.png" not in workspace.tree.files()
    assert "job_41/frames/0001.png" in workspace.tree.files()
    assert status["deletedByReason"]["FailedJob"] >= 1


@pytest.mark.parametrize(
    "near_miss", ["job_4.1_frames.png", "job_4.1/frames/0001.png"], ids=["near-miss-name", "near-miss-directory"]
)
def test_a_near_miss_is_kept_and_reported(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], near_miss: str
) -> None:
    workspace.tree.file(near_miss, age_hours=OLD)

    code = main(_arguments(workspace, run_document("Orphaned"), jobs=_jobs(workspace)))

    captured = capsys.readouterr()
    status = json.loads(captured.out)
    assert code == 0
    assert near_miss in workspace.tree.files()
    assert status["nearMissFiles"] == 1
    assert status["nearMissExamples"] == [near_miss]
    assert "does not parse under spec.naming" in captured.err


@pytest.mark.parametrize(
    ("run", "field"),
    [
        (run_document("CrashRecovery", jobId="4_4"), "spec.jobId"),
        (run_document("ChunkCompletion", jobId="44", chunkId="7.0"), "spec.chunkId"),
    ],
    ids=["crash-job-id-with-underscore", "chunk-id-with-dot"],
)
def test_a_run_id_outside_the_policys_id_characters_exits_2(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], run: dict[str, Any], field: str
) -> None:
    workspace.tree.file("job_44/frames/0001.png")
    before = workspace.tree.files()

    code = main(_arguments(workspace, run, jobs=_jobs(workspace)))

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"tempsweep: error: {workspace.base / 'run.yaml'}: {field}: "), err
    assert "naming.idCharacters" in err
    assert workspace.tree.files() == before
