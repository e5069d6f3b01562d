"""Job statuses: how a status string from the job table is compared with the policy's three lists.

Real job tables spell the same state many ways (``RUNNING``, ``Running``, `` pending`` with a stray
space), so every comparison goes through ``normalize_status``: surrounding whitespace removed, then
lower-cased. A status that normalizes into none of ``activeStatuses``, ``failedStatuses`` and
``finishedStatuses`` is *unrecognized*, and the engine keeps that job's files (fail closed): tempsweep
cannot tell whether such a job is still writing.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

#: At most this many distinct unrecognized statuses are listed in a run's or a policy's status.
MAX_UNRECOGNIZED_STATUSES = 10
#: A listed status longer than this is cut (a status column may hold any text).
MAX_STATUS_LENGTH = 64

STATUS_LISTS = ("activeStatuses", "failedStatuses", "finishedStatuses")


class StatusClass(StrEnum):
    """Which of the policy's lists a job status belongs to."""

    ACTIVE = "active"
    FAILED = "failed"
    FINISHED = "finished"
    UNRECOGNIZED = "unrecognized"  # in none of the lists: the job's files are kept


def normalize_status(status: str) -> str:
    """The form statuses are compared in: surrounding whitespace removed, lower case."""
    return status.strip().lower()


def normalized_set(statuses: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize_status(status) for status in statuses)


def check_status_lists(lists: dict[str, list[str]]) -> None:
    """Refuse blank entries and a status that, normalized, is in two lists (ValueError naming both)."""
    owner: dict[str, str] = {}
    for field, statuses in lists.items():
        for status in statuses:
            normal = normalize_status(status)
            if not normal:
                raise ValueError(f"{field}: a status may not be empty or only whitespace")
            other = owner.get(normal)
            if other is not None and other != field:
                raise ValueError(
                    f"status {status!r} is listed both in {other} and in {field} "
                    "(statuses are compared ignoring case and surrounding whitespace)"
                )
            owner[normal] = field


def shown_status(status: str) -> str:
    """A normalized status as listed in status fields and messages, cut to a bounded length."""
    normal = normalize_status(status)
    return normal if len(normal) <= MAX_STATUS_LENGTH else normal[: MAX_STATUS_LENGTH - 1] + "…"


def unrecognized_advice(statuses: Iterable[str], files: int | None = None) -> str:
    """One line naming the statuses and which list each may belong in."""
    names = ", ".join(repr(status) for status in statuses)
    kept = f" ({files} files kept)" if files is not None else ""
    return (
        f"job status {names} is in none of jobs.database.activeStatuses, failedStatuses and "
        f"finishedStatuses, so those jobs' files are kept{kept}; add each status to activeStatuses if such "
        "jobs may still write files, to finishedStatuses if they are done, or to failedStatuses if they crashed"
    )
