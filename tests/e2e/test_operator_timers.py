"""The policy timers: statistics, the emergency check, the scheduled and orphan cleanups, and suspend.

Due-ness comes from times kept in status, so two tests seed those times through the status subresource
(as an operator that was down for a while would have left them) instead of waiting for wall-clock slots;
one test waits for a real minute boundary (at most 60 s) to show the cron alignment.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import make_files, parse_time, policy, run, tree
from support.operator_process import Kube, OperatorProcess, StartOperator, wait_for

pytestmark = pytest.mark.e2e


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def seed_status(kube: Kube, name: str, **fields: str) -> None:
    patch = json.dumps({"status": fields})
    kube("patch", "cleanuppolicy", name, "--subresource=status", "--type=merge", "-p", patch)


def cleanup_events(kube: Kube, name: str, prefix: str) -> list[dict[str, Any]]:
    return [e for e in kube.events(name) if e["reason"] == "CleanupFinished" and e["message"].startswith(prefix)]


def test_timers_fire_on_their_own(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    """Statistics every second; the scheduled cleanup `* * * * *` at the next minute boundary (<= 60 s)."""
    volume = operator_root / "vol"
    make_files(volume, ["old.tmp"], age_hours=3)
    make_files(volume, ["new.tmp"])
    kube.apply(
        policy(
            "timed",
            volume,
            orphans={"maxAgeHours": 2},
            schedule={"statsInterval": "1s", "scheduled": "* * * * *"},
        )
    )
    first = kube.wait_status("cleanuppolicy", "timed", lambda s: s.get("lastStatsTime"), "statistics")
    assert first["tempFilesCount"] == 2

    # the stats timer picks up files that appear, without any run
    make_files(volume, [f"more-{i}.tmp" for i in range(5)])
    later = kube.wait_status(
        "cleanuppolicy", "timed", lambda s: s.get("tempFilesCount") == 7, "the stats timer to see 7 files"
    )
    assert parse_time(later["lastStatsTime"]) > parse_time(first["lastStatsTime"])
    assert later["lastEmergencyCheckTime"]  # checked once at start, then every hour

    status = kube.wait_status(
        "cleanuppolicy", "timed", lambda s: s.get("lastScheduledTime"), "the scheduled cleanup", timeout=75
    )
    slot = parse_time(status["lastScheduledTime"])
    assert slot.second == 0  # aligned to the wall clock
    created = parse_time(kube.get("cleanuppolicy", "timed")["metadata"]["creationTimestamp"])  # type: ignore[index]
    assert created < slot <= created + timedelta(seconds=61)
    assert status["lastCleanupPhase"] == "Succeeded"
    assert status["lastCleanupMessage"].startswith("Scheduled: deleted 1 files")
    assert tree(volume) == {"new.tmp"} | {f"more-{i}.tmp" for i in range(5)}
    events = wait_for("the cleanup's event", lambda: cleanup_events(kube, "timed", "Scheduled:"))  # posted async
    assert len(events) == 1
    assert events[0]["type"] == "Normal"


def test_missed_cron_slots_run_once_not_once_each(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    """An orphan slot missed an hour ago (status says so) runs at once, and only once."""
    volume = operator_root / "vol"
    make_files(volume, ["a.tmp", "b.tmp"], age_hours=30)
    kube.apply(policy("late", volume, suspend=True, schedule={"orphaned": "*/5 * * * *"}))
    kube.wait_status("cleanuppolicy", "late", lambda s: s.get("observedGeneration") == 1, "validation")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    seed_status(kube, "late", lastOrphanedTime=iso(an_hour_ago))

    kube("patch", "cleanuppolicy", "late", "--type=merge", "-p", '{"spec": {"suspend": false}}')
    status = kube.wait_status(
        "cleanuppolicy",
        "late",
        lambda s: s.get("lastOrphanedTime") and parse_time(s["lastOrphanedTime"]) > an_hour_ago,
        "the missed orphan cleanup",
    )
    slot = parse_time(status["lastOrphanedTime"])
    now = datetime.now(UTC)
    assert slot.minute % 5 == 0 and slot.second == 0
    assert now - timedelta(minutes=5, seconds=5) < slot <= now  # the latest slot, not the first missed one
    assert tree(volume) == set()
    # twelve slots were missed; one cleanup ran (a second only if a new slot began meanwhile)
    events = wait_for("the cleanup's event", lambda: cleanup_events(kube, "late", "Orphaned:"))
    slots_since = 1 + (datetime.now(UTC) - slot) // timedelta(minutes=5)
    assert 1 <= len(events) <= slots_since
    assert events[0]["message"].startswith("Orphaned: deleted 2 files")


def test_emergency_check_relieves_critical_storage(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    old = [f"old-{i:02d}.tmp" for i in range(10)]  # old-00 is the oldest
    young = [f"young-{i}.tmp" for i in range(9)]
    for index, name in enumerate(old):  # orphans past emergencyMaxAgeHours (1)
        make_files(volume, [name], size=1024, age_hours=12 - index)
    make_files(volume, young, size=1024)  # too young even for an emergency
    kube.apply(
        policy(
            "full",
            volume,
            storage={"volume": {"capacity": "20Ki"}},  # 19 KiB used: 95 %
            thresholds={"minFreeSpace": "1Ki", "emergencyPercent": 95, "emergencyBufferPercent": 10},
            schedule={"emergencyCheckInterval": "1s", "statsInterval": "1s"},
        )
    )

    def relieved(s: dict[str, Any]) -> bool:
        return bool(s.get("lastCleanupMessage", "").startswith("Emergency:")) and s.get("health") != "Critical"

    status = kube.wait_status("cleanuppolicy", "full", relieved, "the emergency cleanup")
    assert status["lastCleanupPhase"] == "Succeeded"
    left = tree(volume)
    assert set(young) <= left
    gone = set(old) - left
    assert len(gone) == 3  # 19 KiB of 20 -> 16 KiB: 80 % < 95 - 10, and no more than needed
    assert gone == set(old[:3])  # the oldest first
    assert status["usagePercent"] < 85

    critical = wait_for(
        "a StorageCritical event", lambda: [e for e in kube.events("full") if e["reason"] == "StorageCritical"]
    )
    assert critical and critical[0]["type"] == "Warning"
    assert "usage 95.0% >= 95%" in critical[0]["message"]
    finished = wait_for("the cleanup's event", lambda: cleanup_events(kube, "full", "Emergency:"))
    assert finished and finished[0]["type"] == "Normal"
    assert f"deleted {len(gone)} files" in finished[0]["message"]
    healthy = kube.condition("cleanuppolicy", "full", "StorageHealthy")
    assert healthy is not None and healthy["status"] == "True"


def test_suspend_pauses_every_timer(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    make_files(volume, [f"old-{i}.tmp" for i in range(4)], size=1024, age_hours=30)
    spec = {
        "storage": {"volume": {"capacity": "4Ki"}},  # 100 %: an emergency
        "thresholds": {"minFreeSpace": "1"},
        "orphans": {"maxAgeHours": 1},
        "schedule": {
            "statsInterval": "1s",
            "emergencyCheckInterval": "1s",
            "scheduled": "* * * * *",
            "orphaned": "* * * * *",
        },
    }
    kube.apply(policy("paused", volume, suspend=True, **spec))
    before = kube.wait_status("cleanuppolicy", "paused", lambda s: s.get("observedGeneration") == 1, "validation")
    long_ago = iso(datetime.now(UTC) - timedelta(hours=2))
    seed_status(kube, "paused", lastScheduledTime=long_ago, lastOrphanedTime=long_ago)

    # wait for evidence that the timer kept ticking (the probe records every tick), then check nothing ran
    started = datetime.now(UTC)
    key = f"{kube.namespace}/paused"

    def ticked_three_times() -> bool:
        tick = ((operator.probe() or {}).get("policies") or {}).get(key, {}).get("tick")
        return bool(tick) and datetime.fromisoformat(tick) >= started + timedelta(seconds=3)

    wait_for("three more timer ticks", ticked_three_times, timeout=30)
    during = kube.status("cleanuppolicy", "paused")
    assert during["lastStatsTime"] == before["lastStatsTime"]
    assert "lastEmergencyCheckTime" not in during
    assert during["lastScheduledTime"] == during["lastOrphanedTime"] == long_ago
    assert "lastCleanupTime" not in during
    assert len(tree(volume)) == 4

    kube("patch", "cleanuppolicy", "paused", "--type=merge", "-p", '{"spec": {"suspend": false}}')
    kube.wait_status("cleanuppolicy", "paused", lambda s: s.get("lastCleanupTime"), "a cleanup after resuming")
    wait_for("the old files to go", lambda: not tree(volume))


def test_without_storage_monitoring_no_statistics_are_kept_and_cleanups_still_run(
    kube: Kube, start_operator: StartOperator, operator_root: Path
) -> None:
    """TEMP_STORAGE_CLEANUP_ENABLE_STORAGE_MONITORING=false: no statistics in status, cleanups as usual;
    each run's one-line summary is in the operator's log (LOG_CLEANUP_STATS, on by default)."""
    operator = start_operator(kube.namespace, TEMP_STORAGE_CLEANUP_ENABLE_STORAGE_MONITORING="false")
    volume = operator_root / "vol"
    make_files(volume, ["old.tmp"], age_hours=3)
    kube.apply(policy("quiet", volume, orphans={"maxAgeHours": 2}, schedule={"statsInterval": "1s"}))
    ready = wait_for("Ready", lambda: kube.condition("cleanuppolicy", "quiet", "Ready"))
    assert ready["status"] == "True"
    started = datetime.now(UTC)

    def ticked_three_times() -> bool:
        tick = ((operator.probe() or {}).get("policies") or {}).get(f"{kube.namespace}/quiet", {}).get("tick")
        return bool(tick) and datetime.fromisoformat(tick) >= started + timedelta(seconds=3)

    wait_for("three timer ticks with statistics due every second", ticked_three_times, timeout=30)
    status = kube.status("cleanuppolicy", "quiet")
    assert not {"usagePercent", "tempFilesCount", "health", "lastStatsTime"} & set(status), status
    assert kube.condition("cleanuppolicy", "quiet", "StorageHealthy") is None

    kube.apply(run("orphans", "quiet", "Orphaned"))
    result = kube.wait_run("orphans")
    assert result["phase"] == "Succeeded" and result["filesDeleted"] == 1
    assert tree(volume) == set()
    wait_for("the run's summary in the operator's log", lambda: "Orphaned: deleted 1 files" in operator.log())
