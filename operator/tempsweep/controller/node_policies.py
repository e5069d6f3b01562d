"""The operator's part in node-scoped policies: validate the spec and write the aggregate. It never cleans them.

A policy of ``storage.volume.scope: Node`` is cleaned by the tempsweep agent on each selected node
(``tempsweep.agent``); each agent writes only its own entry of ``status.nodes``. The operator is the one
writer of everything else in such a policy's status: ``Ready`` (the spec validates, and it selects no
more nodes than fit in status), ``StorageHealthy``, ``health`` and ``nodeSummary`` (``engine.nodes``).
So agents never fight over the aggregate, and the operator never writes an agent's entry (it writes
with a merge patch that leaves ``status.nodes`` alone). It only removes dead ones: the entry of a node
that is no longer selected and whose agent stopped writing (a deleted node's agent never withdraws it).

The aggregate is recomputed when the entries change (every agent write is a watch event) and every
``statsInterval``, when the list of selected Nodes is read again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from tempsweep.controller import policy_status as ps
from tempsweep.controller.conditions import condition, read_conditions
from tempsweep.controller.node_api import remove_entries, selected_nodes
from tempsweep.controller.runtime import PolicyNotReady, resolve
from tempsweep.controller.state import OperatorState
from tempsweep.controller.writer import POLICIES, ObjectRef, StatusWriter
from tempsweep.engine.nodes import reporting, summarize
from tempsweep.models import Health
from tempsweep.models.node_scope import MAX_NODES, NodeSummary, PolicyNodeStatus, VolumeScope
from tempsweep.models.resources import Condition, PolicyStatus

log = logging.getLogger(__name__)

#: An agent rewrites its entry at least this often while nothing changes (``tempsweep.agent``); an entry
#: older than twice this plus the policy's statsInterval counts as not reporting.
AGENT_HEARTBEAT_SECONDS = 300.0


def node_scoped(body: Any) -> bool:
    """Read from the raw spec, so that even an invalid node-scoped spec is never opened as a shared volume."""
    volume = ((body.get("spec") or {}).get("storage") or {}).get("volume") or {}
    return isinstance(volume, dict) and volume.get("scope") == VolumeScope.NODE.value


def node_selector(body: Any) -> dict[str, str]:
    volume = ((body.get("spec") or {}).get("storage") or {}).get("volume") or {}
    selector = volume.get("nodeSelector") or {}
    return {str(key): str(value) for key, value in selector.items()} if isinstance(selector, dict) else {}


def stale_after_seconds(stats_seconds: float) -> float:
    return 2 * AGENT_HEARTBEAT_SECONDS + stats_seconds


def node_entries(status: dict[str, Any], entry_type: type[Any] = PolicyNodeStatus) -> list[Any]:
    """The per-node entries of a status; an entry that does not parse is left out (and so not reporting)."""
    entries = []
    for item in status.get("nodes") or []:
        try:
            entries.append(entry_type.model_validate(item))
        except ValidationError:
            continue
    return entries


@dataclass
class NodeMemory:
    """One node-scoped policy's memory in the operator: the selected nodes and when they were read."""

    selected: list[str] = field(default_factory=list)
    read_at: float | None = None  # time.monotonic()
    selector: dict[str, str] = field(default_factory=dict)
    written: str = ""  # the last aggregate written, to write only on change


def node_memory(memo: Any) -> NodeMemory:
    memory = memo.setdefault("node_scope", NodeMemory())
    assert isinstance(memory, NodeMemory)
    return memory


