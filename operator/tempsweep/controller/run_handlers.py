"""Kopf handlers of CleanupRun: execute each run exactly once, report progress, expire finished runs.

Registered on import; ``main.run_operator`` imports this module with ``handlers``.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import kopf

from tempsweep.controller import kube
from tempsweep.controller.cleanups import run_locked
from tempsweep.controller.conditions import set_condition
from tempsweep.controller.runtime import PolicyNotReady, build_runtime
from tempsweep.controller.schedule import parse_time
from tempsweep.controller.shared import (
    POLICIES,
    RUNS,
    TTL_CHECK_SECONDS,
    iso,
    now_utc,
    post_run_event,
    settings,
)
from tempsweep.models import GROUP, VERSION, InputError, RunPhase, parse_run

DEFAULT_RUN_TTL_SECONDS = 86_400
PROGRESS_EVERY_SECONDS = 1.0
FINAL_PHASES = (RunPhase.SUCCEEDED.value, RunPhase.FAILED.value)

_executing: set[str] = set()
_executing_guard = threading.Lock()


@kopf.on.create(GROUP, VERSION, RUNS)
def run_created(body: kopf.Body, **kwargs: Any) -> None:
    """Execute a new CleanupRun exactly once."""
    _execute_run(body, **kwargs)


@kopf.on.resume(GROUP, VERSION, RUNS)
def run_resumed(body: kopf.Body, **kwargs: Any) -> None:
    """After a restart: finish runs that were Pending or Running (re-running deletes nothing extra)."""
    _execute_run(body, **kwargs)


def _execute_run(
    body: kopf.Body, meta: kopf.Meta, namespace: str, name: str, patch: kopf.Patch, **_: Any
) -> None:
    uid = str(meta.get("uid"))
    latest = kube.get_run(namespace, name).get("status") or {}
    if latest.get("phase") in FINAL_PHASES:
        return
    with _executing_guard:
        if uid in _executing:
            return
        _executing.add(uid)
    try:
        final = _run_to_completion(body, namespace, name, int(meta.get("generation") or 0))
    finally:
        with _executing_guard:
            _executing.discard(uid)
    patch.status.update(final)


def _failed(reason: str, message: str, now: datetime, gen: int) -> dict[str, Any]:
    return {
        "phase": RunPhase.FAILED.value,
        "message": message,
        "completionTime": iso(now),
        "observedGeneration": gen,
        "conditions": set_condition(
            None, type="Complete", status=False, reason=reason, message=message, now=now
        ),
    }


def _run_to_completion(body: kopf.Body, namespace: str, name: str, gen: int) -> dict[str, Any]:
    started = now_utc()
    kube.patch_status(
        RUNS,
        namespace,
        name,
        {
            "phase": RunPhase.RUNNING.value,
            "observedGeneration": gen,
            "startTime": iso(started),
            "message": "running",
        },
    )
    try:
        run = parse_run(dict(body), source=f"CleanupRun {namespace}/{name}")
    except InputError as exc:
        final = _failed("InvalidSpec", str(exc), now_utc(), gen)
        kopf.event(body, type="Warning", reason="InvalidSpec", message=str(exc))
        return final
    try:
        policy_body = kube.get_policy(namespace, run.spec.policy_ref.name)
        runtime = build_runtime(policy_body, settings())
    except kube.NotFound as exc:
        kopf.event(body, type="Warning", reason="PolicyNotFound", message=str(exc))
        return _failed(
            "PolicyNotFound", f"{exc}: a CleanupRun can only use a policy in its own namespace", now_utc(), gen
        )
    except PolicyNotReady as exc:
        kopf.event(body, type="Warning", reason=exc.reason, message=str(exc))
        return _failed(exc.reason, str(exc), now_utc(), gen)

    last_report = [0.0]
    planned = [0]

    def progress(report: Any) -> None:
        planned[0] = report.files_planned
        if time.monotonic() - last_report[0] < PROGRESS_EVERY_SECONDS:
            return
        last_report[0] = time.monotonic()
        kube.patch_status(
            RUNS,
            namespace,
            name,
            {
                "progress": {
                    "filesPlanned": report.files_planned,
                    "filesDeleted": report.files_deleted,
                    "bytesFreed": report.bytes_freed,
                    "updatedTime": iso(now_utc()),
                }
            },
        )

    def waiting() -> None:
        kube.patch_status(
            RUNS, namespace, name, {"message": "waiting for another cleanup of the same storage"}
        )

    result = run_locked(runtime, run.spec, progress=progress, on_wait=waiting, run_name=run.metadata.name)
    now = now_utc()
    final = result.model_dump(mode="json", by_alias=True)
    final.update(
        {
            "completionTime": iso(now),
            "observedGeneration": gen,
            # the last throttled report may be older than the end: the final figures close it
            "progress": {
                "filesPlanned": max(
                    planned[0],
                    result.would_delete_count if result.dry_run else result.files_deleted + result.files_skipped,
                ),
                "filesDeleted": result.files_deleted,
                "bytesFreed": result.bytes_freed,
                "updatedTime": iso(now),
            },
            "conditions": set_condition(
                None,
                type="Complete",
                status=result.phase is RunPhase.SUCCEEDED,
                reason=result.phase.value,
                message=result.message,
                now=now,
            ),
        }
    )
    post_run_event(body, result)
    kube.patch_status(
        POLICIES,
        namespace,
        runtime.name,
        {
            "lastCleanupTime": iso(now),
            "lastCleanupMessage": result.message,
            "lastCleanupPhase": result.phase.value,
        },
    )
    return final


@kopf.timer(
    GROUP,
    VERSION,
    RUNS,
    interval=TTL_CHECK_SECONDS,
    when=lambda status, **_: (status or {}).get("phase") in FINAL_PHASES,
)
def run_ttl(spec: kopf.Spec, status: kopf.Status, namespace: str | None, name: str, **_: Any) -> None:
    """Delete finished runs once ``ttlSecondsAfterFinished`` (default one day) has passed."""
    ttl = spec.get("ttlSecondsAfterFinished")
    ttl = DEFAULT_RUN_TTL_SECONDS if ttl is None else int(ttl)
    finished = parse_time(status.get("completionTime"))
    if finished is not None and (now_utc() - finished).total_seconds() >= ttl:
        kube.delete_run(namespace or "default", name)
