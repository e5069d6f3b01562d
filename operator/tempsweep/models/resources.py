"""Status of the two custom resources, as the operator writes them (Kubernetes API conventions).

A policy's status is its storage statistics plus conditions and the times each timer last acted
(so due-ness survives an operator restart). A run's status is the engine's RunStatus plus its
lifecycle phase and progress. Every field here is declared in the CRD, because the API server
silently prunes undeclared status fields.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from tempsweep.models.base import WireModel
from tempsweep.models.enums import Health, RunPhase, RunReason, RunType
from tempsweep.models.prediction import Prediction


class Condition(WireModel):
    """A standard Kubernetes condition."""

    type: str = Field(
        description="Ready, StorageHealthy, JobSourceReachable, MinFreeSpaceApplied or JobStatusesRecognized."
    )
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(description="A CamelCase reason, e.g. PathNotAllowed.")
    message: str = Field(default="", description="What happened, for people.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(default=None, description="The generation this condition is for.")


class PolicyStatus(WireModel):
    """What the operator knows about a policy's storage."""

    observed_generation: int | None = Field(default=None, description="The spec generation last validated.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, StorageHealthy, JobSourceReachable, MinFreeSpaceApplied, JobStatusesRecognized.",
    )
    health: Health | None = Field(default=None, description="Healthy, Warning or Critical.")
    usage_percent: float | None = Field(default=None, description="Used space, percent.")
    emergency_threshold: float | None = Field(default=None, description="Effective emergency threshold, %.")
    warning_threshold: float | None = Field(default=None, description="Effective warning threshold, %.")
    total_bytes: int | None = Field(default=None, description="Capacity the usage is measured against.")
    free_bytes: int | None = Field(default=None, description="Free bytes of that capacity.")
    temp_files_count: int | None = Field(default=None, description="Files under the storage root.")
    temp_files_size_bytes: int | None = Field(default=None, description="Bytes of those files.")
    active_jobs_count: int | None = Field(default=None, description="Active jobs in the job table.")
    failed_jobs_count: int | None = Field(default=None, description="Failed jobs in the job table.")
    orphaned_files_count: int | None = Field(
        default=None, description="Files an Orphaned run would delete now."
    )
    orphaned_files_size_bytes: int | None = Field(default=None, description="Bytes of those files.")
    files_skipped_in_use: int | None = Field(
        default=None,
        description="Directories the statistics scan did not enter because another process holds a BSD flock "
        "on them (their files are not counted).",
    )
    archived_blobs_count: int | None = Field(default=None, description="Archive-tier blobs (Azure).")
    archived_blobs_size_bytes: int | None = Field(default=None, description="Bytes of archive-tier blobs.")
    cleanup_needed: bool | None = Field(default=None, description="True when an emergency cleanup is due.")
    job_source_error: str | None = Field(default=None, description="Why job status could not be read.")
    near_miss_files_count: int | None = Field(
        default=None,
        description="Files kept because their name, or a directory on their path, looks like a job's but "
        "does not parse under spec.naming.",
    )
    files_kept_unrecognized_status: int | None = Field(
        default=None,
        description="Files of jobs whose status is in none of the three status lists: kept, never deleted.",
    )
    unrecognized_job_statuses: list[str] | None = Field(
        default=None,
        description="Those statuses (normalized): add each to activeStatuses, finishedStatuses or "
        "failedStatuses.",
    )
    effective_min_free_space_bytes: int | None = Field(
        default=None,
        description="The free-space floor applied, in bytes: spec.thresholds.minFreeSpace or the inherited "
        "TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB; 0 when that default is not below the storage's size "
        "(condition MinFreeSpaceApplied=False, reason MinFreeSpaceNotApplied).",
    )
    last_stats_time: datetime | None = Field(
        default=None, description="When statistics were last written (on any change, else every 5 minutes)."
    )
    last_emergency_check_time: datetime | None = Field(default=None, description="Last emergency check.")
    last_scheduled_time: datetime | None = Field(
        default=None, description="Last scheduled cleanup (cron slot)."
    )
    last_orphaned_time: datetime | None = Field(default=None, description="Last orphan cleanup (cron slot).")
    last_cleanup_time: datetime | None = Field(default=None, description="When a cleanup last finished.")
    last_cleanup_message: str | None = Field(default=None, description="Its one-line summary.")
    last_cleanup_phase: RunPhase | None = Field(default=None, description="Its phase.")
    prediction: Prediction | None = Field(
        default=None, description="When the storage fills up at its recent rate (since the last cleanup)."
    )


