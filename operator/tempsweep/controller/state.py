"""The operator's state, in one object carried by Kopf's ``memo``; nothing module-level.

``OperatorState`` is the operator's own (settings, the API client, the per-storage locks, the
per-storage queues of CleanupRuns, timer freshness): ``run_operator`` puts it into the memo Kopf copies for every
object, so each handler reaches the same one. ``PolicyMemory`` is one policy's (its resolved spec,
when statistics were computed, the job source it reuses, the outage it announced): it lives in that
policy's own memo, which Kopf drops with the object, so a deleted policy leaves nothing to clear.

``StorageLocks`` serialises the cleanups of one storage: the queue's thread of that storage (CleanupRuns,
``run_queue``) and the policy timers' own passes, which never wait for it (they try again at the next
tick). Exactly-once execution across operators is the run's claim (``claims``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tempsweep.controller.claims import operator_identity
from tempsweep.controller.expiry import FinishedRuns
from tempsweep.controller.kube import Kube
from tempsweep.controller.probes import TimerFreshness
from tempsweep.controller.run_queue import RunQueues
from tempsweep.controller.shard_keeper import AllShards
from tempsweep.controller.timing import load_timing, prediction_settings
from tempsweep.engine.ports import JobSource
from tempsweep.engine.prediction import UsageWindow
from tempsweep.models import EffectivePolicy, OperatorSettings


class StorageLocks:
    """One lock per storage key: cleanups of the same storage are serialised, others run in parallel.

    Two kinds of takers: a storage's queue thread (CleanupRuns, ``take``: it waits) and the policy timers
    (``try_take``: a timer never waits, it tries again at its next tick). A queue that runs its runs back
    to back would leave a timer no gap, so a timer that finds the storage busy asks for the next turn: the
    queue thread lets it go first, waiting at most ``patience`` seconds (two ticks) for it to come back.
    So a due emergency check or scheduled pass waits for the run in progress, never for the whole queue.
    """

    def __init__(self, patience: float = 25.0) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._wanted: dict[str, float] = {}  # storage key -> until when a timer's turn is kept for it
        self._patience = patience
        self._guard = threading.Condition()

    def of(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def try_take(self, key: str) -> bool:
        """A timer: the lock if it is free now; else False, and the next turn is kept for the timer."""
        lock = self.of(key)
        taken = lock.acquire(blocking=False)
        with self._guard:
            if taken:
                self._wanted.pop(key, None)
                self._guard.notify_all()
            else:
                self._wanted.setdefault(key, time.monotonic() + self._patience)
        return taken

    def take(self, key: str) -> None:
        """A queued run: wait for a timer that asked for the next turn (at most ``patience``), then the lock."""
        lock = self.of(key)
        with self._guard:
            while (until := self._wanted.get(key)) is not None:
                left = until - time.monotonic()
                if left <= 0:
                    self._wanted.pop(key, None)  # the timer did not come back: its work was no longer due
                    break
                self._guard.wait(left)
        lock.acquire()

    def timer_waiting(self, key: str) -> bool:
        with self._guard:
            return self._wanted.get(key, 0.0) > time.monotonic()


class StopSignals:
    """Why a cleanup must stop, by the uid of the object whose change says so (read between batches).

    Kopf's event handlers fill it from the watch streams, with no finalizer involved: a CleanupRun deleted
    (its own uid), a policy deleted or suspended (the policy's uid; resuming the policy clears it). A
    running cleanup asks ``check`` with its run's and its policy's uids: a dictionary lookup, so it can
    be asked between every round of batches.
    """

    def __init__(self) -> None:
        self._reasons: dict[str, str] = {}
        self._deleted: set[str] = set()
        self._guard = threading.Lock()
        self._listeners: list[Callable[[str, str], object]] = []

    def listen(self, listener: Callable[[str, str], object]) -> None:
        """Call ``listener(uid, reason)`` on every stop (the run queues drop a stopped policy's waiting runs).
        It is called on the event loop: it must not block."""
        self._listeners.append(listener)

    def stop(self, uid: str, reason: str, *, deleted: bool = False) -> None:
        with self._guard:
            if deleted:
                self._deleted.add(uid)
                self._reasons[uid] = reason
            else:
                self._reasons.setdefault(uid, reason)
            reason = self._reasons[uid]
        for listener in self._listeners:
            listener(uid, reason)

    def deleted(self, uid: str) -> bool:
        """The object is gone for good (a timer Kopf left running for it has nothing to do)."""
        with self._guard:
            return uid in self._deleted

    def clear(self, uid: str) -> None:
        with self._guard:
            if uid not in self._deleted:
                self._reasons.pop(uid, None)

    def check(self, *uids: str) -> str | None:
        with self._guard:
            return next((self._reasons[uid] for uid in uids if uid in self._reasons), None)


class PolicyBodies:
    """The latest version of each policy the watch has shown, by ``namespace/name``.

    A CleanupRun's handler checks the run against its policy; reading the policy through the API each
    time made a burst of 300 runs 300 GETs of the same object, in Kopf's workers. The check reads it
    here (and asks the API server when it is missing, or before refusing a run on what it read here).
    """

    def __init__(self) -> None:
        self._bodies: dict[str, dict[str, Any]] = {}
        self._guard = threading.Lock()

    def observe(self, event_type: str | None, body: Any) -> None:
        meta = body.get("metadata") or {}
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
        with self._guard:
            if event_type == "DELETED":
                self._bodies.pop(key, None)
            else:
                self._bodies[key] = dict(body)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._guard:
            return self._bodies.get(f"{namespace}/{name}")


@dataclass
class OperatorState:
    """Everything the operator shares between objects."""

    settings: OperatorSettings
    kube: Kube = field(default_factory=Kube)
    locks: StorageLocks = field(default_factory=lambda: StorageLocks(2 * load_timing().tick_seconds + 5))
    policies: PolicyBodies = field(default_factory=PolicyBodies)  # the watch's latest policy objects
    queues: RunQueues = field(default_factory=lambda: RunQueues(load_timing().run_queue_limit))
    timers: TimerFreshness = field(default_factory=TimerFreshness)
    stops: StopSignals = field(default_factory=StopSignals)
    finished: FinishedRuns = field(default_factory=FinishedRuns)
    identity: str = field(default_factory=operator_identity)  # this instance's name in run claims
    background: list[Any] = field(default_factory=list)  # the operator's own asyncio tasks (the sweeper)
    shards: AllShards = field(default_factory=AllShards)  # which policies are this replica's (--shards)

    def __post_init__(self) -> None:
        self.stops.listen(self.queues.cancel_policy)  # a deleted or suspended policy's waiting runs leave


@dataclass
class ReusedJobSource:
    """A policy timer's job source, reused while the generation holds and the source keeps working."""

    generation: int
    opened: float  # time.monotonic()
    source: JobSource
    database_url: str | None = field(default=None, repr=False)  # the Secret's value it was opened with


@dataclass
class PolicyMemory:
    """One policy's memory between ticks; gone with the policy's memo."""

    resolved: tuple[int, EffectivePolicy] | None = None  # (generation, policy)
    stats_computed: datetime | None = None
    job_source_announced: str | None = None  # the JobSourceReachable status last posted as an event
    statuses_announced: frozenset[str] = frozenset()  # unrecognized job statuses of the last statistics
    job_source: ReusedJobSource | None = None
    usage: UsageWindow = field(default_factory=lambda: UsageWindow(prediction_settings()))  # 6 h of samples
    usage_of: str | None = None  # the storage and capacity those samples measured (a new one starts afresh)
    last_predictive: datetime | None = None  # the last Predictive cleanup (status may lag a tick behind)


def ensure_state(memo: Any) -> OperatorState:
    """The operator's state, created from the environment when Kopf was started without it (``kopf run``)."""
    if "state" not in memo:
        from tempsweep.models import load_settings

        memo["state"] = OperatorState(load_settings())
    return operator_state(memo)


def operator_state(memo: Any) -> OperatorState:
    """The operator's state from Kopf's memo (``run_operator`` or the startup handler put it there)."""
    state = memo["state"]
    assert isinstance(state, OperatorState)
    return state


def policy_memory(memo: Any) -> PolicyMemory:
    """This policy's own memory, created with its memo."""
    memory = memo.setdefault("policy", PolicyMemory())
    assert isinstance(memory, PolicyMemory)
    return memory
