"""CleanupPolicy through kubectl: conditions, statistics, printer columns, the probe, and secrets kept secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.operator_helpers import job_table, make_files, policy, run, secret
from support.operator_process import Kube, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e

CANARY = "S3cr3t-Canary-123"


def test_policy_gets_conditions_and_statistics_at_once(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    make_files(volume, [f"job_1_chunk_1_{i}.tmp" for i in range(4)], size=1000)
    make_files(volume, ["stray.tmp"], size=500, age_hours=48)
    kube.apply(policy("p", volume, storage={"volume": {"capacity": "10Ki"}}, thresholds={"warningPercent": 40}))

    status = kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration") == 1, "validation")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Ready"]["reason"] == "Validated"
    assert str(volume) in conditions["Ready"]["message"]
    assert conditions["StorageHealthy"] | {"lastTransitionTime": "-"} == {
        "type": "StorageHealthy",
        "status": "True",
        "reason": "Warning",  # 4 500 of 10 240 bytes: above warningPercent 40
        "message": "usage 44.0%",
        "observedGeneration": 1,
        "lastTransitionTime": "-",
    }
    assert "JobSourceReachable" not in conditions  # an age-only policy has no job source
    assert all(c["lastTransitionTime"].endswith("Z") for c in conditions.values())
    assert status["health"] == "Warning"
    assert status["tempFilesCount"] == 5
    assert status["tempFilesSizeBytes"] == 4500
    assert status["totalBytes"] == 10 * 1024
    assert status["freeBytes"] == 10 * 1024 - 4500
    assert status["orphanedFilesCount"] == 1
    assert status["orphanedFilesSizeBytes"] == 500
    assert status["usagePercent"] == pytest.approx(43.95, abs=0.01)
    assert status["warningThreshold"] == 40
    assert status["emergencyThreshold"] == 95  # the operator-wide default

    # a spec change is validated again: observedGeneration follows the generation
    kube.apply(policy("p", volume, storage={"volume": {"capacity": "5Ki"}}, thresholds={"warningPercent": 40}))
    status = kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration") == 2, "revalidation")
    assert status["totalBytes"] == 5 * 1024
    assert status["health"] == "Warning"


def test_printer_columns_as_kubectl_prints_them(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["job_7_chunk_1_a.jpg", "job_7_chunk_1_b.jpg"], size=3000)
    make_files(volume, ["old-1.tmp", "old-2.tmp"], size=10, age_hours=48)
    kube.apply(policy("cols", volume, storage={"volume": {"capacity": "100Ki"}}))
    kube.apply(run("chunk", "cols", "ChunkCompletion", jobId="7", chunkId="1", completedFiles=["a.jpg", "b.jpg"]))
    kube.wait_run("chunk")
    kube.wait_status("cleanuppolicy", "cols", lambda s: s.get("lastCleanupTime"), "the last cleanup")

    [row] = kube.table("cleanuppolicy")
    assert list(row) == ["NAME", "HEALTH", "USAGE", "FILES", "ORPHANED", "FULL IN", "LAST CLEANUP", "AGE"]
    assert row["NAME"] == "cols"
    assert row["HEALTH"] == "Healthy"
    assert float(row["USAGE"]) == pytest.approx(100 * 6020 / 102400, abs=0.01)  # statistics before the run
    assert row["FILES"] == "4"
    assert row["ORPHANED"] == "2"
    assert row["FULL IN"] == "too few samples"  # one statistics pass is no line to fit
    assert row["LAST CLEANUP"].endswith("s")  # a relative age such as 3s

    [row] = kube.table("cleanuprun")
    assert list(row) == ["NAME", "POLICY", "TYPE", "PHASE", "DELETED", "FREED", "AGE"]
    assert row | {"AGE": "-"} == {
        "NAME": "chunk",
        "POLICY": "cols",
        "TYPE": "ChunkCompletion",
        "PHASE": "Succeeded",
        "DELETED": "2",
        "FREED": "6000",
        "AGE": "-",
    }

    # the tempsweep category lists both kinds; the short names work
    names = kube("get", "tempsweep", "-o", "name").stdout.split()
    assert names == ["cleanuppolicy.tempsweep.io/cols", "cleanuprun.tempsweep.io/chunk"]
    assert kube("get", "ctp", "-o", "name").stdout.split() == ["cleanuppolicy.tempsweep.io/cols"]
    assert kube("get", "ctr", "-o", "name").stdout.split() == ["cleanuprun.tempsweep.io/chunk"]
    printed = kube("get", "tempsweep").stdout
    assert "HEALTH" in printed and "PHASE" in printed
    # kubectl explain has the field descriptions
    explained = kube("explain", "cleanuppolicy.spec.thresholds").stdout
    assert "warningPercent" in explained and "Usage % from which health is Warning" in explained


def test_liveness_endpoint_reports_each_policy(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    for name in ("alpha", "beta", "gamma"):
        (operator_root / name).mkdir()
        kube.apply(policy(name, operator_root / name))
    keys = {f"{kube.namespace}/{name}" for name in ("alpha", "beta", "gamma")}

    def every_policy_ticked() -> dict[str, dict[str, str]] | None:
        body = operator.probe()
        policies = (body or {}).get("policies") or {}
        if keys <= set(policies) and all("lastSuccess" in policies[key] for key in keys):
            return dict(policies)
        return None

    policies = wait_for("every policy's timer in the probe", every_policy_ticked, timeout=30)
    for key in keys:
        assert {"validated", "tick", "lastSuccess"} <= set(policies[key])

    kube("delete", "cleanuppolicy", "beta", "--wait=true", timeout=30)
    wait_for(
        "the deleted policy to leave the probe",
        lambda: f"{kube.namespace}/beta" not in ((operator.probe() or {}).get("policies") or {}),
    )


def test_missing_secret_is_reported_not_fatal(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["job_5_x.tmp"], age_hours=100)
    database = {"urlSecretRef": {"name": "nowhere", "key": "url"}}
    kube.apply(policy("p", volume, jobs={"database": database}))
    condition = wait_for("JobSourceReachable", lambda: kube.condition("cleanuppolicy", "p", "JobSourceReachable"))
    assert condition["status"] == "False"
    assert condition["reason"] == "SecretMissing"
    assert f"secret {kube.namespace}/nowhere not found" in condition["message"]
    ready = kube.condition("cleanuppolicy", "p", "Ready")
    assert ready is not None and ready["status"] == "True"
    # without job status nothing that depends on it goes: the old file of job 5 stays
    kube.apply(run("orphans", "p", "Orphaned"))
    result = kube.wait_run("orphans")
    assert result["phase"] == "Failed"
    assert result["filesDeleted"] == 0
    assert "job status unavailable" in result["message"]
    assert (volume / "job_5_x.tmp").exists()

    # once the secret exists, the policy's next timer tick finds the job table
    url = job_table(operator_root / "jobs.db", {"5": ("running", 1)})
    kube.apply(secret("nowhere", url=url))
    wait_for(
        "JobSourceReachable=True",
        lambda: (kube.condition("cleanuppolicy", "p", "JobSourceReachable") or {}).get("status") == "True",
    )

    # one Warning for the outage (not one per timer tick) and one Normal when it is over
    def reasons() -> list[str]:
        return [event.get("reason", "") for event in kube.events("p")]

    wait_for("the recovery event", lambda: "JobSourceRecovered" in reasons())
    assert reasons().count("JobSourceUnreachable") == 1, reasons()
    unreachable = next(e for e in kube.events("p") if e.get("reason") == "JobSourceUnreachable")
    assert unreachable["type"] == "Warning"
    assert unreachable.get("count", 1) == 1, "posted once per outage, not once per tick"


def test_database_password_never_leaves_the_secret(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["job_1_old.tmp", "loose.tmp"], age_hours=100)
    closed_port = 9  # discard: nothing listens on it here
    url = f"postgresql+psycopg://crawler:{CANARY}@127.0.0.1:{closed_port}/jobs"
    kube.apply(secret("db", url=url))
    kube.apply(policy("p", volume, jobs={"database": {"urlSecretRef": {"name": "db", "key": "url"}}}))
    condition = wait_for("JobSourceReachable", lambda: kube.condition("cleanuppolicy", "p", "JobSourceReachable"))
    assert condition["status"] == "False"
    assert condition["reason"] == "QueryFailed"
    assert "127.0.0.1" in condition["message"]  # it says which server, without the password

    kube.apply(run("crash", "p", "CrashRecovery"))
    kube.apply(run("scheduled", "p", "Scheduled"))
    for name in ("crash", "scheduled"):
        result = kube.wait_run(name)
        assert result["phase"] == "Failed", result
        assert "job status unavailable" in result["message"] or "unreachable" in result["message"], result
    # the file of job 1 depends on job status and stays; the old file of no job may go (Scheduled's orphans)
    assert (volume / "job_1_old.tmp").exists()

    seen = {
        "policy": kube("get", "cleanuppolicy", "p", "-o", "yaml").stdout,
        "runs": kube("get", "cleanupruns", "-o", "yaml").stdout,
        "events": kube("get", "events", "-o", "yaml").stdout,
        "described": kube("describe", "cleanuppolicy,cleanuprun").stdout,
        "operator log": operator.log(),
    }
    assert "crawler:***@127.0.0.1" in seen["policy"] or "crawler@127.0.0.1" in seen["policy"]
    for where, text in seen.items():
        assert CANARY not in text, f"the password appears in the {where}"
    assert json.dumps(url) not in seen["operator log"]
