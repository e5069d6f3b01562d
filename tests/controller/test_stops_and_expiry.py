"""What the watch streams tell a running cleanup (StopSignals) and the sweeper (FinishedRuns), without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tempsweep.controller.expiry import DEFAULT_RUN_TTL_SECONDS, FinishedRuns, finished_run
from tempsweep.controller.state import StopSignals

DONE = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def run_body(uid: str, phase: str | None, ttl: int | None = None, name: str = "r") -> dict[str, Any]:
    spec: dict[str, Any] = {"policyRef": {"name": "p"}, "type": "Orphaned"}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    status = {"phase": phase, "completionTime": "2026-01-01T12:00:00Z"} if phase else {}
    return {"metadata": {"namespace": "ns", "name": name, "uid": uid}, "spec": spec, "status": status}


def test_a_stop_names_its_reason_and_a_resumed_policy_goes_on() -> None:
    stops = StopSignals()
    stops.stop("policy-1", "the policy was suspended")
    assert stops.check("run-1", "policy-1") == "the policy was suspended"
    assert stops.check("run-2", "policy-2") is None

    stops.clear("policy-1")  # suspend: false again

    assert stops.check("run-1", "policy-1") is None


def test_a_deleted_object_stays_stopped() -> None:
    stops = StopSignals()
    stops.stop("policy-1", "the policy was suspended")
    stops.stop("policy-1", "the policy was deleted", deleted=True)
    stops.clear("policy-1")  # a late event of the old object changes nothing

    assert stops.check("policy-1") == "the policy was deleted"
    assert stops.deleted("policy-1") and not stops.deleted("policy-2")


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Cancelled"])
def test_a_finished_run_expires_its_ttl_after_completion(phase: str) -> None:
    assert finished_run(run_body("u", phase, ttl=30)).expires == DONE + timedelta(seconds=30)  # type: ignore[union-attr]
    assert finished_run(run_body("u", phase)).expires == DONE + timedelta(seconds=DEFAULT_RUN_TTL_SECONDS)  # type: ignore[union-attr]


@pytest.mark.parametrize("phase", [None, "Pending", "Running"])
def test_an_unfinished_run_never_expires(phase: str | None) -> None:
    assert finished_run(run_body("u", phase, ttl=0)) is None


def test_the_sweeper_sees_what_the_watch_shows() -> None:
    runs = FinishedRuns()
    runs.observe("ADDED", run_body("a", "Succeeded", ttl=10, name="a"))
    runs.observe("ADDED", run_body("b", "Succeeded", ttl=1000, name="b"))
    runs.observe("ADDED", run_body("c", "Running", ttl=0, name="c"))
    later = DONE + timedelta(seconds=60)

    assert [run.name for run in runs.expired(later)] == ["a"]

    runs.observe("DELETED", run_body("a", "Succeeded", ttl=10, name="a"))
    assert runs.expired(later) == []
    assert [run.uid for run in runs.expired(DONE + timedelta(days=1))] == ["b"]
