"""Status shapes: flat camelCase records with the statistics of the original cleanup service."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from tempsweep.models.base import WireModel
from tempsweep.models.enums import Health, RunPhase, RunReason, RunType
from tempsweep.models.statuses import MAX_UNRECOGNIZED_STATUSES

MAX_ERRORS = 50
MAX_WOULD_DELETE = 20
#: the longest path (or error message) a status lists: file names may hold control characters, which JSON
#: writes as six-character escapes, and a status larger than etcd's 1.5 MiB can never be written
MAX_SHOWN_PATH = 512
MAX_SHOWN_MESSAGE = 1024
_SHOWN_TAIL = 256  # a file name has at most 255 bytes: the tail shows which file it is


def shortened(text: str, limit: int = MAX_SHOWN_PATH) -> str:
    """``text`` cut in the middle to at most ``limit`` characters, keeping its start and its end."""
    if len(text) <= limit:
        return text
    marker = f"...({len(text)} characters)..."
    tail = min(_SHOWN_TAIL, limit // 2)
    return text[: limit - tail - len(marker)] + marker + text[-tail:]


class StorageStats(WireModel):
    """How full the storage is and how much of it could go."""

    usage_percent: float = Field(description="Used space, percent of the capacity (or of the filesystem).")
    emergency_threshold: float = Field(description="Usage % from which emergency cleanup runs.")
    warning_threshold: float = Field(description="Usage % from which health is Warning.")
    total_bytes: int = Field(description="Capacity the usage is measured against, in bytes.")
    free_bytes: int = Field(description="Free bytes left of that capacity.")
    temp_files_count: int = Field(description="Files under the storage root (excluded globs not counted).")
    temp_files_size_bytes: int = Field(description="Bytes of those files.")
    active_jobs_count: int = Field(description="Jobs in an active status in the job table.")
    failed_jobs_count: int = Field(description="Jobs in a failed status in the job table.")
    orphaned_files_count: int = Field(description="Files an Orphaned run would delete now.")
    orphaned_files_size_bytes: int = Field(description="Bytes of those files.")
    files_skipped_in_use: int = Field(
        default=0,
        description="Directories the statistics scan did not enter because another process holds a BSD flock "
        "on them (their files are not counted above). Locked files are found only when a run tries to delete "
        "them (filesSkippedInUse of the run).",
    )
    archived_blobs_count: int | None = Field(
        default=None, description="Blobs in the Archive tier (Azure only), skipped unless included."
    )
    archived_blobs_size_bytes: int | None = Field(default=None, description="Bytes of those blobs.")
    cleanup_needed: bool = Field(description="True when usage or free space calls for an emergency cleanup.")
    health: Health = Field(
        description="Healthy, Warning (from the warning threshold) or Critical; Unknown while the storage "
        "cannot be read (condition StorageHealthy says why)."
    )
    job_source_error: str | None = Field(
        default=None, description="Why job status could not be read, when it could not."
    )
    near_miss_files_count: int = Field(
        default=0,
        description="Files kept by every job rule because their name, or a directory on their path, looks "
        "like a job's but does not parse under spec.naming (e.g. job_4.2_x when ids cannot contain '.'). "
        "Rename them, widen naming.idCharacters, or exclude them.",
    )
    files_kept_unrecognized_status: int = Field(
        default=0,
        description="Files of jobs whose status is in none of activeStatuses, failedStatuses and "
        "finishedStatuses: kept like an active job's.",
    )
    unrecognized_job_statuses: list[str] = Field(
        default_factory=list,
        description=f"Those statuses (normalized: trimmed, lower case; at most {MAX_UNRECOGNIZED_STATUSES}).",
    )
    effective_min_free_space_bytes: int | None = Field(
        default=None,
        description="The free-space floor applied to this storage, in bytes: spec.thresholds.minFreeSpace, "
        "or the inherited TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB; 0 when the inherited default is not below "
        "the capacity or filesystem size and so is not applied (condition MinFreeSpaceApplied says so).",
    )


class RunStatus(WireModel):
    """What one cleanup did."""

    phase: RunPhase = Field(
        description="Succeeded, Failed, or Cancelled (stopped at a batch boundary; the figures say what was done)."
    )
    message: str = Field(description="One line saying what happened.")
    reason: RunReason | None = Field(
        default=None,
        description="Why the run failed, when the cause has a name: BlastRadiusExceeded (the plan was larger "
        "than limits.maxDeletePercent of the files scanned; nothing was deleted), AuditUnavailable (spec.audit "
        "asks for a record of every deletion and it could not be written: nothing, or nothing more, deleted).",
    )
    trigger: RunType = Field(description="The scenario that ran.")
    start_time: datetime = Field(description="When the run started (UTC).")
    end_time: datetime = Field(description="When the run ended (UTC).")
    duration_seconds: float = Field(description="Wall time of the run.")
    dry_run: bool = Field(default=False, description="True when nothing was deleted on purpose.")
    files_scanned: int = Field(default=0, description="Files examined.")
    files_deleted: int = Field(default=0, description="Files deleted.")
    files_skipped: int = Field(default=0, description="Planned files left alone because they changed since.")
    files_skipped_in_use: int = Field(
        default=0,
        description="Files and directories kept because another process holds a BSD flock on them (or on a "
        "directory above them); a locked directory counts once and is not entered. Volumes only.",
    )
    directories_removed: int = Field(
        default=0,
        description="Directories removed because this run emptied them (or they were empty and older than the "
        "orphan age); see removeEmptyDirectories.",
    )
    would_remove_directories: int = Field(
        default=0,
        description="Dry runs: directories that would be removed, assuming every planned file goes and nothing "
        "else changes in them meanwhile.",
    )
    bytes_freed: int = Field(default=0, description="Bytes freed by the deletions.")
    storage_before_percent: float | None = Field(default=None, description="Usage % before the run.")
    storage_after_percent: float | None = Field(default=None, description="Usage % after the run.")
    errors: list[str] = Field(default_factory=list, description=f"The first {MAX_ERRORS} errors.")
    error_count: int = Field(default=0, description="All errors, including those not listed.")
    deleted_by_reason: dict[str, int] = Field(default_factory=dict, description="Deleted files per reason.")
    freed_bytes_by_reason: dict[str, int] = Field(
        default_factory=dict, description="Bytes freed per reason (the same reasons as deletedByReason)."
    )
    would_delete: list[str] = Field(
        default_factory=list,
        description=f"Dry runs: the first {MAX_WOULD_DELETE} paths that would be deleted.",
    )
    would_delete_count: int = Field(default=0, description="Dry runs: how many files would be deleted.")
    would_free_bytes: int = Field(default=0, description="Dry runs: bytes that would be freed.")
    would_delete_by_reason: dict[str, int] = Field(
        default_factory=dict, description="Dry runs: files that would be deleted, per reason."
    )
    limit_reached: bool = Field(default=False, description="True when maxFilesPerRun stopped the run.")
    job_queries: int = Field(default=0, description="Queries sent to the job source.")
    near_miss_files: int = Field(
        default=0,
        description="Files kept because their name, or a directory on their path, looks like a job's but "
        "does not parse under spec.naming.",
    )
    near_miss_examples: list[str] = Field(
        default_factory=list, description="The first few of those paths."
    )
    files_kept_unrecognized_status: int = Field(
        default=0,
        description="Files kept because their job's status is in none of activeStatuses, failedStatuses and "
        "finishedStatuses (scenarios that look up job statuses).",
    )
    unrecognized_job_statuses: list[str] = Field(
        default_factory=list,
        description=f"Those statuses (normalized; at most {MAX_UNRECOGNIZED_STATUSES}).",
    )
    effective_min_free_space_bytes: int | None = Field(
        default=None,
        description="Emergency and Scheduled runs: the free-space floor applied, in bytes (0 when an "
        "inherited TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB is not below the storage's size and is not applied).",
    )
