"""Kopf handlers and timers: read the object, call one function, write status. No business logic.

Registered on import; ``main.run_operator`` imports this module and starts Kopf.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from tempsweep.controller import kube, probes
from tempsweep.controller.cleanups import refresh_stats, run_locked, timer_spec
from tempsweep.controller.conditions import set_condition
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime, build_runtime
from tempsweep.controller.schedule import due_cron_slot, interval_due, parse_time
from tempsweep.models import (
    GROUP,
    VERSION,
    Health,
    InputError,
    OperatorSettings,
    RunPhase,
    RunType,
    parse_run,
)
from tempsweep.models.quantities import format_bytes
from tempsweep.models.status import RunStatus, StorageStats

log = logging.getLogger(__name__)

#: How often each policy's timer wakes to see what is due (the schedules themselves live in the spec).
TICK_SECONDS = float(os.environ.get("TEMPSWEEP_TICK_SECONDS", "10"))
TTL_CHECK_SECONDS = float(os.environ.get("TEMPSWEEP_TTL_CHECK_SECONDS", "60"))
DEFAULT_RUN_TTL_SECONDS = 86_400
PROGRESS_EVERY_SECONDS = 1.0
FINAL_PHASES = (RunPhase.SUCCEEDED.value, RunPhase.FAILED.value)
POLICIES, RUNS = "cleanuppolicies", "cleanupruns"

_settings: OperatorSettings | None = None
_executing: set[str] = set()
_executing_guard = threading.Lock()


def configure(settings: OperatorSettings) -> None:
    global _settings
    _settings = settings


def settings() -> OperatorSettings:
    if _settings is None:  # imported without run_operator (e.g. `kopf run`): read the environment
        from tempsweep.models import load_settings

        configure(load_settings())
    assert _settings is not None
    return _settings


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own events carry the numbers; Kopf's would be noise
    settings.execution.max_workers = 16
    settings.background.cancellation_polling = 1.0  # run_ttl deletes its own run: re-check its exit in 1 s, not 60


# -- CleanupPolicy -------------------------------------------------------------------------------


def _not_ready(
    patch: kopf.Patch, status: dict[str, Any], exc: PolicyNotReady, now: datetime, gen: int
) -> None:
    conditions = set_condition(
        status.get("conditions"),
        type="Ready",
        status=False,
        reason=exc.reason,
        message=str(exc),
        now=now,
        generation=gen,
    )
    if exc.condition != "Ready":
        conditions = set_condition(
            conditions,
            type=exc.condition,
            status=False,
            reason=exc.reason,
            message=str(exc),
            now=now,
            generation=gen,
        )
    patch.status["conditions"] = conditions
    patch.status["observedGeneration"] = gen


def _write_stats(
    patch: kopf.Patch, body: kopf.Body, status: dict[str, Any], stats: StorageStats, now: datetime
) -> None:
    patch.status.update(stats.model_dump(mode="json", by_alias=True))
    patch.status["lastStatsTime"] = _iso(now)
    previous = status.get("health")
    if stats.health is Health.CRITICAL and previous != Health.CRITICAL.value:
        kopf.event(
            body,
            type="Warning",
            reason="StorageCritical",
            message=f"usage {stats.usage_percent:.1f}% >= {stats.emergency_threshold:g}% "
            f"({stats.temp_files_count} files, {format_bytes(stats.temp_files_size_bytes)})",
        )


def _ready_conditions(
    status: dict[str, Any], runtime: PolicyRuntime, stats: StorageStats | None, now: datetime, gen: int
) -> list[dict[str, Any]]:
    conditions = set_condition(
        status.get("conditions"),
        type="Ready",
        status=True,
        reason="Validated",
        message=f"cleaning {runtime.storage.description}",
        now=now,
        generation=gen,
    )
    if runtime.policy.has_job_source:
        error = runtime.job_error or (stats.job_source_error if stats else None)
        conditions = set_condition(
            conditions,
            type="JobSourceReachable",
            status=error is None,
            reason="QueryFailed" if error else "Reachable",
            message=error or "job table readable",
            now=now,
            generation=gen,
        )
    if stats is not None:
        healthy = stats.health is not Health.CRITICAL
        conditions = set_condition(
            conditions,
            type="StorageHealthy",
            status=healthy,
            reason=stats.health.value,
            message=f"usage {stats.usage_percent:.1f}%",
            now=now,
            generation=gen,
        )
    return conditions


@kopf.on.resume(GROUP, VERSION, POLICIES)
@kopf.on.create(GROUP, VERSION, POLICIES)
@kopf.on.update(GROUP, VERSION, POLICIES, field="spec")
def policy_changed(
    body: kopf.Body, status: dict[str, Any], meta: kopf.Meta, patch: kopf.Patch, **_: Any
) -> None:
    """Validate against the cluster and compute statistics at once."""
    now, gen = _now(), int(meta.get("generation") or 0)
    try:
        runtime = build_runtime(dict(body), settings())
    except PolicyNotReady as exc:
        _not_ready(patch, dict(status), exc, now, gen)
        kopf.event(body, type="Warning", reason=exc.reason, message=str(exc))
        return
    stats = refresh_stats(runtime)
    _write_stats(patch, body, dict(status), stats, now)
    patch.status["conditions"] = _ready_conditions(dict(status), runtime, stats, now, gen)
    patch.status["observedGeneration"] = gen
    probes.record(runtime.namespace, runtime.name, "validated", now)


@kopf.timer(GROUP, VERSION, POLICIES, interval=TICK_SECONDS, initial_delay=min(TICK_SECONDS, 5.0))
def policy_tick(
    body: kopf.Body,
    spec: dict[str, Any],
    status: dict[str, Any],
    meta: kopf.Meta,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Run whatever is due now: stats, the emergency check, the scheduled and orphan cleanups."""
    now, gen = _now(), int(meta.get("generation") or 0)
    probes.record(meta.get("namespace") or "", meta.get("name") or "", "tick", now)
    if spec.get("suspend"):
        return
    current = dict(status)
    try:
        runtime = build_runtime(dict(body), settings())
    except PolicyNotReady as exc:
        _not_ready(patch, current, exc, now, gen)
        return
    policy = runtime.policy
    created = parse_time(meta.get("creationTimestamp")) or now
    stats = None
    if interval_due(policy.stats_seconds, parse_time(current.get("lastStatsTime")), now):
        stats = refresh_stats(runtime)
        _write_stats(patch, body, current, stats, now)
    if interval_due(policy.emergency_check_seconds, parse_time(current.get("lastEmergencyCheckTime")), now):
        result = run_locked(runtime, timer_spec(runtime, RunType.EMERGENCY))
        patch.status["lastEmergencyCheckTime"] = _iso(now)
        if result.files_deleted or result.would_delete_count or result.phase is RunPhase.FAILED:
            _record_cleanup(patch, body, result)
    for kind, cron, field in (
        (RunType.SCHEDULED, policy.scheduled_cron, "lastScheduledTime"),
        (RunType.ORPHANED, policy.orphaned_cron, "lastOrphanedTime"),
    ):
        slot = due_cron_slot(cron, parse_time(current.get(field)), created, now)
        if slot is not None:
            result = run_locked(runtime, timer_spec(runtime, kind))
            patch.status[field] = _iso(slot)
            _record_cleanup(patch, body, result)
    patch.status["conditions"] = _ready_conditions(current, runtime, stats, now, gen)
    probes.record(runtime.namespace, runtime.name, "lastSuccess", _now())


