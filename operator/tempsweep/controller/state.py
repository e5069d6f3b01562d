"""The operator's state, in one object carried by Kopf's ``memo``; nothing module-level.

``OperatorState`` is the operator's own (settings, the API client, the per-storage locks, the runs
being executed, timer freshness): ``run_operator`` puts it into the memo Kopf copies for every
object, so each handler reaches the same one. ``PolicyMemory`` is one policy's (its resolved spec,
when statistics were computed, the job source it reuses, the outage it announced): it lives in that
policy's own memo, which Kopf drops with the object, so a deleted policy leaves nothing to clear.

Issue 14 plugs in here: a per-volume queue replaces ``StorageLocks``, and ``RunClaims`` becomes the
exactly-once claim.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tempsweep.controller.claims import operator_identity
from tempsweep.controller.expiry import FinishedRuns
from tempsweep.controller.kube import Kube
from tempsweep.controller.probes import TimerFreshness
from tempsweep.controller.shard_keeper import AllShards
from tempsweep.controller.telemetry_hooks import OperatorTelemetry
from tempsweep.controller.timing import prediction_settings
from tempsweep.engine.ports import JobSource
from tempsweep.engine.prediction import UsageWindow
from tempsweep.models import EffectivePolicy, OperatorSettings


class StorageLocks:
    """One lock per storage key: cleanups of the same storage are serialised, others run in parallel."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def of(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


class RunClaims:
    """The CleanupRuns being executed in this process, so a resume racing a create runs it once."""

    def __init__(self) -> None:
        self._claimed: set[str] = set()
        self._guard = threading.Lock()

    def holds(self, uid: str) -> bool:
        with self._guard:
            return uid in self._claimed

    @contextmanager
    def claim(self, uid: str) -> Iterator[bool]:
        """Yields True when this caller owns the run until the block ends, False when another does."""
        with self._guard:
            owned = uid not in self._claimed
            self._claimed.add(uid)
        try:
            yield owned
        finally:
            if owned:
                with self._guard:
                    self._claimed.discard(uid)


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

    def stop(self, uid: str, reason: str, *, deleted: bool = False) -> None:
        with self._guard:
            if deleted:
                self._deleted.add(uid)
                self._reasons[uid] = reason
            else:
                self._reasons.setdefault(uid, reason)

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


@dataclass
class OperatorState:
    """Everything the operator shares between objects."""

    settings: OperatorSettings
    kube: Kube = field(default_factory=Kube)
    locks: StorageLocks = field(default_factory=StorageLocks)
    claims: RunClaims = field(default_factory=RunClaims)
    timers: TimerFreshness = field(default_factory=TimerFreshness)
    stops: StopSignals = field(default_factory=StopSignals)
    finished: FinishedRuns = field(default_factory=FinishedRuns)
    identity: str = field(default_factory=operator_identity)  # this instance's name in run claims
    background: list[Any] = field(default_factory=list)  # the operator's own asyncio tasks (the sweeper)
    # metrics and /metrics: none unless asked for (`tempsweep operator --metrics-port`; the node agent has none)
    telemetry: OperatorTelemetry = field(default_factory=lambda: OperatorTelemetry(port=0))
    shards: AllShards = field(default_factory=AllShards)  # which policies are this replica's (--shards)


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
        from tempsweep.telemetry.serve import DEFAULT_PORT

        memo["state"] = OperatorState(load_settings(), telemetry=OperatorTelemetry(DEFAULT_PORT))
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
