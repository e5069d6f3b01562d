"""Running one cleanup: plan each scenario from a single streamed pass, apply it, report a RunStatus.

Plan first, then apply: the rules (``rules``, ``emergency``) are pure and decide which files go and
why; the ``Applier`` carries the decisions out, or, for a dry run or keep-for-debugging, records
what it would have done through the same path. Every scenario but ChunkCompletion is weighed by the
blast-radius guard (``guard``) before its first deletion; only a run whose guard is off (100 % or
``force``) streams its plan straight into the applier. Re-running a run is safe: a second pass finds only
what is still eligible, so an interrupted run can simply be run again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from tempsweep.engine.applier import Applier, Tally
from tempsweep.engine.context import CleanupContext, Progress
from tempsweep.engine.directories import remove_emptied
from tempsweep.engine.emergency_phase import apply_emergency, plan_emergency
from tempsweep.engine.guard import (
    GUARD_FIELD,
    PhasePlan,
    apply_guarded,
    carry_out,
    guard_active,
    stop_message,
)
from tempsweep.engine.inventory import ScannedFile
from tempsweep.engine.phases import (
    JOB_STATUS_UNAVAILABLE,
    PhaseOutcome,
    RunFailed,
    plan_decisions,
    scan_notes,
    usage_after,
)
from tempsweep.engine.ports import AuditError, JobSourceError, StorageError, Usage
from tempsweep.engine.request import RunRequest
from tempsweep.engine.rules import (
    Clock,
    Rule,
    chunk_rule,
    crash_rule,
    failed_past_wait,
    first_of,
    orphan_rule,
)
from tempsweep.models.enums import DeletionReason, RunPhase, RunReason, RunType
from tempsweep.models.quantities import format_bytes
from tempsweep.models.status import RunStatus
from tempsweep.models.statuses import StatusClass

log = logging.getLogger(__name__)


def run_cleanup(ctx: CleanupContext, spec: RunRequest) -> RunStatus:
    """Execute one CleanupRun against the context's storage; never raises for storage or job problems."""
    clock = ctx.clock()
    started = time.monotonic()
    dry_run = spec.dry_run or ctx.policy.rules.dry_run or ctx.policy.rules.keep_for_debugging
    applier = Applier(
        ctx.storage,
        ctx.policy,
        dry_run=dry_run,
        progress=_progress_adapter(ctx),
        should_stop=ctx.should_stop,
        audit=ctx.audit,
    )
    queries_before = ctx.jobs.query_count if ctx.jobs is not None else 0
    scenario = _SCENARIOS[spec.type]
    try:
        problem = ctx.policy.run_id_problem(spec.job_id, spec.chunk_id)
        if problem:
            raise RunFailed(f"{problem}; no file can carry it, nothing deleted")
        _open_audit(ctx)
        outcome = scenario(ctx, spec, clock, applier)
    except AuditError as exc:
        outcome = PhaseOutcome(note=f"{exc}; nothing deleted", failed=True, reason=RunReason.AUDIT_UNAVAILABLE)
    except (RunFailed, StorageError) as exc:
        outcome = PhaseOutcome(note=str(exc), failed=True)
    except JobSourceError as exc:
        outcome = PhaseOutcome(note=f"{JOB_STATUS_UNAVAILABLE}: {exc}", failed=True)
    finally:
        if ctx.audit is not None:
            ctx.audit.close()
    tally = applier.tally
    if tally.audit_failure is not None:
        outcome.failed, outcome.reason = True, RunReason.AUDIT_UNAVAILABLE
        outcome.note = f"{tally.audit_failure}: deletions stopped" + (f"; {outcome.note}" if outcome.note else "")
    duration = time.monotonic() - started
    # a file someone else deleted first is in ``errors`` but does not fail the run; anything else does
    failed = outcome.failed or tally.error_count > tally.vanished
    phase = RunPhase.FAILED if failed else RunPhase.SUCCEEDED
    if tally.cancelled is not None:  # what was done is reported as usual; the rest was never attempted
        phase = RunPhase.CANCELLED
    if ctx.jobs is not None:
        log.info("%s: %d job-status queries", spec.type.value, ctx.jobs.query_count - queries_before)
    return RunStatus(
        phase=phase,
        message=_summary(spec.type, tally, outcome, dry_run),
        reason=outcome.reason,
        trigger=spec.type,
        start_time=clock.now,
        end_time=clock.now + timedelta(seconds=duration),
        duration_seconds=round(duration, 3),
        dry_run=dry_run,
        files_scanned=outcome.files_scanned,
        files_deleted=tally.deleted,
        files_skipped=tally.skipped,
        files_skipped_in_use=len(tally.in_use),
        directories_removed=tally.directories_removed,
        would_remove_directories=tally.would_remove_directories,
        bytes_freed=tally.bytes_freed,
        storage_before_percent=_percent(outcome.before),
        storage_after_percent=_percent(outcome.after),
        errors=list(tally.errors),
        error_count=tally.error_count,
        deleted_by_reason=dict(tally.by_reason),
        would_delete=list(tally.would_delete),
        would_delete_count=tally.would_count,
        would_free_bytes=tally.would_bytes,
        would_delete_by_reason=dict(tally.would_by_reason),
        limit_reached=tally.limit_reached,
        job_queries=(ctx.jobs.query_count - queries_before) if ctx.jobs is not None else 0,
        files_kept_unrecognized_status=outcome.unrecognized_files,
        unrecognized_job_statuses=sorted(outcome.unrecognized),
        near_miss_files=outcome.near_misses,
        near_miss_examples=list(outcome.near_miss_examples),
        effective_min_free_space_bytes=outcome.min_free.bytes if outcome.min_free else None,
    )


