"""The offline CLI (`tempsweep scan/run --policy`) on an azureBlob policy with a connection string."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from blob_helpers import Blobs, policy_document

from support.azurite_server import ACCOUNT_KEY
from tempsweep.cli import main

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


def write_yaml(path: Path, document: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(document))
    return str(path)


def job_database(path: Path) -> str:
    with sqlite3.connect(path) as db:
        db.execute("create table crawl_jobs (id text primary key, status text, updated_at text)")
        db.executemany(
            "insert into crawl_jobs values (?, ?, ?)",
            [("7", "running", "2020-01-01T00:00:00"), ("8", "failed", "2020-01-01T00:00:00")],
        )
    return f"sqlite:///{path}"


@pytest.fixture
def policy_file(blobs: Blobs, tmp_path: Path) -> str:
    document = policy_document(blobs.name, blobs.azurite.connection_string, jobs=False)
    document["spec"]["jobs"] = {"database": {"url": job_database(tmp_path / "jobs.db")}}
    return write_yaml(tmp_path / "policy.yaml", document)


def run_document(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupRun",
        "metadata": {"name": "a-run"},
        "spec": {"policyRef": {"name": "blobs"}, **spec},
    }


def test_scan_prints_blob_stats(blobs: Blobs, policy_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    blobs.upload(["tmp/job_7_chunk_1_a.bin", "tmp/x/job_8_b.bin", "tmp/loose.txt", "other/job_8_c.bin"])

    assert main(["scan", "--policy", policy_file]) == 0

    stats = json.loads(capsys.readouterr().out)
    assert stats["tempFilesCount"] == 3
    assert stats["tempFilesSizeBytes"] == 300
    assert stats["activeJobsCount"] == 1
    assert stats["failedJobsCount"] == 1
    assert stats["archivedBlobsCount"] == 0
    assert stats["health"] == "Healthy"


def test_run_deletes_a_completed_chunk(
    blobs: Blobs, policy_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blobs.upload(["tmp/job_7_chunk_1_a.bin", "tmp/job_7_chunk_1_b.bin", "tmp/job_7_chunk_2_a.bin"])
    run = write_yaml(
        tmp_path / "run.yaml",
        run_document(type="ChunkCompletion", jobId="7", chunkId="1", completedFiles=["a.bin"]),
    )

    assert main(["run", "-f", run, "--policy", policy_file, "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["wouldDelete"] == ["job_7_chunk_1_a.bin"]
    assert len(blobs.names()) == 3

    assert main(["run", "-f", run, "--policy", policy_file]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["phase"] == "Succeeded"
    assert status["filesDeleted"] == 1
    assert status["deletedByReason"] == {"ChunkCompleted": 1}
    assert blobs.names() == {"tmp/job_7_chunk_1_b.bin", "tmp/job_7_chunk_2_a.bin"}


def test_a_wrong_key_is_one_clear_line_without_the_key(
    blobs: Blobs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blobs.upload(["tmp/job_7_chunk_1_a.bin"])
    bad = blobs.azurite.connection_string.replace(ACCOUNT_KEY, "B" * 86 + "==")
    policy = write_yaml(tmp_path / "policy.yaml", policy_document(blobs.name, bad, jobs=False))
    run = write_yaml(tmp_path / "run.yaml", run_document(type="ChunkCompletion", jobId="7", chunkId="1"))

    assert main(["scan", "--policy", policy]) == 2
    scan_error = capsys.readouterr().err
    assert main(["run", "-f", run, "--policy", policy]) == 1
    run_output = capsys.readouterr()

    assert "HTTP 403" in scan_error and "check the account key or connection string" in scan_error
    assert json.loads(run_output.out)["phase"] == "Failed"
    for text in (scan_error, run_output.out, run_output.err):
        assert ACCOUNT_KEY not in text and "B" * 86 not in text and "AccountKey" not in text
    assert blobs.names() == {"tmp/job_7_chunk_1_a.bin"}


EXAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "policy-azure.yaml"


@pytest.fixture
def example_policy(blobs: Blobs, tmp_path: Path) -> str:
    """The Azure example as a user would copy it: only the container name changed."""
    text = EXAMPLE.read_text()
    assert "container: media-temp\n" in text
    path = tmp_path / "policy-azure.yaml"
    path.write_text(text.replace("container: media-temp\n", f"container: {blobs.name}\n"))
    return str(path)


def test_the_azure_example_runs_offline_with_secrets_from_the_environment(
    blobs: Blobs,
    example_policy: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blobs.upload(["tmp/job_7_chunk_1_a.bin", "tmp/job_8_chunk_1_b.bin", "other/job_8_chunk_1_b.bin"])
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_AZURE_CONNECTION_STRING", blobs.azurite.connection_string)
    monkeypatch.setenv("TEMP_STORAGE_CLEANUP_DATABASE_URL", job_database(tmp_path / "jobs.db"))

    assert main(["scan", "--policy", example_policy]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["tempFilesCount"], stats["activeJobsCount"], stats["failedJobsCount"]) == (2, 1, 1)

    run = run_document(type="ChunkCompletion", jobId="7", chunkId="1")
    run["spec"]["policyRef"]["name"] = "media-temp-blobs"
    assert main(["run", "-f", write_yaml(tmp_path / "run.yaml", run), "--policy", example_policy]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["wouldDelete"] == ["job_7_chunk_1_a.bin"]  # the example starts in dry run
    assert len(blobs.names()) == 3


def test_the_azure_example_without_a_connection_string_offline_says_how_to_give_one(
    blobs: Blobs, example_policy: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blobs.upload(["tmp/job_7_chunk_1_a.bin"])
    monkeypatch.delenv("TEMP_STORAGE_CLEANUP_AZURE_CONNECTION_STRING", raising=False)

    assert main(["scan", "--policy", example_policy]) == 2

    [line] = capsys.readouterr().err.strip().splitlines()
    assert "spec.storage.azureBlob" in line
    assert "connectionStringSecretRef (media-blob-storage/connectionString)" in line
    assert "TEMP_STORAGE_CLEANUP_AZURE_CONNECTION_STRING" in line
    assert blobs.names() == {"tmp/job_7_chunk_1_a.bin"}
