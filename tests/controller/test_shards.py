"""Shard assignment (``controller.shards``) and the keeper's Lease rounds (``controller.shard_keeper``).

The pure functions are checked with random inputs; the keeper is driven round by round on Leases held in
memory (``MemoryLeases``: conditional writes, as the API server does them) with a clock the test moves,
while replicas join, freeze (SIGKILL, a stalled process, a node cut off from the API server) and come back.
What must hold at every step: no shard is ever worked by two replicas at once, by their own reckoning
(``owns``), which is what decides whether a timer or a cleanup runs. What must hold once the replicas
have had time to settle: every shard is held, each live replica holds its fair share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempsweep.controller.kube import Written
from tempsweep.controller.leases import LeaseRecord, MemoryLeases, member_lease_name
from tempsweep.controller.shard_keeper import ShardKeeper
from tempsweep.controller.shards import Seen, plan, quota, shard_of

LEASE = 9  # seconds; a round every 3


def test_shard_of_is_pinned() -> None:
    """BLAKE2b, not hash(): the same shard in every process, every Python version, every replica; a
    change here would move every policy to another shard during a rolling update."""
    assert [shard_of(f"ns/policy-{i}", 7) for i in range(8)] == [6, 5, 1, 6, 4, 3, 1, 5]
    assert shard_of("ns/anything", 1) == 0
    with pytest.raises(ValueError):
        shard_of("ns/p", 0)


@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=50), st.integers(1, 64))
def test_shard_of_is_stable_and_bounded(keys: list[str], count: int) -> None:
    for key in keys:
        assert shard_of(key, count) == shard_of(key, count)
        assert 0 <= shard_of(key, count) < count


def test_shard_of_spreads_policies() -> None:
    counts = [0, 0, 0]
    for index in range(3000):
        counts[shard_of(f"team-{index % 17}/policy-{index}", 3)] += 1
    assert min(counts) > 800, counts  # each third within 20 % of 1000


@given(st.sets(st.text(alphabet="abcdefgh-", min_size=1, max_size=8), min_size=1, max_size=12), st.integers(1, 40))
def test_quotas_add_up_and_differ_by_at_most_one(members: set[str], count: int) -> None:
    quotas = [quota(member, members, count) for member in members]
    assert sum(quotas) == count
    assert set(quotas) <= {count // len(members), math.ceil(count / len(members))}


seen_strategy = st.builds(
    Seen,
    holder=st.sampled_from(["", "me", "a", "b"]),
    version=st.just("1"),
    unchanged_for=st.floats(0, 40),
    duration=st.just(float(LEASE)),
)


@given(
    st.integers(1, 12),
    st.dictionaries(st.integers(0, 11), seen_strategy),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), seen_strategy),
    st.lists(seen_strategy, max_size=2),
)
def test_plan_only_takes_free_or_lapsed_shards(
    count: int, shards: dict[int, Seen], members: dict[str, Seen], foreign: list[Seen]
) -> None:
    shards = {shard: seen for shard, seen in shards.items() if shard < count}
    step = plan("me", count, shards, members, foreign)
    held = {shard for shard, seen in shards.items() if seen.holder == "me"}
    assert set(step.renew) | set(step.release) == held  # what it holds, it either keeps or gives up
    assert not set(step.renew) & set(step.release)
    for shard in step.acquire:
        assert shard not in shards or (shards[shard].lapsed and shards[shard].holder != "me")
    if step.blocked:
        assert not step.acquire and not step.renew
    else:
        live = {"me"} | {s.holder for s in members.values() if not s.lapsed}
        live |= {s.holder for s in shards.values() if not s.lapsed}
        assert len(step.renew) + len(step.acquire) <= quota("me", live, count)


# -- the keeper, round by round, on Leases in memory --


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Reachable:
    """One replica's view of the shared Leases: its calls fail while it is cut off."""

    store: MemoryLeases
    cut_off: bool = False
    namespace: str = "memory"

    def list(self) -> list[LeaseRecord]:
        if self.cut_off:
            raise ConnectionError("the API server is unreachable")
        return self.store.list()

    def hold(
        self, name: str, holder: str, duration: int, *, previous: LeaseRecord | None, labels: dict[str, str]
    ) -> Written:
        if self.cut_off:
            return Written.FAILED
        return self.store.hold(name, holder, duration, previous=previous, labels=labels)

    def delete(self, record: LeaseRecord) -> Written:
        return Written.FAILED if self.cut_off else self.store.delete(record)


@dataclass
class Replicas:
    count: int
    store: MemoryLeases = field(default_factory=MemoryLeases)
    clock: Clock = field(default_factory=Clock)
    keepers: dict[str, ShardKeeper] = field(default_factory=dict)
    views: dict[str, Reachable] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)  # frozen ones stay in keepers: they still believe

    def start(self, name: str) -> None:
        self.views[name] = Reachable(self.store)
        self.keepers[name] = ShardKeeper(self.views[name], name, self.count, LEASE, clock=self.clock)
        self.running.add(name)

    def holders(self, shard: int) -> list[str]:
        """Replicas that would run work of ``shard`` now, by their own reckoning (frozen ones included)."""
        key = next(f"ns/p{i}" for i in range(10_000) if shard_of(f"ns/p{i}", self.count) == shard)
        return [name for name, keeper in self.keepers.items() if keeper.owns(key)]

    def check_exclusive(self) -> None:
        for shard in range(self.count):
            assert len(self.holders(shard)) <= 1, (shard, self.holders(shard), self.store.leases)

    def settle(self, periods: int) -> None:
        for _ in range(periods):
            for name in sorted(self.running):
                self.keepers[name].round()
                self.check_exclusive()
            self.clock.now += LEASE / 3


