"""Status of the two custom resources, as the operator writes them (Kubernetes API conventions).

A policy's status is the engine's ``StorageStats`` plus conditions and the times each timer last
acted (so due-ness survives an operator restart). A run's status is the engine's ``RunStatus`` plus
its lifecycle phase and progress. The engine's records are composed in, not copied: a field marked
``INLINE`` holds the engine's model and is written flat into status (the CRD generator merges its
properties the same way), so the engine's record and the wire status cannot drift apart.

Every status write is one of these models, serialised by ``status_patch`` and nothing else; a unit
test checks every key it can produce against the CRD, because the API server silently prunes
undeclared status fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from tempsweep.models.base import WireModel
from tempsweep.models.enums import Health, RunPhase
from tempsweep.models.node_scope import MAX_NODES, NODE_MAP_LIST, NodeRunStatus, NodeSummary, PolicyNodeStatus
from tempsweep.models.prediction import Prediction
from tempsweep.models.status import RunStatus, StorageStats

#: Marks a field whose model is written flat into its parent (see ``status_patch``).
INLINE_KEY = "x-tempsweep-inline"
INLINE: dict[str, Any] = {INLINE_KEY: True}


#: Nested parts written whole, their None fields as null: a merge patch keeps every key it does not name,
#: so a ``fullAt`` that is no longer predicted would otherwise stay in status.
WHOLE_FIELDS = frozenset({"prediction"})


def _is_inline(model: type[WireModel], name: str) -> bool:
    extra = model.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get(INLINE_KEY))


def status_patch(status: WireModel) -> dict[str, Any]:
    """The merge patch of ``status``: the one place a status model becomes wire keys.

    Fields left None are not part of the patch (they keep their value on the server). An inline part,
    and a part named in ``WHOLE_FIELDS``, is written whole, its None fields as null, so a statistic that
    disappeared (``jobSourceError`` after an outage, ``fullAt`` after a drop) is cleared rather than left
    behind; on a name clash the inline part wins.
    """
    model = type(status)
    inline = [name for name in model.model_fields if _is_inline(model, name)]
    patch = status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude=set(inline))
    for name in inline:
        part = getattr(status, name)
        if part is not None:
            patch.update(part.model_dump(mode="json", by_alias=True))
    for name in WHOLE_FIELDS & set(model.model_fields):
        part = getattr(status, name)
        if part is not None:  # replaced whole: a time no longer predicted is cleared, not left behind
            patch[model.model_fields[name].alias or name] = part.model_dump(mode="json", by_alias=True)
    return patch


class Condition(WireModel):
    """A standard Kubernetes condition."""

    type: str = Field(
        description="Ready, StorageHealthy, JobSourceReachable, MinFreeSpaceApplied or JobStatusesRecognized "
        "(policies); Complete (runs)."
    )
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase reason, e.g. PathNotAllowed.")
    message: str = Field(default="", description="What happened, for people.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(default=None, description="The generation this condition is for.")


class PolicyStatus(WireModel):
    """What the operator knows about a policy's storage (each field left None is not written)."""

    observed_generation: int | None = Field(default=None, description="The spec generation last validated.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready, StorageHealthy, JobSourceReachable, MinFreeSpaceApplied, JobStatusesRecognized.",
    )
    stats: StorageStats | None = Field(
        default=None, description="The storage statistics, written flat into status.", json_schema_extra=INLINE
    )
    health: Health | None = Field(
        default=None,
        description="Healthy, Warning or Critical from the statistics; Unknown while the storage cannot be read.",
    )
    last_stats_time: datetime | None = Field(
        default=None, description="When statistics were last written (on any change, else every 5 minutes)."
    )
    last_emergency_check_time: datetime | None = Field(default=None, description="Last emergency check.")
    last_scheduled_time: datetime | None = Field(default=None, description="Last scheduled cleanup (cron slot).")
    last_orphaned_time: datetime | None = Field(default=None, description="Last orphan cleanup (cron slot).")
    last_cleanup_time: datetime | None = Field(default=None, description="When a cleanup last finished.")
    last_cleanup_message: str | None = Field(default=None, description="Its one-line summary.")
    last_cleanup_phase: RunPhase | None = Field(default=None, description="Its phase.")
    prediction: Prediction | None = Field(
        default=None, description="When the storage fills up at its recent rate (since the last cleanup)."
    )
    node_summary: NodeSummary | None = Field(
        default=None, description="scope Node: the aggregate of status.nodes, written by the operator."
    )
    nodes: list[PolicyNodeStatus] | None = Field(
        default=None,
        max_length=MAX_NODES,
        description=f"scope Node: one entry per selected node (at most {MAX_NODES}), each written only by that "
        "node's agent (server-side apply, field manager tempsweep-agent/NODE); the operator only removes the "
        "entries of nodes no longer selected whose agent stopped writing.",
        json_schema_extra=NODE_MAP_LIST,
    )
    last_predictive_time: datetime | None = Field(
        default=None,
        description="When spec.prediction last started a Predictive cleanup (at most one per its cooldown).",
    )

    @classmethod
    def last_cleanup(cls, result: RunStatus) -> PolicyStatus:
        """The ``lastCleanup*`` fields of a finished cleanup (a timer's or a CleanupRun's): written here only."""
        return cls(
            last_cleanup_time=result.end_time.replace(microsecond=0),
            last_cleanup_message=result.message,
            last_cleanup_phase=result.phase,
        )


