"""A deleted policy's timer ends (issue 14): without a finalizer Kopf forgets the object but not its timer.

The timer's task used to tick (and return at once) for every deleted policy until the operator restarted.
Read from the operator's DEBUG log, where Kopf names every timer call; ordering only: after the deleted
policy's timer has ended, the remaining policy ticks again several times and the deleted one never does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.operator_helpers import policy
from support.operator_process import Kube, StartOperator, wait_for

pytestmark = pytest.mark.e2e


def test_a_deleted_policys_timer_stops_and_the_others_go_on(
    kube: Kube, start_operator: StartOperator, namespace: str, operator_root: Path
) -> None:
    operator = start_operator(namespace, TEMPSWEEP_LOG_LEVEL="DEBUG")
    for name in ("gone", "stays"):
        (operator_root / name).mkdir()
        kube.apply(policy(name, operator_root / name))

    def ticks(name: str, log: str) -> int:
        return log.count(f"[{namespace}/{name}] Timer 'policy_tick' succeeded")

    wait_for("both timers to tick", lambda: ticks("gone", operator.log()) and ticks("stays", operator.log()))
    kube("delete", "cleanuppolicy", "gone", "--wait=true", "--timeout=30s")
    ended = f"[{namespace}/gone] Timer 'policy_tick' is cancelled"
    wait_for("the deleted policy's timer to end", lambda: ended in operator.log(), timeout=60)

    after = operator.log().split(ended, 1)[1]
    wait_for(
        "the remaining policy to tick three more times",
        lambda: ticks("stays", operator.log().split(ended, 1)[1]) >= 3,
        timeout=60,
    )
    assert ticks("gone", operator.log().split(ended, 1)[1]) == 0, after[-2000:]
    assert operator.healthy()
