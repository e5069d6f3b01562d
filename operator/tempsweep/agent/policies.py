"""One node-scoped policy's tick on this node: what is due, doing it, and this node's entry.

The same decisions as the operator's timer (``controller.schedule.due_work``), fed from this node's own
entry instead of the policy's top-level status: each node keeps its own statistics time, emergency check
time and cron slots, so after an agent restart a missed slot runs once on that node -- not once per
missed slot, not never, and not on another node's say-so. The entry is written only when something in it
changed, or at least every ``HEARTBEAT_SECONDS`` so the operator can tell a silent node from a quiet one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tempsweep.agent.entries import find_entry, write_policy_entry
from tempsweep.controller.cleanups import refresh_stats, run_locked
from tempsweep.controller.node_policies import AGENT_HEARTBEAT_SECONDS
from tempsweep.controller.policy_status import now_utc
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime, build_runtime, resolve
from tempsweep.controller.schedule import DueWork, Observed, due_work, interval_due, parse_time
from tempsweep.controller.state import PolicyMemory
from tempsweep.engine import RunRequest, StorageError
from tempsweep.models import Health, RunPhase, RunStatus, RunType, StorageStats
from tempsweep.models.effective import Schedule
from tempsweep.models.node_scope import MAX_NODES, PolicyNodeStatus
from tempsweep.models.status import shortened

if TYPE_CHECKING:
    from tempsweep.agent.loop import Agent

log = logging.getLogger("tempsweep.agent")

HEARTBEAT_SECONDS = AGENT_HEARTBEAT_SECONDS
_FIGURES = ("health", "usage_percent", "total_bytes", "free_bytes", "temp_files_count", "temp_files_size_bytes",
            "orphaned_files_count", "job_source_error")


def tick_policy(agent: Agent, body: Any) -> None:
    """Do what is due for the policy on this node and write this node's entry if it changed.

    The entry acted on is the newer of the one in the agent's copy of the policy and the one this agent
    last wrote (its own write may not have come back through the watch yet, or may have failed): a
    cleanup done is never done again because the record of it was late.
    """
    now = now_utc()
    uid = str((body.get("metadata") or {}).get("uid") or "")
    listed = find_entry(body, agent.node, PolicyNodeStatus)
    if listed is None and _list_full(body):
        log.warning("%s: status.nodes is full (%d entries): nothing is done on this node", _key(body), MAX_NODES)
        return
    before = _newer(listed, agent.written.get(uid)) or PolicyNodeStatus(node=agent.node)
    after = _work(agent, body, before, now)
    heartbeat = interval_due(HEARTBEAT_SECONDS, before.updated_time, now)
    if _comparable(after) != _comparable(before) or heartbeat:
        entry = after.model_copy(update={"updated_time": now, "agent": agent.identity})
        agent.written[uid] = entry
        write_policy_entry(agent.kube, body, entry)


def _list_full(body: Any) -> bool:
    """No room for this node's entry: the operator says the policy selects too many nodes (fail closed)."""
    status = body.get("status") or {}
    too_many = any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("reason") == "TooManyNodes"
        for c in status.get("conditions") or []
    )
    return too_many or len(status.get("nodes") or []) >= MAX_NODES


def _newer(listed: PolicyNodeStatus | None, written: PolicyNodeStatus | None) -> PolicyNodeStatus | None:
    if listed is None or written is None:
        return listed or written
    if written.updated_time is not None and (listed.updated_time is None or written.updated_time > listed.updated_time):
        return written
    return listed


def _key(body: Any) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _comparable(entry: PolicyNodeStatus) -> dict[str, Any]:
    return entry.model_dump(exclude={"updated_time", "agent"})


def _work(agent: Agent, body: Any, entry: PolicyNodeStatus, now: datetime) -> PolicyNodeStatus:
    meta = body.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    memory = agent.memory(str(meta.get("uid") or ""))
    try:
        schedule = _schedule(agent, body, memory, generation)
    except PolicyNotReady as exc:
        return _not_ready(entry, exc, generation)
    due = due_work(schedule, _observed(body, entry, memory, now), now)
    if (due.emergency or due.scheduled or due.orphaned) and agent.confirmed(body) is None:
        due = replace(due, emergency=False, scheduled=None, orphaned=None)  # stays due: decided afresh
    if not due.anything:
        return entry
    try:
        runtime = build_runtime(agent.runtime_body(body), agent.state, memory)
    except PolicyNotReady as exc:
        return _not_ready(entry, exc, generation)
    ready = {
        "ready": True,
        "reason": "Ready",
        "message": f"cleaning {runtime.storage.description} on node {agent.node}",
        "observed_generation": generation,
    }
    entry = entry.model_copy(update=ready)
    if due.stats:
        try:
            stats = refresh_stats(runtime)
        except StorageError as exc:
            return _not_ready(entry, PolicyNotReady("StorageUnavailable", str(exc), condition="StorageHealthy"),
                              generation)
        memory.stats_computed = now
        if stats.job_source_error:
            memory.job_source = None  # read the secret and connect afresh next tick
        entry = _with_stats(entry, stats, now)
    return _cleanups(agent, runtime, entry, due, now)


