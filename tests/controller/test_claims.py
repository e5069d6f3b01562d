"""Who may execute a run, from its status.claim: free, mine, or held by a live operator (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tempsweep.controller.claims import Claim, claim_state

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def claimed(holder: str, seconds_ago: float, lease: int = 30) -> dict[str, object]:
    renewed = (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")
    return {"claim": {"holder": holder, "renewTime": renewed, "leaseSeconds": lease}}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, (Claim.FREE, None)),
        ({"claim": {}}, (Claim.FREE, None)),
        (claimed("me", 5), (Claim.MINE, "me")),
        (claimed("me", 500), (Claim.MINE, "me")),  # a restart of the same pod resumes its own run
        (claimed("other", 5), (Claim.HELD, "other")),
        (claimed("other", 30), (Claim.HELD, "other")),  # exactly at the lease: still held
        (claimed("other", 31), (Claim.FREE, "other")),  # a dead operator's claim is taken over
        (claimed("other", 31, lease=60), (Claim.HELD, "other")),  # the holder's own lease counts
        ({"claim": {"holder": "other"}}, (Claim.FREE, "other")),  # no renew time: not a live claim
    ],
    ids=["none", "empty", "mine", "mine-old", "held", "at-lease", "expired", "longer-lease", "no-time"],
)
def test_claim_state(status: dict[str, object], expected: tuple[Claim, str | None]) -> None:
    assert claim_state(status, "me", NOW) == expected
