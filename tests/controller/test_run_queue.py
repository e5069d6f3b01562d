"""The per-storage run queue: order, one run at a time per storage, the bound, positions, cancellation.

The queue is plain threading; the work items here record what the queue asks of them, and a run's
``execute`` blocks on an event the test sets, so every assertion is about order, never about timing.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from support.probing import wait_for
from tempsweep.controller.run_queue import RunQueues

WAIT = 60.0


class Journal:
    """What every work item was asked, in order, across threads."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, ...]] = []
        self.guard = threading.Lock()

    def add(self, *line: str) -> None:
        with self.guard:
            self.lines.append(line)

    def of(self, kind: str) -> list[tuple[str, ...]]:
        with self.guard:
            return [line for line in self.lines if line[0] == kind]


class Work:
    """A run as the queue sees it; ``execute`` holds its storage until ``release`` is set."""

    def __init__(self, journal: Journal, uid: str, storage: str = "volume:/a", policy_uid: str = "p1") -> None:
        self.uid, self.storage, self.policy_uid = uid, storage, policy_uid
        self.journal = journal
        self.release = threading.Event()
        self.started = threading.Event()
        self.defer: list[float] = []  # delays execute returns, one per call, before it finally runs

    def observe(self, body: Any) -> None:
        self.journal.add("observe", self.uid, str(body))

    def execute(self) -> float | None:
        self.started.set()
        if self.defer:
            self.journal.add("aside", self.uid)
            return self.defer.pop(0)
        self.journal.add("start", self.uid)
        assert self.release.wait(WAIT), f"{self.uid} was never released"
        self.journal.add("end", self.uid)
        return None

    def waiting(self, position: int, total: int) -> bool:
        self.journal.add("waiting", self.uid, str(position), str(total))
        return True

    def cancelled(self, reason: str) -> None:
        self.journal.add("cancelled", self.uid, reason)


@pytest.fixture
def queues() -> Any:
    made = RunQueues(limit=5, refresh_seconds=3600, first_seconds=None)  # places written at once, else on request
    yield made
    made.close()


def test_runs_of_one_storage_run_one_at_a_time_in_order(queues: RunQueues) -> None:
    journal = Journal()
    works = [Work(journal, f"r{i}") for i in range(4)]
    for work in works:
        assert queues.submit(work).queued
    for work in works:
        wait_for(f"{work.uid} to start", work.started.is_set, timeout=WAIT)
        assert [line for line in journal.lines if line[0] in ("start", "end")][-1] == ("start", work.uid)
        work.release.set()
    wait_for("the queue to drain", lambda: not any(queues.holds(work.uid) for work in works), timeout=WAIT)
    assert [line[1] for line in journal.of("start")] == ["r0", "r1", "r2", "r3"]
    assert [line[1] for line in journal.of("end")] == ["r0", "r1", "r2", "r3"]


def test_a_busy_storage_never_holds_up_another(queues: RunQueues) -> None:
    journal = Journal()
    blocker = Work(journal, "long", "volume:/a")
    queues.submit(blocker)
    wait_for("the long run to start", blocker.started.is_set, timeout=WAIT)
    behind = [Work(journal, f"a{i}", "volume:/a") for i in range(3)]
    for work in behind:
        queues.submit(work)
    other = Work(journal, "b", "volume:/b")
    other.release.set()
    queues.submit(other)

    wait_for("the other storage's run to finish", lambda: ("end", "b") in journal.lines, timeout=WAIT)
    assert [line[1] for line in journal.of("start")] == ["long", "b"], "b ran while a's backlog waited"
    blocker.release.set()
    for work in behind:
        work.release.set()
    wait_for("the backlog to drain", lambda: len(journal.of("end")) == 5, timeout=WAIT)


def test_the_first_run_of_an_idle_storage_is_not_told_to_wait_and_the_others_are_told_their_place(
    queues: RunQueues,
) -> None:
    journal = Journal()
    first = Work(journal, "r0")
    assert queues.submit(first).started
    wait_for("r0 to start", first.started.is_set, timeout=WAIT)
    second, third = Work(journal, "r1"), Work(journal, "r2")
    assert queues.submit(second).position == 1
    assert queues.submit(third).position == 2
    assert journal.of("waiting") == [("waiting", "r1", "1", "1"), ("waiting", "r2", "2", "2")]
    for work in (first, second, third):
        work.release.set()


