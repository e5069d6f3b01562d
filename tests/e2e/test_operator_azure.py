"""The operator on an azureBlob policy in the cluster: the connection string from a Secret, statistics in status,
manual runs through kubectl, against a real Azurite. The storage layer's own cases are in tests/storage_azure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import job_table, run, secret
from support.azurite_server import ACCOUNT_KEY, AzuriteServer, BlobContainer
from support.operator_process import REPO, Kube, OperatorProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]

EXAMPLE = REPO / "manifests" / "examples" / "policy-azure.yaml"
POLICY = "media-temp-blobs"  # the example's name
CAPACITY = 10 * 1024


def blob_policy(name: str, container: str, *, secret_name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupPolicy",
        "metadata": {"name": name},
        "spec": {
            "storage": {
                "azureBlob": {
                    "container": container,
                    "prefix": "tmp/",
                    "capacity": str(CAPACITY),
                    "connectionStringSecretRef": {"name": secret_name, "key": "connectionString"},
                }
            },
            "thresholds": {"minFreeSpace": "1"},
            **spec,
        },
    }


def upload(container: BlobContainer, sizes: dict[str, int]) -> None:
    for name, size in sizes.items():
        container.client.upload_blob(name, b"x" * size)


def names(container: BlobContainer) -> set[str]:
    return {blob.name for blob in container.client.list_blobs()}


BLOBS = {
    "tmp/job_7_chunk_1_a.bin": 1000,  # job 7 is running
    "tmp/job_7_chunk_1_b.bin": 1000,
    "tmp/job_8_chunk_1_x.bin": 500,  # job 8 failed two hours ago
    "tmp/deep/job_8_chunk_2_y.bin": 500,  # a virtual folder
    "tmp/job_8_chunk_3_z.bin": 300,  # moved to the Archive tier below
    "other/job_8_chunk_1_x.bin": 700,  # outside the prefix: never counted, never deleted
}


def test_the_azure_example_reads_its_secrets_reports_statistics_and_runs_cleanups(
    kube: Kube,
    operator: OperatorProcess,
    operator_root: Path,
    azurite: AzuriteServer,
    blob_container: BlobContainer,
) -> None:
    upload(blob_container, BLOBS)
    blob_container.client.get_blob_client("tmp/job_8_chunk_3_z.bin").set_standard_blob_tier("Archive")
    url = job_table(operator_root / "jobs.db", {"7": ("running", 0), "8": ("failed", 2)})
    kube.apply(secret("media-blob-storage", connectionString=azurite.connection_string))
    kube.apply(secret("media-jobs-db", url=url))
    text = EXAMPLE.read_text()
    changes = {  # this test's container, and a capacity small enough for usage to show
        "container: media-temp\n": f"container: {blob_container.name}\n",
        "capacity: 500Gi\n": f"capacity: {CAPACITY}\n",
        "minFreeSpace: 10Gi ": "minFreeSpace: 1 ",
        "statsInterval: 5m\n": "statsInterval: 2s\n",  # so the refresh after the runs comes within the test
    }
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    kube.apply(text)

    status = kube.wait_status("cleanuppolicy", POLICY, lambda s: s.get("observedGeneration") == 1, "validation")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True", conditions
    assert conditions["JobSourceReachable"]["status"] == "True", conditions
    assert status["tempFilesCount"] == 4  # the archived blob is counted apart, other/ not at all
    assert status["tempFilesSizeBytes"] == 3000
    assert status["archivedBlobsCount"] == 1
    assert status["archivedBlobsSizeBytes"] == 300
    assert status["totalBytes"] == CAPACITY
    assert status["usagePercent"] == pytest.approx(100 * 3300 / CAPACITY, abs=0.01)  # archived blobs take space too
    assert status["health"] == "Healthy"
    assert (status["activeJobsCount"], status["failedJobsCount"]) == (1, 1)

    # the example starts in dry run: the same plan, reported, nothing deleted
    kube.apply(run("crash-dry", POLICY, "CrashRecovery", jobId="8"))
    dry = kube.wait_run("crash-dry")
    assert dry["phase"] == "Succeeded", dry
    assert sorted(dry["wouldDelete"]) == ["deep/job_8_chunk_2_y.bin", "job_8_chunk_1_x.bin"]
    assert names(blob_container) == set(BLOBS)

    kube("patch", "cleanuppolicy", POLICY, "--type", "merge", "-p", '{"spec": {"dryRun": false}}')
    kube.wait_status("cleanuppolicy", POLICY, lambda s: s.get("observedGeneration") == 2, "the dryRun change")
    kube.apply(run("crash", POLICY, "CrashRecovery", jobId="8"))
    crash = kube.wait_run("crash")
    assert crash["phase"] == "Succeeded", crash
    assert crash["filesDeleted"] == 2
    assert crash["bytesFreed"] == 1000
    assert names(blob_container) == {
        "tmp/job_7_chunk_1_a.bin",
        "tmp/job_7_chunk_1_b.bin",
        "tmp/job_8_chunk_3_z.bin",  # Archive tier: skipped without includeArchiveTier
        "other/job_8_chunk_1_x.bin",
    }

    kube.apply(run("chunk", POLICY, "ChunkCompletion", jobId="7", chunkId="1", completedFiles=["a.bin"]))
    chunk = kube.wait_run("chunk")
    assert chunk["phase"] == "Succeeded", chunk
    assert chunk["filesDeleted"] == 1
    assert "tmp/job_7_chunk_1_a.bin" not in names(blob_container)
    assert "tmp/job_7_chunk_1_b.bin" in names(blob_container)

    # the statistics follow on the next refresh
    kube.wait_status("cleanuppolicy", POLICY, lambda s: s.get("tempFilesCount") == 1, "statistics after the runs")

    seen = {
        "policy": kube("get", "cleanuppolicy", POLICY, "-o", "yaml").stdout,
        "runs": kube("get", "cleanupruns", "-o", "yaml").stdout,
        "events": kube("get", "events", "-o", "yaml").stdout,
        "operator log": operator.log(),
    }
    for where, text in seen.items():
        assert ACCOUNT_KEY not in text, f"the account key appears in the {where}"


def test_blob_policy_without_a_usable_secret_deletes_nothing(
    kube: Kube,
    operator: OperatorProcess,
    azurite: AzuriteServer,
    blob_container: BlobContainer,
) -> None:
    upload(blob_container, {"tmp/stray.bin": 100, "tmp/job_9_chunk_1_a.bin": 100})
    kube.apply(blob_policy("blobs", blob_container.name, secret_name="azure"))

    ready = wait_for("Ready=False", lambda: kube.condition("cleanuppolicy", "blobs", "Ready"))
    assert (ready["status"], ready["reason"]) == ("False", "SecretMissing")
    assert f"secret {kube.namespace}/azure not found" in ready["message"]

    # a key that does not match the account: the storage is reported unusable, not cleaned
    wrong_key = azurite.connection_string.replace(ACCOUNT_KEY, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")
    kube.apply(secret("azure", connectionString=wrong_key))

    def storage_unhealthy() -> dict[str, Any] | None:
        condition = kube.condition("cleanuppolicy", "blobs", "StorageHealthy")
        return condition if condition and condition["status"] == "False" else None

    healthy = wait_for("StorageHealthy=False", storage_unhealthy)
    assert healthy["reason"] == "StorageUnavailable"
    assert "check the account key or connection string" in healthy["message"], healthy
    assert ACCOUNT_KEY not in healthy["message"]

    kube.apply(run("orphans", "blobs", "Orphaned", maxAgeHours=0.0001))
    result = kube.wait_run("orphans")
    assert result["phase"] == "Failed", result
    assert result["filesDeleted"] == 0
    assert names(blob_container) == {"tmp/stray.bin", "tmp/job_9_chunk_1_a.bin"}
