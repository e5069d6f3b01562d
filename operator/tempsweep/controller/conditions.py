"""Standard Kubernetes conditions: update one, keeping lastTransitionTime when the status is unchanged."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def set_condition(
    conditions: list[dict[str, Any]] | None,
    *,
    type: str,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """A new conditions list with ``type`` set; other conditions are kept as they are."""
    text = "Unknown" if status is None else ("True" if status else "False")
    existing = {c.get("type"): c for c in conditions or []}
    previous = existing.get(type)
    changed = previous is None or previous.get("status") != text
    existing[type] = {
        "type": type,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now.isoformat().replace("+00:00", "Z")
        if changed
        else previous.get("lastTransitionTime", now.isoformat()),  # type: ignore[union-attr]
        **({"observedGeneration": generation} if generation is not None else {}),
    }
    return list(existing.values())
