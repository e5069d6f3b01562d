"""Stopping a running cleanup (issue 14, finding 4): delete the run, delete its policy, or suspend the policy.

The cleanup stops at the next batch boundary and what it did is recorded: the run's own status (when the run
is still there), a CleanupCancelled event, the policy's lastCleanup* (when the policy is still there). A new run
created under the deleted run's name is a different object: the old run's writes never land on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import count_files, make_many, policy, run
from support.operator_process import Kube, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e

FILES = 60_000
#: One file per batch, one batch at a time: a batch boundary after every file.
LIMITS = {"batchSize": 1, "parallelism": 1, "maxFilesPerRun": FILES}


@contextlib.contextmanager
def frozen(operator: OperatorProcess) -> Iterator[None]:
    """The operator stopped (SIGSTOP) in the middle of its run while the block changes the cluster.

    Without it the run could finish before kubectl gets its deletion through; frozen, the change is
    certain to arrive mid-run, as it does when the process stalls for a moment (a busy node, a long GC).
    """
    os.kill(operator.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(operator.pid, signal.SIGCONT)


def start_big_run(kube: Kube, volume: Path) -> dict[str, Any]:
    make_many(volume, "old", FILES)
    kube.apply(policy("p", volume, limits=LIMITS))
    kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration"), "validation")
    kube.apply(run("big", "p", "Orphaned", maxAgeHours=0.0001))
    kube.wait_status(
        "cleanuprun", "big", lambda s: (s.get("progress") or {}).get("filesDeleted", 0) > 0, "deletions to start"
    )
    body = kube.get("cleanuprun", "big")
    assert body is not None
    return body


def cancelled_events(kube: Kube, name: str) -> list[dict[str, Any]]:
    return [event for event in kube.events(name) if event["reason"] == "CleanupCancelled"]


def deleted_in(message: str) -> int:
    """The count in "Orphaned: deleted N files ..."."""
    return int(message.split("deleted ", 1)[1].split(" ", 1)[0])


def test_deleting_a_running_run_stops_it_and_a_new_run_of_that_name_is_untouched(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    old = start_big_run(kube, volume)

    with frozen(operator):
        kube("delete", "cleanuprun", "big", "--wait=true", "--timeout=30s")
        kube.apply(run("big", "p", "Orphaned", maxAgeHours=0.0001, dryRun=True))  # same name, a new object

    events = wait_for("the cancelled run's event", lambda: cancelled_events(kube, "big"), timeout=120)
    left = count_files(volume, "old")
    assert 0 < left < FILES, "the cleanup neither stopped nor started"
    assert "cancelled: the CleanupRun was deleted" in events[0]["message"]
    assert deleted_in(events[0]["message"]) == FILES - left  # what was done is what is reported
    assert events[0]["involvedObject"]["uid"] == old["metadata"]["uid"]
    last = kube.wait_status("cleanuppolicy", "p", lambda s: s.get("lastCleanupPhase") == "Cancelled", "lastCleanup")
    assert deleted_in(last["lastCleanupMessage"]) == FILES - left

    new = kube.wait_run("big", timeout=120)
    assert new["phase"] == "Succeeded", json.dumps(new)
    assert new["dryRun"] is True and new["filesDeleted"] == 0
    assert new["wouldDeleteCount"] == left  # its own figures, none of the old run's
    assert count_files(volume, "old") == left


@pytest.mark.parametrize("how", ["suspend", "delete-policy"])
def test_suspending_or_deleting_the_policy_stops_its_running_cleanup(
    kube: Kube, operator: OperatorProcess, operator_root: Path, how: str
) -> None:
    volume = operator_root / "vol"
    start_big_run(kube, volume)

    with frozen(operator):
        if how == "suspend":
            kube("patch", "cleanuppolicy", "p", "--type=merge", "-p", json.dumps({"spec": {"suspend": True}}))
            reason = "the policy was suspended"
        else:
            kube("delete", "cleanuppolicy", "p", "--wait=true", "--timeout=30s")
            reason = "the policy was deleted"

    status = kube.wait_status("cleanuprun", "big", lambda s: s.get("phase") == "Cancelled", "Cancelled", timeout=120)
    left = count_files(volume, "old")
    assert status["phase"] == "Cancelled", json.dumps(status)
    assert 0 < left < FILES
    assert f"cancelled: {reason}" in status["message"]
    assert status["filesDeleted"] == FILES - left
    assert status["progress"]["filesDeleted"] == FILES - left
    complete = [c for c in status["conditions"] if c["type"] == "Complete"]
    assert complete[0]["status"] == "False" and complete[0]["reason"] == "Cancelled"
    assert wait_for("the run's event", lambda: cancelled_events(kube, "big"))
