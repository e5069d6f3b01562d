"""Every manifest in manifests/examples parses and runs through the CLI on a sample volume and job table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sweep_helpers import Tree, sqlite_jobs
from tempsweep.cli import main
from tempsweep.cli.input import load_policy, load_run

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"

SAMPLE = {  # file -> age in hours
    "job_1001_chunk_7_image1.jpg": 0.2,  # job 1001 is running
    "job_1001_chunk_7_image2.jpg": 0.2,
    "job_1001_chunk_7_image3.jpg": 0.2,
    "job_1001_chunk_8_image1.jpg": 30,
    "job_1002_a.tmp": 0.5,  # job 1002 failed 3 hours ago
    "parts/job_1002_chunk_1_b.tmp": 0.5,
    "job_1003_done.tmp": 30,  # job 1003 finished two days ago
    "job_1004_crashed.tmp": 30,  # job 1004 was cancelled 5 minutes ago
    "job_9999_unknown.tmp": 30,  # no such job
    "downloads/loose.tmp": 30,  # no job id
    "fresh.tmp": 0.1,
    "job_1003.lock": 300,  # excluded by the policy
}
CRASHED = {"job_1002_a.tmp", "parts/job_1002_chunk_1_b.tmp"}
ORPHANS = {"job_1003_done.tmp", "job_9999_unknown.tmp", "downloads/loose.tmp"}

EXPECTED_GONE = {
    "run-chunk-completion.yaml": {"job_1001_chunk_7_image1.jpg", "job_1001_chunk_7_image2.jpg"},
    "run-crash-recovery.yaml": CRASHED,
    "run-crash-recovery-all.yaml": CRASHED,
    "run-emergency.yaml": set(),  # a few bytes of a 1Gi capacity: no emergency
    "run-orphaned.yaml": ORPHANS,
    "run-scheduled.yaml": ORPHANS | CRASHED,
}


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tree:
    now = datetime.now(UTC)
    tree = Tree(tmp_path / "volume", now)
    tree.root.mkdir()
    for name, age in SAMPLE.items():
        tree.file(name, age_hours=age)
    url = sqlite_jobs(
        tmp_path / "jobs.db",
        [
            (1001, "running", now - timedelta(minutes=1)),
            (1002, "failed", now - timedelta(hours=3)),
            (1003, "completed", now - timedelta(days=2)),
            (1004, "cancelled", now - timedelta(minutes=5)),
        ],
    )
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_DATABASE_URL", url)
    return tree


def test_every_example_run_has_an_expectation_here() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("run-*.yaml")) == sorted(EXPECTED_GONE)


def test_the_examples_parse_and_point_at_their_policy() -> None:
    policy = load_policy(str(EXAMPLES / "policy.yaml"))
    for name in EXPECTED_GONE:
        assert load_run(str(EXAMPLES / name)).spec.policy_ref.name == policy.metadata.name


@pytest.mark.parametrize("example", sorted(EXPECTED_GONE))
def test_each_example_runs_on_a_sample_volume(sample: Tree, capsys: pytest.CaptureFixture[str], example: str) -> None:
    code = main(
        ["run", "-f", str(EXAMPLES / example), "--policy", str(EXAMPLES / "policy.yaml"), "--path", str(sample.root)]
    )

    captured = capsys.readouterr()
    status = json.loads(captured.out)
    assert code == 0, captured.err
    assert status["phase"] == "Succeeded"
    assert sample.files() == set(SAMPLE) - EXPECTED_GONE[example]
    assert status["filesDeleted"] == len(EXPECTED_GONE[example])


def test_the_example_policy_scans_the_sample_volume(sample: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", "--policy", str(EXAMPLES / "policy.yaml"), "--path", str(sample.root)])

    stats = json.loads(capsys.readouterr().out)
    assert code == 0
    assert stats["tempFilesCount"] == len(SAMPLE) - 1  # the lock file is excluded
    assert (stats["activeJobsCount"], stats["failedJobsCount"]) == (1, 2)
    assert stats["orphanedFilesCount"] == len(ORPHANS)
    assert stats["health"] == "Healthy"
    assert sample.files() == set(SAMPLE)
