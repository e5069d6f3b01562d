"""`tempsweep scan --metrics-file` for node-exporter's textfile collector, and `--log-format json`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sweep_helpers import Workspace, policy_document, run_document, sqlite_jobs
from tempsweep.cli import main


def _policy(workspace: Workspace, **overrides: object) -> Path:
    document = policy_document(workspace.tree.root, **overrides)
    document["metadata"]["namespace"] = "team-a"
    return workspace.write("policy.yaml", document)


def test_scan_writes_the_figures_as_a_textfile_node_exporter_can_read(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    target = workspace.base / "textfile" / "tempsweep.prom"
    target.parent.mkdir()

    code = main(["scan", "--policy", str(_policy(workspace)), "--metrics-file", str(target)])

    stats = json.loads(capsys.readouterr().out)
    assert code == 0
    families = {f.name: f for f in text_string_to_metric_families(target.read_text())}
    samples = {(s.name, s.labels.get("state")): s for f in families.values() for s in f.samples}
    files = samples[("tempsweep_temp_files", None)]
    assert files.labels == {"namespace": "team-a", "policy": policy_document(".")["metadata"]["name"]}
    assert files.value == stats["tempFilesCount"] == 3
    assert samples[("tempsweep_storage_usage_ratio", None)].value == pytest.approx(stats["usagePercent"] / 100)
    assert samples[("tempsweep_storage_free_bytes", None)].value == stats["freeBytes"]
    assert samples[("tempsweep_storage_health", stats["health"])].value == 1
    assert samples[("tempsweep_pass_last_success_timestamp_seconds", None)].labels["pass"] == "Statistics"
    assert families["tempsweep_storage_usage_ratio"].type == "gauge"
    assert [p.name for p in target.parent.iterdir()] == ["tempsweep.prom"]  # no temporary file left behind


def test_a_metrics_file_that_cannot_be_written_is_bad_input(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    target = workspace.base / "missing-dir" / "tempsweep.prom"

    code = main(["scan", "--policy", str(_policy(workspace)), "--metrics-file", str(target)])

    err = capsys.readouterr().err
    assert code == 2
    assert f"--metrics-file {target}" in err
    assert len(err.strip().splitlines()) == 1


def test_json_log_lines_carry_policy_and_run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqlite_jobs(workspace.base / "jobs.db", [(1, "running", datetime.now(UTC))])
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_DATABASE_URL", url)  # a job-aware run logs its job queries
    policy = _policy(workspace, jobs={"database": {"urlSecretRef": {"name": "db", "key": "url"}}})
    run = workspace.write("run.yaml", run_document("Orphaned", name="nightly"))

    result = subprocess.run(  # a process of its own: pytest's log capture owns this one's root logger
        [sys.executable, "-m", "tempsweep.cli", "-v", "run", "-f", str(run), "--policy", str(policy),
         "--log-format", "json"],
        capture_output=True, text=True, check=False, timeout=120,
    )

    err_lines = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in err_lines]
    assert any("job-status queries" in r["message"] for r in records)
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
        assert record["policy"] == policy_document(".")["metadata"]["name"]
        assert record["run"] == "nightly"


def test_log_format_is_accepted_before_and_after_the_command() -> None:
    from tempsweep.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--log-format", "json", "operator"]).log_format == "json"
    assert parser.parse_args(["operator", "--log-format", "json"]).log_format == "json"
    assert parser.parse_args(["operator"]).log_format == "text"
