"""Standard Kubernetes conditions, typed: read them from status, find one, set one.

Setting a condition keeps its ``lastTransitionTime`` while its status is unchanged, so a condition
rewritten every tick still says when it last changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tempsweep.models.resources import Condition


def read_conditions(raw: Any) -> list[Condition]:
    """The conditions in a status as the API server returned it; an entry that does not parse is dropped."""
    conditions = []
    for item in raw if isinstance(raw, list) else []:
        try:
            conditions.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return conditions


def find_condition(conditions: Iterable[Condition], type: str) -> Condition | None:
    """The condition of ``type``, if there is one."""
    return next((condition for condition in conditions if condition.type == type), None)


def condition(type: str, status: bool | None, reason: str, message: str, now: datetime) -> Condition:
    """A condition as of ``now``; ``status`` None means Unknown."""
    text = "Unknown" if status is None else ("True" if status else "False")
    return Condition(type=type, status=text, reason=reason, message=message, last_transition_time=now)


def set_condition(conditions: Iterable[Condition], new: Condition) -> list[Condition]:
    """A new list with ``new`` in place of the condition of its type; the others kept as they are."""
    existing = {item.type: item for item in conditions}
    previous = existing.get(new.type)
    if previous is not None and previous.status == new.status:
        new = new.model_copy(update={"last_transition_time": previous.last_transition_time})
    existing[new.type] = new
    return list(existing.values())
