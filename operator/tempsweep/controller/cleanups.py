"""Stats and cleanups for the operator: the engine, one cleanup at a time per storage.

A scheduled run, an emergency and a manual CleanupRun on the same volume take the same lock, so
they are serialised, never concurrent; different volumes proceed in parallel. These are sync
functions run in worker threads, so a long cleanup never blocks the event loop or other policies.
Every finished cleanup is recorded in the policy's history, when it has one.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import kopf

from tempsweep.controller.runtime import PolicyRuntime
from tempsweep.controller.state import StorageLocks
from tempsweep.engine import Progress, RunRequest, compute_stats, run_cleanup
from tempsweep.engine.context import StopCheck
from tempsweep.models import RunPhase, RunStatus, StorageStats

log = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Who hears about a cleanup while it runs (a CleanupRun's status; a timer has none)."""

    name: str
    uid: str

    def progress(self, report: Progress) -> None: ...

    def waiting(self) -> None: ...

    def complete(self, result: RunStatus) -> RunStatus:
        """The whole run's result (a resumed run adds what it had done before the restart)."""
        ...


def refresh_stats(runtime: PolicyRuntime) -> StorageStats:
    """Storage statistics (reads only; no lock needed). A job-source outage shows as ``jobSourceError``."""
    return compute_stats(runtime.context())


def run_locked(
    runtime: PolicyRuntime,
    request: RunRequest,
    locks: StorageLocks,
    observer: RunObserver | None = None,
    *,
    wait: bool = True,
    should_stop: StopCheck | None = None,
) -> RunStatus | None:
    """Run one cleanup while holding the storage's lock, and record it in the policy's history.

    With ``wait=False`` (the timers) a busy storage is not waited for: None means "another cleanup of
    this storage is running, try again at the next tick" (logged), and the storage keeps the next turn for
    the timer (``StorageLocks``). A timer that waited would stop ticking -- no statistics, and a liveness
    probe that takes the silence for a dead timer. With ``wait=True`` (a queued CleanupRun, in its
    storage's own thread) it waits, after a timer that asked for the turn. ``should_stop`` is
    asked between batches (a deleted run or policy, a suspended policy): the run ends ``Cancelled``.
    """
    key = runtime.lock_key
    lock = locks.of(key)
    if not wait:
        if not locks.try_take(key):
            log.info(
                "%s/%s: %s not started, another cleanup of the same storage is running; tried again at the next tick",
                runtime.namespace,
                runtime.name,
                request.type.value,
            )
            return None
    elif locks.timer_waiting(key) or not lock.acquire(blocking=False):
        if observer is not None:
            observer.waiting()
        locks.take(key)
    run_name = observer.name if observer else f"timer-{request.type.value}"
    try:
        progress = observer.progress if observer else None
        audit = runtime.audit(run_name, request.type, observer.uid if observer else None)
        status = run_cleanup(runtime.context(progress=progress, should_stop=should_stop, audit=audit), request)
    finally:
        lock.release()
    if observer is not None:
        status = observer.complete(status)
    if runtime.log_summary:
        log.info("%s/%s: %s", runtime.namespace, runtime.name, status.message)
    if runtime.history is not None:
        problem = runtime.history.record(run_name, status)
        if problem:
            log.warning("%s/%s: %s", runtime.namespace, runtime.name, problem)
    return status


def post_run_event(body: Any, result: RunStatus) -> None:
    """The event of a finished cleanup, on the object that asked for it (a CleanupRun or a policy); a
    failure with a named cause (BlastRadiusExceeded) uses that reason."""
    if result.phase is RunPhase.FAILED:
        reason = result.reason.value if result.reason is not None else "CleanupFailed"
        kopf.event(body, type="Warning", reason=reason, message=result.message)
    elif result.phase is RunPhase.CANCELLED:
        kopf.event(body, type="Normal", reason="CleanupCancelled", message=result.message)
    else:
        kopf.event(body, type="Normal", reason="CleanupFinished", message=result.message)
