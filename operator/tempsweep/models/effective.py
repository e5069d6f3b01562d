"""The policy the engine actually applies: the spec with every gap filled from the settings.

The engine never looks at settings or optional fields; it gets one fully resolved object and the
question "which default wins" is answered here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tempsweep.models.naming import Naming
from tempsweep.models.policy import CleanupPolicySpec, DatabaseSpec, check_volume_path
from tempsweep.models.quantities import format_bytes, parse_duration, parse_quantity
from tempsweep.models.settings import OperatorSettings, scheduled_cron
from tempsweep.models.statuses import StatusClass, normalize_status, normalized_set


@dataclass(frozen=True)
class EffectivePolicy:
    """A CleanupPolicy with all defaults resolved. ``spec`` is kept for the storage/job configuration."""

    name: str
    spec: CleanupPolicySpec
    naming: Naming
    database: DatabaseSpec | None
    database_url: str | None = field(repr=False)
    # the blob container's connection string when it is not the operator's to read from a Secret
    azure_connection_string: str | None = field(repr=False)
    volume_path: str | None
    capacity_bytes: int | None
    warning_percent: float
    emergency_percent: float
    emergency_buffer_percent: float
    min_free_bytes: int  # as configured; what applies to a storage of a given size: ``min_free_for``
    orphan_max_age_hours: float
    emergency_orphan_max_age_hours: float
    failed_cleanup_after_hours: float
    batch_size: int
    max_files_per_run: int
    parallelism: int
    exclude: tuple[str, ...]
    remove_empty_directories: bool
    dry_run: bool
    keep_for_debugging: bool
    suspend: bool
    scheduled_cron: str
    orphaned_cron: str
    emergency_check_seconds: float
    stats_seconds: float
    # minFreeSpace came from TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB, not from the spec
    min_free_inherited: bool = False

    @property
    def include_archived(self) -> bool:
        """Azure only: whether blobs in the Archive tier may be deleted."""
        blob = self.spec.storage.azure_blob
        return bool(blob and blob.include_archive_tier)

    @property
    def has_job_source(self) -> bool:
        """False for age-only policies (no ``jobs``)."""
        return self.database is not None

    @property
    def max_delete_percent(self) -> float:
        """The blast-radius guard of every run but ChunkCompletion (and emergencies)."""
        return self.spec.limits.max_delete_percent

    @property
    def emergency_max_delete_percent(self) -> float:
        """The blast-radius guard of Emergency runs and of Scheduled's emergency phase."""
        return self.spec.limits.emergency_max_delete_percent

    @property
    def active_statuses(self) -> frozenset[str]:
        """Normalized (see ``statuses.normalize_status``), like the other two lists."""
        return self._status_sets[0]

    @property
    def failed_statuses(self) -> frozenset[str]:
        return self._status_sets[1]

    @property
    def finished_statuses(self) -> frozenset[str]:
        return self._status_sets[2]

    @property
    def _status_sets(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        cached: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = self.__dict__.get("_sets")
        if cached is None:
            db = self.database
            cached = (
                (normalized_set(db.active_statuses), normalized_set(db.failed_statuses),
                 normalized_set(db.finished_statuses))
                if db
                else (frozenset(), frozenset(), frozenset())
            )
            object.__setattr__(self, "_sets", cached)  # frozen dataclass: computed once, on first use
        return cached

    def classify_status(self, status: str) -> StatusClass:
        """Which list a job status is in, compared ignoring case and surrounding whitespace."""
        normal = normalize_status(status)
        active, failed, finished = self._status_sets
        if normal in active:
            return StatusClass.ACTIVE
        if normal in failed:
            return StatusClass.FAILED
        if normal in finished:
            return StatusClass.FINISHED
        return StatusClass.UNRECOGNIZED

    def run_id_problem(self, job_id: str | None, chunk_id: str | None) -> str | None:
        """Why a CleanupRun's jobId or chunkId can never name a file under this policy, or None.

        The run's own validation knows only the widest id alphabet; this applies the policy's
        ``naming.idCharacters``, so a jobId no file could carry is refused instead of matching nothing.
        """
        for field_name, value in (("jobId", job_id), ("chunkId", chunk_id)):
            problem = self.naming.id_problem(value) if value is not None else None
            if problem:
                return f"spec.{field_name}: {problem} in policy {self.name}"
        return None


def resolve_policy(name: str, spec: CleanupPolicySpec, settings: OperatorSettings) -> EffectivePolicy:
    """Fill the spec's gaps from the settings; raises ValueError naming a field if they conflict."""
    thresholds = spec.thresholds
    warning = (
        thresholds.warning_percent if thresholds.warning_percent is not None else settings.warning_threshold
    )
    emergency = (
        thresholds.emergency_percent
        if thresholds.emergency_percent is not None
        else settings.emergency_cleanup_threshold
    )
    if warning >= emergency:
        raise ValueError(
            f"spec.thresholds: warningPercent ({warning:g}) must be below emergencyPercent ({emergency:g})"
        )
    volume = spec.storage.volume
    volume_path: str | None = None
    capacity: int | None = None
    if volume is not None:
        volume_path = volume.path or check_volume_path(str(settings.temp_storage_path))
        capacity = parse_quantity(volume.capacity) if volume.capacity is not None else None
    elif spec.storage.azure_blob is not None:
        capacity = parse_quantity(spec.storage.azure_blob.capacity)
    if capacity is not None and capacity <= 0:
        raise ValueError("spec.storage: capacity must be larger than zero")
    min_free = (
        parse_quantity(thresholds.min_free_space)
        if thresholds.min_free_space is not None
        else settings.min_free_space_bytes
    )
    if capacity is not None and thresholds.min_free_space is not None and min_free >= capacity:
        # free = capacity - used would always be below the floor: a permanent emergency deleting everything.
        # An inherited default is only not applied (see ``min_free_for``); the user's own value is refused.
        raise ValueError(unsatisfiable_message(min_free, capacity, "capacity"))
    database = spec.jobs.database if spec.jobs else None
    database_url = None
    if database is not None:
        # a secret reference is resolved by the operator, which replaces this; offline the setting stands in
        database_url = database.url or settings.database_url
    blob = spec.storage.azure_blob
    azure_connection_string = None
    if blob is not None:
        # like the database URL: the operator reads connectionStringSecretRef; offline the setting stands in
        azure_connection_string = blob.connection_string or (
            settings.azure_connection_string if blob.connection_string_secret_ref is not None else None
        )
    limits = spec.limits
    emergency_check = (
        parse_duration(spec.schedule.emergency_check_interval)
        if spec.schedule.emergency_check_interval
        else settings.emergency_check_interval_minutes * 60
    )
    return EffectivePolicy(
        name=name,
        spec=spec,
        naming=Naming.build(spec.naming.job_pattern, spec.naming.chunk_pattern, spec.naming.id_characters),
        database=database,
        database_url=database_url,
        azure_connection_string=azure_connection_string,
        volume_path=volume_path,
        capacity_bytes=capacity,
        warning_percent=warning,
        emergency_percent=emergency,
        emergency_buffer_percent=thresholds.emergency_buffer_percent,
        min_free_bytes=min_free,
        min_free_inherited=thresholds.min_free_space is None,
        orphan_max_age_hours=(
            spec.orphans.max_age_hours
            if spec.orphans.max_age_hours is not None
            else settings.max_orphan_age_hours
        ),
        emergency_orphan_max_age_hours=spec.orphans.emergency_max_age_hours,
        failed_cleanup_after_hours=(
            spec.failed_jobs.cleanup_after_hours
            if spec.failed_jobs.cleanup_after_hours is not None
            else settings.cleanup_failed_jobs_after_hours
        ),
        batch_size=limits.batch_size or settings.cleanup_batch_size,
        max_files_per_run=limits.max_files_per_run or settings.max_files_per_cleanup,
        parallelism=limits.parallelism,
        exclude=tuple(spec.exclude),
        remove_empty_directories=spec.remove_empty_directories,
        dry_run=bool(spec.dry_run) or settings.cleanup_dry_run,
        keep_for_debugging=bool(spec.keep_for_debugging) or settings.keep_temp_files_for_debugging,
        suspend=spec.suspend,
        scheduled_cron=spec.schedule.scheduled or scheduled_cron(settings.scheduled_cleanup_interval_minutes),
        orphaned_cron=spec.schedule.orphaned,
        emergency_check_seconds=emergency_check,
        stats_seconds=parse_duration(spec.schedule.stats_interval),
    )


# -- minFreeSpace against the size of the storage --------------------------------------------------

MIN_FREE_SETTING = "TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB"


@dataclass(frozen=True)
class MinFree:
    """The free-space floor that applies to a storage of a given size, and why.

    ``applied`` is False when an inherited default is not below the size: a floor that can never be met
    would make every check an emergency that deletes everything it may, so it is dropped (``bytes`` 0)
    and ``note`` says so. ``unsatisfiable`` is set when the user's own value can never be met: nothing
    may then run an emergency for the policy (``note`` is the refusal).
    """

    bytes: int
    applied: bool = True
    unsatisfiable: bool = False
    note: str | None = None


def unsatisfiable_message(min_free: int, size: int, what: str) -> str:
    return (
        f"spec.thresholds.minFreeSpace ({format_bytes(min_free)}) must be smaller than the {what} "
        f"({format_bytes(size)}): that much can never be free"
    )


def min_free_for(policy: EffectivePolicy, size: int) -> MinFree:
    """The floor for a storage of ``size`` bytes: the capacity, or the filesystem's size (used + available)."""
    configured = policy.min_free_bytes
    if configured < size:
        return MinFree(configured)
    what = "capacity" if policy.capacity_bytes is not None else "filesystem size"
    if policy.min_free_inherited:
        return MinFree(
            0,
            applied=False,
            note=f"{MIN_FREE_SETTING} ({format_bytes(configured)}) is not below the {what} "
            f"({format_bytes(size)}); minFreeSpace is not applied to this policy",
        )
    return MinFree(0, applied=False, unsatisfiable=True, note=unsatisfiable_message(configured, size, what))