def _open_audit(ctx: CleanupContext) -> None:
    """The audit (``spec.audit``) must be writable before anything is deleted: its owner asked for a record."""
    if ctx.audit is not None:
        try:
            ctx.audit.open()
        except AuditError as exc:
            raise AuditError(f"the audit record cannot be written ({exc})") from None


def _percent(usage: Usage | None) -> float | None:
    return round(usage.percent, 2) if usage is not None else None


def _progress_adapter(ctx: CleanupContext) -> Callable[[Tally], None] | None:
    report = ctx.progress
    if report is None:
        return None
    return lambda tally: report(Progress(tally.attempted, tally.deleted, tally.bytes_freed, dict(tally.by_reason)))


def _summary(kind: RunType, tally: Tally, outcome: PhaseOutcome, dry_run: bool) -> str:
    if dry_run or outcome.reason is RunReason.BLAST_RADIUS_EXCEEDED:
        label = "dry run: would" if dry_run else "would"
        parts = [f"{label} delete {tally.would_count} files ({format_bytes(tally.would_bytes)})"]
    else:
        parts = [f"deleted {tally.deleted} files ({format_bytes(tally.bytes_freed)})"]
    parts[0] += f" of {outcome.files_scanned} scanned"
    if tally.directories_removed or tally.would_remove_directories:
        verb = "would remove" if dry_run else "removed"
        parts.append(f"{verb} {tally.would_remove_directories or tally.directories_removed} emptied directories")
    if tally.in_use:
        parts.append(f"{len(tally.in_use)} kept because another process holds a lock on them")
    if tally.skipped:
        parts.append(f"{tally.skipped} skipped because they changed since planned")
    if tally.error_count:
        parts.append(f"{tally.error_count} errors")
    if tally.limit_reached:
        parts.append("stopped at maxFilesPerRun")
    if tally.cancelled is not None:
        parts.append(f"cancelled: {tally.cancelled}")
    if outcome.unrecognized_files:
        statuses = ", ".join(repr(status) for status in sorted(outcome.unrecognized))
        parts.append(f"{outcome.unrecognized_files} files kept: job status {statuses} is in no status list")
    if outcome.near_misses:
        parts.append(
            f"kept {outcome.near_misses} files whose path looks like a job's but does not parse under "
            f"spec.naming (e.g. {outcome.near_miss_examples[0]})"
        )
    if outcome.note:
        parts.append(outcome.note)
    if outcome.reason is not None:  # the reason first: it is why nothing was deleted
        parts.insert(0, parts.pop())
    return f"{kind.value}: " + "; ".join(parts)


