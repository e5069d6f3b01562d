"""Kopf handlers of CleanupPolicy: read the object, call one function, write its status once.

Registered on import (with the CleanupRun handlers of ``run_handlers``); ``main.run_operator``
imports both and starts Kopf with the operator's state in the memo.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import kopf

from tempsweep.controller import node_policies, policy_work
from tempsweep.controller.kube import WORKER_THREADS
from tempsweep.controller.policy_status import now_utc, observe
from tempsweep.controller.probes import TimerStale
from tempsweep.controller.recheck import still_due
from tempsweep.controller.runtime import PolicyNotReady, resolve
from tempsweep.controller.schedule import DueWork, due_work
from tempsweep.controller.shard_handlers import caught_up
from tempsweep.controller.state import OperatorState, PolicyMemory, ensure_state, operator_state, policy_memory
from tempsweep.controller.timing import load_timing
from tempsweep.controller.writer import POLICIES, ObjectRef, StatusWriter
from tempsweep.models import GROUP, VERSION
from tempsweep.models.effective import Schedule

log = logging.getLogger(__name__)

#: How often each policy's timer wakes to see what is due (the schedules themselves live in the spec).
TICK_SECONDS = load_timing().tick_seconds


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own events carry the numbers; Kopf's would be noise
    settings.execution.max_workers = WORKER_THREADS
    # A deleted object keeps our finalizer until its timers have exited. A timer that is mid-tick when the
    # deletion arrives (the TTL timer deletes its own run) is polled again only after this long: Kopf's
    # default of 60 s left expired runs and deleted policies hanging for a minute.
    settings.background.instant_exit_timeout = 1.0
    settings.background.cancellation_polling = 1.0
    ensure_state(memo)  # started by `kopf run` rather than `tempsweep operator`


@kopf.on.resume(GROUP, VERSION, POLICIES)
@kopf.on.create(GROUP, VERSION, POLICIES)
@kopf.on.update(GROUP, VERSION, POLICIES, field="spec")
def policy_changed(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """Validate against the cluster and compute statistics at once."""
    state = operator_state(memo)
    if not state.shards.owns(ObjectRef.of(POLICIES, meta).key):
        return  # another replica holds this policy's shard (--shards); its new holder validates it
    if node_policies.node_scoped(body):  # cleaned by the node agents: the operator validates and aggregates
        node_policies.on_change(body, memo, state, now_utc())
        return
    status = policy_work.validate(body, state, policy_memory(memo), now_utc())
    StatusWriter(state.kube, ObjectRef.of(POLICIES, meta)).write(status)


@kopf.timer(GROUP, VERSION, POLICIES, interval=TICK_SECONDS, initial_delay=min(TICK_SECONDS, 5.0))
async def policy_tick(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **kwargs: Any) -> None:
    """Run whatever is due now: stats, the emergency check, the scheduled and orphan cleanups.

    Most ticks find nothing due. That is decided here, on the event loop, by ``due_work`` (pure and
    cheap); only due work goes to a worker thread, which gets the same answer to act on.
    """
    state, memory, ref, now = operator_state(memo), policy_memory(memo), ObjectRef.of(POLICIES, meta), now_utc()
    if state.stops.deleted(ref.uid):
        # Kopf keeps a timer whose object left without a finalizer (see _no_finalizer) until the operator
        # stops: end its task here. Kopf takes a cancellation as "stop this timer for good" (it logs that).
        raise asyncio.CancelledError(f"the policy {ref.key} was deleted")
    state.timers.record(ref.key, "tick", now)
    if not state.shards.owns(ref.key):  # another replica holds this policy's shard (--shards)
        state.timers.record(ref.key, "elsewhere", now)
        return
    body = await caught_up(body, ref, state, memory)  # the object afresh after a shard takeover
    if body is None:
        return
    if node_policies.node_scoped(body):
        await _node_tick(body, memo, state, ref, kwargs.get("settings"))
        return
    due = due_work(_resolved(body, state, memory), observe(body, memory), now)
    if not due.anything:
        state.timers.record(ref.key, "lastSuccess", now)
        return

    def decide(current: Any) -> DueWork:
        return due_work(_resolved(current, state, memory), observe(current, memory), now)

    def work() -> None:
        with state.shards.working(ref.key), state.timers.busy(ref.key):
            if state.shards.lost(ref.key):
                return  # the shard was handed over meanwhile
            checked = still_due(body, due, ref, state, decide)  # a cleanup acts on a fresh read, not the cache
            if checked is not None:
                StatusWriter(state.kube, ref).write(policy_work.tick(*checked, state, memory, now))
        state.timers.record(ref.key, "lastSuccess", now_utc())

    try:
        await _in_thread(work, kwargs.get("settings"))
    except Exception as exc:  # never let Kopf see a failure: it would back off (60 s) or stop the timer (#642)
        log.warning("[%s] tick failed, tried again at the next tick: %s: %s", ref.key, type(exc).__name__, exc)
        state.timers.record(ref.key, "lastError", now_utc())


async def _node_tick(body: kopf.Body, memo: kopf.Memo, state: OperatorState, ref: ObjectRef, settings: Any) -> None:
    """A node-scoped policy's tick: aggregate the agents' entries (the operator cleans nothing of it)."""
    try:
        await _in_thread(lambda: node_policies.on_tick(body, memo, state, now_utc()), settings)
        state.timers.record(ref.key, "lastSuccess", now_utc())
    except Exception as exc:  # as policy_tick: never let Kopf see a failure
        log.warning("[%s] node aggregate failed, tried at the next tick: %s: %s", ref.key, type(exc).__name__, exc)
        state.timers.record(ref.key, "lastError", now_utc())


async def _in_thread(work: Callable[[], None], kopf_settings: Any) -> None:
    """Run ``work`` on Kopf's executor with Kopf's context (``kopf.event()`` from the thread needs it)."""
    executor = kopf_settings.execution.executor if kopf_settings is not None else None
    context = contextvars.copy_context()
    await asyncio.get_running_loop().run_in_executor(executor, context.run, work)


def _resolved(body: kopf.Body, state: OperatorState, memory: PolicyMemory) -> Schedule | None:
    """The resolved policy's schedule, parsed once per generation (the spec only changes with the generation)."""
    generation = int(body.get("metadata", {}).get("generation") or 0)
    if memory.resolved is None or memory.resolved[0] != generation:
        try:
            memory.resolved = (generation, resolve(dict(body), state.settings))
        except PolicyNotReady:
            return None
    return memory.resolved[1].schedule


