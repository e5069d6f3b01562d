"""CleanupPolicy ``.spec``: which storage, how files are named, where job status lives, and limits.

Fields that an operator-wide setting can provide are optional here: left out, the policy inherits
the setting (see ``tempsweep.models.effective``). Descriptions become ``kubectl explain`` text.
"""

from __future__ import annotations

import re
from typing import Annotated

from croniter import croniter
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    model_validator,
)

from tempsweep.models.base import FiniteFloat, WireModel
from tempsweep.models.exclude import ExcludePattern, check_exclude_list
from tempsweep.models.foresight import AuditSpec, PredictionSpec
from tempsweep.models.limits import LimitsSpec
from tempsweep.models.naming_spec import NamingSpec
from tempsweep.models.node_scope import NodeSelector, VolumeScope
from tempsweep.models.paths import check_volume_path
from tempsweep.models.quantities import parse_duration, parse_quantity
from tempsweep.models.statuses import check_status_lists

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _quantity_input(value: object) -> object:
    # before the int|str union: a boolean or a float would otherwise be coerced (true -> 1 byte) or be
    # reported per union member ("capacity.int: ...") instead of as one message about the field
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a size: use a whole number of bytes or a quantity such as 50Gi")
    return value


def _check_quantity(value: int | str) -> int | str:
    parse_quantity(value)
    return value


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


def _check_cron(value: str) -> str:
    # croniter also takes a sixth field (seconds: '*/5 * * * * *' fires every five seconds) and a seventh
    # (years); Kubernetes CronJobs and the documentation mean five, so only five (or a macro) are accepted
    fields = len(value.split())
    if not croniter.is_valid(value) or (not value.strip().startswith("@") and fields != 5):
        raise ValueError(f"{value!r} is not a cron expression (five fields, e.g. '0 * * * *')")
    return value


def _check_identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a plain SQL identifier "
            "(letters, digits and '_', starting with a letter or '_')"
        )
    return value


def _check_table(value: str) -> str:
    parts = value.split(".")
    if len(parts) > 2:
        raise ValueError(f"{value!r}: a table is 'name' or 'schema.name'")
    for part in parts:
        _check_identifier(part)
    return value


Quantity = Annotated[int | str, BeforeValidator(_quantity_input), AfterValidator(_check_quantity)]
Duration = Annotated[str, AfterValidator(_check_duration)]
Cron = Annotated[str, AfterValidator(_check_cron)]
SqlIdentifier = Annotated[str, AfterValidator(_check_identifier)]
VolumePath = Annotated[str, AfterValidator(check_volume_path)]


class SecretKeyRef(WireModel):
    """A key in a Secret in the policy's own namespace."""

    name: str = Field(min_length=1, description="Name of the Secret, in the same namespace as the policy.")
    key: str = Field(min_length=1, description="Key inside the Secret whose value is used.")


class VolumeStorage(WireModel):
    """A filesystem path mounted into the operator."""

    path: VolumePath | None = Field(
        default=None,
        description="Absolute path of the directory to clean, as mounted into the operator. It must lie "
        "under one of the operator's allowed roots. Default: the operator setting "
        "TEMP_STORAGE_CLEANUP_TEMP_STORAGE_PATH. Cleaned as systemd-tmpfiles does: symlinks are never "
        "followed, mount points never entered; a file or directory another process holds a BSD flock on is "
        "kept with everything below it (filesSkippedInUse; POSIX fcntl locks and merely open files are not "
        "seen); directories are walked linearly down to 4096 levels or 16384 characters of path, and deeper "
        "subtrees are reported as an error, not scanned, not cleaned.",
    )
    capacity: Quantity | None = Field(
        default=None,
        description="Capacity reserved for temp files, e.g. 50Gi. When set, usage % = bytes of files "
        "under the "
        "path / capacity; otherwise the filesystem's own usage is used.",
    )
    scope: VolumeScope = Field(
        default=VolumeScope.SHARED,
        description="Shared: one volume mounted into the operator, cleaned by the operator. Node: the path is "
        "node-local storage (hostPath, local PersistentVolume), the same path on every node nodeSelector "
        "selects, cleaned on each node by that node's tempsweep agent (the node-agent DaemonSet); the "
        "policy's status shows per-node figures (status.nodes) and their aggregate (status.nodeSummary).",
    )
    node_selector: NodeSelector | None = Field(
        default=None,
        description="scope Node only: node labels that must all match (as a Pod's nodeSelector); left out, "
        "every node with an agent. A node not selected is never cleaned by this policy.",
    )

    @model_validator(mode="after")
    def _selector_needs_node_scope(self) -> VolumeStorage:
        if self.node_selector is not None and self.scope is not VolumeScope.NODE:
            raise ValueError("nodeSelector only applies to scope Node")
        return self


