"""Bad input never crashes and never deletes: one clear line naming the file or field, exit 2."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweep_helpers import Workspace, policy_document, run_document, sqlite_jobs
from tempsweep.cli import main

OLD_FILES = {"stale.tmp", "job_1_a.tmp", "nested/old.tmp"}
VALID_RUN = run_document("Orphaned", maxAgeHours=1)


def _policy(workspace: Workspace, **overrides: Any) -> dict[str, Any]:
    return policy_document(workspace.tree.root, **overrides)


def _run_cli(workspace: Workspace, policy: Any, run: Any = None, *extra: str) -> list[str]:
    policy_path = workspace.write("policy.yaml", policy)
    run_path = workspace.write("run.yaml", VALID_RUN if run is None else run)
    return ["run", "-f", str(run_path), "--policy", str(policy_path), *extra]


def _sqlite_without(workspace: Workspace, column: str | None) -> str:
    path = workspace.base / f"jobs-without-{column}.db"
    connection = sqlite3.connect(path)
    columns = [name for name in ("id INTEGER", "status TEXT", "updated_at TIMESTAMP") if name.split()[0] != column]
    connection.execute(f"CREATE TABLE crawl_jobs ({', '.join(columns)})")
    connection.close()
    return f"sqlite:///{path}"


def _cases(workspace: Workspace) -> dict[str, Callable[[], tuple[list[str], list[str]]]]:
    """name -> what writes the case's files and gives (arguments, strings stderr must contain)."""
    policy_file = str(workspace.base / "policy.yaml")
    run_file = str(workspace.base / "run.yaml")
    good = _policy(workspace)
    return {
        "policy-yaml-syntax-error": lambda: (
            _run_cli(workspace, "apiVersion: tempsweep.io/v1alpha1\nkind: [CleanupPolicy\n"),
            [policy_file, "not valid YAML at line"],
        ),
        "run-yaml-syntax-error": lambda: (
            _run_cli(workspace, good, "spec:\n  type: Orphaned\n bad-indent: 1\n"),
            [run_file, "not valid YAML"],
        ),
        "unknown-field": lambda: (
            _run_cli(workspace, _policy(workspace, limits={"batchSizee": 5})),
            [policy_file, "spec.limits.batchSizee: unknown field"],
        ),
        "wrong-type": lambda: (
            _run_cli(workspace, _policy(workspace, limits={"maxFilesPerRun": "lots"})),
            [policy_file, "spec.limits.maxFilesPerRun"],
        ),
        "exclude-trailing-backslash": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["*.lock", "keep\\"])),
            [policy_file, "spec.exclude.1", "not a valid .gitignore pattern"],
        ),
        "exclude-bad-range": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["[z-a].tmp"])),
            [policy_file, "spec.exclude.0", "not a valid .gitignore pattern"],
        ),
        "exclude-lone-bang": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["!"])),
            [policy_file, "spec.exclude.0", "not a valid .gitignore pattern"],
        ),
        "exclude-comment": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["# keep these", "stale.tmp"])),
            [policy_file, "spec.exclude.0", "comment"],
        ),
        "exclude-blank": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["  "])),
            [policy_file, "spec.exclude.0", "empty"],
        ),
        "exclude-two-lines-in-one": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["stale.tmp\nnested"])),
            [policy_file, "spec.exclude.0", "line break"],
        ),
        "exclude-dot-slash": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["./nested"])),
            [policy_file, "spec.exclude.0", "'.'"],
        ),
        "exclude-parent-segment": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["../volume/nested"])),
            [policy_file, "spec.exclude.0", "'..'"],
        ),
        "exclude-double-slash": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["nested//old.tmp"])),
            [policy_file, "spec.exclude.0", "empty"],
        ),
        "exclude-absolute-volume-path": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=[f"{workspace.tree.root}/nested"])),
            [policy_file, "spec: exclude.0", "relative to the volume root", "'/nested'"],
        ),
        "exclude-negation-first": lambda: (
            _run_cli(workspace, _policy(workspace, exclude=["!stale.tmp", "*.lock"])),
            [policy_file, "spec: exclude.0", "write 'stale.tmp'"],
        ),
        "base-60-number": lambda: (
            _run_cli(
                workspace, yaml.safe_dump(_policy(workspace, orphans={"maxAgeHours": 999})).replace("999", "1:30")
            ),
            [policy_file, "spec.orphans.maxAgeHours", "base-60"],
        ),
        "cron-with-seconds": lambda: (
            _run_cli(workspace, _policy(workspace, schedule={"scheduled": "*/5 * * * * *"})),
            [policy_file, "spec.schedule.scheduled", "five fields"],
        ),
        "cron-with-year": lambda: (
            _run_cli(workspace, _policy(workspace, schedule={"orphaned": "0 * * * * 0 2020"})),
            [policy_file, "spec.schedule.orphaned", "five fields"],
        ),
        "infinite-age-in-policy": lambda: (
            _run_cli(workspace, _policy(workspace, orphans={"maxAgeHours": float("inf")})),
            [policy_file, "spec.orphans.maxAgeHours", "finite"],
        ),
        "nan-limit-in-policy": lambda: (
            _run_cli(workspace, _policy(workspace, failedJobs={"cleanupAfterHours": float("nan")})),
            [policy_file, "spec.failedJobs.cleanupAfterHours", "finite"],
        ),
        "wrong-kind": lambda: (
            _run_cli(workspace, good, {**VALID_RUN, "kind": "CleanupPolicy"}),
            [run_file, "kind: got 'CleanupPolicy'"],
        ),
        "wrong-api-version": lambda: (
            _run_cli(workspace, {**good, "apiVersion": "tempsweep.io/v2"}),
            [policy_file, "apiVersion: got 'tempsweep.io/v2'"],
        ),
        "relative-volume-path": lambda: (
            _run_cli(workspace, _policy(workspace, storage={"volume": {"path": "volume"}})),
            [policy_file, "spec.storage.volume.path", "relative"],
        ),
        "relative-path-option": lambda: (
            _run_cli(workspace, good, None, "--path", "volume"),
            ["--path", "relative"],
        ),
        "missing-volume-directory": lambda: (
            _run_cli(workspace, good, None, "--path", str(workspace.base / "no-such-volume")),
            ["--path", "no-such-volume", "does not exist"],
        ),
        "run-policy-mismatch": lambda: (
            _run_cli(workspace, good, run_document("Orphaned", policy="another-policy")),
            [run_file, "spec.policyRef.name", "another-policy"],
        ),
        "bad-completed-files-entry": lambda: (
            _run_cli(
                workspace,
                good,
                run_document("ChunkCompletion", jobId="1", chunkId="2", completedFiles=["a.tmp", "../b"]),
            ),
            [run_file, "spec.completedFiles", "entry 1"],
        ),
        "secret-reference-offline": lambda: (
            _run_cli(workspace, _policy(workspace, jobs={"database": {"urlSecretRef": {"name": "db", "key": "url"}}})),
            [policy_file, "TEMP_STORAGE_CLEANUP_DATABASE_URL"],
        ),
        "missing-policy-file": lambda: (
            ["run", "-f", str(workspace.write("run.yaml", VALID_RUN)), "--policy", str(workspace.base / "nope.yaml")],
            ["nope.yaml", "no such file"],
        ),
        "missing-run-file": lambda: (
            ["run", "-f", str(workspace.base / "nope.yaml"), "--policy", str(workspace.write("policy.yaml", good))],
            ["nope.yaml", "no such file"],
        ),
        "two-documents": lambda: (
            _run_cli(workspace, "---\n".join([yaml.safe_dump(good)] * 2)),
            [policy_file, "expected exactly one YAML document, found 2"],
        ),
        "empty-file": lambda: (_run_cli(workspace, good, ""), [run_file, "found 0"]),
        "not-an-object": lambda: (_run_cli(workspace, "- a\n- list\n"), [policy_file, "expected a Kubernetes object"]),
        "free-space-above-capacity": lambda: (
            _run_cli(
                workspace,
                _policy(workspace, storage={"volume": {"capacity": "1Mi"}}, thresholds={"minFreeSpace": "1Gi"}),
            ),
            [policy_file, "spec.thresholds.minFreeSpace"],
        ),
    }


