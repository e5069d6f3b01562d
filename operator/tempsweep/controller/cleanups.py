"""Stats and cleanups for the operator: the engine, one cleanup at a time per storage.

A scheduled run, an emergency and a manual CleanupRun on the same volume take the same lock, so
they are serialised, never concurrent; different volumes proceed in parallel. Kopf runs these sync
functions in worker threads, so a long cleanup never blocks the event loop or other policies.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Literal, overload

from tempsweep.controller.runtime import PolicyRuntime
from tempsweep.engine import Progress, compute_stats, run_cleanup
from tempsweep.jobs.history import record_history
from tempsweep.models import RunPhase, RunStatus, RunType, StorageStats
from tempsweep.models.run import CleanupRunSpec, PolicyRef

log = logging.getLogger(__name__)
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def storage_lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks[key]


def refresh_stats(runtime: PolicyRuntime) -> StorageStats:
    """Storage statistics (reads only; no lock needed)."""
    stats = compute_stats(runtime.context())
    if runtime.job_error and not stats.job_source_error:
        stats = stats.model_copy(update={"job_source_error": runtime.job_error})
    return stats


@overload
def run_locked(
    runtime: PolicyRuntime,
    spec: CleanupRunSpec,
    *,
    progress: Callable[[Progress], None] | None = ...,
    on_wait: Callable[[], None] | None = ...,
    run_name: str | None = ...,
) -> RunStatus: ...


@overload
def run_locked(
    runtime: PolicyRuntime,
    spec: CleanupRunSpec,
    *,
    progress: Callable[[Progress], None] | None = ...,
    wait: Literal[False],
    run_name: str | None = ...,
) -> RunStatus | None: ...


def run_locked(
    runtime: PolicyRuntime,
    spec: CleanupRunSpec,
    *,
    progress: Callable[[Progress], None] | None = None,
    on_wait: Callable[[], None] | None = None,
    wait: bool = True,
    run_name: str | None = None,
) -> RunStatus | None:
    """Run one cleanup while holding the storage's lock; reports job-source outages as failures.

    With ``wait=False`` (the timers) a busy storage is not waited for: None means "another cleanup of
    this storage is running, try again at the next tick". A timer that waited would stop ticking --
    no statistics, and a liveness probe that takes the silence for a dead timer.
    """
    lock = storage_lock(runtime.lock_key)
    if not lock.acquire(blocking=False):
        if not wait:
            return None
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        status = run_cleanup(runtime.context(progress=progress), spec)
    finally:
        lock.release()
    if runtime.job_error and runtime.policy.has_job_source:
        status = status.model_copy(
            update={
                "phase": RunPhase.FAILED,
                "message": f"{status.message}; job status unavailable, files of jobs were kept: {runtime.job_error}",
            }
        )
    _record_history(runtime, run_name or f"timer-{spec.type.value}", status)
    return status


def _record_history(runtime: PolicyRuntime, run_name: str, status: RunStatus) -> None:
    """Append the run to the policy's history table, if it has one; a failure is logged, never raised."""
    database = runtime.policy.database
    url = getattr(runtime.jobs, "url", None)  # only the SQL job source knows where to write
    if database is None or not database.history_table or not isinstance(url, str):
        return
    problem = record_history(runtime.policy, url, run_name, status, namespace=runtime.namespace)
    if problem:
        log.warning("%s/%s: %s", runtime.namespace, runtime.name, problem)


def timer_spec(runtime: PolicyRuntime, kind: RunType) -> CleanupRunSpec:
    """The spec of a cleanup started by a timer rather than a CleanupRun."""
    return CleanupRunSpec(policy_ref=PolicyRef(name=runtime.name), type=kind)