class AzureBlobStorage(WireModel):
    """An Azure Blob Storage container (or a prefix inside it)."""

    container: str = Field(min_length=3, max_length=63, description="Name of the blob container.")
    prefix: str = Field(
        default="",
        description="Only blobs whose names start with this prefix are ever considered; their names after the "
        "prefix play the role of file paths.",
    )
    capacity: Quantity = Field(
        description="Capacity reserved for temp blobs: usage % = bytes under the prefix / capacity."
    )
    connection_string: str | None = Field(
        default=None,
        repr=False,
        description="Connection string, for offline use; in the cluster prefer connectionStringSecretRef (anyone "
        "who can read the policy can read this string).",
    )
    connection_string_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the storage account connection string."
    )
    account_url: str | None = Field(
        default=None,
        description="Account URL (https://ACCOUNT.blob.core.windows.net) used with workload identity / "
        "DefaultAzureCredential.",
    )
    include_archive_tier: StrictBool = Field(
        default=False,
        description="Also delete blobs in the Archive tier (early deletion from Archive is charged).",
    )

    @model_validator(mode="after")
    def _one_credential(self) -> AzureBlobStorage:
        given = [
            name
            for name, value in (
                ("connectionString", self.connection_string),
                ("connectionStringSecretRef", self.connection_string_secret_ref),
                ("accountUrl", self.account_url),
            )
            if value
        ]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of connectionString, connectionStringSecretRef and accountUrl"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class StorageSpec(WireModel):
    """Where the temp files are: exactly one backend."""

    volume: VolumeStorage | None = Field(default=None, description="A volume mounted into the operator.")
    azure_blob: AzureBlobStorage | None = Field(default=None, description="An Azure Blob Storage container.")

    @model_validator(mode="after")
    def _exactly_one(self) -> StorageSpec:
        if (self.volume is None) == (self.azure_blob is None):
            raise ValueError("set exactly one storage backend: volume or azureBlob")
        return self


