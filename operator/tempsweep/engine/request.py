"""What one cleanup is asked to do: the scenario and its arguments, nothing of the wire object around it.

A CleanupRun's spec also names a policy and a TTL, which are the operator's business; a timer has no
spec at all. Both, and the CLI, hand the engine a ``RunRequest``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tempsweep.models.enums import RunType
from tempsweep.models.run import CleanupRunSpec


@dataclass(frozen=True)
class RunRequest:
    """One cleanup: the scenario, and the fields that scenario takes (validated by ``CleanupRunSpec``)."""

    type: RunType
    job_id: str | None = None
    chunk_id: str | None = None
    completed_files: frozenset[str] | None = None  # ChunkCompletion: None means every file of the chunk
    max_age_hours: float | None = None
    dry_run: bool = False
    force: bool = False  # accept a plan above the blast-radius guard's limit, this once

    @classmethod
    def from_spec(cls, spec: CleanupRunSpec, *, dry_run: bool = False) -> RunRequest:
        """The request a CleanupRun makes; ``dry_run`` forces a dry run (``tempsweep run --dry-run``)."""
        return cls(
            type=spec.type,
            job_id=spec.job_id,
            chunk_id=spec.chunk_id,
            completed_files=frozenset(spec.completed_files) if spec.completed_files is not None else None,
            max_age_hours=spec.max_age_hours,
            dry_run=dry_run or bool(spec.dry_run),
            force=bool(spec.force),
        )
