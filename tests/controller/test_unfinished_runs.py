"""Which unfinished runs a replica takes up: those nobody works (another replica died holding them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tempsweep.controller.state import OperatorState
from tempsweep.controller.unfinished_runs import UnfinishedRuns, unattended
from tempsweep.models import load_settings

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def run(uid: str, phase: str | None = "Running", claim: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    body_status: dict[str, Any] = dict(status)
    if phase is not None:
        body_status["phase"] = phase
    if claim is not None:
        body_status["claim"] = claim
    return {
        "metadata": {"namespace": "ns", "name": f"run-{uid}", "uid": uid},
        "spec": {"policyRef": {"name": "p"}},
        "status": body_status,
    }


def claim(holder: str, renewed_ago: float, lease: int = 30) -> dict[str, Any]:
    renewed = (NOW - timedelta(seconds=renewed_ago)).isoformat().replace("+00:00", "Z")
    return {"holder": holder, "renewTime": renewed, "leaseSeconds": lease}


class NoShards:
    """Shard ownership as a replica that holds none of the policies' shards sees it."""

    def owns(self, key: str) -> bool:
        return False


@pytest.mark.parametrize(
    ("body", "taken_up"),
    [
        pytest.param(run("a", phase=None), True, id="never-claimed"),
        pytest.param(run("b", claim=claim("dead-replica", renewed_ago=120)), True, id="holder-lease-expired"),
        pytest.param(run("c", claim=claim("live-replica", renewed_ago=5)), False, id="held-by-a-live-replica"),
        pytest.param(run("d", targetNodes=["n1"]), False, id="node-scoped-run-handed-to-agents"),
    ],
)
def test_a_run_is_taken_up_only_when_nobody_works_it(body: dict[str, Any], taken_up: bool) -> None:
    state = OperatorState(load_settings({}))
    assert (unattended([body], state, NOW) == [body]) is taken_up


def test_a_run_of_another_replicas_shard_is_left_to_it() -> None:
    state = OperatorState(load_settings({}))
    state.shards = NoShards()  # type: ignore[assignment]
    assert unattended([run("a", phase=None)], state, NOW) == []


@pytest.mark.parametrize(
    ("event", "last_version"),
    [
        pytest.param("MODIFIED", run("a", phase="Succeeded"), id="finished"),
        pytest.param("MODIFIED", run("a", phase="Cancelled"), id="cancelled"),
        pytest.param("DELETED", run("a"), id="deleted"),
    ],
)
def test_a_finished_or_deleted_run_leaves_the_record(event: str, last_version: dict[str, Any]) -> None:
    runs = UnfinishedRuns()
    runs.observe("ADDED", run("a", phase="Pending"))
    assert [body["metadata"]["uid"] for body in runs.snapshot()] == ["a"]
    runs.observe(event, last_version)
    assert runs.snapshot() == []


def test_the_record_keeps_the_newest_version() -> None:
    runs = UnfinishedRuns()
    runs.observe("ADDED", run("a", phase="Pending"))
    runs.observe("MODIFIED", run("a", phase="Running"))
    assert [body["status"]["phase"] for body in runs.snapshot()] == ["Running"]
