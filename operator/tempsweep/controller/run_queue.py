"""A bounded queue per storage for CleanupRuns, so that a burst on one volume never holds Kopf's workers.

Before, a CleanupRun's handler waited for its volume's lock inside one of Kopf's 16 worker threads: 300
runs on one volume held all of them, and a run on another volume, a new policy's validation and the
timers waited behind the burst. Now the handler only validates and ``submit``s; one thread per storage
(started when the storage has work, gone when its queue is empty) runs that storage's runs one at a
time, in the order they came. Other storages have threads of their own, so nothing waits for another
storage's backlog, and Kopf's workers are free at once.

**Positions.** A waiting run's status shows its place (``queuePosition``, 1 = next to run). Rewriting
every waiting run's status each time one leaves would be N PATCHes per dequeue (45 000 for a burst of
300). Instead a run's place is written soon after it joins the queue (within ``FIRST_POSITION_SECONDS``,
by the refresher thread, so a burst's handlers make no write and the first writes come in one go), and
after that by the same refresher every ``POSITION_REFRESH_SECONDS``, only for runs whose place has at
least halved since it was last written: at most about log2(N) + 1 writes per run over its whole wait,
whatever the queue's length or speed. Places only move forward, so a shown position is an upper bound.

**Bound.** At most ``limit`` runs wait per storage. A run that finds its storage's queue full is not
queued (``Admission.full``): its handler says so in status and Kopf tries it again later. Nothing is
dropped silently, and nothing runs twice: the queue also knows the runs it is executing or has set aside,
and the run's claim (``claims``) guards each execution across operators.

**Cancellation.** ``cancel`` (a run deleted) and ``cancel_policy`` (its policy deleted or suspended) take
waiting runs out of the queue; their cancellation is recorded by one thread of the queue
(``QueuedWork.cancelled``), never on the event loop that noticed it. A run already executing is stopped by
``StopSignals`` at its next batch boundary, as before.

**Set aside.** ``QueuedWork.execute`` returns a delay when the run cannot be executed now because another
operator holds its claim: the run waits that long aside (still known here, so it is not queued twice) and
joins the back of its queue again, where it finds the run finished or the claim expired.

Pure threading: no Kopf and no API calls here; ``run_execution`` supplies the work.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: How often the refresher looks for waiting runs whose place has halved since it was last written.
POSITION_REFRESH_SECONDS = 5.0
#: A run that joins a queue behind others gets its first place written by the refresher this soon after
#: (not by the handler that queued it: Kopf's workers are for handlers, and a burst's first writes are
#: batched here instead).
FIRST_POSITION_SECONDS = 0.5


class QueuedWork(Protocol):
    """One CleanupRun as the queue sees it."""

    @property
    def uid(self) -> str: ...

    @property
    def storage(self) -> str: ...

    @property
    def policy_uid(self) -> str: ...

    def observe(self, body: Any) -> None:
        """A newer version of the run from the watch stream."""
        ...

    def execute(self) -> float | Callable[[], None] | None:
        """Run it now (in the storage's thread). A callable: what is left to write once the storage is done
        with it (run by the storage's finisher, in order, while the next run starts); a delay in seconds
        when it must be tried again later; None when it is done."""
        ...

    def waiting(self, position: int, total: int) -> bool:
        """Say in status that it waits at ``position`` of ``total``; False when the write did not land."""
        ...

    def cancelled(self, reason: str) -> None:
        """It left the queue without running: record why (status, event, the policy's lastCleanup*)."""
        ...


@dataclass(eq=False)
class _Entry:
    work: QueuedWork
    reported: int | None = None  # the position last written to status
    left: bool = False  # taken out of the queue (to run, or cancelled): no more position writes
    writing: threading.Lock = field(default_factory=threading.Lock)  # a position write in flight


@dataclass(eq=False)
class _Storage:
    waiting: deque[_Entry] = field(default_factory=deque)
    current: _Entry | None = None
    thread: threading.Thread | None = None
    finishing: deque[tuple[_Entry, Callable[[], None]]] = field(default_factory=deque)
    finisher: threading.Thread | None = None


@dataclass(frozen=True)
class Admission:
    """What ``submit`` did: queued at ``position`` of ``total`` (``started`` when it runs at once), already
    known (queued, running or set aside), or refused because ``total`` runs already wait."""

    queued: bool
    position: int = 0
    total: int = 0
    started: bool = False
    known: bool = False

    @property
    def full(self) -> bool:
        return not self.queued and not self.known


class RunQueues:
    """Every storage's queue of CleanupRuns, with one executing thread per storage that has work."""

    def __init__(
        self,
        limit: int,
        *,
        refresh_seconds: float = POSITION_REFRESH_SECONDS,
        first_seconds: float | None = FIRST_POSITION_SECONDS,
    ) -> None:
        self.limit = limit
        self._refresh_seconds = refresh_seconds
        self._first_seconds = first_seconds  # None: first places are written by ``submit`` itself
        self._joined = threading.Event()  # a run joined behind others: the refresher writes its place soon
        self._storages: dict[str, _Storage] = {}
        self._known: dict[str, _Entry] = {}  # uid -> entry: waiting, executing or set aside
        self._aside: set[str] = set()
        self._guard = threading.Lock()
        self._cancellations: queue.SimpleQueue[tuple[QueuedWork, str] | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._helpers: list[threading.Thread] = []

    # -- what the handlers ask ----------------------------------------------------------------------
    def submit(self, work: QueuedWork, *, readmit: bool = False) -> Admission:
        """Queue ``work`` at the back of its storage's queue, and say in its status where it waits.

        ``readmit``: a run set aside comes back, past the bound (it was admitted once; refusing it now
        would drop it, since Kopf's handler for it has long succeeded).
        """
        with self._guard:
            if work.uid in self._known:
                return Admission(queued=False, known=True)
            lane = self._storages.setdefault(work.storage, _Storage())
            if len(lane.waiting) >= self.limit and not readmit:
                return Admission(queued=False, total=len(lane.waiting))
            entry = _Entry(work)
            entry.writing.acquire()  # the storage's thread waits for this first write before it starts the run
            lane.waiting.append(entry)
            self._known[work.uid] = entry
            position = len(lane.waiting)
            started = lane.current is None and position == 1
            self._start_helpers()
            if lane.thread is None:
                lane.thread = threading.Thread(
                    target=self._drain, args=(work.storage,), name=f"queue-{work.storage}", daemon=True
                )
                lane.thread.start()
        try:
            if started:
                pass
            elif self._first_seconds is not None:
                self._joined.set()
            elif work.waiting(position, position):
                entry.reported = position
        finally:
            entry.writing.release()
        return Admission(queued=True, position=position, total=position, started=started)

    def holds(self, uid: str) -> bool:
        """The run is waiting, executing or set aside here."""
        with self._guard:
            return uid in self._known

    def executing(self, uid: str) -> bool:
        with self._guard:
            return any(lane.current is not None and lane.current.work.uid == uid for lane in self._storages.values())

    def position(self, uid: str) -> tuple[int, int] | None:
        """(place, queue length) of a waiting run; None when it is not waiting."""
        with self._guard:
            entry = self._known.get(uid)
            if entry is None or entry.left:
                return None
            lane = self._storages[entry.work.storage]
            return lane.waiting.index(entry) + 1, len(lane.waiting)

    def waiting_count(self, storage: str) -> int:
        with self._guard:
            lane = self._storages.get(storage)
            return len(lane.waiting) if lane is not None else 0

    def observe(self, uid: str, body: Any) -> None:
        """Hand a newer version of a known run to its work (a dictionary lookup: called on the event loop)."""
        with self._guard:
            entry = self._known.get(uid)
        if entry is not None:
            entry.work.observe(body)

    def cancel(self, uid: str, reason: str, body: Any = None) -> bool:
        """Take a waiting run out of its queue and have its cancellation recorded; True when it was waiting.

        ``body`` is the run's last version (the DELETED event's). A run set aside (another operator holds
        it) is forgotten without a record: it is that operator's. Never blocks: called on the event loop.
        """
        with self._guard:
            entry = self._known.get(uid)
            if entry is None:
                return False
            if body is not None:
                entry.work.observe(body)
            if uid in self._aside:
                self._aside.discard(uid)
                del self._known[uid]
                return False
            if entry.left:
                return False  # executing: StopSignals stops it
            self._remove(entry)
        self._cancellations.put((entry.work, reason))
        return True

    def cancel_policy(self, policy_uid: str, reason: str) -> int:
        """Take every waiting run of a policy out of the queues (the policy was deleted or suspended)."""
        with self._guard:
            doomed = [
                entry
                for lane in self._storages.values()
                for entry in lane.waiting
                if entry.work.policy_uid == policy_uid
            ]
            for entry in doomed:
                self._remove(entry)
        for entry in doomed:
            self._cancellations.put((entry.work, reason))
        return len(doomed)

    def close(self) -> None:
        """Stop the helper threads (the storages' threads end with their queues, or with the process)."""
        self._closed.set()
        self._joined.set()
        self._cancellations.put(None)

    # -- inside -------------------------------------------------------------------------------------
    def _remove(self, entry: _Entry) -> None:
        """Under the guard: out of its storage's queue and forgotten."""
        self._storages[entry.work.storage].waiting.remove(entry)
        entry.left = True
        del self._known[entry.work.uid]

    def _drain(self, storage: str) -> None:
        """The storage's thread: run its queue in order until it is empty.

        A run's last writes (final status, event, the policy's lastCleanup*) go to the storage's finisher
        thread, in order, so the storage starts its next run meanwhile: only the cleanup itself is
        serialised, not the API calls around it. The run stays known here until they are written.
        """
        while True:
            with self._guard:
                lane = self._storages[storage]
                if not lane.waiting:
                    lane.thread = None
                    return
                entry = lane.waiting.popleft()
                entry.left = True
                lane.current = entry
            with entry.writing:  # a position write in flight lands before the run says Running
                pass
            outcome = self._execute(entry)
            with self._guard:
                lane.current = None
                if outcome is None:
                    self._known.pop(entry.work.uid, None)
                elif isinstance(outcome, float):
                    self._aside.add(entry.work.uid)
                else:
                    lane.finishing.append((entry, outcome))
                    if lane.finisher is None:
                        lane.finisher = threading.Thread(
                            target=self._finish, args=(storage,), name=f"finish-{storage}", daemon=True
                        )
                        lane.finisher.start()
            if isinstance(outcome, float):
                timer = threading.Timer(outcome, self._back, args=(entry,))
                timer.daemon = True
                timer.start()

    def _finish(self, storage: str) -> None:
        """The storage's finisher: each executed run's last writes, in the order the runs ran."""
        while True:
            with self._guard:
                lane = self._storages[storage]
                if not lane.finishing:
                    lane.finisher = None
                    return
                entry, finish = lane.finishing.popleft()
            try:
                finish()
            except Exception:  # the next run's writes must still happen
                log.exception("finishing the CleanupRun %s failed", entry.work.uid)
            with self._guard:
                self._known.pop(entry.work.uid, None)

    def _execute(self, entry: _Entry) -> float | Callable[[], None] | None:
        try:
            return entry.work.execute()
        except Exception:  # never let one run end the storage's thread: the next one must still run
            log.exception("executing the queued CleanupRun %s failed; it is tried again later", entry.work.uid)
            return 30.0

    def _back(self, entry: _Entry) -> None:
        """A run set aside joins the back of its queue again (unless it was cancelled meanwhile)."""
        with self._guard:
            uid = entry.work.uid
            if uid not in self._aside or self._known.get(uid) is not entry:
                return
            self._aside.discard(uid)
            del self._known[uid]
        self.submit(entry.work, readmit=True)

    def _start_helpers(self) -> None:
        """Under the guard: the refresher and the cancellation recorder, once."""
        if self._helpers:
            return
        for target, name in ((self._refresh, "queue-positions"), (self._record_cancellations, "queue-cancel")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._helpers.append(thread)

    def _refresh(self) -> None:
        while not self._closed.is_set():
            if self._joined.wait(self._refresh_seconds) and self._first_seconds is not None:
                self._closed.wait(self._first_seconds)  # let the rest of a burst join first
            self._joined.clear()
            self.refresh_positions()

    def refresh_positions(self) -> int:
        """Write the place of every waiting run whose place has halved since it was last written."""
        with self._guard:
            due = [
                (entry, place, len(lane.waiting))
                for lane in self._storages.values()
                for place, entry in enumerate(lane.waiting, start=1)
                if entry.reported is None or place <= entry.reported // 2
            ]
        written = 0
        for entry, place, total in due:
            with entry.writing:
                if entry.left:
                    continue
                try:
                    landed = entry.work.waiting(place, total)
                except Exception:  # best effort: tried again at the next refresh
                    log.exception("writing the queue position of CleanupRun %s failed", entry.work.uid)
                    landed = False
                if landed:
                    entry.reported = place
                    written += 1
        return written

    def _record_cancellations(self) -> None:
        while (item := self._cancellations.get()) is not None:
            work, reason = item
            try:
                work.cancelled(reason)
            except Exception:  # the next one must still be recorded
                log.exception("recording the cancellation of CleanupRun %s failed", work.uid)