@kopf.on.delete(GROUP, VERSION, POLICIES, optional=True)
def policy_deleted(meta: kopf.Meta, **_: Any) -> None:
    probes.forget(meta.get("namespace") or "", meta.get("name") or "")


def _record_cleanup(patch: kopf.Patch, body: kopf.Body, result: RunStatus) -> None:
    patch.status["lastCleanupTime"] = _iso(result.end_time.replace(microsecond=0))
    patch.status["lastCleanupMessage"] = result.message
    patch.status["lastCleanupPhase"] = result.phase.value
    _post_run_event(body, result)


def _post_run_event(body: kopf.Body, result: RunStatus) -> None:
    if result.phase is RunPhase.FAILED:
        kopf.event(body, type="Warning", reason="CleanupFailed", message=result.message)
    else:
        kopf.event(body, type="Normal", reason="CleanupFinished", message=result.message)


# -- CleanupRun ----------------------------------------------------------------------------------


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
        "completionTime": _iso(now),
        "observedGeneration": gen,
        "conditions": set_condition(
            None, type="Complete", status=False, reason=reason, message=message, now=now
        ),
    }


def _run_to_completion(body: kopf.Body, namespace: str, name: str, gen: int) -> dict[str, Any]:
    started = _now()
    kube.patch_status(
        RUNS,
        namespace,
        name,
        {
            "phase": RunPhase.RUNNING.value,
            "observedGeneration": gen,
            "startTime": _iso(started),
            "message": "running",
        },
    )
    try:
        run = parse_run(dict(body), source=f"CleanupRun {namespace}/{name}")
    except InputError as exc:
        final = _failed("InvalidSpec", str(exc), _now(), gen)
        kopf.event(body, type="Warning", reason="RunFailed", message=str(exc))
        return final
    try:
        policy_body = kube.get_policy(namespace, run.spec.policy_ref.name)
        runtime = build_runtime(policy_body, settings())
    except kube.NotFound as exc:
        kopf.event(body, type="Warning", reason="PolicyNotFound", message=str(exc))
        return _failed(
            "PolicyNotFound", f"{exc}: a CleanupRun can only use a policy in its own namespace", _now(), gen
        )
    except PolicyNotReady as exc:
        kopf.event(body, type="Warning", reason=exc.reason, message=str(exc))
        return _failed(exc.reason, str(exc), _now(), gen)

    last_report = [0.0]

    def progress(report: Any) -> None:
        if time.monotonic() - last_report[0] < PROGRESS_EVERY_SECONDS:
            return
        last_report[0] = time.monotonic()
        kube.patch_status(
            RUNS,
            namespace,
            name,
            {
                "progress": {
                    "filesPlanned": report.files_scanned,
                    "filesDeleted": report.files_deleted,
                    "bytesFreed": report.bytes_freed,
                    "updatedTime": _iso(_now()),
                }
            },
        )

    def waiting() -> None:
        kube.patch_status(
            RUNS, namespace, name, {"message": "waiting for another cleanup of the same storage"}
        )

    result = run_locked(runtime, run.spec, progress=progress, on_wait=waiting)
    now = _now()
    final = result.model_dump(mode="json", by_alias=True)
    final.update(
        {
            "completionTime": _iso(now),
            "observedGeneration": gen,
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
    _post_run_event(body, result)
    kube.patch_status(
        POLICIES,
        namespace,
        runtime.name,
        {
            "lastCleanupTime": _iso(now),
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
def run_ttl(spec: dict[str, Any], status: dict[str, Any], namespace: str, name: str, **_: Any) -> None:
    """Delete finished runs once ``ttlSecondsAfterFinished`` (default one day) has passed."""
    ttl = spec.get("ttlSecondsAfterFinished")
    ttl = DEFAULT_RUN_TTL_SECONDS if ttl is None else int(ttl)
    finished = parse_time(status.get("completionTime"))
    if finished is not None and (_now() - finished).total_seconds() >= ttl:
        kube.delete_run(namespace, name)


@kopf.on.probe(id="policies")
def policies_probe(**_: Any) -> dict[str, Any]:
    """Each policy's last successful timer tick; fails when a timer has gone silent (kopf #642)."""
    return probes.report(stale_after_seconds=max(10 * TICK_SECONDS, 120.0))
