"""`tempsweep run` and `tempsweep scan`: JSON on stdout, exit 0 on success and 1 for a run that failed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from sweep_helpers import Workspace, policy_document, run_document, sqlite_jobs
from tempsweep.cli import main

OLD_FILES = {"stale.tmp", "job_1_a.tmp", "nested/old.tmp"}


def _run(workspace: Workspace, run: dict, policy: dict | None = None, *extra: str) -> list[str]:
    policy_path = workspace.write("policy.yaml", policy or policy_document(workspace.tree.root))
    run_path = workspace.write("run.yaml", run)
    return ["run", "-f", str(run_path), "--policy", str(policy_path), *extra]


def test_a_run_prints_its_status_as_json_and_exits_0(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    workspace.tree.file("fresh.tmp", age_hours=0)

    code = main(_run(workspace, run_document("Orphaned", maxAgeHours=12)))

    captured = capsys.readouterr()
    status = json.loads(captured.out)
    assert code == 0
    assert workspace.tree.files() == {"fresh.tmp"}
    assert status["phase"] == "Succeeded"
    assert status["trigger"] == "Orphaned"
    assert status["filesDeleted"] == 3
    assert status["deletedByReason"] == {"Expired": 3}
    assert "Orphaned: deleted 3 files" in captured.err


def test_dry_run_option_deletes_nothing(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(_run(workspace, run_document("Orphaned"), None, "--dry-run"))

    status = json.loads(capsys.readouterr().out)
    assert code == 0
    assert workspace.tree.files() == OLD_FILES
    assert status["dryRun"] is True
    assert sorted(status["wouldDelete"]) == sorted(OLD_FILES)


def test_path_option_overrides_the_policy_volume(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    policy = policy_document("/var/lib/tempsweep/volumes/elsewhere")

    code = main(_run(workspace, run_document("Orphaned"), policy, "--path", str(workspace.tree.root)))

    assert code == 0
    assert workspace.tree.files() == set()
    assert json.loads(capsys.readouterr().out)["filesDeleted"] == 3


@pytest.mark.parametrize(
    ("run", "policy_overrides", "why"),
    [
        (run_document("CrashRecovery"), {}, "jobs.database"),
        (
            run_document("Emergency"),
            {"storage": {"volume": {"capacity": 10}}, "exclude": ["*.tmp"]},
            "could not bring usage below",
        ),
    ],
    ids=["crash-recovery-without-job-status", "emergency-that-cannot-get-there"],
)
def test_a_run_that_failed_exits_1_with_its_status_on_stdout(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], run: dict, policy_overrides: dict, why: str
) -> None:
    code = main(_run(workspace, run, policy_document(workspace.tree.root, **policy_overrides)))

    status = json.loads(capsys.readouterr().out)
    assert code == 1
    assert status["phase"] == "Failed"
    assert why in status["message"]
    assert workspace.tree.files() == OLD_FILES


def test_job_status_comes_from_the_database_url_setting(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    workspace.tree.file("job_2_b.tmp", age_hours=1000)
    url = sqlite_jobs(workspace.base / "jobs.db", [(1, "running", now), (2, "completed", now - timedelta(days=9))])
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_DATABASE_URL", url)
    policy = policy_document(workspace.tree.root, jobs={"database": {"urlSecretRef": {"name": "db", "key": "url"}}})

    code = main(_run(workspace, run_document("Orphaned"), policy))

    status = json.loads(capsys.readouterr().out)
    assert code == 0
    assert workspace.tree.files() == {"job_1_a.tmp"}, "the running job keeps its file"
    assert status["deletedByReason"] == {"OrphanNoJobId": 2, "OrphanFinishedJob": 1}
    assert status["jobQueries"] >= 1


def test_the_summary_line_can_be_switched_off(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_LOG_CLEANUP_STATS", "false")

    assert main(_run(workspace, run_document("Orphaned"), None, "--dry-run")) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert json.loads(captured.out)["wouldDeleteCount"] == 3


def test_scan_prints_the_storage_stats_as_json(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    workspace.tree.file("fresh.tmp", age_hours=0, size=70)
    policy = policy_document(
        workspace.tree.root,
        storage={"volume": {"capacity": 100}},
        thresholds={"warningPercent": 50, "emergencyPercent": 90},
    )
    policy_path = workspace.write("policy.yaml", policy)

    code = main(["scan", "--policy", str(policy_path)])

    stats = json.loads(capsys.readouterr().out)
    assert code == 0
    assert stats["tempFilesCount"] == 4
    assert stats["tempFilesSizeBytes"] == 100
    assert stats["usagePercent"] == 100.0
    assert stats["orphanedFilesCount"] == 3
    assert stats["health"] == "Critical"
    assert stats["cleanupNeeded"] is True
    assert workspace.tree.files() == OLD_FILES | {"fresh.tmp"}, "scan deletes nothing"


def test_help_does_not_import_kopf_kubernetes_or_azure() -> None:
    probe = (
        "import sys\n"
        "from tempsweep.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as done:\n    assert done.code == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'kopf', 'kubernetes', 'azure'})\n"
        "print(heavy, file=sys.stderr)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)

    assert "usage: tempsweep" in finished.stdout
    assert finished.returncode == 0, finished.stderr


def test_a_run_on_a_volume_policy_does_not_import_kopf_kubernetes_or_azure(workspace: Workspace) -> None:
    arguments = _run(workspace, run_document("Orphaned"), None, "--dry-run")
    probe = (
        "import sys\n"
        "from tempsweep.cli import main\n"
        f"code = main({arguments!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'kopf', 'kubernetes', 'azure'})\n"
        "print(heavy, file=sys.stderr)\n"
        "sys.exit(1 if heavy or code else 0)\n"
    )
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)

    assert finished.returncode == 0, finished.stderr


def test_a_run_is_appended_to_the_history_table_when_the_policy_names_one(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    database = workspace.base / "jobs.db"
    url = sqlite_jobs(database, [(1, "running", datetime.now(UTC))])
    policy = policy_document(
        workspace.tree.root, jobs={"database": {"url": url, "historyTable": "cleanup_history"}}
    )

    assert main(_run(workspace, run_document("Orphaned", name="nightly"), policy)) == 0
    assert main(_run(workspace, run_document("Orphaned", name="again"), policy)) == 0

    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT * FROM cleanup_history").fetchall()
        columns = [d[0] for d in connection.execute("SELECT * FROM cleanup_history").description]
    assert len(rows) == 2, "one row per finished run"
    recorded = [dict(zip(columns, row, strict=True)) for row in rows]
    assert any("nightly" in map(str, row.values()) for row in recorded)
    assert any(2 in row.values() for row in recorded), "the first run's 2 deletions are recorded"
    assert "warning" not in capsys.readouterr().err
