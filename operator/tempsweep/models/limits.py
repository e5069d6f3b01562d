"""CleanupPolicy ``.spec.limits``: what keeps one run bounded (batches, files per run, the blast-radius guard)."""

from __future__ import annotations

from pydantic import Field, StrictFloat, StrictInt

from tempsweep.models.base import WireModel


class LimitsSpec(WireModel):
    """Limits that keep one run bounded."""

    batch_size: StrictInt | None = Field(
        default=None, gt=0, le=100_000,
        description="Files deleted per batch. Default: TEMP_STORAGE_CLEANUP_CLEANUP_BATCH_SIZE (1000).",
    )
    max_files_per_run: StrictInt | None = Field(
        default=None, gt=0,
        description="At most this many deletions per run. Default: "
        "TEMP_STORAGE_CLEANUP_MAX_FILES_PER_CLEANUP "
        "(10000).",
    )
    parallelism: StrictInt = Field(
        default=4, ge=1, le=64,
        description="Batches deleted concurrently. 4 measured best on two-core machines with local disks.",
    )
    max_delete_percent: StrictFloat = Field(
        default=50, ge=0, le=100,
        description="Blast-radius guard: a run (other than ChunkCompletion) that plans to delete more than "
        "this % of the files it scanned deletes nothing and fails with BlastRadiusExceeded, as a truncated "
        "or swapped job table would make every file an orphan. 100 turns the guard off; force: true on a "
        "CleanupRun accepts one run.",
    )
    emergency_max_delete_percent: StrictFloat = Field(
        default=100, ge=0, le=100,
        description="The same guard for Emergency runs and the emergency phase of Scheduled runs. "
        "Default 100: off.",
    )
