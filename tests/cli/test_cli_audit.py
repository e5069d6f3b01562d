"""`tempsweep run` with spec.audit: the same YAML as the operator, the same record, the same refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sweep_helpers import Workspace, policy_document, run_document
from tempsweep.cli import main


def _policy(workspace: Workspace, audit: dict[str, object]) -> Path:
    document = policy_document(workspace.tree.root, orphans={"maxAgeHours": 24}, audit=audit)
    document["metadata"]["namespace"] = "team-a"
    return workspace.write("policy.yaml", document)


def test_a_run_writes_its_audit_file_and_a_dry_run_its_plan(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_dir = workspace.base / "audit"
    audit_dir.mkdir()
    policy = _policy(workspace, {"directory": str(audit_dir)})
    run = workspace.write("run.yaml", run_document("Orphaned", name="nightly"))
    record = audit_dir / f"team-a_{policy_document('.')['metadata']['name']}.audit.jsonl"

    assert main(["run", "-f", str(run), "--policy", str(policy), "--dry-run"]) == 0
    planned = [json.loads(line) for line in record.read_text().splitlines()]
    assert main(["run", "-f", str(run), "--policy", str(policy)]) == 0
    capsys.readouterr()

    lines = [json.loads(line) for line in record.read_text().splitlines()]
    expected = {"stale.tmp", "job_1_a.tmp", "nested/old.tmp"}
    assert {line["path"] for line in planned} == expected
    assert {line["action"] for line in planned} == {"planned"}
    deleted = lines[len(planned):]
    assert {line["path"] for line in deleted} == expected
    assert {(line["action"], line["run"], line["type"]) for line in deleted} == {("deleted", "nightly", "Orphaned")}
    assert workspace.tree.files() == set()


def test_an_audit_directory_inside_the_volume_is_bad_input_naming_the_field(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(workspace, {"directory": str(workspace.tree.root / "nested")})
    run = workspace.write("run.yaml", run_document("Orphaned"))

    code = main(["run", "-f", str(run), "--policy", str(policy)])

    err = capsys.readouterr().err
    assert code == 2
    assert "spec.audit.directory" in err and "inside the cleaned volume" in err
    assert len(err.strip().splitlines()) == 1
    assert len(workspace.tree.files()) == 3  # nothing deleted


def test_an_audit_that_cannot_be_opened_is_bad_input_and_deletes_nothing(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(workspace, {"directory": str(workspace.base / "not-mounted")})
    run = workspace.write("run.yaml", run_document("Orphaned"))

    code = main(["run", "-f", str(run), "--policy", str(policy)])

    err = capsys.readouterr().err
    assert code == 2
    assert "spec.audit.directory" in err and "does not exist" in err
    assert len(workspace.tree.files()) == 3


def test_a_policy_name_that_would_leave_the_audit_directory_is_bad_input(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_dir = workspace.base / "audit"
    (audit_dir / "team-a_x").mkdir(parents=True)  # so that "team-a_x/../../escaped" resolves
    document = policy_document(workspace.tree.root, orphans={"maxAgeHours": 24}, audit={"directory": str(audit_dir)})
    document["metadata"].update(namespace="team-a", name="x/../../escaped")
    policy = workspace.write("policy.yaml", document)
    run = workspace.write("run.yaml", run_document("Orphaned", policy="x/../../escaped"))

    code = main(["run", "-f", str(run), "--policy", str(policy)])

    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "policy.yaml" in err and "metadata" in err and "DNS names" in err
    assert not (workspace.base / "escaped.audit.jsonl").exists()
    assert len(workspace.tree.files()) == 3  # nothing deleted


def test_without_a_directory_json_logs_carry_the_audit_fields(workspace: Workspace) -> None:
    policy = _policy(workspace, {})
    run = workspace.write("run.yaml", run_document("Orphaned", name="nightly"))

    result = subprocess.run(  # a process of its own: pytest's log capture owns this one's root logger
        [sys.executable, "-m", "tempsweep.cli", "--log-format", "json", "run", "-f", str(run), "--policy", str(policy)],
        capture_output=True, text=True, check=False, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    audited = [r for r in records if r["logger"] == "tempsweep.audit"]
    assert {r["path"] for r in audited} == {"stale.tmp", "job_1_a.tmp", "nested/old.tmp"}
    for record in audited:
        assert record["action"] == "deleted" and record["run"] == "nightly" and record["namespace"] == "team-a"
        assert record["message"] == f"deleted {record['path']}"
        assert isinstance(record["size"], int) and record["reason"]
