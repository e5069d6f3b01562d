"""When is a timer's work due? Pure functions of the schedule, the time kept in status, and now.

Kopf timers keep no state across restarts and would all fire at start-up. Instead the operator
ticks often and asks here. Cron work is due when a cron slot has passed since the slot last
handled (or, for a new policy, since the policy was created); the slot itself is recorded, so
after an outage the missed slot runs once — not once per missed slot, and not never.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from croniter import croniter


def parse_time(value: object) -> datetime | None:
    """A timestamp from status (RFC 3339 text) or None."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def due_cron_slot(
    cron: str, last_slot: datetime | None, baseline: datetime, now: datetime
) -> datetime | None:
    """The latest cron slot at or before ``now`` if it is newer than the last handled one, else None."""
    slot: datetime = croniter(cron, now).get_prev(datetime)
    if croniter.match(cron, now.replace(second=0, microsecond=0)) and now.second == 0:
        slot = now.replace(microsecond=0)
    handled = last_slot or baseline
    return slot if slot > handled else None


@lru_cache(maxsize=8192)
def _next_slot_after(cron: str, handled: datetime) -> datetime:
    slot: datetime = croniter(cron, handled).get_next(datetime)
    return slot


def cron_due(cron: str, last_slot: datetime | None, baseline: datetime, now: datetime) -> bool:
    """Whether ``due_cron_slot`` would return a slot; cheap, because the next slot after the last handled
    one is computed once and remembered (every policy asks this at every tick)."""
    return _next_slot_after(cron, last_slot or baseline) <= now


def interval_due(seconds: float, last: datetime | None, now: datetime) -> bool:
    """True when ``seconds`` have passed since ``last`` (or it never ran)."""
    return last is None or (now - last).total_seconds() >= seconds - 0.5
