"""Which replica works which policies: shard assignment as pure functions of what the Leases say.

With ``--shards N`` the policies are split into N shards by a stable hash of ``namespace/name``
(``shard_of``: BLAKE2b, the same on every replica and every Python run, unlike ``hash()``). Each shard has
one ``coordination.k8s.io`` Lease; only the replica holding a shard's Lease runs that shard's timers and
CleanupRuns. This module decides, from one listing of the Leases, what a replica should do next
(``plan``); ``leases`` does the API calls and ``shard_keeper`` the bookkeeping. Nothing here does I/O.

Fair share without a coordinator: every replica sees the same live replicas (members) and sorts them
by name; the first ``N % L`` get ``ceil(N / L)`` shards, the others ``floor(N / L)`` (``quota``). Quotas
add up to N, so a replica over its quota releases the surplus and one under it takes free or lapsed
shards, and the assignment settles with every shard held once. Replicas know each other from their
member Leases, so a replica that holds nothing yet (it just joined) still counts and gets its share.

A Lease has *lapsed* when its holder is empty, or when this replica has seen the very same record
(resourceVersion) for longer than the Lease's duration by its own monotonic clock. Measuring on the
observer's clock, from when it first saw the record, makes takeover independent of clock skew between
nodes (client-go's leader election does the same).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


def shard_of(key: str, count: int) -> int:
    """The shard of ``key`` (``namespace/name``) among ``count``: stable across processes and versions."""
    if count < 1:
        raise ValueError("the shard count must be at least 1")
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def quota(me: str, members: Iterable[str], count: int) -> int:
    """How many of ``count`` shards ``me`` should hold while ``members`` (``me`` included) are live."""
    live = sorted(set(members) | {me})
    base, extra = divmod(count, len(live))
    return base + (1 if live.index(me) < extra else 0)


@dataclass(frozen=True)
class Seen:
    """One Lease as this replica saw it: its holder and how long the same record has been unchanged."""

    holder: str  # "" when released
    version: str  # resourceVersion
    unchanged_for: float  # seconds on this replica's clock since it first saw this resourceVersion
    duration: float  # the Lease's leaseDurationSeconds

    @property
    def lapsed(self) -> bool:
        return not self.holder or self.unchanged_for > self.duration


@dataclass(frozen=True)
class Plan:
    """What one replica does with the shard Leases after one listing."""

    renew: tuple[int, ...] = ()  # held and kept: renew them
    release: tuple[int, ...] = ()  # held beyond the quota: stop working them, then give them up
    acquire: tuple[int, ...] = ()  # free or lapsed: try to take them (one precondition write each)
    blocked: str | None = None  # why this replica takes nothing (a Lease of another shard count is live)


def live_members(me: str, members: Mapping[str, Seen], shards: Mapping[int, Seen]) -> set[str]:
    """Replicas that are alive: this one, live member Leases, and holders of live shard Leases."""
    live = {me}
    live |= {seen.holder for seen in members.values() if not seen.lapsed}
    live |= {seen.holder for seen in shards.values() if not seen.lapsed}
    return live


def plan(
    me: str,
    count: int,
    shards: Mapping[int, Seen],
    members: Mapping[str, Seen],
    foreign: Iterable[Seen] = (),
) -> Plan:
    """The next step for ``me`` given the shard Leases (by shard; a missing one is free), the member
    Leases (by holder) and the shard Leases of *other* shard counts (``foreign``).

    While a foreign Lease is live (a rolling update that changes ``--shards``), the same policy could
    belong to a shard of each count: this replica then holds nothing, and takes nothing until those
    Leases are released or lapse. Otherwise it keeps up to its quota, lowest shards first, releases the
    rest, and takes free or lapsed shards up to its quota, starting at a place that depends on its
    name so that replicas starting together rarely race for the same Lease.
    """
    held = sorted(shard for shard in range(count) if shard in shards and shards[shard].holder == me)
    blocker = next((seen for seen in foreign if not seen.lapsed and seen.holder != me), None)
    if blocker is not None:
        return Plan(release=tuple(held), blocked=f"a Lease of another shard count is held by {blocker.holder}")
    target = quota(me, live_members(me, members, shards), count)
    keep, surplus = held[:target], held[target:]
    wanted = max(0, target - len(keep))
    start = shard_of(me, count)
    order = [(start + step) % count for step in range(count)]
    free = [shard for shard in order if shard not in shards or (shards[shard].lapsed and shards[shard].holder != me)]
    return Plan(renew=tuple(keep), release=tuple(surplus), acquire=tuple(free[:wanted]))
