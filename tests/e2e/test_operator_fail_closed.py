"""The operator fails closed (issue 11): unlisted job statuses and oversized plans, as kubectl shows them.

A job in a status that is in none of the policy's lists keeps its files; the policy says so in a
JobStatusesRecognized condition and one Warning event per newly seen status. A run that would delete
more than limits.maxDeletePercent of what it scanned deletes nothing and fails with
BlastRadiusExceeded, as a manual CleanupRun and as a timer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.operator_helpers import job_table, make_files, policy, run, tree
from support.operator_process import Kube, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e


def _warnings(kube: Kube, name: str, reason: str) -> list[dict[str, str]]:
    return [e for e in kube.events(name) if e.get("reason") == reason and e.get("type") == "Warning"]


def test_unrecognized_job_statuses_keep_files_and_are_announced_once_each(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["job_1_a.tmp", "job_2_a.tmp", "job_3_a.tmp", "job_4_a.tmp"], age_hours=100)
    db = operator_root / "jobs.db"
    url = job_table(db, {"1": ("queued", 50), "2": (" PROCESSING", 50), "3": ("Completed", 50), "4": ("RUNNING", 50)})
    spec = {"jobs": {"database": {"url": url}}, "schedule": {"statsInterval": "1s"}}
    kube.apply(policy("p", volume, **spec))

    condition = wait_for(
        "JobStatusesRecognized=False",
        lambda: (c := kube.condition("cleanuppolicy", "p", "JobStatusesRecognized")) and c["status"] == "False" and c,
    )
    assert condition["reason"] == "UnrecognizedJobStatus"
    assert "'processing', 'queued'" in condition["message"]
    assert "activeStatuses" in condition["message"] and "finishedStatuses" in condition["message"]
    status = kube.status("cleanuppolicy", "p")
    assert status["unrecognizedJobStatuses"] == ["processing", "queued"]
    assert status["filesKeptUnrecognizedStatus"] == 2
    assert status["orphanedFilesCount"] == 1, "only the completed job's file is an orphan"
    first = wait_for("the Warning event", lambda: _warnings(kube, "p", "UnrecognizedJobStatus"))
    assert len(first) == 1 and "'processing', 'queued'" in first[0]["message"]

    # a manual Orphaned run keeps them too, and says so
    kube.apply(run("orphans", "p", "Orphaned"))
    result = kube.wait_run("orphans")
    assert result["phase"] == "Succeeded", result["message"]
    assert result["deletedByReason"] == {"OrphanFinishedJob": 1}
    assert (result["filesKeptUnrecognizedStatus"], result["unrecognizedJobStatuses"]) == (2, ["processing", "queued"])
    assert tree(volume) == {"job_1_a.tmp", "job_2_a.tmp", "job_4_a.tmp"}

    # a status seen for the first time gets its own event; the ones already announced do not come again
    job_table(db, {"4": ("paused", 50)})
    wait_for(
        "the new status in the policy's status",
        lambda: "paused" in (kube.status("cleanuppolicy", "p").get("unrecognizedJobStatuses") or []),
    )
    events = wait_for(
        "a second event", lambda: (found := _warnings(kube, "p", "UnrecognizedJobStatus")) and len(found) >= 2 and found
    )
    messages = sorted(event["message"] for event in events)
    assert len(events) == 2, messages
    assert any("'paused'" in m and "'queued'" not in m for m in messages), messages
    assert all(event.get("count", 1) == 1 for event in events), "posted once per new status, not per tick"

    # once every status is listed, the condition turns True
    job_table(db, {"1": ("done", 50), "2": ("failed", 50), "4": ("running", 50)})
    wait_for(
        "JobStatusesRecognized=True",
        lambda: (kube.condition("cleanuppolicy", "p", "JobStatusesRecognized") or {}).get("status") == "True",
    )


def test_an_oversized_plan_deletes_nothing_until_a_person_forces_it(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    # the job table lost the rows of jobs 1-6: their files look like orphans of unknown jobs (6 of 8)
    make_files(volume, [f"job_{index}_out.tmp" for index in range(1, 7)], age_hours=100)
    make_files(volume, ["job_7_a.tmp", "job_7_b.tmp"], age_hours=100)
    url = job_table(operator_root / "jobs.db", {"7": ("running", 1)})
    kube.apply(policy("p", volume, jobs={"database": {"url": url}}, limits={"maxDeletePercent": None}))
    before = tree(volume)

    kube.apply(run("orphans", "p", "Orphaned"))
    result = kube.wait_run("orphans")

    assert tree(volume) == before
    assert (result["phase"], result["reason"]) == ("Failed", "BlastRadiusExceeded")
    assert "plans to delete 6 of 8 scanned files (75.0%), more than limits.maxDeletePercent (50%)" in result["message"]
    assert result["wouldDeleteCount"] == 6
    assert result["wouldDeleteByReason"] == {"OrphanUnknownJob": 6}
    complete = kube.condition("cleanuprun", "orphans", "Complete")
    assert complete is not None and (complete["status"], complete["reason"]) == ("False", "BlastRadiusExceeded")
    wait_for("the run's Warning event", lambda: _warnings(kube, "orphans", "BlastRadiusExceeded"))

    kube.apply(run("orphans-forced", "p", "Orphaned", force=True))
    forced = kube.wait_run("orphans-forced")
    assert forced["phase"] == "Succeeded", forced["message"]
    assert tree(volume) == {"job_7_a.tmp", "job_7_b.tmp"}


def test_a_timer_that_hits_the_guard_records_a_failed_cleanup_and_deletes_nothing(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    make_files(volume, [f"old{index}.tmp" for index in range(8)], age_hours=100)  # 800 of 1000 bytes
    before = tree(volume)
    spec = {
        "storage": {"volume": {"capacity": 1000}},
        "thresholds": {"minFreeSpace": 0, "emergencyPercent": 70, "warningPercent": 60},
        "limits": {"emergencyMaxDeletePercent": 20},  # relief below 60 % needs 3 of 8 files (37.5 %)
        "schedule": {"emergencyCheckInterval": "1s"},
    }
    kube.apply(policy("p", volume, **spec))

    status = kube.wait_status("cleanuppolicy", "p", lambda s: s.get("lastCleanupPhase"), "a recorded cleanup")

    assert status["lastCleanupPhase"] == "Failed"
    assert "Emergency: BlastRadiusExceeded" in status["lastCleanupMessage"]
    assert "more than limits.emergencyMaxDeletePercent (20%)" in status["lastCleanupMessage"]
    wait_for("the policy's Warning event", lambda: _warnings(kube, "p", "BlastRadiusExceeded"))
    assert tree(volume) == before
