"""Kopf handlers of CleanupRun: validate and queue each run, stop it when asked, expire it when finished.

The handlers never wait for a storage: a run is queued on its storage (``run_queue``) and executed there,
exactly once, by ``run_execution``; Kopf's workers are free as soon as it is queued. Finished runs expire
from one sweeper (``expiry``); no handler here makes Kopf put a finalizer on a run.

Registered on import; ``main.run_operator`` imports this module with ``policies``.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import kopf

from tempsweep.controller.claims import LEASE_SECONDS, Claim, claim_state
from tempsweep.controller.expiry import FINAL_PHASES, sweep_forever
from tempsweep.controller.kube import NotFound
from tempsweep.controller.node_policies import node_scoped
from tempsweep.controller.node_runs import coordinate
from tempsweep.controller.policy_status import now_utc
from tempsweep.controller.run_execution import QueuedRun, RunRefused, check_run
from tempsweep.controller.run_status import RunReporter, queue_full, storage_label
from tempsweep.controller.state import OperatorState, ensure_state, operator_state
from tempsweep.controller.timing import load_timing
from tempsweep.controller.unfinished_runs import take_up_forever
from tempsweep.controller.writer import RUNS, ObjectRef, StatusWriter
from tempsweep.models import GROUP, VERSION

#: How often the sweeper deletes finished runs whose ttlSecondsAfterFinished has passed.
TTL_CHECK_SECONDS = load_timing().ttl_check_seconds
#: A run that found its storage's queue full is tried again (by Kopf) after this long.
QUEUE_FULL_RETRY_SECONDS = 30.0


@kopf.on.create(GROUP, VERSION, RUNS)
def run_created(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """Queue a new CleanupRun on its storage; it is executed exactly once, off Kopf's workers."""
    admit_run(body, ObjectRef.of(RUNS, meta), operator_state(memo))


@kopf.on.resume(GROUP, VERSION, RUNS)
def run_resumed(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """After a restart: queue again the runs that were Pending or Running (re-running deletes nothing extra)."""
    admit_run(body, ObjectRef.of(RUNS, meta), operator_state(memo))


def admit_run(body: kopf.Body, ref: ObjectRef, state: OperatorState) -> None:
    """Validate the run and queue it; returns at once, never waiting for the storage.

    A bad run is refused here (Failed, with an event); a run whose storage's queue is full says so in its
    status and is handed back to Kopf, which calls this again after ``QUEUE_FULL_RETRY_SECONDS``.
    """
    status = body.get("status") or {}
    if status.get("phase") in FINAL_PHASES or state.queues.holds(ref.uid):
        return
    policy_name = ((body.get("spec") or {}).get("policyRef") or {}).get("name")
    if not state.shards.owns(f"{ref.namespace}/{policy_name}"):  # --shards: the policy's holder runs it
        raise kopf.TemporaryError(
            "the policy's shard is held by another replica; looking again later", delay=LEASE_SECONDS
        )
    if _on_nodes(body, ref, state, str(policy_name)):  # a node-scoped policy's run: its nodes' agents execute it
        return
    try:
        storage, policy_uid = check_run(body, ref, state)
    except RunRefused as refused:
        if claim_state(status, state.identity, now_utc())[0] is Claim.HELD:
            raise kopf.TemporaryError(f"{refused}; another operator holds the run", delay=LEASE_SECONDS) from None
        kopf.event(body, type="Warning", reason=refused.reason, message=str(refused))
        generation = int(body.get("metadata", {}).get("generation") or 0)
        RunReporter(StatusWriter(state.kube, ref), generation).refused(refused.reason, str(refused))
        return
    admission = state.queues.submit(QueuedRun(body, ref, state, storage, policy_uid))
    if admission.full:
        StatusWriter(state.kube, ref).write(queue_full(storage, admission.total, QUEUE_FULL_RETRY_SECONDS))
        raise kopf.TemporaryError(
            f"the queue of {storage_label(storage)} is full ({admission.total} runs waiting)",
            delay=QUEUE_FULL_RETRY_SECONDS,
        )


def _on_nodes(body: kopf.Body, ref: ObjectRef, state: OperatorState, policy_name: str) -> bool:
    """A node-scoped policy's run is coordinated by ``node_runs`` (True), not queued here. Asked of the API
    server (a fresh read of the run) unless the watched policy shows a shared volume and the run names no node.
    """
    seen = state.policies.get(ref.namespace, policy_name)
    if seen is not None and not node_scoped(seen) and not (body.get("spec") or {}).get("nodeName"):
        return False
    try:
        current = state.kube.get_run(ref.namespace, ref.name)
    except NotFound:
        return True  # gone: nothing to queue
    if (current.get("metadata") or {}).get("uid") != ref.uid:
        return True
    return coordinate(body, current, ref, state)


@kopf.on.event(GROUP, VERSION, RUNS)
async def run_event(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """From the watch stream, on the event loop (no finalizer, no worker thread): a deleted run leaves its
    queue (its cancellation recorded) or, when it is executing, stops at the next batch boundary; a queued
    run learns its newest version; a finished one is due to expire."""
    state, uid = operator_state(memo), str(body.get("metadata", {}).get("uid") or "")
    state.finished.observe(type, body)
    state.unfinished.observe(type, body)
    if state.unfinished.context is None:
        state.unfinished.context = contextvars.copy_context()
    if type == "DELETED" or body.get("metadata", {}).get("deletionTimestamp"):
        if not state.queues.cancel(uid, "the CleanupRun was deleted", body) and state.queues.executing(uid):
            state.stops.stop(uid, "the CleanupRun was deleted")
    else:
        state.queues.observe(uid, body)


@kopf.on.startup()
async def start_sweeper(memo: kopf.Memo, **_: Any) -> None:
    """One task for the whole operator expires finished runs (see ``expiry``)."""
    state = ensure_state(memo)
    state.background.append(asyncio.create_task(sweep_forever(state.finished, state.kube, TTL_CHECK_SECONDS)))

    def admit(body: Any) -> None:
        admit_run(body, ObjectRef.of(RUNS, body.get("metadata") or {}), state)

    state.background.append(asyncio.create_task(take_up_forever(state.unfinished, state, admit, LEASE_SECONDS)))



@kopf.on.cleanup()
async def stop_sweeper(memo: kopf.Memo, **_: Any) -> None:
    state = operator_state(memo)
    state.queues.close()
    for task in state.background:
        task.cancel()
    await asyncio.gather(*state.background, return_exceptions=True)
    state.background.clear()
