"""Node scope in the models: what a policy and a run may say, and how a run's node results add up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempsweep.controller.node_runs import combine
from tempsweep.models import CleanupPolicySpec, CleanupRunSpec, RunPhase, RunType
from tempsweep.models.enums import RunReason
from tempsweep.models.node_scope import NodeRunStatus, VolumeScope, label_selector, selector_matches


def spec(**volume: object) -> CleanupPolicySpec:
    return CleanupPolicySpec.model_validate({"storage": {"volume": {"path": "/data/scratch", **volume}}})


def test_scope_defaults_to_shared() -> None:
    assert spec().storage.volume is not None
    assert spec().storage.volume.scope is VolumeScope.SHARED


def test_node_scope_takes_a_node_selector() -> None:
    volume = spec(scope="Node", nodeSelector={"disk": "nvme", "tempsweep.io/scratch": "true"}).storage.volume
    assert volume is not None and volume.node_selector == {"disk": "nvme", "tempsweep.io/scratch": "true"}


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"nodeSelector": {"disk": "nvme"}}, "nodeSelector only applies to scope Node"),
        ({"scope": "Shared", "nodeSelector": {}}, "nodeSelector only applies to scope Node"),
        ({"scope": "Node", "nodeSelector": {"bad key!": "x"}}, "is not a label key"),
        ({"scope": "Node", "nodeSelector": {"disk": "no spaces"}}, "is not a label value"),
        ({"scope": "Nodes"}, "Input should be 'Shared' or 'Node'"),
    ],
    ids=["selector-without-scope", "selector-with-shared", "bad-key", "bad-value", "unknown-scope"],
)
def test_bad_node_scope_specs_are_refused(volume: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**volume)


def test_node_scope_is_only_for_volumes() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted|extra"):
        CleanupPolicySpec.model_validate(
            {"storage": {"azureBlob": {"container": "abc", "capacity": "1Gi", "connectionString": "x",
                                       "scope": "Node"}}}
        )


def test_a_run_names_a_node_by_its_kubernetes_name() -> None:
    run = CleanupRunSpec.model_validate({"policyRef": {"name": "p"}, "type": "Orphaned", "nodeName": "worker-1.a"})
    assert run.node_name == "worker-1.a"
    with pytest.raises(ValueError, match="is not a node name"):
        CleanupRunSpec.model_validate({"policyRef": {"name": "p"}, "type": "Orphaned", "nodeName": "Worker_1"})


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (None, {}, True),
        ({}, {"a": "b"}, True),
        ({"disk": "nvme"}, {"disk": "nvme", "zone": "x"}, True),
        ({"disk": "nvme"}, {"disk": "ssd"}, False),
        ({"disk": "nvme", "zone": "x"}, {"disk": "nvme"}, False),
    ],
)
def test_a_selector_matches_like_a_pods_node_selector(
    selector: dict[str, str] | None, labels: dict[str, str], matches: bool
) -> None:
    assert selector_matches(selector, labels) is matches


def test_the_label_selector_text() -> None:
    assert label_selector({"b": "2", "a": "1"}) == "a=1,b=2"
    assert label_selector(None) == ""


NOW = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def results(draw: st.DrawFn) -> NodeRunStatus:
    return NodeRunStatus(
        node=draw(st.text("abc", min_size=1, max_size=5)),
        phase=draw(st.sampled_from([RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELLED])),
        files_deleted=draw(st.integers(min_value=0, max_value=10**6)),
        bytes_freed=draw(st.integers(min_value=0, max_value=10**12)),
        start_time=NOW,
        completion_time=NOW,
    )


@given(st.lists(results(), max_size=8), st.lists(st.text("xyz", min_size=1, max_size=3), max_size=3))
def test_a_run_succeeds_only_when_every_target_node_succeeded(done: list[NodeRunStatus], lost: list[str]) -> None:
    result = combine(RunType.ORPHANED, done, lost, NOW)

    everywhere = not lost and all(entry.phase is RunPhase.SUCCEEDED for entry in done)
    assert (result.phase is RunPhase.SUCCEEDED) == everywhere
    assert result.files_deleted == sum(entry.files_deleted for entry in done)
    assert result.bytes_freed == sum(entry.bytes_freed for entry in done)
    if lost:
        assert result.phase is RunPhase.FAILED
        assert result.reason is RunReason.NODES_NOT_REACHED
        assert lost[0] in result.message
