"""Kopf handlers and timers of CleanupPolicy: read the object, call one function, write status.

Registered on import (with the CleanupRun handlers of ``run_handlers``); ``main.run_operator`` imports
both modules and starts Kopf.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import datetime
from typing import Any

import kopf

from tempsweep.controller import probes
from tempsweep.controller.cleanups import refresh_stats, run_locked, timer_spec
from tempsweep.controller.conditions import set_condition
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime, build_runtime, forget_job_source, resolve
from tempsweep.controller.schedule import cron_due, due_cron_slot, interval_due, parse_time
from tempsweep.controller.shared import (
    POLICIES,
    TICK_SECONDS,
    WORKER_THREADS,
    iso,
    now_utc,
    post_run_event,
    settings,
)
from tempsweep.engine import StorageError
from tempsweep.models import GROUP, VERSION, EffectivePolicy, Health, RunPhase, RunType
from tempsweep.models.effective import min_free_for
from tempsweep.models.quantities import format_bytes
from tempsweep.models.status import RunStatus, StorageStats
from tempsweep.models.statuses import unrecognized_advice

#: Statistics are recomputed every statsInterval but written to status only when a figure changed, or at
#: least this often: every write is a PATCH plus a watch event to process, for every policy, and with
#: a hundred quiet policies those writes were most of an idle operator's CPU.
STATS_REWRITE_SECONDS = 300.0
_stats_computed: dict[str, datetime] = {}  # policy uid -> when its statistics were last computed
UNRECOGNIZED_REASON = "UnrecognizedJobStatus"


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own events carry the numbers; Kopf's would be noise
    settings.execution.max_workers = WORKER_THREADS
    # A deleted object keeps our finalizer until its timers have exited. A timer that is mid-tick when the
    # deletion arrives (the TTL timer deletes its own run) is polled again only after this long: Kopf's
    # default of 60 s left expired runs and deleted policies hanging for a minute.
    settings.background.instant_exit_timeout = 1.0
    settings.background.cancellation_polling = 1.0


# -- CleanupPolicy -------------------------------------------------------------------------------


def _not_ready(patch: kopf.Patch, status: dict[str, Any], exc: PolicyNotReady, now: datetime, gen: int) -> None:
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
    if conditions != status.get("conditions"):
        patch.status["conditions"] = conditions
    if status.get("observedGeneration") != gen:
        patch.status["observedGeneration"] = gen


def _write_stats(
    patch: kopf.Patch, body: kopf.Body, status: dict[str, Any], stats: StorageStats, now: datetime
) -> None:
    patch.status.update(stats.model_dump(mode="json", by_alias=True))
    patch.status["lastStatsTime"] = iso(now)
    # "new" is judged against the statuses already stored on the object, so a restart posts nothing twice
    known = set(status.get("unrecognizedJobStatuses") or [])
    new = [name for name in stats.unrecognized_job_statuses if name not in known]
    if new:
        kopf.event(body, type="Warning", reason=UNRECOGNIZED_REASON, message=unrecognized_advice(new))
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
        reason = runtime.job_error_reason if runtime.job_error else "QueryFailed"
        conditions = set_condition(
            conditions,
            type="JobSourceReachable",
            status=error is None,
            reason=reason if error else "Reachable",
            message=error or "job table readable",
            now=now,
            generation=gen,
        )
    if stats is not None and stats.effective_min_free_space_bytes is not None:
        floor = min_free_for(runtime.policy, stats.total_bytes)
        conditions = set_condition(
            conditions,
            type="MinFreeSpaceApplied",
            status=floor.applied,
            reason="Applied" if floor.applied else "MinFreeSpaceNotApplied",
            message=floor.note or f"emergency cleanup keeps at least {format_bytes(floor.bytes)} free",
            now=now,
            generation=gen,
        )
    if stats is not None and runtime.policy.has_job_source and not stats.job_source_error:
        conditions = _statuses_condition(conditions, stats, now, gen)
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


def _statuses_condition(
    conditions: list[dict[str, Any]], stats: StorageStats, now: datetime, gen: int
) -> list[dict[str, Any]]:
    """JobStatusesRecognized: False while files are kept because their job's status is in no list."""
    names = stats.unrecognized_job_statuses
    return set_condition(
        conditions,
        type="JobStatusesRecognized",
        status=not names,
        reason=UNRECOGNIZED_REASON if names else "AllRecognized",
        message=unrecognized_advice(names, stats.files_kept_unrecognized_status)
        if names
        else "every job status met is in activeStatuses, failedStatuses or finishedStatuses",
        now=now,
        generation=gen,
    )


def _storage_unusable(
    patch: kopf.Patch, body: kopf.Body, status: dict[str, Any], exc: StorageError, now: datetime, gen: int
) -> None:
    """The storage vanished or became unreadable after validation: say so in conditions, once in events."""
    was_ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    _not_ready(patch, status, PolicyNotReady("StorageUnavailable", str(exc), condition="StorageHealthy"), now, gen)
    if was_ready != "False":
        kopf.event(body, type="Warning", reason="StorageUnavailable", message=str(exc))


