"""This replica's shards: which Leases it holds, until when it may trust them, and the loop that keeps them.

``AllShards`` is the default (no ``--shards``): every policy is this replica's, as before sharding.
``ShardKeeper`` runs one round every quarter of the Lease duration on a thread of its own (``start``):
list the Leases, ``shards.plan`` what to do, renew, release and acquire
with conditional writes, and keep this replica's member Lease fresh.

Fail closed. A shard counts as this replica's only until two thirds of the Lease duration after the
*sending* of its last successful write, by this replica's monotonic clock. Another replica takes a
lapsed Lease over only after it has seen the same record unchanged for a whole Lease duration on its
own clock, which starts after that write reached the API server. So a replica that cannot renew (an
API outage, a stalled process) stops working a shard a third of a duration before anyone else may
start: its cleanups stop at the next batch boundary (``lost`` is their stop reason), and its timers
skip the shard's policies. Nothing here ever stops a timer; an unreachable API only lets the deadlines
run out.

Hand-over without double work. A shard given up on purpose (surplus after a replica joined, shutdown)
is first marked releasing: no new work starts, running cleanups stop at their next batch boundary,
and the Lease is released only when nothing of the shard is in flight here. Its status writes have
landed by then, and the new holder reads each policy fresh from the API before its first tick there
(``needs_fresh``), so a slot the old holder ran is not run again from a stale cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tempsweep.controller.kube import Written
from tempsweep.controller.leases import (
    COUNT_LABEL,
    KIND_LABEL,
    LeaseRecord,
    LeaseStore,
    member_lease_name,
    shard_lease_name,
)
from tempsweep.controller.shards import Plan, Seen, plan, shard_of

log = logging.getLogger(__name__)

#: A member Lease not renewed for this many Lease durations belongs to a replica that is gone for good.
MEMBER_GARBAGE_DURATIONS = 5


class AllShards:
    """No sharding: this replica works every policy."""

    def owns(self, key: str) -> bool:
        return True

    def lost(self, key: str) -> str | None:
        return None

    def needs_fresh(self, key: str) -> bool:
        return False

    def mark_fresh(self, key: str) -> None:
        return None

    @contextmanager
    def working(self, key: str) -> Iterator[None]:
        yield

    def report(self) -> dict[str, Any]:
        return {}


class ShardKeeper(AllShards):
    """Holds up to a fair share of ``count`` shard Leases in ``namespace`` for replica ``me``."""

    def __init__(
        self, api: LeaseStore, me: str, count: int, lease_seconds: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.api, self.me, self.count, self.lease_seconds, self._clock = api, me, count, lease_seconds, clock
        self.period = lease_seconds / 4  # a renewal may come a third of a duration late before trust runs out
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._valid_until: dict[int, float] = {}  # shard -> monotonic deadline of trust
        self._releasing: set[int] = set()
        self._epoch: dict[int, int] = {}  # shard -> number of its latest acquisition here
        self._acquisitions = 0
        self._fresh: dict[str, int] = {}  # policy key -> the epoch it was read fresh in
        self._inflight: Counter[int] = Counter()
        self._seen: dict[str, tuple[str, float]] = {}  # Lease name -> (resourceVersion, first seen)
        self._blocked: str | None = None
        self._guard = threading.Lock()
        self.last_round: float = clock()
        self.rounds = 0

    # -- what the handlers ask (any thread, or the event loop: dictionary lookups under a lock) --

    def shard(self, key: str) -> int:
        return shard_of(key, self.count)

    def _mine(self, shard: int, now: float) -> bool:
        return self._valid_until.get(shard, 0.0) > now and shard not in self._releasing

    def owns(self, key: str) -> bool:
        with self._guard:
            return self._mine(self.shard(key), self._clock())

    def lost(self, key: str) -> str | None:
        """Why a cleanup of ``key`` must stop now (its shard is no longer this replica's), else None."""
        shard = self.shard(key)
        with self._guard:
            if self._mine(shard, self._clock()):
                return None
            if shard in self._releasing:
                return f"shard {shard} of {self.count} is being handed to another replica"
        return f"this replica could not confirm its Lease on shard {shard} of {self.count}"

    def needs_fresh(self, key: str) -> bool:
        shard = self.shard(key)
        with self._guard:
            return self._fresh.get(key) != self._epoch.get(shard)

    def mark_fresh(self, key: str) -> None:
        shard = self.shard(key)
        with self._guard:
            epoch = self._epoch.get(shard)
            if epoch is not None:
                self._fresh[key] = epoch

    @contextmanager
    def working(self, key: str) -> Iterator[None]:
        """Count work of ``key``'s shard in flight: the shard is not released before it ends."""
        shard = self.shard(key)
        with self._guard:
            self._inflight[shard] += 1
        try:
            yield
        finally:
            with self._guard:
                self._inflight[shard] -= 1

    def held(self) -> list[int]:
        with self._guard:
            now = self._clock()
            return sorted(shard for shard in self._valid_until if self._mine(shard, now))

    def report(self) -> dict[str, Any]:
        return {"shards": self.count, "held": self.held(), "identity": self.me, "blocked": self._blocked}

    # -- the loop --

    def start(self) -> None:
        """Run the rounds on a thread of their own: a busy event loop or a full worker pool (a burst of
        timers at a cron boundary) must not delay a renewal, or the replica would drop its shards."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._keep, name="shard-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.period + 40)  # a round in flight ends within its request timeouts

    def _keep(self) -> None:
        """One round every quarter of the Lease duration until stopped; never raises."""
        while not self._stopping.is_set():
            try:
                self.round()
            except Exception as exc:  # never let the loop die: deadlines run out, which fails closed
                log.warning("shard round failed: %s: %s", type(exc).__name__, exc)
            self._stopping.wait(self.period)

    def round(self) -> None:
        """List the Leases, plan, and write: renew what is kept, release, acquire, keep the member Lease."""
        sent = self._clock()
        try:
            records = self.api.list()
        except Exception as exc:
            log.warning("shard Leases could not be listed (held shards lapse unless renewed): %s", _describe(exc))
            return
        finally:
            self.last_round, self.rounds = self._clock(), self.rounds + 1
        shards, members, foreign, raw = self._observe(records, sent)
        step = plan(self.me, self.count, shards, members, foreign)
        self._note_blocked(step)
        with self._guard:
            self._releasing.update(step.release)
            releasing = sorted(self._releasing)
            idle = {shard for shard in releasing if self._inflight[shard] <= 0}
        for shard in step.renew:
            if shard not in releasing:
                self._write(shard, raw.get(shard), sent)
        for shard in releasing:
            if shard in idle:
                self._release(shard, raw.get(shard))
            elif raw.get(shard) is not None and raw[shard].holder == self.me:
                self._write(shard, raw[shard], sent, keep_releasing=True)  # drain first
        for shard in step.acquire:
            self._write(shard, raw.get(shard), sent)
        self._keep_member([record for record in records if record.kind == "member"], sent)

    def _observe(
        self, records: list[LeaseRecord], now: float
    ) -> tuple[dict[int, Seen], dict[str, Seen], list[Seen], dict[int, LeaseRecord]]:
        shards: dict[int, Seen] = {}
        members: dict[str, Seen] = {}
        foreign: list[Seen] = []
        raw: dict[int, LeaseRecord] = {}
        for record in records:
            version, first = self._seen.get(record.name, ("", now))
            if version != record.version:
                first = now
            self._seen[record.name] = (record.version, first)
            seen = Seen(record.holder, record.version, now - first, record.duration or self.lease_seconds)
            if record.kind == "member":
                if record.holder and record.count == self.count:  # replicas of another count hold nothing here
                    members[record.holder] = seen
            elif record.count == self.count and record.shard is not None:
                shards[record.shard], raw[record.shard] = seen, record
            else:
                foreign.append(seen)
        return shards, members, foreign, raw

    def _write(self, shard: int, previous: LeaseRecord | None, sent: float, *, keep_releasing: bool = False) -> None:
        name = shard_lease_name(self.count, shard)
        labels = {KIND_LABEL: "shard", COUNT_LABEL: str(self.count)}
        taking = previous is None or previous.holder != self.me
        outcome = self.api.hold(name, self.me, self.lease_seconds, previous=previous, labels=labels)
        with self._guard:
            if outcome is Written.DONE:
                if taking or shard not in self._epoch or self._valid_until.get(shard, 0.0) <= sent:
                    self._acquisitions += 1
                    self._epoch[shard] = self._acquisitions  # policies of the shard are read fresh once
                self._valid_until[shard] = sent + self.lease_seconds * 2 / 3
                if not keep_releasing:
                    self._releasing.discard(shard)
            elif outcome is Written.CONFLICT and not taking:
                self._valid_until.pop(shard, None)  # someone else wrote our Lease: it is not ours any more
        if outcome is Written.DONE and taking:
            holder = previous.holder if previous is not None else ""
            log.info("shard %d of %d acquired%s", shard, self.count, f" (taken over from {holder})" if holder else "")
        elif outcome is Written.REFUSED:
            log.warning("shard Lease %s refused: check the operator's RBAC for leases", name)

    def _release(self, shard: int, previous: LeaseRecord | None) -> None:
        if previous is not None and previous.holder == self.me:
            labels = {KIND_LABEL: "shard", COUNT_LABEL: str(self.count)}
            name = shard_lease_name(self.count, shard)
            outcome = self.api.hold(name, "", self.lease_seconds, previous=previous, labels=labels)
            if outcome is Written.FAILED:
                return  # try again next round; the deadline may run out meanwhile, which is as safe
            log.info("shard %d of %d released", shard, self.count)
        with self._guard:
            self._valid_until.pop(shard, None)
            self._releasing.discard(shard)

    def _keep_member(self, records: list[LeaseRecord], now: float) -> None:
        """Renew this replica's member Lease; delete those of replicas gone for good (conditionally, so a
        late renewal wins) and released ones."""
        name = member_lease_name(self.me)
        mine = next((record for record in records if record.name == name), None)
        labels = {KIND_LABEL: "member", COUNT_LABEL: str(self.count)}
        self.api.hold(name, self.me, self.lease_seconds, previous=mine, labels=labels)
        for record in records:
            unchanged = now - self._seen.get(record.name, (record.version, now))[1]
            limit = MEMBER_GARBAGE_DURATIONS * (record.duration or self.lease_seconds)
            if record.name != name and (not record.holder or unchanged > limit):
                self.api.delete(record)

    def _note_blocked(self, step: Plan) -> None:
        if step.blocked != self._blocked:
            if step.blocked:
                log.warning("holding no shards: %s (a rolling update that changes --shards?)", step.blocked)
            self._blocked = step.blocked

    # -- shutdown --

    def shutdown(self, drain_seconds: float) -> None:
        """Stop working every shard, wait up to ``drain_seconds`` for work in flight, release the idle ones."""
        with self._guard:
            self._releasing.update(self._valid_until)
        deadline = self._clock() + drain_seconds
        while self._clock() < deadline:
            with self._guard:
                if all(self._inflight[shard] <= 0 for shard in self._releasing):
                    break
            time.sleep(0.1)
        try:
            listed = self.api.list()
        except Exception as exc:
            log.warning("shard Leases not released at shutdown (they lapse): %s", _describe(exc))
            return
        records = {record.shard: record for record in listed if record.kind == "shard" and record.count == self.count}
        for shard in sorted(self._releasing):
            if self._inflight[shard] <= 0:
                self._release(shard, records.get(shard))
        member = next((record for record in listed if record.name == member_lease_name(self.me)), None)
        if member is not None:
            self.api.delete(member)  # this replica no longer counts towards the others' fair share


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return (
        f"{status} {getattr(exc, 'reason', '')}".strip() if status is not None else f"{type(exc).__name__}: {exc}"[:300]
    )
