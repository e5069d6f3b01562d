"""Unfinished runs nobody here has queued: taken up when their claim is free (another replica died).

Kopf keeps a handler's progress in annotations on the object, and every replica reads the same ones: once
one replica's ``run_created`` returned (the run queued *there*), no other replica's handler runs again for
that run. If that replica then dies with the run waiting or executing, a restart of that replica resumes
it (``run_resumed``), but another replica taking its shards over never hears of the run: it stayed Running
with nobody working it. So each replica remembers the unfinished runs the watch has shown, and every
claim lease it admits those that are not in its own queue, whose claim is free (never claimed, or the
holder's lease ran out) and whose policy's shard it holds. Admission is idempotent (a queue knows its runs)
and execution exactly-once (the claim, taken with a resourceVersion precondition), so admitting a run that
Kopf's handler admits too is harmless.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tempsweep.controller.claims import Claim, claim_state
from tempsweep.controller.expiry import FINAL_PHASES

if TYPE_CHECKING:
    from tempsweep.controller.state import OperatorState

log = logging.getLogger(__name__)


class UnfinishedRuns:
    """The newest version of every unfinished run the watch stream has shown, by uid."""

    def __init__(self) -> None:
        self._runs: dict[str, Any] = {}
        self._guard = threading.Lock()
        #: Kopf's context as a watch handler sees it: a run taken up here posts its events from it (the
        #: sweeper task, started by a startup activity, lacks Kopf's event-posting context).
        self.context: contextvars.Context | None = None

    def observe(self, event_type: str | None, body: Any) -> None:
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        uid = str(meta.get("uid") or "")
        gone = event_type == "DELETED" or meta.get("deletionTimestamp") or status.get("phase") in FINAL_PHASES
        with self._guard:
            if gone:
                self._runs.pop(uid, None)
            else:
                self._runs[uid] = body

    def snapshot(self) -> list[Any]:
        with self._guard:
            return list(self._runs.values())


def unattended(runs: list[Any], state: OperatorState, now: datetime) -> list[Any]:
    """The runs this replica should take up now: not queued here, claim free, policy's shard held here.
    A node-scoped run already handed to its nodes (``targetNodes``) is the agents' and left alone."""
    chosen = []
    for body in runs:
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        if state.queues.holds(str(meta.get("uid") or "")) or "targetNodes" in status:
            continue
        if claim_state(status, state.identity, now)[0] is Claim.HELD:
            continue  # another live operator works it
        policy = ((body.get("spec") or {}).get("policyRef") or {}).get("name")
        if state.shards.owns(f"{meta.get('namespace')}/{policy}"):
            chosen.append(body)
    return chosen


async def take_up_forever(
    runs: UnfinishedRuns, state: OperatorState, admit: Callable[[Any], None], interval: float
) -> None:
    """Every ``interval`` seconds admit the unattended runs (on a thread: admission may read the API)."""
    while True:
        await asyncio.sleep(interval)
        if runs.context is None:
            continue  # no watch event yet, so no run either
        for body in unattended(runs.snapshot(), state, datetime.now(UTC)):
            meta = body.get("metadata") or {}
            try:
                await asyncio.get_running_loop().run_in_executor(None, runs.context.copy().run, admit, body)
            except Exception as exc:  # a full queue, a shard just lost, an outage: looked at again next time
                log.info("[%s/%s] unattended run not taken up yet: %s", meta.get("namespace"), meta.get("name"), exc)
