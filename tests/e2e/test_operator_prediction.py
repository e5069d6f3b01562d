"""Time-to-full in status, predictive cleanup before the emergency, the deletion audit -- against the real
control plane with the operator as a real process.

The fit needs a span of samples since the last drop (10 minutes by default); these tests fill a volume in
seconds, so the operator runs with TEMPSWEEP_PREDICTION_MIN_SPAN_SECONDS=3. Statistics every second; every
step waits for the statistics to show it, never for a fixed time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import job_table, make_files, parse_time, policy, run, tree
from support.operator_process import Kube, OperatorProcess, StartOperator, wait_for

pytestmark = pytest.mark.e2e

FAST_FIT = {"TEMPSWEEP_PREDICTION_MIN_SPAN_SECONDS": "3"}
STEP = 8192
EMERGENCY = 90.0


def _fill_until(kube: Kube, volume: Path, name: str, done: Any, steps: int = 40) -> dict[str, Any]:
    """Add one 8 KiB file of running job 1 at a time, each time waiting for the statistics to count it,
    until DONE(status) holds; the status that showed it."""
    for step in range(steps):
        count = len(tree(volume)) + 1
        make_files(volume, [f"job_1_part{step:02d}.bin"], size=STEP)
        status = kube.wait_status(
            "cleanuppolicy", name, lambda s, n=count: done(s) or s.get("tempFilesCount") == n, f"step {step}"
        )
        if done(status):
            return status
        assert status["usagePercent"] < EMERGENCY, "the emergency threshold was reached first"
    raise AssertionError(f"not done after {steps} steps: {status}")


def test_predictive_cleanup_runs_before_the_emergency_and_is_audited(
    kube: Kube, start_operator: StartOperator, namespace: str, operator_root: Path, tmp_path: Path
) -> None:
    start_operator(namespace, **FAST_FIT)
    volume = operator_root / "vol"
    audit_dir = tmp_path / "audit"  # outside the volume, as it must be
    audit_dir.mkdir()
    make_files(volume, ["stray.tmp"], size=STEP, age_hours=30)  # an orphan
    make_files(volume, ["job_2_out.bin"], size=STEP, age_hours=3)  # a failed job's, past its wait
    make_files(volume, ["job_1_keep.bin"], size=STEP, age_hours=30)  # a running job's: never
    url = job_table(operator_root / "jobs.db", {"1": ("running", 0), "2": ("failed", 2)})
    kube.apply(
        policy(
            "filling",
            volume,
            storage={"volume": {"capacity": "400Ki"}},
            thresholds={"minFreeSpace": "1Ki", "emergencyPercent": EMERGENCY, "warningPercent": 80},
            jobs={"database": {"url": url}},
            orphans={"maxAgeHours": 24},
            failedJobs={"cleanupAfterHours": 1},
            schedule={"statsInterval": "1s"},
            prediction={"horizon": "30m"},
            audit={"directory": str(audit_dir)},
        )
    )

    status = _fill_until(kube, volume, "filling", lambda s: s.get("lastPredictiveTime"))

    assert status["lastCleanupMessage"].startswith("Predictive: deleted 2 files"), status["lastCleanupMessage"]
    assert status["usagePercent"] < EMERGENCY
    assert {"stray.tmp", "job_2_out.bin"}.isdisjoint(tree(volume))
    assert "job_1_keep.bin" in tree(volume) and all(name.startswith("job_1_") for name in tree(volume))
    events = wait_for(
        "the FillingUp event",
        lambda: [e for e in kube.events("filling") if e["reason"] == "FillingUp"],
    )
    assert len(events) == 1 and events[0]["type"] == "Warning"
    message = events[0]["message"]
    assert "emergency threshold predicted at" in message and "within the 30m horizon" in message
    assert "freed 16.0KiB (2 files)" in message
    assert not [e for e in kube.events("filling") if e["message"].startswith("Emergency:")]
    predicted = status["prediction"]
    assert predicted["fillRateBytesPerHour"] > 0 and predicted["emergencyAt"] and predicted["fullAt"]
    assert 0.5 <= predicted["confidence"] <= 1

    lines = [json.loads(line) for line in (audit_dir / f"{namespace}_filling.audit.jsonl").read_text().splitlines()]
    assert {line["path"] for line in lines} == {"stray.tmp", "job_2_out.bin"}
    assert {(line["action"], line["type"], line["run"]) for line in lines} == {
        ("deleted", "Predictive", "timer-Predictive")
    }
    assert {line["reason"] for line in lines} == {"OrphanNoJobId", "FailedJob"}

    # the drop restarts the fit: the old line's times are cleared, not left behind, and FULL IN says why
    after = kube.wait_status(
        "cleanuppolicy", "filling", lambda s: s.get("tempFilesCount") == len(tree(volume)), "statistics after it"
    )["prediction"]
    assert after["fullIn"] == "too few samples" and after["samplesUsed"] < 4
    assert not {"fullAt", "emergencyAt", "fillRateBytesPerHour"} & after.keys()
    assert kube.table("cleanuppolicy", "filling")[0]["FULL IN"] == "too few samples"


def test_a_restart_keeps_the_prediction_summary(
    kube: Kube, start_operator: StartOperator, namespace: str, operator_root: Path
) -> None:
    operator = start_operator(namespace, **FAST_FIT)
    volume = operator_root / "vol"
    make_files(volume, ["job_1_keep.bin"], size=STEP)
    kube.apply(policy("steady", volume, storage={"volume": {"capacity": "400Ki"}}, schedule={"statsInterval": "1s"}))

    def predicted(s: dict[str, Any]) -> bool:
        return bool((s.get("prediction") or {}).get("fullAt"))

    before = _fill_until(kube, volume, "steady", predicted)["prediction"]
    operator.kill()
    killed = datetime.now(UTC)

    operator.start()
    after = kube.wait_status(
        "cleanuppolicy",
        "steady",
        lambda s: s.get("prediction") and parse_time(s["prediction"]["computedAt"]) > killed,
        "a prediction from the restarted operator",
    )["prediction"]

    # a fresh window would hold one sample ("too few samples"); the restored one goes on from the same start
    assert after["history"]["since"] == before["history"]["since"]
    assert after["fullIn"] not in ("too few samples", "")
    assert after["samplesUsed"] > 4
    assert after["fillRateBytesPerHour"] > 0


def test_an_audit_directory_inside_the_volume_makes_the_policy_not_ready(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["stray.tmp"], age_hours=30)
    kube.apply(policy("inside", volume, audit={"directory": str(volume / "records")}))

    def not_ready() -> dict[str, Any] | None:
        condition = kube.condition("cleanuppolicy", "inside", "Ready")
        return condition if condition and condition["status"] == "False" else None

    ready = wait_for("Ready=False", not_ready)
    assert ready["reason"] == "InvalidSpec"
    assert "spec.audit.directory" in ready["message"] and "inside the cleaned volume" in ready["message"]
    assert tree(volume) == {"stray.tmp"}


def test_a_dry_run_policy_only_reports_what_the_predictive_cleanup_would_free(
    kube: Kube, start_operator: StartOperator, namespace: str, operator_root: Path
) -> None:
    start_operator(namespace, **FAST_FIT)
    volume = operator_root / "vol"
    make_files(volume, ["stray.tmp"], size=STEP, age_hours=30)
    make_files(volume, ["job_1_keep.bin"], size=STEP)
    kube.apply(
        policy(
            "rehearsal",
            volume,
            storage={"volume": {"capacity": "400Ki"}},
            thresholds={"minFreeSpace": "1Ki", "emergencyPercent": EMERGENCY, "warningPercent": 80},
            orphans={"maxAgeHours": 24},
            schedule={"statsInterval": "1s"},
            prediction={"horizon": "30m"},
            dryRun=True,
        )
    )

    status = _fill_until(kube, volume, "rehearsal", lambda s: s.get("lastPredictiveTime"))

    assert "stray.tmp" in tree(volume)
    assert status["lastCleanupMessage"].startswith("Predictive: dry run: would delete 1 files")
    events = wait_for(
        "the FillingUp event", lambda: [e for e in kube.events("rehearsal") if e["reason"] == "FillingUp"]
    )
    assert "dry run, would free 8.0KiB (1 files)" in events[0]["message"]


def test_a_cleanup_run_is_audited_by_name_and_uid(
    kube: Kube, operator: OperatorProcess, operator_root: Path, tmp_path: Path, namespace: str
) -> None:
    volume, audit_dir = operator_root / "vol", tmp_path / "audit"
    audit_dir.mkdir()
    make_files(volume, ["stray.tmp"], size=100, age_hours=30)
    make_files(volume, ["fresh.tmp"], size=100)
    kube.apply(policy("audited", volume, orphans={"maxAgeHours": 24}, audit={"directory": str(audit_dir)}))
    kube.apply(run("by-hand", "audited", "Orphaned"))

    result = kube.wait_run("by-hand")

    assert result["phase"] == "Succeeded", result["message"]
    uid = kube.get("cleanuprun", "by-hand")["metadata"]["uid"]  # type: ignore[index]
    (line,) = [json.loads(text) for text in (audit_dir / f"{namespace}_audited.audit.jsonl").read_text().splitlines()]
    assert (line["path"], line["action"], line["run"], line["runUid"]) == ("stray.tmp", "deleted", "by-hand", uid)
    assert tree(volume) == {"fresh.tmp"}