_job_source_posted: dict[str, str] = {}  # policy uid -> the JobSourceReachable status last announced


def _job_source_events(
    body: kopf.Body, before: list[dict[str, Any]] | None, after: list[dict[str, Any]] | None
) -> None:
    """One Warning when job status becomes unreadable and one Normal when it is back: per outage, not per tick."""

    def reachable(conditions: list[dict[str, Any]] | None) -> dict[str, Any] | None:
        return next((c for c in conditions or [] if c.get("type") == "JobSourceReachable"), None)

    old, new = reachable(before), reachable(after)
    uid = str(body.get("metadata", {}).get("uid"))
    # the create handler and a timer tick may both see the same transition from a stale status
    previous = _job_source_posted.get(uid) or (old or {}).get("status")
    if new is None or previous == new.get("status"):
        return
    _job_source_posted[uid] = str(new.get("status"))
    if new.get("status") == "False":
        kopf.event(
            body,
            type="Warning",
            reason="JobSourceUnreachable",
            message=f"{new.get('message')}; files of jobs are kept until job status can be read",
        )
    elif old is not None:
        kopf.event(body, type="Normal", reason="JobSourceRecovered", message="job status readable again")


def _min_free_event(body: kopf.Body, before: list[dict[str, Any]] | None, after: list[dict[str, Any]]) -> None:
    """One Warning when the inherited minFreeSpace stops being applied (validation, not every tick)."""
    def applied(conditions: list[dict[str, Any]] | None) -> dict[str, Any] | None:
        return next((c for c in conditions or [] if c.get("type") == "MinFreeSpaceApplied"), None)

    old, new = applied(before), applied(after)
    if new is not None and new.get("status") == "False" and (old or {}).get("status") != "False":
        kopf.event(body, type="Warning", reason=str(new.get("reason")), message=str(new.get("message")))