class DatabaseSpec(WireModel):
    """The SQL table where the application keeps its job status."""

    url: str | None = Field(
        default=None,
        repr=False,
        description="SQLAlchemy URL (sqlite:///jobs.db, postgresql+psycopg://...). For offline use; in the "
        "cluster prefer urlSecretRef. Default: the operator setting TEMP_STORAGE_CLEANUP_DATABASE_URL.",
    )
    url_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the database URL (in the cluster)."
    )
    table: Annotated[str, AfterValidator(_check_table)] = Field(
        default="crawl_jobs", description="Table (or schema.table) holding one row per job."
    )
    id_column: SqlIdentifier = Field(default="id", description="Column with the job id used in file names.")
    status_column: SqlIdentifier = Field(default="status", description="Column with the job's status.")
    updated_at_column: SqlIdentifier = Field(
        default="updated_at",
        description="Column with the time of the job's last status change; naive timestamps are taken "
        "as UTC.",
    )
    active_statuses: list[str] = Field(
        default_factory=lambda: ["pending", "running"],
        min_length=1,
        description="Statuses of jobs that may still write files: their files are never deleted "
        "automatically. Statuses are compared ignoring case and surrounding whitespace; a status in none "
        "of the three lists counts as unrecognized and its jobs' files are kept like an active job's.",
    )
    failed_statuses: list[str] = Field(
        default_factory=lambda: ["failed", "cancelled", "error"],
        description="Statuses of crashed jobs whose files crash recovery deletes.",
    )
    finished_statuses: list[str] = Field(
        default_factory=lambda: ["completed", "succeeded", "done", "finished", "success"],
        description="Statuses of jobs that ended normally: their files are orphans once older than "
        "orphans.maxAgeHours.",
    )
    query_timeout_seconds: FiniteFloat = Field(
        default=10, gt=0, le=3600, description="Statement timeout for each job-status query, in seconds."
    )
    history_table: SqlIdentifier | None = Field(
        default=None,
        description="When set, every finished cleanup appends one row to this table (created if missing).",
    )

    @model_validator(mode="after")
    def _statuses_disjoint(self) -> DatabaseSpec:
        check_status_lists(
            {
                "activeStatuses": self.active_statuses,
                "failedStatuses": self.failed_statuses,
                "finishedStatuses": self.finished_statuses,
            }
        )
        if self.url and self.url_secret_ref:
            raise ValueError("set url or urlSecretRef, not both")
        return self


class JobsSpec(WireModel):
    """Where job status lives. Without it the policy runs age-only, like tmpreaper."""

    database: DatabaseSpec = Field(description="The SQL job table.")


