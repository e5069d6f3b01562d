"""This node's entries in a policy's or run's status: read them, and write them by server-side apply.

Every apply carries the whole entry (a field left out of an apply is removed: the agent's field manager
owned it); ``withdraw`` applies none, which removes this node's entry and nothing else.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tempsweep.controller.kube import Kube, Written
from tempsweep.controller.node_api import agent_manager, apply_status
from tempsweep.controller.writer import POLICIES, RUNS
from tempsweep.models.node_scope import NodeRunStatus, PolicyNodeStatus

Entry = TypeVar("Entry", bound=BaseModel)


def find_entry(body: Any, node: str, entry_type: type[Entry]) -> Entry | None:
    """This node's entry in the object's ``status.nodes``; None when there is none (or it does not parse)."""
    for item in (body.get("status") or {}).get("nodes") or []:
        if isinstance(item, dict) and item.get("node") == node:
            try:
                return entry_type.model_validate(item)
            except ValidationError:
                return None
    return None


def write_policy_entry(kube: Kube, body: Any, entry: PolicyNodeStatus) -> Written:
    return apply_status(kube, POLICIES, body.get("metadata") or {}, {"nodes": [entry.to_wire()]},
                        manager=agent_manager(entry.node))


def write_run_entry(kube: Kube, meta: dict[str, Any], entry: NodeRunStatus, *, resource_version: str = "") -> Written:
    return apply_status(kube, RUNS, meta, {"nodes": [entry.to_wire()]}, manager=agent_manager(entry.node),
                        resource_version=resource_version)


def withdraw(kube: Kube, body: Any, node: str) -> Written:
    """Remove this node's entry from a policy that no longer selects the node."""
    return apply_status(kube, POLICIES, body.get("metadata") or {}, {}, manager=agent_manager(node))