@kopf.on.event(GROUP, VERSION, POLICIES)
async def policy_event(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A deleted or suspended policy stops its running cleanups at the next batch boundary.

    From the watch stream, on the event loop (a dictionary update): no finalizer and no worker thread is
    needed, so this works while every thread is busy and after the object is already gone. A deleted
    policy also leaves the liveness probe.
    """
    state, meta = operator_state(memo), body.get("metadata") or {}
    uid = str(meta.get("uid") or "")
    state.policies.observe(type, body)  # what a CleanupRun's handler checks the run against
    if type == "DELETED":
        state.stops.stop(uid, "the policy was deleted", deleted=True)
        state.timers.forget(ObjectRef.of(POLICIES, meta).key)
    elif meta.get("deletionTimestamp"):
        state.stops.stop(uid, "the policy was deleted")
    elif (body.get("spec") or {}).get("suspend") is True:
        state.stops.stop(uid, "the policy was suspended")
    else:
        state.stops.clear(uid)


def _no_finalizer(timer: Callable[..., Any]) -> None:
    """Register ``timer`` without Kopf's finalizer on the object.

    Kopf puts its finalizer on every object that has a timer, and only a running operator removes it:
    with the operator gone, deleting a policy or its namespace hung. Nothing here needs to see the
    deletion through a finalizer (``policy_event`` sees DELETED from the watch), so the timer's handler is
    re-registered with ``requires_finalizer=False``; Kopf then also removes the finalizer from objects
    that still carry it. Kopf has no public switch for this, hence the registry's handler list. Without
    the finalizer Kopf does not stop the timer of a deleted object: its next tick ends it (``stops``).
    """
    spawning = kopf.get_default_registry()._spawning
    spawning._handlers = [
        dataclasses.replace(handler, requires_finalizer=False) if handler.fn is timer else handler
        for handler in spawning._handlers
    ]


_no_finalizer(policy_tick)


@kopf.on.probe(id="policies", errors=kopf.ErrorsMode.PERMANENT)
async def policies_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    """Each policy's timer: when it last ticked, succeeded, failed; fails when a timer has gone silent.

    On the event loop, not in a worker thread: a probe must answer while every thread is busy (or stuck on
    an unreachable API server). A failed tick does not fail the probe -- the next tick tries again, which
    is recovery; only a timer that stopped ticking (Kopf gave up on it) is something a restart fixes.
    ``errors=PERMANENT``: Kopf retries a failing probe after a backoff, which held the HTTP request open.
    """
    try:
        return operator_state(memo).timers.report(stale_after_seconds=max(10 * TICK_SECONDS, 120.0))
    except TimerStale as exc:
        raise kopf.PermanentError(str(exc)) from None