class ThresholdsSpec(WireModel):
    """Storage usage thresholds."""

    warning_percent: FiniteFloat | None = Field(
        default=None, gt=0, le=100,
        description="Usage % from which health is Warning. Default: "
        "TEMP_STORAGE_CLEANUP_WARNING_THRESHOLD (85).",
    )
    emergency_percent: FiniteFloat | None = Field(
        default=None, gt=0, le=100,
        description="Usage % from which health is Critical and emergency cleanup runs. Default: "
        "TEMP_STORAGE_CLEANUP_EMERGENCY_CLEANUP_THRESHOLD (95).",
    )
    emergency_buffer_percent: FiniteFloat = Field(
        default=10, ge=0, lt=100,
        description="Emergency cleanup stops once usage is below emergencyPercent minus this buffer.",
    )
    min_free_space: Quantity | None = Field(
        default=None,
        description="Free space below which emergency cleanup runs, e.g. 1Gi; must be smaller than the "
        "capacity (refused otherwise) or, without a capacity, than the filesystem (else the policy is "
        "Ready=False, reason MinFreeSpaceUnsatisfiable). Default: TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB (1), "
        "which is not applied where it is not below that size (status.effectiveMinFreeSpaceBytes 0, "
        "condition MinFreeSpaceApplied=False).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdsSpec:
        if (
            self.warning_percent is not None
            and self.emergency_percent is not None
            and self.warning_percent >= self.emergency_percent
        ):
            raise ValueError("warningPercent must be below emergencyPercent")
        return self


class OrphansSpec(WireModel):
    """When a forgotten file counts as orphaned."""

    max_age_hours: FiniteFloat | None = Field(
        default=None, gt=0,
        description="Files older than this (by modification time) may be orphans. Default: "
        "TEMP_STORAGE_CLEANUP_MAX_ORPHAN_AGE_HOURS (24).",
    )
    emergency_max_age_hours: FiniteFloat = Field(
        default=1, gt=0, description="The orphan age used by emergency cleanup (more aggressive)."
    )


class FailedJobsSpec(WireModel):
    """How long the files of a crashed job are kept."""

    cleanup_after_hours: FiniteFloat | None = Field(
        default=None, ge=0,
        description="Files of a failed job are deleted this long after the job's last update. Default: "
        "TEMP_STORAGE_CLEANUP_CLEANUP_FAILED_JOBS_AFTER_HOURS (1).",
    )


class ScheduleSpec(WireModel):
    """When the operator's timers act (the CLI validates but does not use these)."""

    scheduled: Cron | None = Field(
        default=None,
        description="Cron expression of the scheduled cleanup. Default: derived from "
        "TEMP_STORAGE_CLEANUP_SCHEDULED_CLEANUP_INTERVAL_MINUTES (60 -> '0 * * * *').",
    )
    orphaned: Cron = Field(
        default="30 */6 * * *", description="Cron expression of the orphaned-file cleanup."
    )
    emergency_check_interval: Duration | None = Field(
        default=None,
        description="How often usage is checked for an emergency, e.g. 5m. Default: "
        "TEMP_STORAGE_CLEANUP_EMERGENCY_CHECK_INTERVAL_MINUTES (5).",
    )
    stats_interval: Duration = Field(
        default="30s", description="How often the status statistics are refreshed."
    )


class CleanupPolicySpec(WireModel):
    """What to clean, how, and when."""

    storage: StorageSpec = Field(description="Where the temp files are.")
    naming: NamingSpec = Field(default_factory=NamingSpec, description="How temp files are named.")
    jobs: JobsSpec | None = Field(
        default=None, description="Where job status lives. Without it, only age-based rules apply."
    )
    thresholds: ThresholdsSpec = Field(default_factory=ThresholdsSpec, description="Usage thresholds.")
    orphans: OrphansSpec = Field(default_factory=OrphansSpec, description="Orphan detection.")
    failed_jobs: FailedJobsSpec = Field(default_factory=FailedJobsSpec, description="Crash recovery.")
    schedule: ScheduleSpec = Field(
        default_factory=ScheduleSpec, description="Timer schedules (operator only)."
    )
    limits: LimitsSpec = Field(default_factory=LimitsSpec, description="Per-run limits.")
    exclude: list[ExcludePattern] = Field(
        default_factory=list,
        description="Paths never touched, as .gitignore lines matched against the path relative to the volume "
        "root or blob prefix: '*.lock' matches at any depth, a name such as 'keep' or 'keep/' protects a "
        "directory and everything in it, '/cache' is anchored to the root, '**' spans directories, '!' "
        "re-includes a file (never one inside an excluded directory). Excluded directories are not even "
        "listed on a volume unless usage is measured against a capacity.",
    )
    remove_empty_directories: StrictBool = Field(
        default=True,
        description="After Orphaned, CrashRecovery and Scheduled runs on a volume, remove directories the run "
        "emptied, bottom-up (or that were already empty and older than orphans.maxAgeHours), when the run's "
        "rule would also have deleted a file at that path; never the root, a mount point, a locked directory, "
        "or a directory whose path names a job that is active or unknown to the job table.",
    )
    dry_run: StrictBool | None = Field(
        default=None,
        description="Plan and report what would be deleted, delete nothing. Default: "
        "TEMP_STORAGE_CLEANUP_CLEANUP_DRY_RUN (false).",
    )
    keep_for_debugging: StrictBool | None = Field(
        default=None,
        description="Keep every temp file (report only). Default: "
        "TEMP_STORAGE_CLEANUP_KEEP_TEMP_FILES_FOR_DEBUGGING (false).",
    )
    suspend: StrictBool = Field(default=False, description="Pause every timer of this policy.")
    prediction: PredictionSpec | None = Field(
        default=None,
        description="Predictive cleanup (opt-in): clean orphans and failed jobs early when the emergency "
        "threshold is predicted within a horizon. Left out, the prediction is only reported in status.",
    )
    audit: AuditSpec | None = Field(
        default=None,
        description="Write one JSON line per deleted (dry run: planned) file, to a file or the log stream.",
    )

    @model_validator(mode="after")
    def _exclude_protects_something(self) -> CleanupPolicySpec:
        volume = (self.storage.volume.path or "") if self.storage.volume is not None else ""
        check_exclude_list(self.exclude, volume)
        return self