def _single_phase(
    ctx: CleanupContext,
    spec: RunRequest,
    applier: Applier,
    rule: Rule,
    *,
    resolve_jobs: bool = True,
    clock: Clock | None = None,
) -> PhaseOutcome:
    """Plan one streamed phase, weigh it (unless the guard is off), apply it, measure usage around it;
    with ``clock``, remove the directories it emptied (``directories``; ChunkCompletion passes none:
    its job is running). A plan the guard stopped removes no directory either."""
    inventory, resolver = ctx.inventory(resolve_jobs=resolve_jobs)
    fs_before = ctx.storage.filesystem_usage() if ctx.policy.rules.capacity_bytes is None else None
    applier.tally.take_emptying()  # an earlier phase's deletions are not in this scan's directory counts
    limit = ctx.policy.rules.max_delete_percent
    stopped = None
    if spec.type is not RunType.CHUNK_COMPLETION and guard_active(limit, spec):
        plan = PhasePlan(spec.type.value, GUARD_FIELD, limit)
        plan.collect(plan_decisions(inventory, rule), applier.budget_left)
        plan.scanned = inventory.files_scanned
        stopped = apply_guarded(applier, spec, [plan])
    else:
        stream = plan_decisions(inventory, rule)
        applier.apply(stream)
        # past maxFilesPerRun the applier stops asking; finish the scan so the counts and usage are whole
        deque(stream, maxlen=0)
    scan_notes(ctx, applier)
    if clock is not None and stopped is None:
        remove_emptied(ctx, applier, rule, resolver, clock)
    before = fs_before or ctx.usage(inventory.bytes_total)
    outcome = PhaseOutcome(
        before=before, after=usage_after(ctx, before, applier.tally.bytes_freed), files_scanned=inventory.files_scanned
    )
    outcome.saw(inventory, resolver)
    if resolver.error:
        outcome.failed = True
        outcome.note = f"{JOB_STATUS_UNAVAILABLE}: {resolver.error}"
    outcome.blocked(stopped)
    return outcome