CASE_NAMES = [
    "policy-yaml-syntax-error",
    "run-yaml-syntax-error",
    "unknown-field",
    "wrong-type",
    "wrong-kind",
    "wrong-api-version",
    "relative-volume-path",
    "relative-path-option",
    "missing-volume-directory",
    "run-policy-mismatch",
    "bad-completed-files-entry",
    "secret-reference-offline",
    "missing-policy-file",
    "missing-run-file",
    "two-documents",
    "empty-file",
    "not-an-object",
    "free-space-above-capacity",
    "exclude-trailing-backslash",
    "exclude-bad-range",
    "exclude-lone-bang",
    "exclude-comment",
    "exclude-blank",
    "exclude-two-lines-in-one",
    "infinite-age-in-policy",
    "nan-limit-in-policy",
    "exclude-dot-slash",
    "exclude-parent-segment",
    "exclude-double-slash",
    "exclude-absolute-volume-path",
    "cron-with-seconds",
    "cron-with-year",
    "exclude-negation-first",
    "base-60-number",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_exits_2_with_one_line_naming_it_and_deletes_nothing(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    arguments, expected = _cases(workspace)[case]()

    code = main(arguments)

    captured = capsys.readouterr()
    assert code == 2
    error_lines = [line for line in captured.err.splitlines() if line.startswith("tempsweep: error:")]
    assert len(error_lines) == 1, captured.err
    for part in expected:
        assert part in error_lines[0]
    assert captured.out == ""
    assert workspace.tree.files() == OLD_FILES


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WARNING_THRESHOLD", "99"),
        ("MIN_FREE_SPACE_GB", "-1"),
        ("SCHEDULED_CLEANUP_INTERVAL_MINUTES", "7"),
        ("MIN_FREE_SPACE_GB", "inf"),
        ("MIN_FREE_SPACE_GB", "1e400"),
        ("MAX_ORPHAN_AGE_HOURS", "Infinity"),
        ("EMERGENCY_CHECK_INTERVAL_MINUTES", "inf"),
    ],
    ids=[
        "warning-above-emergency",
        "negative-size",
        "bad-interval",
        "infinite-size",
        "size-overflowing-to-infinity",
        "infinite-age",
        "infinite-interval",
    ],
)
@pytest.mark.parametrize("command", ["scan", "run"])
def test_a_bad_setting_exits_2_naming_the_variable(
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    command: str,
) -> None:
    monkeypatch.setenv(f"TEMP_STORAGE_CLEANUP_{variable}", value)
    arguments = _run_cli(workspace, _policy(workspace))
    if command == "scan":
        arguments = ["scan", "--policy", arguments[4]]

    code = main(arguments)

    assert code == 2
    assert f"TEMP_STORAGE_CLEANUP_{variable}" in capsys.readouterr().err
    assert workspace.tree.files() == OLD_FILES