events = st.lists(
    st.tuples(st.sampled_from(["round", "tick", "freeze", "cut", "heal", "restart"]), st.integers(0, 3)),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 9), events)
def test_no_shard_is_worked_twice_and_all_settle(count: int, script: list[tuple[str, int]]) -> None:
    replicas = Replicas(count)
    for index in range(3):
        replicas.start(f"r{index}")
    for action, index in script:
        name = f"r{index % 3}"
        if action == "round" and name in replicas.running:
            replicas.keepers[name].round()
        elif action == "tick":
            replicas.clock.now += 1 + index  # 1..4 s
        elif action == "freeze":  # SIGKILL, or a process that stalls: it keeps its beliefs, does nothing
            replicas.running.discard(name)
        elif action == "cut":
            replicas.views[name].cut_off = True
        elif action == "heal":
            replicas.views[name].cut_off = False
        elif action == "restart" and name not in replicas.running:
            replicas.start(name)  # the same pod name (POD_ID): it adopts what it still holds
        replicas.check_exclusive()
    for view in replicas.views.values():
        view.cut_off = False
    if not replicas.running:
        replicas.start("r0")
    replicas.settle(periods=3 * 5 + 4)  # lapse, releases, acquisitions, and the members' view agreeing

    live = sorted(replicas.running)
    owners = {shard: replicas.holders(shard) for shard in range(count)}
    assert all(len(owners[shard]) == 1 and owners[shard][0] in live for shard in owners), owners
    for name in live:
        held = sum(1 for holders in owners.values() if holders == [name])
        assert held == quota(name, live, count), (name, held, owners)


def test_a_joining_replica_gets_its_share_back() -> None:
    replicas = Replicas(6)
    replicas.start("a")
    replicas.settle(periods=3)
    assert replicas.keepers["a"].held() == list(range(6))
    replicas.start("b")
    replicas.settle(periods=4)
    assert len(replicas.keepers["a"].held()) == 3 and len(replicas.keepers["b"].held()) == 3
    assert member_lease_name("b") in replicas.store.leases


def test_a_shard_in_use_is_released_only_when_its_work_ends() -> None:
    replicas = Replicas(2)
    replicas.start("a")
    replicas.settle(periods=3)
    key = next(f"ns/p{i}" for i in range(100) if shard_of(f"ns/p{i}", 2) == 1)
    with replicas.keepers["a"].working(key):
        replicas.start("b")
        replicas.settle(periods=4)
        assert replicas.keepers["a"].lost(key) == "shard 1 of 2 is being handed to another replica"
        assert replicas.store.leases["tempsweep-shard-2-1"].holder == "a"  # kept while the cleanup stops
        assert not replicas.keepers["b"].owns(key)
    replicas.settle(periods=3)
    assert replicas.keepers["b"].owns(key) and replicas.keepers["b"].needs_fresh(key)


def test_a_lease_of_another_shard_count_blocks_everything() -> None:
    replicas = Replicas(3)
    replicas.start("new")
    old = ShardKeeper(Reachable(replicas.store), "old", 2, LEASE, clock=replicas.clock)
    old.round()
    replicas.settle(periods=2)
    old.round()
    assert replicas.keepers["new"].held() == []
    assert "another shard count" in (replicas.keepers["new"].report()["blocked"] or "")
    assert old.held() == [0, 1]  # the new replica's presence does not shrink the old one's share
    old.shutdown(drain_seconds=0)  # the old replica leaves: a rolling update goes on
    replicas.settle(periods=2)
    assert replicas.keepers["new"].held() == [0, 1, 2]


def test_takeover_waits_until_the_frozen_holder_has_stopped_by_its_own_reckoning() -> None:
    """The tightest case: the other replica sees the holder's last renewal the moment it is written."""
    replicas = Replicas(1)
    replicas.start("a")
    replicas.keepers["a"].round()
    replicas.start("b")
    replicas.keepers["b"].round()  # same instant: b starts counting the Lease's quiet time right away
    replicas.running.discard("a")  # frozen: it renews no more, and believes what it last knew
    while not replicas.keepers["b"].held():
        replicas.clock.now += 0.25
        replicas.keepers["b"].round()
        replicas.check_exclusive()
    assert replicas.holders(0) == ["b"]


@given(st.text(min_size=1, max_size=80))
def test_member_lease_names_are_valid_object_names(identity: str) -> None:
    """A replica's identity may be anything (host, pid, random part): its Lease name must still be a valid
    DNS-1123 name, and two identities that clean up to the same text must not share a Lease."""
    import re

    name = member_lease_name(identity)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name
    if identity != identity.lower():
        assert member_lease_name(identity) != member_lease_name(identity.lower())
