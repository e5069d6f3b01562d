"""Stopping a run between batches (``CleanupContext.should_stop``): what was done is reported, nothing more is done.

The operator asks between every round of batches whether the run, its policy or a suspend says stop. The
engine must then delete nothing further, end ``Cancelled`` with the reason, and report exactly the files that
are gone -- a count the event, ``lastCleanup*`` and the history row are built from.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep_helpers import Tree, effective_policy, run_spec
from tempsweep.engine import CleanupContext, RunRequest, run_cleanup
from tempsweep.models import RunPhase
from tempsweep.storage import VolumeStorage

OLD = 1000.0


class StopAfter:
    """Says "stop" from the Nth question on, and counts the questions."""

    def __init__(self, answers_before_stop: int) -> None:
        self.left = answers_before_stop
        self.asked = 0

    def __call__(self) -> str | None:
        self.asked += 1
        if self.left <= 0:
            return "the CleanupRun was deleted"
        self.left -= 1
        return None


def _run(root: Path, now: datetime, stop: StopAfter, *, run_type: str = "Orphaned", **policy_overrides: object):
    policy = effective_policy(root, orphans={"maxAgeHours": 1}, **policy_overrides)
    context = CleanupContext(policy=policy, storage=VolumeStorage(str(root)), now=now, should_stop=stop)
    return run_cleanup(context, RunRequest.from_spec(run_spec(run_type)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.integers(min_value=0, max_value=40),
    batch=st.integers(min_value=1, max_value=6),
    parallelism=st.integers(min_value=1, max_value=3),
    stop_after=st.integers(min_value=0, max_value=12),
    dry_run=st.booleans(),
)
def test_a_stopped_run_reports_exactly_what_it_did(
    tmp_path_factory: object, now: datetime, files: int, batch: int, parallelism: int, stop_after: int, dry_run: bool
) -> None:
    root = tmp_path_factory.mktemp("volume")  # type: ignore[attr-defined]
    tree = Tree(root, now)
    for index in range(files):
        tree.file(f"d{index % 4}/old{index}.tmp", age_hours=OLD, size=3)
    stop = StopAfter(stop_after)

    status = _run(root, now, stop, dryRun=dry_run, limits={"batchSize": batch, "parallelism": parallelism})

    left = len(tree.files())
    assert status.files_deleted == files - left  # the count is what is gone, cancelled or not
    rounds = -(-files // (batch * parallelism)) if files else 0
    if dry_run:
        assert left == files
    if status.phase is RunPhase.CANCELLED:
        assert "cancelled: the CleanupRun was deleted" in status.message
        assert status.files_deleted + status.would_delete_count < files or files == 0
    else:
        assert status.phase is RunPhase.SUCCEEDED
        assert left == (files if dry_run else 0)
    if not dry_run and files:
        # asked when the run starts and before each round of batches: it stops at a round's boundary
        assert status.files_deleted % (batch * parallelism) == 0 or status.phase is RunPhase.SUCCEEDED
        assert (status.phase is RunPhase.CANCELLED) == (stop_after <= rounds)


def test_a_run_stopped_before_it_starts_deletes_nothing(tree: Tree, now: datetime) -> None:
    for index in range(5):
        tree.file(f"old{index}.tmp", age_hours=OLD)

    status = _run(tree.root, now, StopAfter(0))

    assert status.phase is RunPhase.CANCELLED
    assert status.files_deleted == 0
    assert len(tree.files()) == 5


def test_a_cancelled_scheduled_run_skips_its_later_phases(tree: Tree, now: datetime) -> None:
    for index in range(6):
        tree.file(f"old{index}.tmp", age_hours=OLD, size=100)

    status = _run(
        tree.root, now, StopAfter(0), run_type="Scheduled", storage={"volume": {"capacity": 10_000}}
    )

    assert status.phase is RunPhase.CANCELLED
    assert len(tree.files()) == 6
