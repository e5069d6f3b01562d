"""Kopf's side of sharding: start and stop the ``ShardKeeper``, probe it, and catch a policy up on takeover.

Registered on import (``main.run_operator`` imports this module). Without ``--shards`` the state's
``shards`` is ``AllShards`` and everything here does nothing.

The handlers of policies and runs ask ``state.shards.owns(namespace/name)`` before they act: a policy
whose shard another replica holds is left to that replica (its timer ticks and returns; a CleanupRun of
it is looked at again later, see ``run_handlers``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import kopf

from tempsweep.controller import node_policies, policy_work
from tempsweep.controller.kube import NotFound
from tempsweep.controller.leases import LeaseApi
from tempsweep.controller.policy_status import now_utc
from tempsweep.controller.shard_keeper import ShardKeeper
from tempsweep.controller.state import OperatorState, PolicyMemory, ensure_state, operator_state
from tempsweep.controller.writer import ObjectRef, StatusWriter

log = logging.getLogger(__name__)

#: The namespace of the shard Leases: the operator's own (the Deployment sets it from the downward API).
NAMESPACE_VARIABLE = "POD_NAMESPACE"


def use_shards(state: OperatorState, namespaces: list[str], count: int, lease_seconds: int) -> str | None:
    """Give ``state`` a ShardKeeper; a problem (no namespace for the Leases) is returned as one line."""
    namespace = os.environ.get(NAMESPACE_VARIABLE) or (namespaces[0] if namespaces else "")
    if not namespace:
        return (
            f"--shards needs a namespace for its Leases: set {NAMESPACE_VARIABLE} (the Deployment does) or --namespace"
        )
    state.shards = ShardKeeper(LeaseApi(state.kube, namespace), state.identity, count, lease_seconds)
    return None


def keeper(state: OperatorState) -> ShardKeeper | None:
    return state.shards if isinstance(state.shards, ShardKeeper) else None


@kopf.on.startup()
async def start_shards(memo: kopf.Memo, **_: Any) -> None:
    shards = keeper(ensure_state(memo))
    if shards is not None:
        log.info(
            "sharding: %d shards, Leases of %d s in %s, identity %s",
            shards.count,
            shards.lease_seconds,
            shards.api.namespace,
            shards.me,
        )
        shards.start()


@kopf.on.cleanup()
async def stop_shards(memo: kopf.Memo, **_: Any) -> None:
    """Stop working every shard, let work in flight reach a batch boundary, release the Leases."""
    shards = keeper(operator_state(memo))
    if shards is not None:
        await asyncio.to_thread(shards.stop)
        await asyncio.to_thread(shards.shutdown, shards.period)


@kopf.on.probe(id="shards", errors=kopf.ErrorsMode.PERMANENT)
async def shards_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    """The shards this replica holds; fails when the Lease loop has not run for ten rounds (a restart
    fixes that; the loop itself never stops on errors, so this means the process is wedged)."""
    shards = keeper(operator_state(memo))
    if shards is None:
        return {}
    silent = time.monotonic() - shards.last_round
    if silent > max(10 * shards.period, 120.0):
        raise kopf.PermanentError(f"the shard Lease loop has not run for {silent:.0f} s")
    return shards.report()


async def caught_up(body: kopf.Body, ref: ObjectRef, state: OperatorState, memory: PolicyMemory) -> Any:
    """The body a policy's tick should act on: Kopf's, or after this replica acquired the policy's shard,
    the object read afresh (validated first when its last validation is of an older generation), so a
    slot the previous holder ran and recorded is not run again. None: skip this tick (the read failed
    and is tried again next tick, or the policy is gone)."""
    if not state.shards.needs_fresh(ref.key):
        return body
    try:
        return await asyncio.to_thread(_catch_up, ref, state, memory)
    except Exception as exc:
        log.warning("[%s] could not read the policy after taking its shard over: %s", ref.key, exc)
        state.timers.record(ref.key, "lastError", now_utc())
        return None


def _catch_up(ref: ObjectRef, state: OperatorState, memory: PolicyMemory) -> dict[str, Any] | None:
    try:
        fresh = state.kube.get_policy(ref.namespace, ref.name)
    except NotFound:
        return None
    meta = fresh.get("metadata") or {}
    if str(meta.get("uid") or "") != ref.uid:
        return None
    stale = (fresh.get("status") or {}).get("observedGeneration") != meta.get("generation")
    if stale and not node_policies.node_scoped(fresh):  # a node-scoped policy's tick aggregates it instead
        with state.shards.working(ref.key):
            StatusWriter(state.kube, ref).write(policy_work.validate(fresh, state, memory, now_utc()))
        fresh = state.kube.get_policy(ref.namespace, ref.name)
    state.shards.mark_fresh(ref.key)
    return fresh
