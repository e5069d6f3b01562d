"""The operator's state object: one lock per storage, per-object memory from Kopf's memo."""

from __future__ import annotations

import copy
import threading

import kopf

from tempsweep.controller.state import (
    OperatorState,
    PolicyMemory,
    StorageLocks,
    operator_state,
    policy_memory,
)
from tempsweep.models import load_settings


def test_cleanups_of_the_same_storage_share_one_lock() -> None:
    locks = StorageLocks()
    assert locks.of("volume:/v/a") is locks.of("volume:/v/a")
    assert locks.of("volume:/v/a") is not locks.of("volume:/v/b")


def test_each_object_gets_its_own_memory_and_the_shared_state() -> None:
    """Kopf copies the operator's memo for every object (copy.copy): the state is shared, memory is not."""
    base = kopf.Memo(state=OperatorState(load_settings({})))
    one, two = copy.copy(base), copy.copy(base)

    assert operator_state(one) is operator_state(two)
    assert isinstance(policy_memory(one), PolicyMemory)
    assert policy_memory(one) is policy_memory(one)
    assert policy_memory(one) is not policy_memory(two)
    assert "policy" not in base


def test_a_timer_that_found_the_storage_busy_gets_the_next_turn_before_the_queue() -> None:
    locks = StorageLocks(patience=60)
    key = "volume:/v/a"
    locks.take(key)  # a queued run is running
    assert not locks.try_take(key), "a timer never waits: busy now"
    assert locks.timer_waiting(key)
    order: list[str] = []
    next_run = threading.Thread(target=lambda: (locks.take(key), order.append("queued run")))
    next_run.start()
    locks.of(key).release()  # the run ends; the queue's next run must leave the turn to the timer

    assert locks.try_take(key), "the turn was kept for the timer"
    order.append("timer")
    locks.of(key).release()
    next_run.join(timeout=10)
    assert order == ["timer", "queued run"]
    assert not locks.timer_waiting(key)


def test_a_turn_the_timer_does_not_come_back_for_lapses() -> None:
    locks = StorageLocks(patience=0.05)
    key = "volume:/v/a"
    locks.take(key)
    assert not locks.try_take(key)
    locks.of(key).release()
    locks.take(key)  # returns once the kept turn has lapsed
    assert not locks.timer_waiting(key)
