"""CleanupRun ``.spec``: one manual cleanup of one policy's storage."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from tempsweep.models.base import FiniteFloat, WireModel
from tempsweep.models.enums import RunType
from tempsweep.models.idchars import universe_problem
from tempsweep.models.naming import is_plain_name
from tempsweep.models.node_scope import NodeName


def _check_id(value: str) -> str:
    # the policy's naming.idCharacters narrows this further; the run is checked against it when it runs
    problem = universe_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_names(values: list[str]) -> list[str]:
    for index, value in enumerate(values):
        if not is_plain_name(value):
            raise ValueError(
                f"entry {index} ({value!r}) is not a plain file name: no '/', '..', '.', NUL or empty names"
            )
    return values


FileName = Annotated[str, StringConstraints(max_length=255)]
JobId = Annotated[str, AfterValidator(_check_id)]


class PolicyRef(WireModel):
    """The CleanupPolicy, in the run's own namespace, whose storage this run cleans."""

    name: str = Field(min_length=1, description="Name of the CleanupPolicy in the same namespace.")


class CleanupRunSpec(WireModel):
    """One manual cleanup."""

    policy_ref: PolicyRef = Field(description="The policy whose storage and rules this run uses.")
    type: RunType = Field(description="The cleanup scenario.")
    job_id: JobId | None = Field(
        default=None,
        description="ChunkCompletion: the job (required). CrashRecovery: one failed job, or every failed job "
        "when left out. Only characters the policy's naming.idCharacters allows (checked when the run starts; "
        "a run with any other id fails with InvalidSpec and deletes nothing).",
    )
    chunk_id: JobId | None = Field(
        default=None,
        description="ChunkCompletion: the completed chunk (required); the same id characters as jobId.",
    )
    completed_files: Annotated[list[FileName], AfterValidator(_check_names)] | None = Field(
        default=None,
        max_length=10_000,
        description="ChunkCompletion: file names after the chunk prefix that were processed; left out, every "
        "file of the chunk.",
    )
    max_age_hours: FiniteFloat | None = Field(
        default=None, gt=0, description="Orphaned: the orphan age for this run (default: the policy's)."
    )
    dry_run: StrictBool | None = Field(
        default=None, description="Report what would be deleted, delete nothing."
    )
    force: StrictBool | None = Field(
        default=None,
        description="Accept a plan larger than the policy's limits.maxDeletePercent (or "
        "emergencyMaxDeletePercent) for this run only: a person has checked the plan (a dry run shows it).",
    )
    node_name: NodeName | None = Field(
        default=None,
        max_length=253,
        description="Policies of scope Node: run on this node only (it must be one the policy selects); left "
        "out, on every selected node. Refused for a policy of scope Shared.",
    )
    ttl_seconds_after_finished: StrictInt | None = Field(
        default=None, ge=0,
        description="Delete this CleanupRun this many seconds after it finished (operator default: 86400).",
    )

    @model_validator(mode="after")
    def _scenario_fields(self) -> CleanupRunSpec:
        if self.type is RunType.CHUNK_COMPLETION and (self.job_id is None or self.chunk_id is None):
            raise ValueError("ChunkCompletion needs jobId and chunkId")
        chunk_fields = self.chunk_id is not None or self.completed_files is not None
        if self.type is not RunType.CHUNK_COMPLETION and chunk_fields:
            raise ValueError("chunkId and completedFiles only apply to ChunkCompletion")
        if self.type not in (RunType.CHUNK_COMPLETION, RunType.CRASH_RECOVERY) and self.job_id is not None:
            raise ValueError(f"jobId does not apply to {self.type.value}")
        if self.max_age_hours is not None and self.type is not RunType.ORPHANED:
            raise ValueError("maxAgeHours only applies to Orphaned")
        return self
