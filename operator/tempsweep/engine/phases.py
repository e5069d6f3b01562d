"""What every scenario shares: the outcome it reports, how a plan streams, and what a scan met.

Split from ``runs`` so the scenarios (``runs``) and the emergency phase (``emergency_phase``) read the
same small vocabulary. Pure apart from the storage reads the context makes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from tempsweep.engine.applier import Applier, Decision
from tempsweep.engine.context import CleanupContext
from tempsweep.engine.inventory import Inventory, JobResolver
from tempsweep.engine.ports import FilesystemStorage, Usage
from tempsweep.engine.rules import Rule
from tempsweep.models.effective import MinFree
from tempsweep.models.enums import RunReason

#: How every run says that a job-source outage kept files (the CLI, the operator and the history agree).
JOB_STATUS_UNAVAILABLE = "job status unavailable, files of jobs were kept"


class RunFailed(Exception):
    """The run cannot go on; the message says why (it becomes the Failed status' message)."""


@dataclass
class PhaseOutcome:
    """What a scenario reports back besides the tally."""

    note: str = ""
    failed: bool = False
    reason: RunReason | None = None
    before: Usage | None = None
    after: Usage | None = None
    files_scanned: int = 0
    planned: frozenset[str] = frozenset()  # paths an emergency phase already chose
    min_free: MinFree | None = None  # the free-space floor an emergency check applied
    unrecognized_files: int = 0
    unrecognized: set[str] = field(default_factory=set)
    near_misses: int = 0  # files kept because a name on their path looks like a job's but does not parse
    near_miss_examples: tuple[str, ...] = ()

    def saw(self, inventory: Inventory, resolver: JobResolver) -> None:
        """Take over what a scan met: files kept for an unrecognized job status or a near-miss name."""
        self.unrecognized_files = max(self.unrecognized_files, inventory.unrecognized_files)
        self.unrecognized |= resolver.unrecognized
        if inventory.near_miss_count >= self.near_misses:
            self.near_misses = inventory.near_miss_count
            self.near_miss_examples = tuple(inventory.near_miss_examples)

    def blocked(self, message: str | None) -> None:
        """The guard stopped the plan: the run fails, and says why before anything else."""
        if message:
            self.failed, self.reason = True, RunReason.BLAST_RADIUS_EXCEEDED
            rest = self.note.strip().rstrip(";")
            self.note = message + (f"; {rest}" if rest else "")


def plan_decisions(inventory: Inventory, rule: Rule) -> Iterator[Decision]:
    """The decisions of ``rule`` over the streamed inventory."""
    for item in inventory:
        reason = rule(item)
        if reason is not None:
            yield Decision(item.entry, reason)


def usage_after(ctx: CleanupContext, before: Usage, freed: int) -> Usage:
    """Usage once ``freed`` bytes are gone: measured on a filesystem, computed against a capacity."""
    if ctx.policy.rules.capacity_bytes is None:
        return ctx.storage.filesystem_usage() or before
    return before.after_freeing(freed)


def scan_notes(ctx: CleanupContext, applier: Applier) -> None:
    """What the last scan met besides files: problems (errors) and locked directories (kept, counted)."""
    for problem in ctx.storage.scan_errors():
        applier.tally.add_error(problem)
    if isinstance(ctx.storage, FilesystemStorage):
        applier.tally.in_use.update(path + "/" for path in ctx.storage.skipped_in_use())
