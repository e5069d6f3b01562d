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

from tempsweep.controller.kube import Kube
from tempsweep.controller.probes import TimerFreshness
from tempsweep.engine.ports import JobSource
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


@dataclass
class OperatorState:
    """Everything the operator shares between objects."""

    settings: OperatorSettings
    kube: Kube = field(default_factory=Kube)
    locks: StorageLocks = field(default_factory=StorageLocks)
    claims: RunClaims = field(default_factory=RunClaims)
    timers: TimerFreshness = field(default_factory=TimerFreshness)


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
