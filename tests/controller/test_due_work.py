"""When a policy's timer has work: ``due_work`` against a fake clock (no waiting for minute boundaries)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tempsweep.controller.schedule import DueWork, Observed, due_work
from tempsweep.models.effective import Schedule

CREATED = datetime(2026, 3, 1, 9, 58, 30, tzinfo=UTC)
SCHEDULE = Schedule(
    suspend=False,
    scheduled_cron="0 * * * *",
    orphaned_cron="30 2 * * *",
    emergency_check_seconds=300,
    stats_seconds=60,
    monitor_storage=True,
)


def observed(**changes: object) -> Observed:
    """A ready policy whose timers all acted at creation time."""
    base = Observed(
        generation=1,
        observed_generation=1,
        created=CREATED,
        suspended=False,
        ready=True,
        job_source_ok=True,
        last_stats=CREATED,
        last_emergency_check=CREATED,
        last_scheduled=None,
        last_orphaned=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_nothing_is_due_right_after_everything_ran() -> None:
    assert due_work(SCHEDULE, observed(), CREATED + timedelta(seconds=10)) == DueWork()
    assert not DueWork().anything


def test_the_scheduled_slot_is_due_at_the_cron_boundary_and_recorded_as_the_slot() -> None:
    before = due_work(SCHEDULE, observed(), datetime(2026, 3, 1, 9, 59, 59, tzinfo=UTC))
    at = due_work(SCHEDULE, observed(), datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC))
    later = due_work(SCHEDULE, observed(), datetime(2026, 3, 1, 10, 0, 7, tzinfo=UTC))

    assert before.scheduled is None
    assert at.scheduled == later.scheduled == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_missed_slots_run_once_not_once_per_slot() -> None:
    """After an outage of three hours the latest slot is due; once it is recorded nothing is due."""
    now = datetime(2026, 3, 1, 13, 20, tzinfo=UTC)
    missed = due_work(SCHEDULE, observed(last_scheduled=datetime(2026, 3, 1, 10, 0, tzinfo=UTC)), now)
    assert missed.scheduled == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)

    handled = due_work(SCHEDULE, observed(last_scheduled=missed.scheduled), now + timedelta(seconds=10))
    assert handled.scheduled is None


def test_a_new_policy_waits_for_the_first_slot_after_its_creation() -> None:
    assert due_work(SCHEDULE, observed(), datetime(2026, 3, 2, 2, 29, tzinfo=UTC)).orphaned is None
    assert due_work(SCHEDULE, observed(), datetime(2026, 3, 2, 2, 30, tzinfo=UTC)).orphaned == datetime(
        2026, 3, 2, 2, 30, tzinfo=UTC
    )


@pytest.mark.parametrize("how", ["spec-suspend", "schedule-suspend"])
def test_a_suspended_policy_has_no_work_even_when_everything_is_overdue(how: str) -> None:
    now = datetime(2026, 3, 9, tzinfo=UTC)
    status = observed(suspended=how == "spec-suspend", ready=False)
    schedule = replace(SCHEDULE, suspend=how == "schedule-suspend")
    assert due_work(schedule, status, now) == DueWork()


def test_a_busy_volume_leaves_the_work_due_for_the_next_tick() -> None:
    """A tick that found the storage busy records nothing, so the next tick gets the same slot and check."""
    first_tick = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    due = due_work(SCHEDULE, observed(), first_tick)
    assert due.emergency and due.scheduled == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

    next_tick = due_work(SCHEDULE, observed(), first_tick + timedelta(seconds=10))  # status unchanged
    assert next_tick.emergency and next_tick.scheduled == due.scheduled


def test_intervals_count_from_the_last_time_in_status() -> None:
    status = observed(last_stats=CREATED, last_emergency_check=CREATED)
    assert due_work(SCHEDULE, status, CREATED + timedelta(seconds=59)).stats is False
    assert due_work(SCHEDULE, status, CREATED + timedelta(seconds=60)).stats is True
    assert due_work(SCHEDULE, status, CREATED + timedelta(seconds=299)).emergency is False
    assert due_work(SCHEDULE, status, CREATED + timedelta(seconds=300)).emergency is True


def test_statistics_are_never_due_with_storage_monitoring_off() -> None:
    schedule = replace(SCHEDULE, monitor_storage=False)
    assert due_work(schedule, observed(last_stats=None), CREATED + timedelta(days=1)).stats is False


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(observed(observed_generation=0), id="spec-changed"),
        pytest.param(observed(ready=False), id="not-ready"),
        pytest.param(observed(job_source_ok=False), id="job-source-down"),
    ],
)
def test_a_policy_to_revalidate_has_work_every_tick(status: Observed) -> None:
    due = due_work(SCHEDULE, status, CREATED + timedelta(seconds=10))
    assert due.revalidate and due.anything


def test_a_spec_that_does_not_resolve_is_revalidated_and_nothing_else() -> None:
    assert due_work(None, observed(), datetime(2026, 3, 9, tzinfo=UTC)) == DueWork(revalidate=True)
