"""Node scope: a volume that is node-local storage, cleaned on every selected node by that node's agent.

The spec side (``VolumeScope``, ``NodeSelector``) and the per-node status records. Each node's agent
writes only its own entry of a list keyed by node name (server-side apply with its own field manager),
so agents never overwrite each other; the operator writes the aggregate (``NodeSummary``, see
``tempsweep.engine.nodes``). Both lists are bounded by ``MAX_NODES``: a policy or run cannot be handled
on more nodes than fit in its status (it is refused, never half-reported).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from tempsweep.models.base import WireModel
from tempsweep.models.enums import Health, RunPhase, RunReason

#: The most nodes one policy (and one run) is handled on: each has an entry in status, and the whole
#: object must stay far below etcd's 1.5 MiB. A policy selecting more is not ready (TooManyNodes).
MAX_NODES = 256
#: The most node names a summary lists by name (the counts are always complete).
MAX_LISTED_NAMES = 20

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

#: A map-list keyed by ``node``: server-side apply merges entries by that key (one owner per entry).
NODE_MAP_LIST: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["node"]}


class VolumeScope(StrEnum):
    """Where a volume lives: one shared volume, or node-local storage on each selected node."""

    SHARED = "Shared"
    NODE = "Node"


def _check_label_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if (slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) or not _LABEL_NAME.match(
        name
    ):
        raise ValueError(f"{key!r} is not a label key (optional DNS prefix '/', then up to 63 of [A-Za-z0-9-_.])")


def _check_selector(selector: dict[str, str]) -> dict[str, str]:
    for key, value in selector.items():
        _check_label_key(key)
        if value and not _LABEL_NAME.match(value):
            raise ValueError(f"{key}: {value!r} is not a label value (up to 63 of [A-Za-z0-9-_.])")
    return selector


def check_node_name(value: str) -> str:
    if not _DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a node name (a DNS subdomain: lower case letters, digits, '-', '.')")
    return value


NodeSelector = Annotated[dict[str, str], AfterValidator(_check_selector)]
NodeName = Annotated[str, AfterValidator(check_node_name)]


def selector_matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """True when every label of ``selector`` is on the node with the same value (no selector: every node)."""
    return all(labels.get(key) == value for key, value in (selector or {}).items())


def label_selector(selector: dict[str, str] | None) -> str:
    """The selector as the API's ``labelSelector`` text (``a=b,c=d``; empty: every node)."""
    return ",".join(f"{key}={value}" for key, value in sorted((selector or {}).items()))


class PolicyNodeStatus(WireModel):
    """One node's part of a node-scoped policy's status, written by that node's agent only."""

    node: str = Field(description="The node this entry is about (the map key).")
    agent: str = Field(default="", description="The agent instance that wrote it.")
    ready: bool = Field(default=False, description="Whether the agent can clean the policy's path on this node.")
    reason: str = Field(default="", description="Why not ready (PathNotAllowed, StorageUnavailable, ...), or Ready.")
    message: str = Field(default="", description="What the agent found, for people.")
    observed_generation: int | None = Field(default=None, description="The spec generation the agent acted on.")
    updated_time: datetime | None = Field(
        default=None,
        description="When the agent last wrote this entry (at least every few minutes while it runs); an older "
        "entry counts as not reporting.",
    )
    health: Health | None = Field(default=None, description="This node's health (Unknown: storage unreadable).")
    usage_percent: float | None = Field(default=None, description="Used space on this node, percent.")
    total_bytes: int | None = Field(default=None, description="Capacity measured against on this node.")
    free_bytes: int | None = Field(default=None, description="Free bytes on this node.")
    temp_files_count: int | None = Field(default=None, description="Files under the path on this node.")
    temp_files_size_bytes: int | None = Field(default=None, description="Bytes of those files.")
    orphaned_files_count: int | None = Field(default=None, description="Files an Orphaned run would delete now.")
    job_source_error: str | None = Field(default=None, description="Why job status could not be read here.")
    last_stats_time: datetime | None = Field(default=None, description="When these figures were written.")
    last_emergency_check_time: datetime | None = Field(default=None, description="Last emergency check here.")
    last_scheduled_time: datetime | None = Field(default=None, description="Last scheduled cleanup (cron slot).")
    last_orphaned_time: datetime | None = Field(default=None, description="Last orphan cleanup (cron slot).")
    last_cleanup_time: datetime | None = Field(default=None, description="When a cleanup last finished here.")
    last_cleanup_phase: RunPhase | None = Field(default=None, description="Its phase.")
    last_cleanup_message: str | None = Field(default=None, description="Its one-line summary.")


class NodeSummary(WireModel):
    """The aggregate of a node-scoped policy's per-node entries, written by the operator only."""

    selected: int = Field(description="Nodes the policy's nodeSelector matches now.")
    reporting: int = Field(description="Selected nodes whose agent reported recently.")
    not_reporting: list[str] = Field(
        default_factory=list,
        description=f"Selected nodes with no recent report (no agent, or it stopped); the first {MAX_LISTED_NAMES}.",
    )
    not_ready: list[str] = Field(
        default_factory=list, description=f"Nodes whose agent cannot clean the path; the first {MAX_LISTED_NAMES}."
    )
    health: Health = Field(
        description="The worst node's health: Critical, then Unknown (a selected node not reporting or not "
        "readable counts as Unknown), then Warning, then Healthy."
    )
    temp_files_count: int = Field(description="Files under the path, summed over the reporting nodes.")
    temp_files_size_bytes: int = Field(description="Bytes of those files.")
    orphaned_files_count: int = Field(description="Orphaned files, summed.")
    fullest_node: str | None = Field(default=None, description="The reporting node closest to full.")
    fullest_usage_percent: float | None = Field(default=None, description="Its usage, percent.")
    message: str = Field(default="", description="One line for people, e.g. what is left out and why.")


class NodeRunStatus(WireModel):
    """One node's part of a CleanupRun on a node-scoped policy, written by that node's agent only."""

    node: str = Field(description="The node (the map key).")
    phase: RunPhase = Field(description="Running, then Succeeded, Failed or Cancelled on this node.")
    message: str = Field(default="", description="What happened on this node.")
    reason: RunReason | None = Field(default=None, description="Why it failed, when the cause has a name.")
    agent: str = Field(default="", description="The agent instance executing it on this node (its claim).")
    renew_time: datetime | None = Field(
        default=None,
        description="When that agent last renewed its claim; a claim not renewed within the run lease may be "
        "taken over by the node's next agent (one agent per node).",
    )
    start_time: datetime | None = Field(default=None, description="When this node started.")
    completion_time: datetime | None = Field(default=None, description="When this node finished.")
    dry_run: bool = Field(default=False, description="True when nothing was deleted on purpose.")
    files_scanned: int = Field(default=0, description="Files examined on this node.")
    files_planned: int = Field(default=0, description="Files planned for deletion so far.")
    files_deleted: int = Field(default=0, description="Files deleted on this node.")
    files_skipped: int = Field(default=0, description="Planned files left alone because they changed since.")
    bytes_freed: int = Field(default=0, description="Bytes freed on this node.")
    error_count: int = Field(default=0, description="Errors on this node.")
    would_delete_count: int = Field(default=0, description="Dry runs: files that would be deleted here.")
    would_free_bytes: int = Field(default=0, description="Dry runs: bytes that would be freed here.")