@kopf.on.resume(GROUP, VERSION, POLICIES)
@kopf.on.create(GROUP, VERSION, POLICIES)
@kopf.on.update(GROUP, VERSION, POLICIES, field="spec")
def policy_changed(body: kopf.Body, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    """Validate against the cluster and compute statistics at once."""
    now, gen = now_utc(), int(meta.get("generation") or 0)
    try:
        runtime = build_runtime(dict(body), settings())
    except PolicyNotReady as exc:
        _not_ready(patch, dict(status), exc, now, gen)
        kopf.event(body, type="Warning", reason=exc.reason, message=str(exc))
        return
    try:
        stats = refresh_stats(runtime)
    except StorageError as exc:
        _storage_unusable(patch, body, dict(status), exc, now, gen)
        return
    _write_stats(patch, body, dict(status), stats, now)
    patch.status["conditions"] = _ready_conditions(dict(status), runtime, stats, now, gen)
    _job_source_events(body, dict(status).get("conditions"), patch.status["conditions"])
    _min_free_event(body, dict(status).get("conditions"), patch.status["conditions"])
    patch.status["observedGeneration"] = gen
    probes.record(runtime.namespace, runtime.name, "validated", now)


@kopf.timer(GROUP, VERSION, POLICIES, interval=TICK_SECONDS, initial_delay=min(TICK_SECONDS, 5.0))
async def policy_tick(
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    **kwargs: Any,
) -> None:
    """Run whatever is due now: stats, the emergency check, the scheduled and orphan cleanups.

    Most ticks find nothing due. That is decided here, on the event loop, from the spec and the times
    in status (pure and cheap); only due work goes to a worker thread. With a hundred policies the
    thread hand-off of every idle tick was most of an idle operator's CPU.
    """
    now, gen = now_utc(), int(meta.get("generation") or 0)
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    probes.record(namespace, name, "tick", now)
    if spec.get("suspend"):
        return
    if not _anything_due(body, status, meta, now):
        probes.record(namespace, name, "lastSuccess", now)
        return

    def work() -> None:
        with probes.busy(namespace, name):
            _tick(body, status, meta, patch, now, gen)

    kopf_settings = kwargs.get("settings")
    executor = kopf_settings.execution.executor if kopf_settings is not None else None
    context = contextvars.copy_context()  # kopf.event() from the thread needs Kopf's context
    await asyncio.get_running_loop().run_in_executor(executor, context.run, work)


_resolved_cache: dict[str, tuple[int, EffectivePolicy]] = {}


def _resolved(body: kopf.Body, meta: kopf.Meta) -> EffectivePolicy:
    """The resolved policy, parsed once per generation (the spec only changes with the generation)."""
    uid, generation = str(meta.get("uid")), int(meta.get("generation") or 0)
    cached = _resolved_cache.get(uid)
    if cached is not None and cached[0] == generation:
        return cached[1]
    policy = resolve(dict(body), settings())
    _resolved_cache[uid] = (generation, policy)
    return policy


def _last_stats(meta: kopf.Meta, current: dict[str, Any]) -> datetime | None:
    """When statistics were last computed: the later of the time written to status and the one in memory."""
    times = [t for t in (parse_time(current.get("lastStatsTime")), _stats_computed.get(str(meta.get("uid")))) if t]
    return max(times) if times else None


def _stats_changed(current: dict[str, Any], stats: StorageStats) -> bool:
    return any(current.get(key) != value for key, value in stats.model_dump(mode="json", by_alias=True).items())


def _anything_due(body: kopf.Body, status: kopf.Status, meta: kopf.Meta, now: datetime) -> bool:
    """True when the tick has work: something is due, or the policy needs its conditions (re)written."""
    current = dict(status)
    if current.get("observedGeneration") != meta.get("generation"):
        return True
    ready = next((c for c in current.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        return True  # not ready: re-validate every tick, so a fixed secret or directory is noticed at once
    job = next((c for c in current.get("conditions") or [] if c.get("type") == "JobSourceReachable"), None)
    if job is not None and job.get("status") != "True":
        return True
    try:
        policy = _resolved(body, meta)
    except PolicyNotReady:
        return True
    created = parse_time(meta.get("creationTimestamp")) or now
    return (
        interval_due(policy.stats_seconds, _last_stats(meta, current), now)
        or interval_due(policy.emergency_check_seconds, parse_time(current.get("lastEmergencyCheckTime")), now)
        or cron_due(policy.scheduled_cron, parse_time(current.get("lastScheduledTime")), created, now)
        or cron_due(policy.orphaned_cron, parse_time(current.get("lastOrphanedTime")), created, now)
    )


def _tick(body: kopf.Body, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, now: datetime, gen: int) -> None:
    current = dict(status)
    try:
        runtime = build_runtime(dict(body), settings(), reuse_jobs=True)
    except PolicyNotReady as exc:
        _not_ready(patch, current, exc, now, gen)
        return
    policy = runtime.policy
    created = parse_time(meta.get("creationTimestamp")) or now
    stats = None
    if interval_due(policy.stats_seconds, _last_stats(meta, current), now):
        try:
            stats = refresh_stats(runtime)
        except StorageError as exc:
            _storage_unusable(patch, body, current, exc, now, gen)
            return
        _stats_computed[str(meta.get("uid"))] = now
        if stats.job_source_error:
            forget_job_source(runtime.namespace, runtime.name)  # read the secret and connect afresh next tick
        rewrite_due = interval_due(STATS_REWRITE_SECONDS, parse_time(current.get("lastStatsTime")), now)
        if rewrite_due or _stats_changed(current, stats):
            _write_stats(patch, body, current, stats, now)
    # A busy storage (result None) is left for the next tick: the check or the slot stays due.
    if interval_due(policy.emergency_check_seconds, parse_time(current.get("lastEmergencyCheckTime")), now):
        result = run_locked(runtime, timer_spec(runtime, RunType.EMERGENCY), wait=False)
        if result is not None:
            patch.status["lastEmergencyCheckTime"] = iso(now)
            if result.files_deleted or result.would_delete_count or result.phase is RunPhase.FAILED:
                _record_cleanup(patch, body, result)
    for kind, cron, field in (
        (RunType.SCHEDULED, policy.scheduled_cron, "lastScheduledTime"),
        (RunType.ORPHANED, policy.orphaned_cron, "lastOrphanedTime"),
    ):
        slot = due_cron_slot(cron, parse_time(current.get(field)), created, now)
        if slot is not None:
            result = run_locked(runtime, timer_spec(runtime, kind), wait=False)
            if result is not None:
                patch.status[field] = iso(slot)
                _record_cleanup(patch, body, result)
    conditions = _ready_conditions(current, runtime, stats, now, gen)
    if conditions != current.get("conditions"):  # an unchanged list would cost a PATCH every tick
        patch.status["conditions"] = conditions
        _job_source_events(body, current.get("conditions"), conditions)
    probes.record(runtime.namespace, runtime.name, "lastSuccess", now_utc())


@kopf.on.delete(GROUP, VERSION, POLICIES, optional=True)
def policy_deleted(meta: kopf.Meta, **_: Any) -> None:
    _resolved_cache.pop(str(meta.get("uid")), None)
    _stats_computed.pop(str(meta.get("uid")), None)
    _job_source_posted.pop(str(meta.get("uid")), None)
    probes.forget(meta.get("namespace") or "", meta.get("name") or "")
    forget_job_source(meta.get("namespace") or "", meta.get("name") or "")


def _record_cleanup(patch: kopf.Patch, body: kopf.Body, result: RunStatus) -> None:
    patch.status["lastCleanupTime"] = iso(result.end_time.replace(microsecond=0))
    patch.status["lastCleanupMessage"] = result.message
    patch.status["lastCleanupPhase"] = result.phase.value
    post_run_event(body, result)


@kopf.on.probe(id="policies")
def policies_probe(**_: Any) -> dict[str, Any]:
    """Each policy's last successful timer tick; fails when a timer has gone silent (kopf #642)."""
    return probes.report(stale_after_seconds=max(10 * TICK_SECONDS, 120.0))
