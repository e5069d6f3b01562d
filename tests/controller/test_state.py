"""The operator's state object: one lock per storage, per-object memory from Kopf's memo."""

from __future__ import annotations

import copy

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
