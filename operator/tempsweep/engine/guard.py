"""The blast-radius guard: a run that would delete too much of what it scanned deletes nothing.

A truncated or swapped job table turns every file into an orphan at once; capped at ``maxFilesPerRun``
per run, such a run would still delete ten thousand files every hour and never look unusual. So the
guard weighs the whole plan, without the cap, before the first unlink. Planning and applying stop
being interleaved for guarded runs: each phase's decisions are buffered up to the run's budget (the
applier never carries out more), the rest only counted, so memory stays bounded by
``maxFilesPerRun`` while the count covers everything. A plan above the limit is reported as a dry
run would report it, nothing is deleted, and the run fails with ``BlastRadiusExceeded``; every
buffered file is still re-checked by the provider before it is unlinked when the plan goes ahead.
Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from tempsweep.engine.applier import Applier, Decision
from tempsweep.engine.request import RunRequest
from tempsweep.models.enums import RunReason

GUARD_FIELD = "limits.maxDeletePercent"
EMERGENCY_GUARD_FIELD = "limits.emergencyMaxDeletePercent"


def guard_active(limit_percent: float, spec: RunRequest) -> bool:
    """Whether a plan must be weighed before it is applied (100 % and ``force`` switch it off)."""
    return not spec.force and limit_percent < 100


@dataclass
class PhasePlan:
    """One phase's plan: the decisions the applier may carry out, and the size of the whole plan."""

    name: str
    limit_field: str
    limit_percent: float
    decisions: list[Decision] = field(default_factory=list)
    count: int = 0  # every planned deletion, not capped by maxFilesPerRun
    bytes: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    scanned: int = 0
    estimated: bool = False  # ``count`` is an upper bound (see EmergencyPlanner.uncapped)
    limited: bool = False  # the budget cut the decisions short

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.scanned if self.scanned else 0.0

    @property
    def exceeded(self) -> bool:
        return self.count > 0 and self.percent > self.limit_percent

    def collect(self, decisions: Iterable[Decision], budget: int) -> PhasePlan:
        """Buffer the first ``budget`` decisions and count all of them."""
        kept = self.decisions
        by_reason = self.by_reason
        for decision in decisions:
            self.count += 1
            self.bytes += decision.entry.size
            by_reason[decision.reason.value] += 1
            if len(kept) < budget:
                kept.append(decision)
        self.limited = self.limited or self.count > len(kept)
        return self

    def describe(self) -> str:
        size = f"up to {self.count}" if self.estimated else str(self.count)
        return (
            f"{self.name} plans to delete {size} of {self.scanned} scanned files ({self.percent:.1f}%), "
            f"more than {self.limit_field} ({self.limit_percent:g}%)"
        )


def stop_message(spec: RunRequest, plans: list[PhasePlan]) -> str | None:
    """Why these plans must not be applied (a phase over its limit, not forced), or None."""
    over = [plan for plan in plans if plan.exceeded] if not spec.force else []
    if not over:
        return None
    return (
        f"{RunReason.BLAST_RADIUS_EXCEEDED.value}: "
        + "; ".join(plan.describe() for plan in over)
        + "; nothing was deleted. A truncated or swapped job table makes every file an orphan: check it. "
        "If the plan is right, accept it once with force: true on a CleanupRun, or raise the limit"
    )


def carry_out(applier: Applier, plans: list[PhasePlan], *, report_only: bool = False) -> None:
    """Apply the plans in order (or record them as a dry run does, for plans the guard stopped)."""
    for plan in plans:
        if report_only:
            applier.report_only(plan.decisions)
        else:
            applier.apply(plan.decisions)
        applier.tally.limit_reached = applier.tally.limit_reached or plan.limited


def apply_guarded(applier: Applier, spec: RunRequest, plans: list[PhasePlan]) -> str | None:
    """Apply every phase's decisions, or none of them when a phase exceeds its limit.

    Returns None when the plans were applied, else the message saying why nothing was deleted (the
    plans are then recorded as a dry run records them).
    """
    stopped = stop_message(spec, plans)
    carry_out(applier, plans, report_only=stopped is not None)
    return stopped
