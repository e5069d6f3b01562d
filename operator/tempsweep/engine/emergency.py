"""Emergency planning: which files to delete, in which order, to bring usage back under the threshold.

Order, as the original service defines it: (1) orphans older than ``emergencyMaxAgeHours``,
(2) files of failed jobs, (3) the oldest remaining files of jobs that are not active. Files of
active jobs, of jobs in an unrecognized status and of jobs whose status is unavailable, and
near-miss names, are never candidates; a file named by several jobs (name and directory) is a
candidate only when none of them forbids it. Selection stops as soon as usage would be below
``emergencyPercent - emergencyBufferPercent`` with at least ``minFreeSpace`` free, where
``minFreeSpace`` is the floor that applies to the storage's size (``min_free_for``: an inherited
default the storage could never satisfy is not applied).

Only the oldest ``maxFilesPerRun`` candidates of each phase are kept while the scan streams past
(a bounded heap), because no run may delete more than that anyway. Pure: no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from tempsweep.engine.applier import Decision
from tempsweep.engine.inventory import KEPT_STATES, JobState, ScannedFile
from tempsweep.engine.ports import FileEntry, Usage
from tempsweep.engine.rules import Clock, orphan_rule
from tempsweep.models.effective import EffectivePolicy, min_free_for
from tempsweep.models.enums import DeletionReason


def emergency_needed(usage: Usage, policy: EffectivePolicy) -> bool:
    """Usage at or over the emergency threshold, or less free space than the minimum."""
    return usage.percent >= policy.rules.emergency_percent or usage.free < min_free_for(policy.rules, usage.total).bytes


def relieved(usage: Usage, policy: EffectivePolicy) -> bool:
    """Usage below the threshold minus the buffer, with the minimum free space available."""
    target = policy.rules.emergency_percent - policy.rules.emergency_buffer_percent
    return usage.percent < target and usage.free >= min_free_for(policy.rules, usage.total).bytes


def bytes_to_relief(usage: Usage, policy: EffectivePolicy) -> int:
    """How many more bytes must go before ``relieved`` holds (0 when it does)."""
    if relieved(usage, policy):
        return 0
    target = policy.rules.emergency_percent - policy.rules.emergency_buffer_percent
    # usage.percent < target  <=>  used < target * total / 100: the largest such used is one byte below
    allowed = -(-int(target * usage.total) // 100) - 1
    by_percent = max(0, usage.used - max(0, allowed))
    by_floor = max(0, min_free_for(policy.rules, usage.total).bytes - usage.free)
    return max(by_percent, by_floor, 1)


@dataclass
class _OldestHeap:
    """Keeps the ``limit`` oldest entries seen (a max-heap on mtime of bounded size)."""

    limit: int
    items: list[tuple[float, int, FileEntry]] = field(default_factory=list)
    counter: int = 0

    def offer(self, entry: FileEntry) -> None:
        self.counter += 1
        item = (-entry.mtime, self.counter, entry)
        if len(self.items) < self.limit:
            heapq.heappush(self.items, item)
        elif item > self.items[0]:
            heapq.heapreplace(self.items, item)

    def oldest_first(self) -> list[FileEntry]:
        return [entry for _, _, entry in sorted(self.items, key=lambda item: (-item[0], item[1]))]


@dataclass
class EmergencyPlan:
    """The files chosen, and whether deleting all of them is expected to relieve the storage."""

    decisions: list[Decision]
    projected: Usage
    sufficient: bool
    limited: bool = False  # the per-run budget ended the selection before the storage was relieved


@dataclass
class UncappedSize:
    """How many files the emergency would choose without maxFilesPerRun (for the blast-radius guard).

    ``estimated``: the tier where selection stops needed more files than the planner keeps, so ``count``
    is that tier's whole size -- an upper bound, which can only make the guard stricter.
    """

    count: int = 0
    bytes: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    estimated: bool = False


class EmergencyPlanner:
    """Collects candidates from one pass over the inventory, then chooses the fewest that suffice."""

    def __init__(self, policy: EffectivePolicy, clock: Clock) -> None:
        self._policy = policy
        limit = policy.rules.max_files_per_run
        self._orphan = orphan_rule(policy, clock, policy.rules.emergency_orphan_max_age_hours)
        self._phases = (
            (DeletionReason.EMERGENCY_ORPHAN, _OldestHeap(limit)),
            (DeletionReason.EMERGENCY_FAILED_JOB, _OldestHeap(limit)),
            (DeletionReason.EMERGENCY_OLDEST, _OldestHeap(limit)),
        )
        # every candidate of each tier, also those beyond the heap: the guard counts without the cap
        self._totals = [[0, 0], [0, 0], [0, 0]]

    def offer_all(self, items: Iterable[ScannedFile]) -> None:
        for item in items:
            self.offer(item)

    def offer(self, item: ScannedFile) -> None:
        phase = self._phase_of(item)
        if phase is not None:
            self._phases[phase][1].offer(item.entry)
            totals = self._totals[phase]
            totals[0] += 1
            totals[1] += item.entry.size

    def _phase_of(self, item: ScannedFile) -> int | None:
        """The phase that may take the file, or None; every owner of the file must allow it."""
        states = [owner.state for owner in item.owners]
        if any(state in KEPT_STATES for state in states):
            return None
        if item.near_miss and self._policy.rules.has_job_source:
            return None  # may be a job's file whose name did not parse
        if self._orphan(item) is not None:
            return 0
        if JobState.FAILED in states:
            return 1
        return 2

    def choose(self, usage: Usage, budget: int) -> EmergencyPlan:
        """Oldest first within each phase, phases in order, until the projected usage is relieved."""
        decisions: list[Decision] = []
        projected = usage
        for reason, heap in self._phases:
            for entry in heap.oldest_first():
                if relieved(projected, self._policy):
                    return EmergencyPlan(decisions, projected, True)
                if len(decisions) >= budget:
                    return EmergencyPlan(decisions, projected, False, limited=True)
                decisions.append(Decision(entry, reason))
                projected = projected.after_freeing(entry.size)
        return EmergencyPlan(decisions, projected, relieved(projected, self._policy))

    def uncapped(self, usage: Usage) -> UncappedSize:
        """The size of the plan ``choose`` would make with no per-run budget (same order, same stop)."""
        size = UncappedSize()
        projected = usage
        for (reason, heap), (count, total_bytes) in zip(self._phases, self._totals, strict=True):
            if relieved(projected, self._policy) or count == 0:
                continue
            taken = 0
            if not relieved(projected.after_freeing(total_bytes), self._policy):
                taken, freed = count, total_bytes  # the whole tier goes and it is not enough yet
            else:
                freed = 0
                for entry in heap.oldest_first():
                    if relieved(projected.after_freeing(freed), self._policy):
                        break
                    taken += 1
                    freed += entry.size
                if not relieved(projected.after_freeing(freed), self._policy):
                    # the heap held only the oldest ``limit`` of this tier: count the whole tier
                    taken, freed, size.estimated = count, total_bytes, True
            size.count += taken
            size.bytes += freed
            size.by_reason[reason.value] = taken
            projected = projected.after_freeing(freed)
        return size