def test_a_missing_argument_is_a_usage_error_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["run", "--policy", "policy.yaml"])
    assert raised.value.code == 2
    assert "-f/--filename" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--priority", "5"], "--priority only means something with --peering NAME"),
        (["--peering", "tempsweep", "--priority", "high"], "argument --priority: invalid int value: 'high'"),
        (["--metrics-port", "70000"], "argument --metrics-port: '70000' is not between 0 and 65535"),
        (["--metrics-port", "http"], "argument --metrics-port: 'http' is not a port number"),
        (["--shards", "0"], "--shards: 0 must be between 1 and 1024"),
        (["--shards", "three"], "argument --shards: invalid int value: 'three'"),
        (["--shard-lease-seconds", "15"], "--shard-lease-seconds only means something with --shards N"),
        (["--shards", "4", "--shard-lease-seconds", "1"], "--shard-lease-seconds: 1 must be between 3 and 300"),
        (["--shards", "4", "--peering", "tempsweep"], "--shards and --peering exclude each other"),
    ],
    ids=[
        "priority-without-peering",
        "priority-not-a-number",
        "no-shards",
        "shards-not-a-number",
        "lease-without-shards",
        "lease-too-short",
        "shards-and-peering",
        "metrics-port-too-high",
        "metrics-port-not-a-number",
    ],
)
def test_a_bad_operator_option_exits_2_before_connecting(
    capsys: pytest.CaptureFixture[str], arguments: list[str], expected: str
) -> None:
    try:
        code = main(["operator", "--namespace", "nowhere", *arguments])
    except SystemExit as raised:  # argparse's own usage errors
        code = int(raised.code or 0)

    assert code == 2
    assert expected in capsys.readouterr().err


