"""Running one cleanup: plan each scenario from a single streamed pass, apply it, report a RunStatus.

Plan first, then apply: the rules (``rules``, ``emergency``) are pure and decide which files go and
why; the ``Applier`` carries the decisions out, or, for a dry run or keep-for-debugging, records
what it would have done through the same path. Re-running a run is safe: a second pass finds only
what is still eligible, so an interrupted run can simply be run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from tempsweep.engine.applier import Applier, Decision, Tally
from tempsweep.engine.context import CleanupContext, Progress
from tempsweep.engine.emergency import (
    EmergencyPlan,
    EmergencyPlanner,
    bytes_to_relief,
    emergency_needed,
    relieved,
)
from tempsweep.engine.inventory import Inventory, JobResolver, ScannedFile
from tempsweep.engine.ports import JobSourceError, StorageError, Usage
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
from tempsweep.models.effective import MinFree, min_free_for
from tempsweep.models.enums import DeletionReason, RunPhase, RunType
from tempsweep.models.quantities import format_bytes
from tempsweep.models.status import RunStatus

log = logging.getLogger(__name__)


#: How every run says that a job-source outage kept files (the CLI, the operator and the history agree).
JOB_STATUS_UNAVAILABLE = "job status unavailable, files of jobs were kept"


class RunFailed(Exception):
    """The run cannot go on; the message says why (it becomes the Failed status' message)."""


@dataclass
class _Outcome:
    """What a scenario reports back besides the tally."""

    note: str = ""
    failed: bool = False
    before: Usage | None = None
    after: Usage | None = None
    files_scanned: int = 0
    planned: frozenset[str] = frozenset()  # paths an emergency phase already chose
    min_free: MinFree | None = None  # the free-space floor an emergency check applied


def run_cleanup(ctx: CleanupContext, spec: RunRequest) -> RunStatus:
    """Execute one CleanupRun against the context's storage; never raises for storage or job problems."""
    clock = ctx.clock()
    started = time.monotonic()
    dry_run = spec.dry_run or ctx.policy.rules.dry_run or ctx.policy.rules.keep_for_debugging
    applier = Applier(
        ctx.storage, ctx.policy, dry_run=dry_run, progress=_progress_adapter(ctx), should_stop=ctx.should_stop
    )
    queries_before = ctx.jobs.query_count if ctx.jobs is not None else 0
    scenario = _SCENARIOS[spec.type]
    try:
        outcome = scenario(ctx, spec, clock, applier)
    except (RunFailed, StorageError) as exc:
        outcome = _Outcome(note=str(exc), failed=True)
    except JobSourceError as exc:
        outcome = _Outcome(note=f"{JOB_STATUS_UNAVAILABLE}: {exc}", failed=True)
    tally = applier.tally
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
        trigger=spec.type,
        start_time=clock.now,
        end_time=clock.now + timedelta(seconds=duration),
        duration_seconds=round(duration, 3),
        dry_run=dry_run,
        files_scanned=outcome.files_scanned,
        files_deleted=tally.deleted,
        files_skipped=tally.skipped,
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
        effective_min_free_space_bytes=outcome.min_free.bytes if outcome.min_free else None,
    )


def _percent(usage: Usage | None) -> float | None:
    return round(usage.percent, 2) if usage is not None else None


def _progress_adapter(ctx: CleanupContext) -> Callable[[Tally], None] | None:
    report = ctx.progress
    if report is None:
        return None
    return lambda tally: report(Progress(tally.attempted, tally.deleted, tally.bytes_freed))


def _summary(kind: RunType, tally: Tally, outcome: _Outcome, dry_run: bool) -> str:
    if dry_run:
        parts = [f"dry run: would delete {tally.would_count} files ({format_bytes(tally.would_bytes)})"]
    else:
        parts = [f"deleted {tally.deleted} files ({format_bytes(tally.bytes_freed)})"]
    parts[0] += f" of {outcome.files_scanned} scanned"
    if tally.skipped:
        parts.append(f"{tally.skipped} skipped because they changed since planned")
    if tally.error_count:
        parts.append(f"{tally.error_count} errors")
    if tally.limit_reached:
        parts.append("stopped at maxFilesPerRun")
    if tally.cancelled is not None:
        parts.append(f"cancelled: {tally.cancelled}")
    if outcome.note:
        parts.append(outcome.note)
    return f"{kind.value}: " + "; ".join(parts)


def _plan(inventory: Inventory, rule: Rule) -> Iterator[Decision]:
    for item in inventory:
        reason = rule(item)
        if reason is not None:
            yield Decision(item.entry, reason)