def test_a_full_queue_refuses_and_a_known_run_is_not_queued_twice(queues: RunQueues) -> None:
    journal = Journal()
    running = Work(journal, "running")
    queues.submit(running)
    wait_for("the first run to start", running.started.is_set, timeout=WAIT)
    waiting = [Work(journal, f"w{i}") for i in range(queues.limit)]
    for work in waiting:
        assert queues.submit(work).queued

    refused = queues.submit(Work(journal, "one-too-many"))
    again = queues.submit(Work(journal, "w0"))  # the resume of a run that is already waiting
    running_again = queues.submit(Work(journal, "running"))

    assert refused.full and refused.total == queues.limit and not queues.holds("one-too-many")
    assert again.known and not again.full and running_again.known
    assert queues.waiting_count("volume:/a") == queues.limit
    for work in [running, *waiting]:
        work.release.set()
    wait_for("the queue to drain", lambda: len(journal.of("end")) == 1 + queues.limit, timeout=WAIT)
    assert [line[1] for line in journal.of("start")].count("w0") == 1


def test_positions_are_rewritten_only_when_they_have_halved(queues: RunQueues) -> None:
    journal = Journal()
    queues.limit = 100
    head = Work(journal, "head")
    queues.submit(head)
    wait_for("the head to start", head.started.is_set, timeout=WAIT)
    works = [Work(journal, f"r{i:02d}") for i in range(16)]
    for work in works:
        queues.submit(work)
    written_at_join = len(journal.of("waiting"))
    assert written_at_join == 16

    assert queues.refresh_positions() == 0, "nothing moved, nothing to write"
    for done in [head, *works[:4]]:  # five runs leave and r04 starts: r05..r15 move up by five places
        done.release.set()
    wait_for("five runs to finish", lambda: len(journal.of("end")) == 5, timeout=WAIT)
    wait_for("r04 to start", works[4].started.is_set, timeout=WAIT)

    # r05 (6 -> 1) ... r09 (10 -> 5) have at least halved; r10 (11 -> 6) ... r15 (16 -> 11) have not
    assert queues.refresh_positions() == 5
    rewritten = {line[1]: int(line[2]) for line in journal.of("waiting")[written_at_join:]}
    assert rewritten == {"r05": 1, "r06": 2, "r07": 3, "r08": 4, "r09": 5}
    assert queues.position("r15") == (11, 11)
    assert queues.refresh_positions() == 0
    for work in works[4:]:
        work.release.set()


def test_cancelled_runs_leave_the_queue_and_are_recorded_but_a_running_one_is_left_to_its_stop_check(
    queues: RunQueues,
) -> None:
    journal = Journal()
    running = Work(journal, "running", policy_uid="p1")
    queues.submit(running)
    wait_for("the run to start", running.started.is_set, timeout=WAIT)
    mine = [Work(journal, f"mine{i}", policy_uid="p1") for i in range(2)]
    theirs = Work(journal, "theirs", policy_uid="p2")
    deleted = Work(journal, "deleted", policy_uid="p2")
    for work in [*mine, theirs, deleted]:
        queues.submit(work)

    assert queues.cancel("deleted", "the CleanupRun was deleted", {"last": "version"})
    assert queues.cancel_policy("p1", "the policy was suspended") == 2
    assert not queues.cancel("running", "the CleanupRun was deleted") and queues.executing("running")

    wait_for("three cancellations recorded", lambda: len(journal.of("cancelled")) == 3, timeout=WAIT)
    assert ("observe", "deleted", "{'last': 'version'}") in journal.lines
    assert sorted(line[1:] for line in journal.of("cancelled")) == [
        ("deleted", "the CleanupRun was deleted"),
        ("mine0", "the policy was suspended"),
        ("mine1", "the policy was suspended"),
    ]
    assert queues.position("theirs") == (1, 1)
    running.release.set()
    theirs.release.set()
    wait_for("the rest to run", lambda: ("end", "theirs") in journal.lines, timeout=WAIT)
    assert {line[1] for line in journal.of("start")} == {"running", "theirs"}


