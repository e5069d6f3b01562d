"""Whether this agent may still act on its claim of a run's node part: fail closed when it cannot tell.

A claim is another agent's to take once its renew time is a lease old. An agent cut off from the API
cannot renew, and cannot see that a second agent of the same node (a rolling update, a node name given
twice) has taken its part over; both write with the node's one field manager, so the old agent's late
writes would overwrite the new holder's entry. So, as the operator's shard Leases do, the claim counts as
held only until two thirds of the lease after the last renewal the API server confirmed (timed from when
that write was sent), and only while no other agent is seen holding it. Once it is not held it never
is again for this agent: the cleanup stops at the next batch and nothing more is written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

HELD_FRACTION = 2 / 3


class ClaimDeadline:
    """The time until which a claim may be acted on, moved on by each confirmed renewal."""

    def __init__(self, lease_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lease = lease_seconds
        self._clock = clock
        self._guard = threading.Lock()
        self._valid_until = clock() + lease_seconds * HELD_FRACTION
        self._lost: str | None = None

    def now(self) -> float:
        return self._clock()

    def renewed(self, sent: float) -> None:
        """The API server took a write of the claim sent at ``sent`` (this clock): held until 2/3 lease later.

        Too late to count when the claim has already been given up: a write confirmed after the deadline
        does not revive it (another agent may have taken the part over meanwhile)."""
        with self._guard:
            if self._lost is None and self._clock() < self._valid_until:
                self._valid_until = max(self._valid_until, sent + self._lease * HELD_FRACTION)

    def lost(self, why: str) -> None:
        """Another agent holds the claim (or it is gone): never held again."""
        with self._guard:
            if self._lost is None:
                self._lost = why

    def problem(self) -> str | None:
        """Why the claim may no longer be acted on; None while it is held."""
        with self._guard:
            if self._lost is None and self._clock() >= self._valid_until:
                self._lost = (
                    f"no renewal of the claim confirmed by the API server for {self._lease * HELD_FRACTION:.0f}s "
                    "(two thirds of the lease): left to the node's next claim"
                )
            return self._lost

    def seconds_left(self) -> float:
        with self._guard:
            return max(0.0, self._valid_until - self._clock())
