"""The emergency phase of Emergency and Scheduled runs: plan from sizes, let the guard weigh the plan,
delete, then judge by measured usage. Pure apart from the context's storage calls.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tempsweep.engine.applier import Applier
from tempsweep.engine.context import CleanupContext
from tempsweep.engine.emergency import EmergencyPlan, EmergencyPlanner, bytes_to_relief, emergency_needed, relieved
from tempsweep.engine.guard import EMERGENCY_GUARD_FIELD, PhasePlan, carry_out
from tempsweep.engine.phases import JOB_STATUS_UNAVAILABLE, PhaseOutcome, RunFailed, scan_notes
from tempsweep.engine.rules import Clock
from tempsweep.models.effective import min_free_for
from tempsweep.models.quantities import format_bytes


@dataclass
class EmergencyPhase:
    """An emergency planned but not applied yet: its outcome so far, and its plan when one is needed."""

    outcome: PhaseOutcome
    chosen: EmergencyPlan | None = None
    plan: PhasePlan | None = None


def plan_emergency(ctx: CleanupContext, clock: Clock, applier: Applier, name: str) -> EmergencyPhase:
    """Plan an emergency from sizes (nothing deleted yet); the guard weighs the plan before it is applied."""
    inventory, resolver = ctx.inventory()
    planner = EmergencyPlanner(ctx.policy, clock)
    planner.offer_all(inventory)
    scan_notes(ctx, applier)
    before = ctx.usage(inventory.bytes_total)
    floor = min_free_for(ctx.policy.rules, before.total)
    if floor.unsatisfiable:
        raise RunFailed(f"{floor.note}; no emergency cleanup runs for this policy, nothing deleted")
    outcome = PhaseOutcome(before=before, after=before, files_scanned=inventory.files_scanned, min_free=floor)
    outcome.saw(inventory, resolver)
    outcome.note = f"{floor.note}; " if floor.note else ""
    if not emergency_needed(before, ctx.policy):
        outcome.note += (
            f"usage {before.percent:.1f}% is below {ctx.policy.rules.emergency_percent:g}% with "
            f"{format_bytes(before.free)} free; no emergency"
        )
        return EmergencyPhase(outcome)
    chosen = planner.choose(before, applier.budget_left)
    size = planner.uncapped(before)
    plan = PhasePlan(
        name,
        EMERGENCY_GUARD_FIELD,
        ctx.policy.rules.emergency_max_delete_percent,
        decisions=chosen.decisions,
        count=max(size.count, len(chosen.decisions)),
        bytes=size.bytes,
        by_reason=Counter(size.by_reason),
        scanned=inventory.files_scanned,
        estimated=size.estimated,
        limited=chosen.limited,
    )
    outcome.planned = frozenset(decision.entry.path for decision in chosen.decisions)
    if resolver.error:
        outcome.failed = True
        outcome.note += f"{JOB_STATUS_UNAVAILABLE}: {resolver.error}; "
    return EmergencyPhase(outcome, chosen, plan)


def apply_emergency(ctx: CleanupContext, applier: Applier, phase: EmergencyPhase) -> None:
    """Delete the emergency's files, then judge by measured usage: freeing a file's bytes is not a given.

    A sparse file, a name of a hard-linked file or a file another process holds open frees little or
    nothing when deleted, so success is never the sum of the deleted sizes: usage is measured again
    (``CleanupContext.measure_usage``) and the run fails, saying what was freed and what is left,
    when the target is not reached. A dry run cannot measure and is judged by its plan.
    """
    outcome, chosen, plan = phase.outcome, phase.chosen, phase.plan
    assert chosen is not None and plan is not None
    deleted_before = applier.tally.deleted
    carry_out(applier, [plan])
    if applier.dry_run:
        _judge_plan(ctx, chosen, outcome)
        return
    if applier.tally.deleted > deleted_before:
        outcome.after, problems = ctx.measure_usage()
        for problem in problems:
            applier.tally.add_error(f"measuring usage after the emergency: {problem}")
    _judge_measured(ctx, outcome)


def _judge_plan(ctx: CleanupContext, plan: EmergencyPlan, outcome: PhaseOutcome) -> None:
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


def _judge_measured(ctx: CleanupContext, outcome: PhaseOutcome) -> None:
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
