"""Every example in manifests/examples/, applied through kubectl as a user would, against a real volume.

The example policy keeps job status in a database named by a Secret (urlSecretRef); here that Secret holds
the sqlite:/// URL of a job table this test builds, and the policy's path is rewritten to a volume under
the operator's allowed root. The runs are applied one at a time in a fixed order, so each run's numbers
are exact.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from e2e.operator_helpers import job_table, make_files, secret, tree
from support.operator_process import REPO, Kube, OperatorProcess

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "manifests" / "examples"
SAMPLE_PATH = "/var/lib/tempsweep/volumes/sample"
KIB = 1024

# name -> (type, files it deletes) in the order they are applied
EXPECTED_RUNS = {
    "chunk-1001-7": ("ChunkCompletion", {"job_1001_chunk_7_image1.jpg", "job_1001_chunk_7_image2.jpg"}),
    "crash-1002": ("CrashRecovery", {"job_1002_part.tmp", "job_1002_chunk_1_a.jpg"}),
    "crash-all": ("CrashRecovery", {"job_1003_part.tmp"}),
    "scheduled-now": ("Scheduled", {"ancient.tmp"}),
    "orphans-12h": ("Orphaned", {"stray.tmp", "job_1004_done.tmp", "job_9999_unknown.tmp"}),
    "emergency": ("Emergency", set()),
}
KEPT = {
    "job_1001_chunk_7_image3.jpg",  # not in completedFiles
    "job_1001_chunk_8_image1.jpg",  # another chunk
    "job_1005_running.tmp",  # an active job's old file
    "job_1006_failed_recently.tmp",  # failed 10 minutes ago: within cleanupAfterHours
    "fresh.tmp",  # young orphan
    "old.lock",  # excluded by the policy
}


def test_the_examples_cover_every_file_in_the_directory() -> None:
    runs = {yaml.safe_load(path.read_text())["metadata"]["name"] for path in EXAMPLES.glob("run-*.yaml")}
    assert runs == set(EXPECTED_RUNS)
    policies = {path.name for path in EXAMPLES.glob("policy*.yaml")}
    assert policies == {"policy.yaml", "policy-azure.yaml"}  # the Azure one is applied in test_operator_azure.py


def test_every_example_applies_and_does_what_it_says(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "sample"
    url = job_table(
        operator_root / "jobs.db",
        {
            "1001": ("running", 0.1),
            "1002": ("failed", 2),
            "1003": ("failed", 3),
            "1004": ("succeeded", 30),
            "1005": ("running", 30),
            "1006": ("failed", 10 / 60),
        },
    )
    make_files(volume, ["job_1001_chunk_7_image1.jpg", "job_1001_chunk_7_image2.jpg"], size=2 * KIB)
    make_files(volume, ["job_1001_chunk_7_image3.jpg", "job_1001_chunk_8_image1.jpg"], size=KIB)
    make_files(volume, ["job_1002_part.tmp", "job_1002_chunk_1_a.jpg", "job_1003_part.tmp"], size=KIB)
    make_files(volume, ["job_1006_failed_recently.tmp", "fresh.tmp"], size=KIB, age_hours=1)
    make_files(volume, ["stray.tmp", "job_1004_done.tmp", "job_9999_unknown.tmp"], size=KIB, age_hours=20)
    make_files(volume, ["ancient.tmp", "old.lock", "job_1005_running.tmp"], size=KIB, age_hours=30)
    everything = tree(volume)

    kube.apply(secret("crawler-jobs-db", url=url))
    text = (EXAMPLES / "policy.yaml").read_text()
    assert SAMPLE_PATH in text
    kube.apply(text.replace(SAMPLE_PATH, str(volume)))

    status = kube.wait_status("cleanuppolicy", "crawler-temp", lambda s: s.get("observedGeneration") == 1, "statistics")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True", conditions
    assert conditions["JobSourceReachable"]["status"] == "True", conditions
    assert conditions["StorageHealthy"]["status"] == "True", conditions
    assert status["health"] == "Healthy"
    assert status["tempFilesCount"] == len(everything) - 1  # old.lock is excluded
    assert status["activeJobsCount"] == 2
    assert status["failedJobsCount"] == 3
    assert status["totalBytes"] == 2**30
    # older than the policy's orphans.maxAgeHours (24): only ancient.tmp (old.lock is excluded, 1005 is active)
    assert status["orphanedFilesCount"] == 1
    assert status["orphanedFilesSizeBytes"] == KIB
    assert tree(volume) == everything  # computing statistics deletes nothing

    deleted: set[str] = set()
    for name, (kind, goes) in EXPECTED_RUNS.items():
        document = next(p for p in EXAMPLES.glob("run-*.yaml") if f"name: {name}\n" in p.read_text())
        kube.apply(document.read_text())
        result = kube.wait_run(name)
        assert result["phase"] == "Succeeded", (name, result)
        assert result["trigger"] == kind
        assert result["filesDeleted"] == len(goes), (name, result)
        assert result["bytesFreed"] == KIB * (2 if kind == "ChunkCompletion" else 1) * len(goes)
        assert result["errorCount"] == 0
        deleted |= goes
        assert tree(volume) == everything - deleted, name

    assert tree(volume) >= KEPT
    rows = {row["NAME"]: row for row in kube.table("cleanupruns")}
    assert rows["chunk-1001-7"]["DELETED"] == "2"
    assert rows["chunk-1001-7"]["FREED"] == str(4 * KIB)
    assert all(row["PHASE"] == "Succeeded" and row["POLICY"] == "crawler-temp" for row in rows.values())
    emergency = kube.status("cleanuprun", "emergency")
    assert "no emergency" in emergency["message"]

    policy_status = kube.status("cleanuppolicy", "crawler-temp")
    assert policy_status["lastCleanupPhase"] == "Succeeded"
    assert policy_status["lastCleanupMessage"].startswith("Emergency:")