class RunProgress(WireModel):
    """How far a running cleanup has got."""

    files_planned: int = Field(default=0, description="Files planned for deletion so far.")
    files_deleted: int = Field(default=0, description="Files deleted so far.")
    bytes_freed: int = Field(default=0, description="Bytes freed so far.")
    updated_time: datetime | None = Field(default=None, description="When this progress was reported.")


class CleanupRunStatus(WireModel):
    """The lifecycle and result of one CleanupRun (result fields as in the engine's RunStatus)."""

    observed_generation: int | None = Field(default=None, description="The spec generation acted on.")
    conditions: list[Condition] = Field(default_factory=list, description="Standard conditions (Complete).")
    phase: RunPhase | None = Field(default=None, description="Pending, Running, Succeeded or Failed.")
    message: str | None = Field(default=None, description="One line saying what happened.")
    reason: RunReason | None = Field(
        default=None, description="Why it failed, when the cause has a name (BlastRadiusExceeded)."
    )
    trigger: RunType | None = Field(default=None, description="The scenario that ran.")
    start_time: datetime | None = Field(default=None, description="When the cleanup started.")
    end_time: datetime | None = Field(default=None, description="When it ended.")
    completion_time: datetime | None = Field(default=None, description="When the run reached a final phase.")
    duration_seconds: float | None = Field(default=None, description="Wall time.")
    dry_run: bool | None = Field(default=None, description="True when nothing was deleted on purpose.")
    files_scanned: int | None = Field(default=None, description="Files examined.")
    files_deleted: int | None = Field(default=None, description="Files deleted.")
    files_skipped: int | None = Field(
        default=None, description="Planned files left alone because they changed."
    )
    files_skipped_in_use: int | None = Field(
        default=None,
        description="Files and directories kept because another process holds a BSD flock on them "
        "(a locked directory counts once and is not entered).",
    )
    directories_removed: int | None = Field(
        default=None, description="Directories removed because the run emptied them (removeEmptyDirectories)."
    )
    would_remove_directories: int | None = Field(
        default=None, description="Dry runs: directories that would be removed."
    )
    bytes_freed: int | None = Field(default=None, description="Bytes freed.")
    storage_before_percent: float | None = Field(default=None, description="Usage % before.")
    storage_after_percent: float | None = Field(default=None, description="Usage % after.")
    errors: list[str] | None = Field(default=None, description="The first errors.")
    error_count: int | None = Field(default=None, description="All errors.")
    deleted_by_reason: dict[str, int] | None = Field(default=None, description="Deleted files per reason.")
    would_delete: list[str] | None = Field(default=None, description="Dry runs: first paths that would go.")
    would_delete_count: int | None = Field(default=None, description="Dry runs: files that would go.")
    would_free_bytes: int | None = Field(default=None, description="Dry runs: bytes that would be freed.")
    would_delete_by_reason: dict[str, int] | None = Field(default=None, description="Dry runs: per reason.")
    limit_reached: bool | None = Field(default=None, description="maxFilesPerRun stopped the run.")
    job_queries: int | None = Field(default=None, description="Queries sent to the job source.")
    near_miss_files: int | None = Field(
        default=None, description="Files kept because a name on their path looks like a job's but does not parse."
    )
    near_miss_examples: list[str] | None = Field(default=None, description="The first few of those paths.")
    files_kept_unrecognized_status: int | None = Field(
        default=None, description="Files kept because their job's status is in none of the status lists."
    )
    unrecognized_job_statuses: list[str] | None = Field(default=None, description="Those statuses.")
    effective_min_free_space_bytes: int | None = Field(
        default=None, description="Emergency and Scheduled: the free-space floor applied, in bytes."
    )
    progress: RunProgress | None = Field(default=None, description="Progress while Running.")