def test_shards_without_a_namespace_for_their_leases_exit_2_before_connecting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)

    code = main(["operator", "--shards", "3"])  # all namespaces, and no POD_NAMESPACE: where would Leases go?

    assert code == 2
    assert "--shards needs a namespace for its Leases: set POD_NAMESPACE" in capsys.readouterr().err


def test_the_installed_console_script_reports_bad_input_the_same_way(workspace: Workspace) -> None:
    script = Path(sys.executable).with_name("tempsweep")
    assert script.exists(), "the project is installed with its console script"
    arguments = _run_cli(workspace, _policy(workspace, limits={"batchSize": "ten"}))

    finished = subprocess.run([str(script), *arguments], capture_output=True, text=True, timeout=120, check=False)

    assert finished.returncode == 2
    assert "policy.yaml: spec.limits.batchSize" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert finished.stdout == ""
    assert workspace.tree.files() == OLD_FILES


def _unreadable_databases(workspace: Workspace) -> dict[str, tuple[str, str]]:
    """name -> (database URL, what the message names)."""
    return {
        "unreachable-database": (f"sqlite:///{workspace.base}/missing-dir/jobs.db", "job database"),
        "missing-table": (
            sqlite_jobs(workspace.base / "jobs.db", [(1, "running", datetime.now(UTC))], table="other_table"),
            "crawl_jobs",
        ),
        "missing-column": (_sqlite_without(workspace, "status"), "statusColumn"),
    }


@pytest.mark.parametrize("case", ["unreachable-database", "missing-table", "missing-column"])
def test_an_unreadable_job_database_is_an_outage_files_of_jobs_are_kept_and_the_run_fails(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """As in the operator: the run goes on without job status, keeps every file of a job, and fails (exit 1)."""
    url, named = _unreadable_databases(workspace)[case]
    arguments = _run_cli(workspace, _policy(workspace, jobs={"database": {"url": url}}))

    code = main(arguments)

    captured = capsys.readouterr()
    status = json.loads(captured.out)
    assert code == 1
    assert status["phase"] == "Failed"
    assert "job status unavailable, files of jobs were kept" in status["message"]
    assert named in status["message"]
    assert "job_1_a.tmp" in workspace.tree.files(), "a file of a job is never deleted without job status"
    assert "Traceback" not in captured.err


def test_a_metrics_port_already_taken_stops_the_operator_with_one_line_and_exit_2() -> None:
    script = Path(sys.executable).with_name("tempsweep")
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]

        finished = subprocess.run(
            [str(script), "operator", "--namespace", "nowhere", "--metrics-port", str(port),
             "--liveness", "http://127.0.0.1:0/healthz"],
            capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "KUBECONFIG": "/nonexistent"},
        )

    assert finished.returncode == 2
    assert f"tempsweep: error: --metrics-port {port}: cannot listen on 0.0.0.0: " in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TEMPSWEEP_TICK_SECONDS", "ten", "'ten' is not a number of seconds"),
        ("TEMPSWEEP_TICK_SECONDS", "0", "must be between 0.1 and 3600 seconds"),
        ("TEMPSWEEP_TTL_CHECK_SECONDS", "nan", "must be between 0.1 and 86400 seconds"),
        ("TEMPSWEEP_RUN_LEASE_SECONDS", "2.5", "must be whole seconds"),
    ],
    ids=["tick-not-a-number", "tick-zero", "ttl-check-nan", "lease-fractional"],
)
def test_a_bad_operator_timing_variable_exits_2_naming_it(variable: str, value: str, expected: str) -> None:
    script = Path(sys.executable).with_name("tempsweep")
    environment = {**os.environ, variable: value, "KUBECONFIG": "/nonexistent"}

    finished = subprocess.run(
        [str(script), "operator", "--namespace", "nowhere"],
        capture_output=True, text=True, timeout=120, check=False, env=environment,
    )

    assert finished.returncode == 2
    assert f"{variable}: " in finished.stderr and expected in finished.stderr
    assert "Traceback" not in finished.stderr