def _schedule(agent: Agent, body: Any, memory: PolicyMemory, generation: int) -> Schedule:
    if memory.resolved is None or memory.resolved[0] != generation:
        memory.resolved = (generation, resolve(dict(body), agent.settings))
    return memory.resolved[1].schedule


def _observed(body: Any, entry: PolicyNodeStatus, memory: PolicyMemory, now: datetime) -> Observed:
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    stats_times = [t for t in (entry.last_stats_time, memory.stats_computed) if t]
    return Observed(
        generation=int(meta.get("generation") or 0),
        observed_generation=entry.observed_generation,
        created=parse_time(meta.get("creationTimestamp")) or now,
        suspended=bool(spec.get("suspend")),
        ready=entry.ready,
        job_source_ok=entry.job_source_error is None,
        last_stats=max(stats_times) if stats_times else None,
        last_emergency_check=entry.last_emergency_check_time,
        last_scheduled=entry.last_scheduled_time,
        last_orphaned=entry.last_orphaned_time,
    )


def _not_ready(entry: PolicyNodeStatus, exc: PolicyNotReady, generation: int) -> PolicyNodeStatus:
    """Not ready on this node, saying why; health Unknown when the storage itself cannot be read."""
    update: dict[str, Any] = {
        "ready": False,
        "reason": exc.reason,
        "message": shortened(str(exc), 1024),
        "observed_generation": generation,
    }
    if exc.condition == "StorageHealthy" or exc.reason in ("PathNotAllowed", "StorageUnavailable"):
        update["health"] = Health.UNKNOWN
    return entry.model_copy(update=update)


def _with_stats(entry: PolicyNodeStatus, stats: StorageStats, now: datetime) -> PolicyNodeStatus:
    figures = {
        "health": stats.health,
        "usage_percent": round(stats.usage_percent, 2),
        "total_bytes": stats.total_bytes,
        "free_bytes": stats.free_bytes,
        "temp_files_count": stats.temp_files_count,
        "temp_files_size_bytes": stats.temp_files_size_bytes,
        "orphaned_files_count": stats.orphaned_files_count,
        "job_source_error": stats.job_source_error,
    }
    changed = any(getattr(entry, name) != figures[name] for name in _FIGURES)
    if changed or interval_due(HEARTBEAT_SECONDS, entry.last_stats_time, now):
        figures["last_stats_time"] = now
    return entry.model_copy(update=figures)


def _cleanups(
    agent: Agent, runtime: PolicyRuntime, entry: PolicyNodeStatus, due: DueWork, now: datetime
) -> PolicyNodeStatus:
    """The due timer cleanups, each skipped (left due) while another cleanup holds this node's storage."""

    def stop() -> str | None:
        return agent.state.stops.check(runtime.uid) or ("the agent is stopping" if agent.stopping.is_set() else None)

    update: dict[str, Any] = {}
    if due.emergency:
        result = run_locked(runtime, RunRequest(RunType.EMERGENCY), agent.state.locks, wait=False, should_stop=stop)
        if result is not None and _counts(agent, result):
            update["last_emergency_check_time"] = now
            if result.files_deleted or result.would_delete_count or result.phase is RunPhase.FAILED:
                update.update(_last_cleanup(result))
    for kind, slot, field in (
        (RunType.SCHEDULED, due.scheduled, "last_scheduled_time"),
        (RunType.ORPHANED, due.orphaned, "last_orphaned_time"),
    ):
        if slot is not None:
            result = run_locked(runtime, RunRequest(kind), agent.state.locks, wait=False, should_stop=stop)
            if result is not None and _counts(agent, result):
                update[field] = slot
                update.update(_last_cleanup(result))
    return entry.model_copy(update=update)


def _counts(agent: Agent, result: RunStatus) -> bool:
    """Whether a timer's cleanup counts as done: not when it was cut short because the agent is stopping
    (its check or slot stays due for the next agent). A busy storage (no result) does not count either."""
    return not (result.phase is RunPhase.CANCELLED and agent.stopping.is_set())


def _last_cleanup(result: RunStatus) -> dict[str, Any]:
    log.info("%s cleanup on this node: %s", result.trigger.value, result.message)
    return {
        "last_cleanup_time": result.end_time.replace(microsecond=0),
        "last_cleanup_phase": result.phase,
        "last_cleanup_message": shortened(result.message, 1024),
    }
