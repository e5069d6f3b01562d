"""The aggregate of a node-scoped policy: one summary from every selected node's own entry. Pure.

Each node's agent reports its own figures (``PolicyNodeStatus``); the operator, the only writer of the
aggregate, calls ``summarize`` with the entries, the nodes the selector matches now, and ``now``. The rules
lean towards alarm, never towards comfort: a selected node that has not reported recently (no agent, or one
that stopped) counts as Unknown health, and Unknown ranks just below Critical -- a node nobody can see
might be full. Entries of nodes that are no longer selected (relabelled, removed) are left out of every
figure. Totals add up the reporting nodes only, and the summary says how many that are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tempsweep.models import Health
from tempsweep.models.node_scope import MAX_LISTED_NAMES, MAX_NODES, NodeSummary, PolicyNodeStatus

#: Worst first: the summary's health is the first of these any selected node has.
SEVERITY = (Health.CRITICAL, Health.UNKNOWN, Health.WARNING, Health.HEALTHY)


def worst(healths: Iterable[Health]) -> Health:
    """The worst of ``healths`` by ``SEVERITY``; Unknown when there are none (nothing is known)."""
    seen = set(healths)
    return next((health for health in SEVERITY if health in seen), Health.UNKNOWN)


def reporting(entry: PolicyNodeStatus, now: datetime, stale_after_seconds: float) -> bool:
    """Whether the entry is recent enough to stand for its node."""
    updated = entry.updated_time
    return updated is not None and (now - updated).total_seconds() <= stale_after_seconds


def node_health(entry: PolicyNodeStatus) -> Health:
    """A reporting node's health: its own when it is ready and measured, else Unknown."""
    return entry.health if entry.ready and entry.health is not None else Health.UNKNOWN


def summarize(
    entries: Iterable[PolicyNodeStatus], selected: Iterable[str], now: datetime, stale_after_seconds: float
) -> NodeSummary:
    """The policy's aggregate: worst health, totals, the fullest node, and who is missing."""
    wanted = sorted(set(selected))
    by_node = {entry.node: entry for entry in entries if entry.node in set(wanted)}
    live = {name: entry for name, entry in by_node.items() if reporting(entry, now, stale_after_seconds)}
    silent = [name for name in wanted if name not in live]
    not_ready = sorted(name for name, entry in live.items() if not entry.ready)
    healths = [node_health(entry) for entry in live.values()] + [Health.UNKNOWN] * len(silent)
    measured = [(entry.usage_percent, name) for name, entry in live.items() if entry.usage_percent is not None]
    fullest = min(measured, key=lambda item: (-item[0], item[1]), default=None)  # equally full: first by name
    return NodeSummary(
        selected=len(wanted),
        reporting=len(live),
        not_reporting=silent[:MAX_LISTED_NAMES],
        not_ready=not_ready[:MAX_LISTED_NAMES],
        health=worst(healths),
        temp_files_count=sum(entry.temp_files_count or 0 for entry in live.values()),
        temp_files_size_bytes=sum(entry.temp_files_size_bytes or 0 for entry in live.values()),
        orphaned_files_count=sum(entry.orphaned_files_count or 0 for entry in live.values()),
        fullest_node=fullest[1] if fullest else None,
        fullest_usage_percent=fullest[0] if fullest else None,
        message=_message(len(wanted), len(live), silent, not_ready),
    )


def _message(selected: int, live: int, silent: list[str], not_ready: list[str]) -> str:
    if selected == 0:
        return "no node matches spec.storage.volume.nodeSelector: nothing is cleaned"
    parts = [f"{live} of {selected} selected nodes reporting"]
    if silent:
        shown = ", ".join(silent[:MAX_LISTED_NAMES]) + (" ..." if len(silent) > MAX_LISTED_NAMES else "")
        parts.append(f"no recent report from {shown} (no agent there, or it stopped): counted as Unknown")
    if not_ready:
        parts.append(f"{len(not_ready)} cannot clean the path (see status.nodes)")
    if selected > MAX_NODES:
        parts.append(f"more than {MAX_NODES} nodes selected: the policy is not ready (narrow the nodeSelector)")
    return "; ".join(parts)