def aggregate(body: Any, state: OperatorState, memory: NodeMemory, now: datetime) -> PolicyStatus:
    """Validate the spec and aggregate the nodes' entries into the policy's conditions, health and summary."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    generation = int(meta.get("generation") or 0)
    current = read_conditions(status.get("conditions"))
    try:
        policy = resolve(dict(body), state.settings)
    except PolicyNotReady as exc:
        return ps.not_ready(current, exc, now, generation)
    selector = node_selector(body)
    if memory.read_at is None or memory.selector != selector or _older(memory.read_at, policy.schedule.stats_seconds):
        try:
            memory.selected, memory.selector = selected_nodes(state.kube, selector), selector
        except Exception as exc:  # e.g. 403: the operator's list-nodes role (manifests/node-agent) is missing
            return ps.not_ready(current, nodes_unreadable(exc), now, generation)
        memory.read_at = time.monotonic()
    summary = summarize(
        node_entries(status), memory.selected, now, stale_after_seconds(policy.schedule.stats_seconds)
    )
    conditions = _conditions(current, summary, now, generation)
    return PolicyStatus(
        conditions=conditions, observed_generation=generation, health=summary.health, node_summary=summary
    )


def nodes_unreadable(exc: Exception) -> PolicyNotReady:
    cause = f"{getattr(exc, 'status', '')} {getattr(exc, 'reason', '') or type(exc).__name__}".strip()
    return PolicyNotReady(
        "NodesUnreadable",
        f"the operator cannot list Nodes ({cause}): it needs the tempsweep-operator-nodes ClusterRole of "
        "manifests/node-agent to know which nodes a node-scoped policy selects",
    )


def _older(read_at: float, seconds: float) -> bool:
    return time.monotonic() - read_at >= seconds - 0.5


def _conditions(current: list[Condition], summary: NodeSummary, now: datetime, gen: int) -> list[Condition]:
    if summary.selected > MAX_NODES:
        ready = condition(
            "Ready",
            False,
            "TooManyNodes",
            f"the nodeSelector matches {summary.selected} nodes; node scope handles at most {MAX_NODES} per "
            "policy (each has an entry in status): narrow the nodeSelector or split the policy",
            now,
        )
    else:
        message = f"cleaned by the agents of the selected nodes: {summary.message}"
        ready = condition("Ready", True, "Validated", message, now)
    healthy = condition(
        "StorageHealthy", summary.health is not Health.CRITICAL, summary.health.value, summary.message, now
    )
    return ps.decided(current, [item.model_copy(update={"observed_generation": gen}) for item in (ready, healthy)])


def on_change(body: Any, memo: Any, state: OperatorState, now: datetime) -> None:
    """A new or changed spec: aggregate at once, with the selected nodes read afresh."""
    memory = node_memory(memo)
    memory.read_at, memory.written = None, ""
    _write(body, state, memory, now)


def on_tick(body: Any, memo: Any, state: OperatorState, now: datetime) -> None:
    """Aggregate, and write when anything changed; one Warning when the aggregate turns Critical."""
    _write(body, state, node_memory(memo), now)


def _write(body: Any, state: OperatorState, memory: NodeMemory, now: datetime) -> None:
    status = aggregate(body, state, memory, now)
    _prune(body, state, memory, now)
    fingerprint = status.model_dump_json(exclude={"conditions"}) + _condition_states(status.conditions)
    if fingerprint == memory.written:
        return
    before = (body.get("status") or {}).get("health")
    if status.health is Health.CRITICAL and before != Health.CRITICAL.value and status.node_summary is not None:
        kopf.event(body, type="Warning", reason="StorageCritical", message=status.node_summary.message)
    StatusWriter(state.kube, ObjectRef.of(POLICIES, body.get("metadata") or {})).write(status)
    memory.written = fingerprint


def _prune(body: Any, state: OperatorState, memory: NodeMemory, now: datetime) -> None:
    """Remove the entries of nodes that are no longer selected (deleted, relabelled) and whose agent has not
    written for the stale time: such an agent withdraws its own entry when it can, but the agent of a deleted
    node never will, and dead entries would fill the bounded list. An entry a live agent still writes is
    never removed, so the operator and the agents do not fight over it."""
    if memory.read_at is None:
        return  # the selected nodes are unknown: remove nothing
    status = body.get("status") or {}
    try:
        stale = resolve(dict(body), state.settings).schedule.stats_seconds
    except PolicyNotReady:
        return
    gone = {
        entry.node
        for entry in node_entries(status)
        if entry.node not in memory.selected and not reporting(entry, now, stale_after_seconds(stale))
    }
    if gone:
        log.info("%s: removing the entries of %s (not selected, no report)", _key(body), ", ".join(sorted(gone)))
        remove_entries(state.kube, POLICIES, body.get("metadata") or {}, status, gone)


def _key(body: Any) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _condition_states(conditions: list[Condition] | None) -> str:
    return ";".join(f"{c.type}={c.status}/{c.reason}/{c.message}" for c in conditions or [])