class RunProgress(WireModel):
    """How far a running cleanup has got."""

    files_planned: int = Field(default=0, description="Files planned for deletion so far.")
    files_deleted: int = Field(default=0, description="Files deleted so far.")
    bytes_freed: int = Field(default=0, description="Bytes freed so far.")
    deleted_by_reason: dict[str, int] | None = Field(
        default=None, description="Deleted files per reason so far (a resumed run carries them on)."
    )
    updated_time: datetime | None = Field(default=None, description="When this progress was reported.")


class RunClaim(WireModel):
    """Which operator executes the run: a lease it renews while it works; an expired one may be taken over."""

    holder: str = Field(description="The operator instance executing the run (POD_ID, else host-pid-random).")
    renew_time: datetime = Field(description="When the holder last renewed its claim.")
    lease_seconds: int = Field(description="The claim expires this long after renewTime unless renewed.")


class CleanupRunStatus(WireModel):
    """The lifecycle and result of one CleanupRun (each field left None is not written)."""

    observed_generation: int | None = Field(default=None, description="The spec generation acted on.")
    conditions: list[Condition] | None = Field(default=None, description="Standard conditions (Complete).")
    phase: RunPhase | None = Field(default=None, description="Pending, Running, Succeeded, Failed or Cancelled.")
    message: str | None = Field(default=None, description="One line saying what happened.")
    queue_position: int | None = Field(
        default=None,
        ge=0,
        description="While Pending: the run's place in its storage's queue (1 = next to run). Rewritten when it "
        "has at least halved, so it is an upper bound; 0 once the run has left the queue.",
    )
    start_time: datetime | None = Field(
        default=None, description="When the cleanup first started (kept when a restarted operator resumes it)."
    )
    completion_time: datetime | None = Field(default=None, description="When the run reached a final phase.")
    progress: RunProgress | None = Field(default=None, description="Progress while Running.")
    claim: RunClaim | None = Field(
        default=None, description="Which operator instance executes (or executed) the run; exactly one does."
    )
    result: RunStatus | None = Field(
        default=None, description="What the cleanup did, written flat into status.", json_schema_extra=INLINE
    )
    target_nodes: list[str] | None = Field(
        default=None,
        max_length=MAX_NODES,
        description="Policies of scope Node: the nodes this run must run on (the policy's selected nodes when "
        "it started, or spec.nodeName); the run is complete when each has reported.",
    )
    nodes: list[NodeRunStatus] | None = Field(
        default=None,
        max_length=MAX_NODES,
        description="Policies of scope Node: each target node's result, written only by that node's agent.",
        json_schema_extra=NODE_MAP_LIST,
    )
