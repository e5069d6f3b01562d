"""Before a timer starts a cleanup, ask the API server whether it is still due: never act on a stale cache.

A policy's tick decides what is due from the body Kopf hands it, which is the last watch event. The
status write of the previous tick (``lastScheduledTime`` of the slot it just ran) reaches that cache
only when its watch event arrives; on a loaded machine that took longer than a tick, and the same slot
ran twice on the same replica (seen with 60 policies on three replicas at a cron boundary). After a
shard moves, the new holder's cache may likewise lag the old holder's last write. So when the tick has
a cleanup to do (an emergency check, a cron slot; rare next to statistics), the policy is read afresh
and the cleanup part is decided again from that; statistics keep the first decision. A failed read
fails the tick (tried again next tick): no cleanup on a guess.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tempsweep.controller.kube import NotFound
from tempsweep.controller.schedule import DueWork
from tempsweep.controller.state import OperatorState
from tempsweep.controller.writer import ObjectRef


def still_due(
    body: Any, due: DueWork, ref: ObjectRef, state: OperatorState, decide: Callable[[Any], DueWork]
) -> tuple[Any, DueWork] | None:
    """The body and work to act on: ``(body, due)`` when no cleanup is due, else the policy as the API
    server has it now and the cleanups still due by it. None: the policy is gone (or is another object)."""
    if not (due.emergency or due.scheduled or due.orphaned):
        return body, due
    try:
        current = state.kube.get_policy(ref.namespace, ref.name)
    except NotFound:
        return None
    if ref.uid and str((current.get("metadata") or {}).get("uid") or "") != ref.uid:
        return None
    again = decide(current)
    return current, dataclasses.replace(
        due, emergency=again.emergency, scheduled=again.scheduled, orphaned=again.orphaned
    )
