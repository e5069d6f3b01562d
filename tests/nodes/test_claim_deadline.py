"""The agent's claim deadline (agent.deadline): a cut-off agent stops acting on its claim in time, for good.

A hand-driven clock stands for time.monotonic; the rules are checked on random renewal histories.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tempsweep.agent.deadline import ClaimDeadline

LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_without_a_confirmed_renewal_the_claim_is_given_up_at_two_thirds_of_the_lease() -> None:
    clock = Clock()
    deadline = ClaimDeadline(LEASE, clock)
    clock.t += 19.9
    assert deadline.problem() is None
    clock.t += 0.1
    assert "two thirds of the lease" in (deadline.problem() or "")


def test_a_renewal_confirmed_after_the_deadline_does_not_revive_the_claim() -> None:
    clock = Clock()
    deadline = ClaimDeadline(LEASE, clock)
    sent = clock.t + 15  # sent in time, confirmed only after the outage
    clock.t += 25
    assert deadline.problem() is not None
    deadline.renewed(sent)
    assert deadline.problem() is not None


def test_seeing_another_holder_gives_the_claim_up_whatever_the_time() -> None:
    clock = Clock()
    deadline = ClaimDeadline(LEASE, clock)
    deadline.lost("agent b took this node's part over")
    clock.t += 1
    deadline.renewed(clock.t)
    assert deadline.problem() == "agent b took this node's part over"


@given(st.lists(st.tuples(st.floats(min_value=0, max_value=40), st.floats(min_value=0, max_value=40)), max_size=20))
def test_held_only_within_two_thirds_of_a_lease_of_a_confirmed_send_and_never_again_once_given_up(
    steps: list[tuple[float, float]],
) -> None:
    """Each step: the agent sends a renewal, which the API server confirms ``delay`` seconds later.

    Another agent takes the part over a whole lease after the last renewal the server took, so an agent
    acting only within two thirds of a lease of a send it saw confirmed never acts beside a new holder."""
    clock = Clock()
    deadline = ClaimDeadline(LEASE, clock)
    latest_send = clock.t  # the claim itself
    given_up = False
    for gap, delay in steps:
        clock.t += gap
        sent = clock.t
        clock.t += delay
        deadline.renewed(sent)
        latest_send = max(latest_send, sent)
        held = deadline.problem() is None
        assert not (held and given_up), "a claim once given up was held again"
        assert not held or clock.t < latest_send + LEASE * 2 / 3
        given_up = given_up or not held
