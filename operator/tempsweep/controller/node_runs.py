"""The operator's part in a CleanupRun of a node-scoped policy: pick the target nodes, wait, sum up.

The run executes on the nodes, by their agents; the operator is the one writer of the run's own phase.

1. When the run is new, the operator reads the Nodes the policy selects (or checks ``spec.nodeName`` is one
   of them), writes them to ``status.targetNodes`` and sets the phase Running. No target node, more than
   ``MAX_NODES``, a ``nodeName`` the policy does not select, or a ``nodeName`` on a Shared policy: the run
   fails at once (InvalidSpec, NoNodesSelected, TooManyNodes) and no agent ever starts it.
2. Each target node's agent claims and executes its part and writes only its own entry of
   ``status.nodes`` (``tempsweep.agent.runs``).
3. The operator checks again every tick (Kopf retries the handler). When every target has a final entry it
   writes the final phase: Succeeded only when every node succeeded, else Failed (or Cancelled), with the
   figures summed over the nodes. Fail closed: a target whose agent never claimed its part, or stopped
   renewing its claim, for ``TEMPSWEEP_NODE_RUN_WAIT_SECONDS`` (default 600) makes the run Failed with
   reason NodesNotReached naming those nodes; the run never claims success for a node that did not report.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

import kopf

from tempsweep.controller.cleanups import post_run_event
from tempsweep.controller.conditions import condition
from tempsweep.controller.kube import NotFound, Written
from tempsweep.controller.node_api import selected_nodes
from tempsweep.controller.node_policies import node_entries, node_scoped, node_selector, nodes_unreadable
from tempsweep.controller.policy_status import now_utc
from tempsweep.controller.runtime import PolicyNotReady, resolve
from tempsweep.controller.schedule import parse_time
from tempsweep.controller.state import OperatorState
from tempsweep.controller.timing import _seconds, load_timing
from tempsweep.controller.writer import POLICIES, ObjectRef, StatusWriter
from tempsweep.models import InputError, RunPhase, RunStatus, RunType, parse_run
from tempsweep.models.enums import RunReason
from tempsweep.models.node_scope import MAX_NODES, NodeRunStatus
from tempsweep.models.resources import CleanupRunStatus, PolicyStatus

log = logging.getLogger(__name__)

WAIT_VARIABLE = "TEMPSWEEP_NODE_RUN_WAIT_SECONDS"
WAITING = "waiting for node agents"  # Kopf logs every retry; these lines are expected, not errors
FINAL = (RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELLED)


class _QuietWaits(logging.Filter):
    """Kopf logs each retry of a waiting handler as an error: for a run waiting on its nodes it is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return WAITING not in record.getMessage()


logging.getLogger("kopf.objects").addFilter(_QuietWaits())


def wait_seconds() -> float:
    return _seconds(os.environ, WAIT_VARIABLE, 600, 1, 7 * 86_400)


def coordinate(body: Any, current: dict[str, Any], ref: ObjectRef, state: OperatorState) -> bool:
    """Handle the run when its policy is node-scoped (True), or leave it to the operator's own path (False).

    Raises ``kopf.TemporaryError`` while nodes are still working: Kopf calls it again a tick later.
    """
    try:
        run = parse_run(dict(body), source=f"CleanupRun {ref.key}")
        policy = state.kube.get_policy(ref.namespace, run.spec.policy_ref.name)
    except (InputError, NotFound):
        return False  # the operator's own path refuses it, saying why
    writer = StatusWriter(state.kube, ref)
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    if not node_scoped(policy):
        if run.spec.node_name is None:
            return False
        _refuse(body, writer, generation, "InvalidSpec", "spec.nodeName only applies to policies of scope Node")
        return True
    status = current.get("status") or {}
    targets = list(dict.fromkeys(status.get("targetNodes") or []))  # a node named twice counts once
    if not targets:
        version = str((current.get("metadata") or {}).get("resourceVersion") or "")
        problem = _start(policy, run.spec, state, writer, (generation, version))
        if problem is not None:
            _refuse(body, writer, generation, *problem)
            return True
        raise kopf.TemporaryError(f"{WAITING}: started", delay=load_timing().tick_seconds)
    entries = {entry.node: entry for entry in node_entries(status, NodeRunStatus) if entry.node in targets}
    now = now_utc()
    if all(node in entries and entries[node].phase in FINAL for node in targets):
        _finish(body, ref, state, [entries[node] for node in targets], [])
        return True
    started = parse_time(status.get("startTime")) or now
    lost = [node for node in targets if _not_reached(entries.get(node), started, now)]
    if lost:
        done = [entries[node] for node in targets if node in entries and entries[node].phase in FINAL]
        _finish(body, ref, state, done, lost)
        return True
    waiting = [node for node in targets if node not in entries or entries[node].phase not in FINAL]
    raise kopf.TemporaryError(f"{WAITING}: {', '.join(waiting[:10])}", delay=load_timing().tick_seconds)


