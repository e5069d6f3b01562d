"""Kopf handlers of CleanupPolicy: read the object, call one function, write its status once.

Registered on import (with the CleanupRun handlers of ``run_handlers``); ``main.run_operator``
imports both and starts Kopf with the operator's state in the memo.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from typing import Any

import kopf

from tempsweep.controller import policy_work
from tempsweep.controller.policy_status import now_utc, observe
from tempsweep.controller.kube import WORKER_THREADS
from tempsweep.controller.runtime import PolicyNotReady, resolve
from tempsweep.controller.schedule import due_work
from tempsweep.controller.state import OperatorState, PolicyMemory, operator_state, policy_memory
from tempsweep.controller.writer import POLICIES, ObjectRef, StatusWriter
from tempsweep.models import GROUP, VERSION, load_settings
from tempsweep.models.effective import Schedule

#: How often each policy's timer wakes to see what is due (the schedules themselves live in the spec).
TICK_SECONDS = float(os.environ.get("TEMPSWEEP_TICK_SECONDS", "10"))


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
    if "state" not in memo:  # started by `kopf run` rather than `tempsweep operator`
        memo["state"] = OperatorState(load_settings())


@kopf.on.resume(GROUP, VERSION, POLICIES)
@kopf.on.create(GROUP, VERSION, POLICIES)
@kopf.on.update(GROUP, VERSION, POLICIES, field="spec")
def policy_changed(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """Validate against the cluster and compute statistics at once."""
    state = operator_state(memo)
    status = policy_work.validate(body, state, policy_memory(memo), now_utc())
    StatusWriter(state.kube, ObjectRef.of(POLICIES, meta)).write(status)


@kopf.timer(GROUP, VERSION, POLICIES, interval=TICK_SECONDS, initial_delay=min(TICK_SECONDS, 5.0))
async def policy_tick(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **kwargs: Any) -> None:
    """Run whatever is due now: stats, the emergency check, the scheduled and orphan cleanups.

    Most ticks find nothing due. That is decided here, on the event loop, by ``due_work`` (pure and
    cheap); only due work goes to a worker thread, which gets the same answer to act on.
    """
    state, memory, ref, now = operator_state(memo), policy_memory(memo), ObjectRef.of(POLICIES, meta), now_utc()
    state.timers.record(ref.key, "tick", now)
    due = due_work(_resolved(body, state, memory), observe(body, memory), now)
    if not due.anything:
        state.timers.record(ref.key, "lastSuccess", now)
        return

    def work() -> None:
        with state.timers.busy(ref.key):
            StatusWriter(state.kube, ref).write(policy_work.tick(body, due, state, memory, now))
        state.timers.record(ref.key, "lastSuccess", now_utc())

    kopf_settings = kwargs.get("settings")
    executor = kopf_settings.execution.executor if kopf_settings is not None else None
    context = contextvars.copy_context()  # kopf.event() from the thread needs Kopf's context
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


@kopf.on.delete(GROUP, VERSION, POLICIES, optional=True)
def policy_deleted(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """The liveness probe forgets the policy; its own memory goes with its memo."""
    operator_state(memo).timers.forget(ObjectRef.of(POLICIES, meta).key)


@kopf.on.probe(id="policies")
def policies_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    """Each policy's last successful timer tick; fails when a timer has gone silent (kopf #642)."""
    return operator_state(memo).timers.report(stale_after_seconds=max(10 * TICK_SECONDS, 120.0))