def _measure_around(
    ctx: CleanupContext, applier: Applier, inventory: Inventory, rule: Rule, resolver: JobResolver
) -> _Outcome:
    """Apply one streamed plan and measure usage before and after it."""
    fs_before = ctx.storage.filesystem_usage() if ctx.policy.rules.capacity_bytes is None else None
    freed_before = applier.tally.bytes_freed  # an earlier phase (Scheduled's emergency) freed these already
    applier.apply(_plan(inventory, rule))
    for problem in ctx.storage.scan_errors():
        applier.tally.add_error(problem)
    before = fs_before or ctx.usage(inventory.bytes_total)
    if ctx.policy.rules.capacity_bytes is None:
        after = ctx.storage.filesystem_usage() or before
    else:
        after = before.after_freeing(applier.tally.bytes_freed - freed_before)
    outcome = _Outcome(before=before, after=after, files_scanned=inventory.files_scanned)
    if resolver.error:
        outcome.failed = True
        outcome.note = f"{JOB_STATUS_UNAVAILABLE}: {resolver.error}"
    return outcome


def _chunk_completion(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> _Outcome:
    assert spec.job_id is not None and spec.chunk_id is not None  # guaranteed by the spec's validation
    inventory, resolver = ctx.inventory(resolve_jobs=False)
    rule = chunk_rule(ctx.policy, spec.job_id, spec.chunk_id, spec.completed_files)
    return _measure_around(ctx, applier, inventory, rule, resolver)


def _failed_ids(ctx: CleanupContext, clock: Clock, job_id: str | None) -> tuple[frozenset[str], str]:
    """Ids of failed jobs past their wait, and a note explaining an empty answer."""
    if ctx.jobs is None or not ctx.policy.rules.has_job_source:
        raise RunFailed("crash recovery needs job status: the policy has no jobs.database")
    wait = f"{ctx.policy.rules.failed_cleanup_after_hours:g} h"
    if job_id is not None:
        record = ctx.jobs.lookup([job_id]).get(job_id)
        if record is None:
            return frozenset(), f"job {job_id} is not in the job table; nothing deleted"
        if record.status not in ctx.policy.rules.failed_statuses:
            return frozenset(), f"job {job_id} is {record.status!r}, not failed; nothing deleted"
        if not failed_past_wait(record, ctx.policy, clock):
            return frozenset(), (
                f"job {job_id} failed less than {wait} ago (failedJobs.cleanupAfterHours); kept"
            )
        return frozenset({job_id}), ""
    ready = frozenset(r.job_id for r in ctx.jobs.failed_jobs() if failed_past_wait(r, ctx.policy, clock))
    return ready, "" if ready else f"no failed job is older than {wait}"


def _crash_recovery(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> _Outcome:
    failed, note = _failed_ids(ctx, clock, spec.job_id)
    if not failed:
        return _Outcome(note=note)
    inventory, resolver = ctx.inventory(resolve_jobs=False)
    outcome = _measure_around(ctx, applier, inventory, crash_rule(failed), resolver)
    outcome.note = outcome.note or f"{len(failed)} failed job(s)"
    return outcome


def _orphaned(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> _Outcome:
    max_age = spec.max_age_hours or ctx.policy.rules.orphan_max_age_hours
    inventory, resolver = ctx.inventory()
    return _measure_around(ctx, applier, inventory, orphan_rule(ctx.policy, clock, max_age), resolver)


def _emergency(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> _Outcome:
    """Plan from sizes, delete, then judge by measured usage: freeing a file's bytes is not a given.

    A sparse file, a name of a hard-linked file or a file another process holds open frees little or
    nothing when deleted, so success is never the sum of the deleted sizes: usage is measured again
    (``CleanupContext.measure_usage``) and the run fails, saying what was freed and what is left,
    when the target is not reached. A dry run cannot measure and is judged by its plan.
    """
    inventory, resolver = ctx.inventory()
    planner = EmergencyPlanner(ctx.policy, clock)
    planner.offer_all(inventory)
    for problem in ctx.storage.scan_errors():
        applier.tally.add_error(problem)
    before = ctx.usage(inventory.bytes_total)
    floor = min_free_for(ctx.policy.rules, before.total)
    if floor.unsatisfiable:
        raise RunFailed(f"{floor.note}; no emergency cleanup runs for this policy, nothing deleted")
    outcome = _Outcome(before=before, after=before, files_scanned=inventory.files_scanned, min_free=floor)
    outcome.note = f"{floor.note}; " if floor.note else ""
    if not emergency_needed(before, ctx.policy):
        outcome.note += (
            f"usage {before.percent:.1f}% is below {ctx.policy.rules.emergency_percent:g}% with "
            f"{format_bytes(before.free)} free; no emergency"
        )
        return outcome
    plan = planner.choose(before, applier.budget_left)
    outcome.planned = frozenset(decision.entry.path for decision in plan.decisions)
    deleted_before = applier.tally.deleted
    applier.apply(plan.decisions)
    applier.tally.limit_reached = applier.tally.limit_reached or plan.limited
    if resolver.error:
        outcome.failed = True
        outcome.note += f"{JOB_STATUS_UNAVAILABLE}: {resolver.error}; "
    if applier.dry_run:
        _judge_plan(ctx, plan, outcome)
        return outcome
    if applier.tally.deleted > deleted_before:
        outcome.after, problems = ctx.measure_usage()
        for problem in problems:
            applier.tally.add_error(f"measuring usage after the emergency: {problem}")
    _judge_measured(ctx, outcome)
    return outcome


def _judge_plan(ctx: CleanupContext, plan: EmergencyPlan, outcome: _Outcome) -> None:
    assert outcome.before is not None
    if plan.sufficient:
        outcome.note += f"emergency at {outcome.before.percent:.1f}%"
        return
    outcome.failed = True
    target = ctx.policy.rules.emergency_percent - ctx.policy.rules.emergency_buffer_percent
    floor = outcome.min_free.bytes if outcome.min_free else 0
    outcome.note += (
        f"could not bring usage below {target:g}% with {format_bytes(floor)} free "
        f"(projected {plan.projected.percent:.1f}%)"
    )


def _judge_measured(ctx: CleanupContext, outcome: _Outcome) -> None:
    """Succeeded only when the measured usage reached the target; the note gives the measured figures."""
    before, after = outcome.before, outcome.after
    assert before is not None and after is not None
    freed = max(0, before.used - after.used)
    measured = (
        f"emergency at {before.percent:.1f}%: {format_bytes(freed)} freed (measured), "
        f"now {after.percent:.1f}% with {format_bytes(after.free)} free"
    )
    if relieved(after, ctx.policy):
        outcome.note += measured
        return
    outcome.failed = True
    target = ctx.policy.rules.emergency_percent - ctx.policy.rules.emergency_buffer_percent
    floor = min_free_for(ctx.policy.rules, after.total).bytes
    outcome.note += (
        f"{measured}; could not bring usage below {target:g}% with {format_bytes(floor)} free: "
        f"{format_bytes(bytes_to_relief(after, ctx.policy))} more must go"
    )


def _scheduled(ctx: CleanupContext, spec: RunRequest, clock: Clock, applier: Applier) -> _Outcome:
    """The emergency check first, then orphans and crashed jobs in one pass; one combined record."""
    first = _emergency(ctx, spec, clock, applier)
    notes = [first.note] if first.planned or first.failed else []
    if not notes and first.min_free is not None and first.min_free.note:
        notes.append(first.min_free.note)  # an inherited floor not applied is worth saying every time
    failed: frozenset[str] = frozenset()
    if ctx.policy.rules.has_job_source and ctx.jobs is not None:
        try:
            failed, _ = _failed_ids(ctx, clock, None)
        except JobSourceError as exc:
            notes.append(f"crash recovery skipped: {exc}")
            first.failed = True
    regular = first_of(orphan_rule(ctx.policy, clock, ctx.policy.rules.orphan_max_age_hours), crash_rule(failed))

    def rule(item: ScannedFile) -> DeletionReason | None:
        # a dry run leaves the emergency's files in place: do not count them twice
        return None if item.entry.path in first.planned else regular(item)

    inventory, resolver = ctx.inventory()
    second = _measure_around(ctx, applier, inventory, rule, resolver)
    notes.append(second.note)
    return _Outcome(
        note="; ".join(note for note in notes if note),
        failed=first.failed or second.failed,
        before=first.before,
        after=second.after,
        files_scanned=max(first.files_scanned, second.files_scanned),
        min_free=first.min_free,
    )


_SCENARIOS: dict[RunType, Callable[[CleanupContext, RunRequest, Clock, Applier], _Outcome]] = {
    RunType.CHUNK_COMPLETION: _chunk_completion,
    RunType.CRASH_RECOVERY: _crash_recovery,
    RunType.ORPHANED: _orphaned,
    RunType.EMERGENCY: _emergency,
    RunType.SCHEDULED: _scheduled,
}