def test_a_run_set_aside_joins_the_back_again_and_runs_once(queues: RunQueues) -> None:
    journal = Journal()
    held = Work(journal, "held")
    held.defer = [0.05]  # another operator holds it; its claim expires shortly
    held.release.set()
    other = Work(journal, "other")
    other.release.set()
    queues.submit(held)
    queues.submit(other)

    wait_for("both to run", lambda: len(journal.of("end")) == 2, timeout=WAIT)
    assert [line[:2] for line in journal.lines if line[0] in ("aside", "start")] == [
        ("aside", "held"),
        ("start", "other"),
        ("start", "held"),
    ]
    assert not queues.holds("held")


def test_a_run_that_fails_unexpectedly_does_not_stop_its_storage(queues: RunQueues) -> None:
    journal = Journal()

    class Broken(Work):
        def execute(self) -> float | None:
            raise RuntimeError("boom")

    queues.submit(Broken(journal, "broken"))
    after = Work(journal, "after")
    after.release.set()
    queues.submit(after)
    wait_for("the next run to run", lambda: ("end", "after") in journal.lines, timeout=WAIT)
    assert queues.holds("broken"), "set aside to be tried again, not forgotten"
    assert queues.cancel("broken", "the CleanupRun was deleted") is False
    assert not queues.holds("broken")


def test_a_run_set_aside_comes_back_even_when_the_queue_has_filled_meanwhile(queues: RunQueues) -> None:
    journal = Journal()
    held = Work(journal, "held")
    held.defer = [0.5]
    held.release.set()
    queues.submit(held)
    wait_for("the run to be set aside", lambda: ("aside", "held") in journal.lines, timeout=WAIT)
    blocker = Work(journal, "blocker")
    queues.submit(blocker)
    wait_for("the blocker to start", blocker.started.is_set, timeout=WAIT)
    waiting = [Work(journal, f"w{i}") for i in range(queues.limit)]
    for work in waiting:
        assert queues.submit(work).queued
    assert queues.submit(Work(journal, "refused")).full

    wait_for("the set-aside run to be queued again", lambda: queues.position("held") is not None, timeout=WAIT)
    assert queues.position("held") == (queues.limit + 1, queues.limit + 1)
    for work in [blocker, *waiting]:
        work.release.set()
    wait_for("everything to run", lambda: ("end", "held") in journal.lines, timeout=WAIT)


def test_in_the_operator_the_first_places_are_written_by_the_refresher_not_the_handler() -> None:
    queues = RunQueues(limit=10, refresh_seconds=3600)  # the first-position delay as in the operator
    journal = Journal()
    head = Work(journal, "head")
    try:
        queues.submit(head)
        wait_for("the head to start", head.started.is_set, timeout=WAIT)
        behind = [Work(journal, f"r{i}") for i in range(3)]
        for work in behind:
            queues.submit(work)
        # submit made no write of its own; the refresher writes all three places shortly after
        wait_for("the first places", lambda: len(journal.of("waiting")) == 3, timeout=WAIT)
        expected = [("waiting", "r0", "1", "3"), ("waiting", "r1", "2", "3"), ("waiting", "r2", "3", "3")]
        assert journal.of("waiting") == expected
        for work in [head, *behind]:
            work.release.set()
        wait_for("the queue to drain", lambda: len(journal.of("end")) == 4, timeout=WAIT)
    finally:
        queues.close()


def test_the_next_run_starts_while_the_last_ones_writes_finish_and_those_stay_in_order(queues: RunQueues) -> None:
    journal = Journal()
    writes_may_land = threading.Event()

    class Finishing(Work):
        def execute(self) -> Any:
            journal.add("start", self.uid)
            journal.add("end", self.uid)

            def finish() -> None:
                assert writes_may_land.wait(WAIT)
                journal.add("finished", self.uid)

            return finish

    first, second = Finishing(journal, "first"), Finishing(journal, "second")
    third = Work(journal, "third")
    third.release.set()
    for work in (first, second, third):
        queues.submit(work)

    wait_for("the third run to end", lambda: ("end", "third") in journal.lines, timeout=WAIT)
    assert not journal.of("finished"), "the storage did not wait for the earlier runs' last writes"
    assert queues.holds("first") and queues.holds("second") and not queues.holds("third")
    assert queues.submit(Work(journal, "first")).known, "a run is not queued again while its writes are pending"
    writes_may_land.set()
    wait_for("the last writes", lambda: len(journal.of("finished")) == 2, timeout=WAIT)
    assert [line[1] for line in journal.of("finished")] == ["first", "second"]
    wait_for("both to be forgotten", lambda: not queues.holds("first") and not queues.holds("second"), timeout=WAIT)
