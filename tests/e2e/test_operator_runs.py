"""CleanupRun through kubectl: serialisation per volume, surviving a SIGKILL, progress, events, TTL, once only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import count_files, make_files, make_many, parse_time, policy, run, tree
from support.operator_process import Kube, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e

SLOW = {"limits": {"batchSize": 1, "parallelism": 1, "maxFilesPerRun": 100_000}}


def as_list(*documents: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)})


def test_runs_on_one_volume_never_overlap(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    per_chunk = 3000
    for chunk in (1, 2, 3):
        make_many(volume / f"c{chunk}", f"job_4_chunk_{chunk}_", per_chunk)
    make_files(volume, ["job_4_chunk_9_keep.tmp"])
    kube.apply(policy("p", volume, **SLOW))
    kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration"), "validation")

    # three runs at once on the same volume: the operator handles them concurrently, the lock serialises them
    kube.apply(as_list(*(run(f"chunk-{c}", "p", "ChunkCompletion", jobId="4", chunkId=str(c)) for c in (1, 2, 3))))
    results = {c: kube.wait_run(f"chunk-{c}", timeout=90) for c in (1, 2, 3)}

    intervals = []
    for chunk, result in results.items():
        assert result["phase"] == "Succeeded", result
        assert result["filesDeleted"] == per_chunk
        intervals.append((parse_time(result["startTime"]), parse_time(result["endTime"]), chunk))
    intervals.sort()
    for (_, end, first), (start, _, second) in zip(intervals, intervals[1:], strict=False):
        assert end <= start, f"chunk-{first} ended at {end}, after chunk-{second} started at {start}"
    assert tree(volume) == {"job_4_chunk_9_keep.tmp"}


def test_operator_killed_mid_run_finishes_it_after_restart(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    total = 16_000
    make_many(volume / "chunk", "job_9_chunk_3_", total)
    make_files(volume, [f"job_9_chunk_4_{i}.tmp" for i in range(50)], age_hours=100)
    make_files(volume, ["stray.tmp", "job_9_chunk_30_x.tmp", "job_99_chunk_3_x.tmp"], age_hours=100)
    others = {p for p in tree(volume) if not p.startswith("chunk/")}
    busy_timers = {"schedule": {"statsInterval": "1s", "emergencyCheckInterval": "1s"}}
    kube.apply(policy("p", volume, **busy_timers, **SLOW))
    kube.wait_status("cleanuppolicy", "p", lambda s: s.get("lastEmergencyCheckTime"), "the first timer tick")
    kube.apply(run("long", "p", "ChunkCompletion", jobId="9", chunkId="3"))

    # progress appears in status while the run is Running
    running = kube.wait_status(
        "cleanuprun",
        "long",
        lambda s: s.get("phase") == "Running" and (s.get("progress") or {}).get("filesDeleted", 0) > 0,
        "progress while Running",
    )
    assert 0 < running["progress"]["filesDeleted"] < total
    assert running["progress"]["updatedTime"]
    # the policy's timer is not held up by the run: statistics keep coming (the emergency check waits its turn)
    seen = datetime.now(UTC).replace(microsecond=0)
    kube.wait_status(
        "cleanuppolicy",
        "p",
        lambda s: parse_time(s["lastStatsTime"]) > seen,
        "statistics while the run holds the volume",
    )
    assert kube.status("cleanuprun", "long")["phase"] == "Running", (
        "no fresh statistics until the run had ended: the timer waited for the volume (or the run is too short)"
    )

    operator.kill()
    left = count_files(volume / "chunk")
    assert 0 < left < total, f"the run was not interrupted mid-way ({left} of {total} files left): make it longer"
    interrupted = kube.status("cleanuprun", "long")
    assert interrupted["phase"] == "Running"  # nobody finished it
    reported = interrupted["progress"]["filesDeleted"]  # the last progress report before the kill

    operator.start()
    result = kube.wait_run("long", timeout=90)
    assert result["phase"] == "Succeeded", result
    # the figures go on from the last report: the whole run is counted, short by at most what was deleted
    # after that report (one progress interval), never more than was really deleted
    assert result["filesDeleted"] == reported + left
    assert reported <= total - left
    assert f"including {reported} files" in result["message"]
    assert result["errorCount"] == 0
    assert result["progress"]["filesDeleted"] == reported + left  # the final progress is the final count
    last = kube.status("cleanuppolicy", "p")["lastCleanupMessage"]
    assert f"deleted {left} files" in last and f"including {reported} files" in last
    assert count_files(volume / "chunk") == 0
    assert tree(volume) == others  # nothing else was touched
    assert operator.starts == 2


def test_a_finished_run_is_not_executed_again(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["job_1_chunk_1_a.tmp", "job_1_chunk_2_a.tmp"])
    kube.apply(policy("p", volume))
    kube.apply(run("once", "p", "ChunkCompletion", jobId="1", chunkId="1"))
    first = kube.wait_run("once")
    assert first["filesDeleted"] == 1

    make_files(volume, ["job_1_chunk_1_b.tmp"])  # a file the run would match if it ran again
    operator.stop()
    operator.start()
    # a run created after the restart is processed after the old one was seen again
    kube.apply(run("barrier", "p", "ChunkCompletion", jobId="1", chunkId="2"))
    assert kube.wait_run("barrier")["filesDeleted"] == 1
    again = kube.status("cleanuprun", "once")
    assert again["startTime"] == first["startTime"]
    assert again["completionTime"] == first["completionTime"]
    assert (volume / "job_1_chunk_1_b.tmp").exists()


def test_events_say_what_happened_with_numbers(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    make_files(volume, [f"job_2_chunk_5_{i}.jpg" for i in range(3)], size=2048)
    kube.apply(policy("age-only", volume))
    kube.apply(run("good", "age-only", "ChunkCompletion", jobId="2", chunkId="5"))
    kube.apply(run("bad", "age-only", "CrashRecovery"))  # crash recovery needs a job table
    assert kube.wait_run("good")["phase"] == "Succeeded"
    bad = kube.wait_run("bad")
    assert bad["phase"] == "Failed"
    assert "crash recovery needs job status" in bad["message"]
    complete = {c["type"]: c for c in bad["conditions"]}["Complete"]
    assert complete["status"] == "False" and complete["reason"] == "Failed"

    def event(name: str) -> dict[str, Any] | None:
        found = [e for e in kube.events(name) if e["involvedObject"]["kind"] == "CleanupRun"]
        return found[0] if found else None

    good = wait_for("the event of the good run", lambda: event("good"))
    assert good["type"] == "Normal"
    assert good["reason"] == "CleanupFinished"
    assert good["message"] == "ChunkCompletion: deleted 3 files (6.0KiB) of 3 scanned"
    failed = wait_for("the event of the failed run", lambda: event("bad"))
    assert failed["type"] == "Warning"
    assert failed["reason"] == "CleanupFailed"
    assert failed["message"].startswith("CrashRecovery: deleted 0 files")
    # as a user sees them
    table = kube.table("events")
    seen = {(row["TYPE"], row["REASON"], row["OBJECT"]) for row in table}
    assert ("Normal", "CleanupFinished", "cleanuprun/good") in seen
    assert ("Warning", "CleanupFailed", "cleanuprun/bad") in seen


def test_dry_run_reports_and_deletes_nothing(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["a.tmp", "b.tmp", "c.tmp"], size=100, age_hours=48)
    kube.apply(policy("p", volume))
    kube.apply(run("dry", "p", "Orphaned", dryRun=True, maxAgeHours=24))
    result = kube.wait_run("dry")
    assert result["phase"] == "Succeeded"
    assert result["dryRun"] is True
    assert result["filesDeleted"] == 0
    assert result["wouldDeleteCount"] == 3
    assert result["wouldFreeBytes"] == 300
    assert result["wouldDeleteByReason"] == {"Expired": 3}
    assert sorted(result["wouldDelete"]) == ["a.tmp", "b.tmp", "c.tmp"]
    assert tree(volume) == {"a.tmp", "b.tmp", "c.tmp"}


def test_finished_runs_expire_after_their_ttl(kube: Kube, operator: OperatorProcess, operator_root: Path) -> None:
    (operator_root / "vol").mkdir()
    kube.apply(policy("p", operator_root / "vol"))
    kube.apply(run("short", "p", "Emergency", ttlSecondsAfterFinished=2))
    kube.apply(run("failed-short", "p", "CrashRecovery", ttlSecondsAfterFinished=2))
    kube.apply(run("kept", "p", "Emergency"))  # the default: a day
    finished = kube.wait_run("short")
    assert kube.wait_run("failed-short")["phase"] == "Failed"
    kube.wait_run("kept")

    # the TTL timer deletes its own run: the finalizer must go within seconds, not Kopf's default minute
    for name in ("short", "failed-short"):
        wait_for(f"{name} to be deleted after its TTL", lambda n=name: kube.get("cleanuprun", n) is None, timeout=15)
    assert kube.get("cleanuprun", "kept") is not None
    assert parse_time(finished["completionTime"])  # it had finished before it went