def _chunk_completion(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> PhaseOutcome:
    assert spec.job_id is not None and spec.chunk_id is not None  # guaranteed by the spec's validation
    rule = chunk_rule(ctx.policy, spec.job_id, spec.chunk_id, spec.completed_files)
    return _single_phase(ctx, spec, applier, rule, resolve_jobs=False)


def _failed_ids(ctx: CleanupContext, clock: Clock, job_id: str | None) -> tuple[frozenset[str], str]:
    """Ids of failed jobs past their wait, and a note explaining an empty answer."""
    if ctx.jobs is None or not ctx.policy.rules.has_job_source:
        raise RunFailed("crash recovery needs job status: the policy has no jobs.database")
    wait = f"{ctx.policy.rules.failed_cleanup_after_hours:g} h"
    policy = ctx.policy
    if job_id is not None:
        record = ctx.jobs.lookup([job_id]).get(job_id)
        if record is None:
            return frozenset(), f"job {job_id} is not in the job table; nothing deleted"
        kind = policy.rules.classify_status(record.status)
        if kind is not StatusClass.FAILED:
            listed = "" if kind is not StatusClass.UNRECOGNIZED else " (a status in no status list)"
            return frozenset(), f"job {job_id} is {record.status!r}{listed}, not failed; nothing deleted"
        if not failed_past_wait(record, policy, clock):
            return frozenset(), (
                f"job {job_id} failed less than {wait} ago (failedJobs.cleanupAfterHours); kept"
            )
        return frozenset({job_id}), ""
    ready = frozenset(
        record.job_id
        for record in ctx.jobs.failed_jobs()
        if policy.rules.classify_status(record.status) is StatusClass.FAILED and failed_past_wait(record, policy, clock)
    )
    return ready, "" if ready else f"no failed job is older than {wait}"


def _crash_recovery(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> PhaseOutcome:
    failed, note = _failed_ids(ctx, clock, spec.job_id)
    if not failed:
        return PhaseOutcome(note=note)
    outcome = _single_phase(ctx, spec, applier, crash_rule(failed), resolve_jobs=False, clock=clock)
    outcome.note = outcome.note or f"{len(failed)} failed job(s)"
    return outcome


def _orphaned(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> PhaseOutcome:
    max_age = spec.max_age_hours or ctx.policy.rules.orphan_max_age_hours
    return _single_phase(ctx, spec, applier, orphan_rule(ctx.policy, clock, max_age), clock=clock)


def _predictive(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> PhaseOutcome:
    """The gentle cleanup a prediction starts early: Scheduled's orphan and crash phase, no emergency tier.

    Orphans by the policy's own ``maxAgeHours`` and failed jobs past their wait, in one streamed phase
    under ``limits.maxDeletePercent``; a job table that cannot list failed jobs skips crash recovery
    (and fails the run) but still lets the orphan rule keep whatever depends on job status.
    """
    failed: frozenset[str] = frozenset()
    note = ""
    if ctx.policy.rules.has_job_source and ctx.jobs is not None:
        try:
            failed, _ = _failed_ids(ctx, clock, None)
        except JobSourceError as exc:
            note = f"crash recovery skipped: {exc}"
    rule = first_of(orphan_rule(ctx.policy, clock, ctx.policy.rules.orphan_max_age_hours), crash_rule(failed))
    outcome = _single_phase(ctx, spec, applier, rule, clock=clock)
    if note:
        outcome.failed = True
        outcome.note = f"{note}; {outcome.note}" if outcome.note else note
    return outcome


def _emergency(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> PhaseOutcome:
    phase = plan_emergency(ctx, clock, applier, "the emergency")
    if phase.plan is None:
        return phase.outcome
    stopped = stop_message(spec, [phase.plan])
    if stopped is None:
        apply_emergency(ctx, applier, phase)
    else:
        carry_out(applier, [phase.plan], report_only=True)
    phase.outcome.blocked(stopped)
    return phase.outcome


def _scheduled(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> PhaseOutcome:
    """The emergency check, then orphans and crashed jobs; one combined record.

    Both phases are planned before anything is deleted, so the blast-radius guard (each phase against
    its own limit) can stop the whole run; the second pass leaves the emergency's files to it. Then the
    emergency is applied and judged by measured usage, then the second phase.
    """
    first = plan_emergency(ctx, clock, applier, "the emergency phase")
    notes: list[str] = []
    failed: frozenset[str] = frozenset()
    if ctx.policy.rules.has_job_source and ctx.jobs is not None:
        try:
            failed, _ = _failed_ids(ctx, clock, None)
        except JobSourceError as exc:
            notes.append(f"crash recovery skipped: {exc}")
            first.outcome.failed = True
    regular = first_of(orphan_rule(ctx.policy, clock, ctx.policy.rules.orphan_max_age_hours), crash_rule(failed))
    planned = first.outcome.planned

    def rule(item: ScannedFile) -> DeletionReason | None:
        return None if item.entry.path in planned else regular(item)

    inventory, resolver = ctx.inventory()
    plans = [first.plan] if first.plan is not None else []
    budget = applier.budget_left - (len(first.plan.decisions) if first.plan is not None else 0)
    limit = ctx.policy.rules.max_delete_percent if guard_active(ctx.policy.rules.max_delete_percent, spec) else 100.0
    second = PhasePlan("the orphan and crash phase", GUARD_FIELD, limit)
    second.collect(plan_decisions(inventory, rule), budget)
    second.scanned = inventory.files_scanned
    plans.append(second)
    scan_notes(ctx, applier)
    stopped = stop_message(spec, plans)
    # the second scan saw the emergency's files too: both phases' deletions count for emptied directories
    applier.tally.take_emptying()
    if stopped is not None:
        carry_out(applier, plans, report_only=True)
    elif first.plan is not None:
        apply_emergency(ctx, applier, first)
    freed_by_emergency = applier.tally.bytes_freed
    if stopped is None:
        carry_out(applier, [second])
        remove_emptied(ctx, applier, rule, resolver, clock)
    emergency = first.outcome
    if emergency.planned or emergency.failed:
        notes.insert(0, emergency.note)
    elif emergency.min_free is not None and emergency.min_free.note:
        notes.insert(0, emergency.min_free.note)  # an inherited floor not applied is worth saying every time
    outcome = PhaseOutcome(
        note="; ".join(note.strip().rstrip(";") for note in notes if note),
        failed=emergency.failed,
        before=emergency.before,
        files_scanned=max(emergency.files_scanned, inventory.files_scanned),
        unrecognized_files=emergency.unrecognized_files,
        unrecognized=set(emergency.unrecognized),
        min_free=emergency.min_free,
    )
    assert emergency.after is not None  # measured after the emergency's deletions, else its "before"
    outcome.after = usage_after(ctx, emergency.after, applier.tally.bytes_freed - freed_by_emergency)
    outcome.saw(inventory, resolver)
    if resolver.error:
        outcome.failed = True
        unavailable = f"{JOB_STATUS_UNAVAILABLE}: {resolver.error}"
        outcome.note = f"{outcome.note}; {unavailable}" if outcome.note else unavailable
    outcome.blocked(stopped)
    return outcome


_SCENARIOS: dict[RunType, Callable[[CleanupContext, RunRequest, Clock, Applier], PhaseOutcome]] = {
    RunType.CHUNK_COMPLETION: _chunk_completion,
    RunType.CRASH_RECOVERY: _crash_recovery,
    RunType.ORPHANED: _orphaned,
    RunType.EMERGENCY: _emergency,
    RunType.SCHEDULED: _scheduled,
    RunType.PREDICTIVE: _predictive,
}
