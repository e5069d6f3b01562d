"""The aggregate of a node-scoped policy (engine.nodes.summarize): rules checked on random fleets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tempsweep.engine.nodes import SEVERITY, summarize, worst
from tempsweep.models import Health
from tempsweep.models.node_scope import MAX_LISTED_NAMES, PolicyNodeStatus

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
STALE = 600.0
NAMES = st.sampled_from([f"node-{i}" for i in range(30)])


@st.composite
def entries(draw: st.DrawFn) -> PolicyNodeStatus:
    ready = draw(st.booleans())
    age = draw(st.one_of(st.none(), st.floats(min_value=0, max_value=2 * STALE)))
    return PolicyNodeStatus(
        node=draw(NAMES),
        ready=ready,
        health=draw(st.one_of(st.none(), st.sampled_from(list(Health)))),
        usage_percent=draw(st.one_of(st.none(), st.floats(min_value=0, max_value=100))),
        temp_files_count=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))),
        temp_files_size_bytes=draw(st.integers(min_value=0, max_value=10**15)),
        orphaned_files_count=draw(st.integers(min_value=0, max_value=10**6)),
        updated_time=None if age is None else NOW - timedelta(seconds=age),
    )


def fleet() -> st.SearchStrategy[list[PolicyNodeStatus]]:
    return st.lists(entries(), max_size=20, unique_by=lambda entry: entry.node)


def live(entry: PolicyNodeStatus) -> bool:
    return entry.updated_time is not None and (NOW - entry.updated_time).total_seconds() <= STALE


@given(fleet(), st.sets(NAMES, max_size=30))
def test_totals_add_up_the_reporting_selected_nodes_only(nodes: list[PolicyNodeStatus], selected: set[str]) -> None:
    summary = summarize(nodes, selected, NOW, STALE)

    counted = [entry for entry in nodes if entry.node in selected and live(entry)]
    assert summary.selected == len(selected)
    assert summary.reporting == len(counted)
    assert summary.temp_files_count == sum(entry.temp_files_count or 0 for entry in counted)
    assert summary.temp_files_size_bytes == sum(entry.temp_files_size_bytes or 0 for entry in counted)
    assert summary.orphaned_files_count == sum(entry.orphaned_files_count or 0 for entry in counted)


@given(fleet(), st.sets(NAMES, max_size=30))
def test_health_is_never_better_than_any_selected_node(nodes: list[PolicyNodeStatus], selected: set[str]) -> None:
    summary = summarize(nodes, selected, NOW, STALE)

    rank = {health: index for index, health in enumerate(SEVERITY)}  # 0 is the worst
    by_node = {entry.node: entry for entry in nodes}
    for name in selected:
        entry = by_node.get(name)
        if entry is None or not live(entry) or not entry.ready or entry.health is None:
            own = Health.UNKNOWN  # a node nobody can see might be full
        else:
            own = entry.health
        assert rank[summary.health] <= rank[own], (name, own, summary.health)
    if not selected:
        assert summary.health is Health.UNKNOWN


@given(fleet(), st.sets(NAMES, min_size=1, max_size=30))
def test_a_selected_node_without_a_recent_report_is_named_and_never_healthy(
    nodes: list[PolicyNodeStatus], selected: set[str]
) -> None:
    summary = summarize(nodes, selected, NOW, STALE)

    reported = {entry.node for entry in nodes if live(entry)}
    silent = sorted(selected - reported)
    assert summary.not_reporting == silent[:MAX_LISTED_NAMES]
    assert summary.reporting + len(silent) == summary.selected
    if silent:
        assert summary.health in (Health.CRITICAL, Health.UNKNOWN)
        assert silent[0] in summary.message


@given(fleet(), st.sets(NAMES, max_size=30), fleet())
def test_entries_of_nodes_not_selected_change_nothing(
    nodes: list[PolicyNodeStatus], selected: set[str], strangers: list[PolicyNodeStatus]
) -> None:
    others = [entry for entry in strangers if entry.node not in selected]
    mine = [entry for entry in nodes if entry.node in selected]

    assert summarize(mine + others, selected, NOW, STALE) == summarize(mine, selected, NOW, STALE)


@given(fleet(), st.sets(NAMES, max_size=30))
def test_the_fullest_node_is_a_reporting_selected_node_with_the_highest_usage(
    nodes: list[PolicyNodeStatus], selected: set[str]
) -> None:
    summary = summarize(nodes, selected, NOW, STALE)

    measured = {
        e.node: e.usage_percent for e in nodes if e.node in selected and live(e) and e.usage_percent is not None
    }
    if not measured:
        assert summary.fullest_node is None and summary.fullest_usage_percent is None
        return
    top = max(measured.values())
    assert summary.fullest_usage_percent == top
    assert summary.fullest_node == min(name for name, usage in measured.items() if usage == top)


@given(st.lists(st.sampled_from(list(Health))))
def test_worst_follows_the_severity_order(healths: list[Health]) -> None:
    result = worst(healths)

    if not healths:
        assert result is Health.UNKNOWN
    else:
        assert result in healths
        assert all(SEVERITY.index(result) <= SEVERITY.index(health) for health in healths)


def test_a_critical_node_makes_the_policy_critical_and_a_missing_one_unknown() -> None:
    fresh = NOW - timedelta(seconds=5)
    nodes = [
        PolicyNodeStatus(node="a", ready=True, health=Health.CRITICAL, usage_percent=97, updated_time=fresh),
        PolicyNodeStatus(node="b", ready=True, health=Health.HEALTHY, usage_percent=10, updated_time=fresh),
    ]

    assert summarize(nodes, {"a", "b", "c"}, NOW, STALE).health is Health.CRITICAL
    quiet = summarize(nodes[1:], {"b", "c"}, NOW, STALE)
    assert quiet.health is Health.UNKNOWN
    assert quiet.not_reporting == ["c"]
    assert summarize(nodes[1:], {"b"}, NOW, STALE).health is Health.HEALTHY
    assert "no node matches" in summarize(nodes, set(), NOW, STALE).message