def _start(
    policy: dict[str, Any], spec: Any, state: OperatorState, writer: StatusWriter, at: tuple[int, str]
) -> tuple[str, str] | None:
    """Write the target nodes and Running, conditional on the run as read (``at``: generation and
    resourceVersion: of two operators only one picks the targets); or (reason, message) when it cannot start."""
    generation, version = at
    try:
        effective = resolve(policy, state.settings)
    except PolicyNotReady as exc:
        return exc.reason, str(exc)
    problem = effective.run_id_problem(spec.job_id, spec.chunk_id)
    if problem:
        return "InvalidSpec", problem
    try:
        selected = selected_nodes(state.kube, node_selector(policy))
    except Exception as exc:  # fail closed: no targets, no run; Kopf asks again a tick later
        raise kopf.TemporaryError(str(nodes_unreadable(exc)), delay=load_timing().tick_seconds) from None
    if spec.node_name is not None:
        if spec.node_name not in selected:
            return "InvalidSpec", f"spec.nodeName {spec.node_name} is not among the nodes the policy selects"
        selected = [spec.node_name]
    if not selected:
        return "NoNodesSelected", "no node matches the policy's nodeSelector: there is nothing to run on"
    if len(selected) > MAX_NODES:
        return "TooManyNodes", f"{len(selected)} nodes selected; a run covers at most {MAX_NODES}: use spec.nodeName"
    now = now_utc()
    written = writer.write(
        CleanupRunStatus(
            phase=RunPhase.RUNNING,
            observed_generation=generation,
            start_time=now,
            target_nodes=selected,
            message=f"running on {len(selected)} node{'s' if len(selected) > 1 else ''} by their agents",
        ),
        resource_version=version,
    )
    if written is not Written.DONE:  # someone wrote first (or the write failed): read it again next tick
        raise kopf.TemporaryError(f"{WAITING}: the run changed while starting ({written.value})", delay=1)
    return None


def _not_reached(entry: NodeRunStatus | None, started: datetime, now: datetime) -> bool:
    """A target whose agent never claimed it, or stopped renewing its claim, for the whole wait."""
    if entry is not None and entry.phase in FINAL:
        return False
    last = (entry.renew_time if entry is not None else None) or started
    return now - last > timedelta(seconds=wait_seconds())


def _refuse(body: Any, writer: StatusWriter, generation: int, reason: str, message: str) -> None:
    kopf.event(body, type="Warning", reason=reason, message=message)
    now = now_utc()
    writer.write(
        CleanupRunStatus(
            phase=RunPhase.FAILED,
            message=message,
            completion_time=now,
            observed_generation=generation,
            conditions=[condition("Complete", False, reason, message, now)],
        )
    )


def combine(kind: RunType, done: list[NodeRunStatus], lost: list[str], now: datetime) -> RunStatus:
    """The run's result from its nodes' results: Succeeded only if every target node succeeded."""
    phases = {entry.phase for entry in done}
    if lost or RunPhase.FAILED in phases:
        phase = RunPhase.FAILED
    elif RunPhase.CANCELLED in phases:
        phase = RunPhase.CANCELLED
    else:
        phase = RunPhase.SUCCEEDED
    starts = [entry.start_time for entry in done if entry.start_time] or [now]
    ends = [entry.completion_time for entry in done if entry.completion_time] or [now]
    deleted = sum(entry.files_deleted for entry in done)
    failed = sorted(entry.node for entry in done if entry.phase is not RunPhase.SUCCEEDED)
    parts = [f"{len(done)} node{'s' if len(done) != 1 else ''} reported: deleted {deleted} files"]
    if failed:
        parts.append(f"not succeeded on {', '.join(failed[:10])}")
    if lost:
        parts.append(f"not reached (no agent claimed it within {wait_seconds():g} s): {', '.join(lost[:10])}")
    return RunStatus(
        phase=phase,
        message="; ".join(parts),
        reason=RunReason.NODES_NOT_REACHED if lost else _reason(done),
        trigger=kind,
        start_time=min(starts),
        end_time=max(ends),
        duration_seconds=(max(ends) - min(starts)).total_seconds(),
        dry_run=any(entry.dry_run for entry in done),
        files_scanned=sum(entry.files_scanned for entry in done),
        files_deleted=deleted,
        files_skipped=sum(entry.files_skipped for entry in done),
        bytes_freed=sum(entry.bytes_freed for entry in done),
        error_count=sum(entry.error_count for entry in done),
        would_delete_count=sum(entry.would_delete_count for entry in done),
        would_free_bytes=sum(entry.would_free_bytes for entry in done),
    )


def _reason(done: list[NodeRunStatus]) -> RunReason | None:
    return next((entry.reason for entry in done if entry.reason is not None), None)


def _finish(body: Any, ref: ObjectRef, state: OperatorState, done: list[NodeRunStatus], lost: list[str]) -> None:
    """Write the final phase (again a tick later if the write did not land), the event, the policy's lastCleanup."""
    now, spec = now_utc(), body.get("spec") or {}
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    result = combine(RunType(str(spec.get("type"))), done, lost, now)
    reason = result.reason.value if result.reason is not None else result.phase.value
    written = StatusWriter(state.kube, ref).write(
        CleanupRunStatus(
            result=result,
            completion_time=now,
            observed_generation=generation,
            conditions=[condition("Complete", result.phase is RunPhase.SUCCEEDED, reason, result.message, now)],
        )
    )
    if written is Written.FAILED:
        raise kopf.TemporaryError(f"{WAITING}: the final status did not land", delay=load_timing().tick_seconds)
    post_run_event(body, result)
    policy = ObjectRef(POLICIES, ref.namespace, str((spec.get("policyRef") or {}).get("name")))
    StatusWriter(state.kube, policy).write(PolicyStatus.last_cleanup(result))
