"""The policy as it is applied: the spec with every gap filled from the settings, split by who reads it.

Three consumers, three parts, each resolved by its own function and each default decided once:

* ``CleanupRules`` -- the engine: naming, thresholds, ages, limits, job statuses, dry run.
* ``Schedule`` -- the operator's timers: crons, intervals, suspend, whether statistics are kept.
* ``Backend`` -- the factories that open storage and job sources: paths, containers, URLs,
  credentials. The operator puts the values of its Secrets in with ``Backend.with_secrets``, so the
  factories read one resolved value and never fall back themselves.

A new field goes into the part of the code that reads it, and is resolved in that part's function.
No part keeps the spec: whatever a consumer needs is resolved into its part.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tempsweep.models.foresight import DEFAULT_MIN_CONFIDENCE
from tempsweep.models.naming import Naming
from tempsweep.models.paths import check_volume_path
from tempsweep.models.policy import AzureBlobStorage, CleanupPolicySpec, DatabaseSpec
from tempsweep.models.quantities import format_bytes, parse_duration, parse_quantity
from tempsweep.models.settings import OperatorSettings, scheduled_cron
from tempsweep.models.statuses import StatusClass, normalize_status, normalized_set


@dataclass(frozen=True)
class CleanupRules:
    """What the engine decides with: which files belong to which job, and when a file may go."""

    naming: Naming
    capacity_bytes: int | None
    warning_percent: float
    emergency_percent: float
    emergency_buffer_percent: float
    min_free_bytes: int  # as configured; what applies to a storage of a given size: ``min_free_for``
    min_free_inherited: bool  # minFreeSpace came from TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB, not the spec
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
    has_job_source: bool  # False for age-only policies (no ``jobs``)
    # normalized (see ``statuses.normalize_status``); a status in none of the three is unrecognized
    active_statuses: frozenset[str]
    failed_statuses: frozenset[str]
    finished_statuses: frozenset[str]
    max_delete_percent: float  # the blast-radius guard of every run but ChunkCompletion (and emergencies)
    emergency_max_delete_percent: float  # the guard of Emergency runs and of Scheduled's emergency phase
    blob_storage: bool  # Azure: statistics count the Archive tier
    include_archived: bool  # Azure only: whether blobs in the Archive tier may be deleted

    def classify_status(self, status: str) -> StatusClass:
        """Which list a job status is in, compared ignoring case and surrounding whitespace."""
        normal = normalize_status(status)
        if normal in self.active_statuses:
            return StatusClass.ACTIVE
        if normal in self.failed_statuses:
            return StatusClass.FAILED
        if normal in self.finished_statuses:
            return StatusClass.FINISHED
        return StatusClass.UNRECOGNIZED


@dataclass(frozen=True)
class Predictive:
    """When the gentle cleanup runs early (``spec.prediction``)."""

    horizon_seconds: float
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    cooldown_seconds: float = 3600.0


@dataclass(frozen=True)
class Schedule:
    """When the operator's timers act."""

    suspend: bool
    scheduled_cron: str
    orphaned_cron: str
    emergency_check_seconds: float
    stats_seconds: float
    monitor_storage: bool  # TEMP_STORAGE_CLEANUP_ENABLE_STORAGE_MONITORING: keep statistics in status
    predictive: Predictive | None = None  # spec.prediction: None, never clean early


@dataclass(frozen=True)
class AuditTarget:
    """Where the per-file audit goes (``spec.audit``): a rotated file in ``directory``, or the log stream."""

    directory: str | None
    max_bytes: int
    backups: int

    def file_name(self, namespace: str, policy: str) -> str:
        # namespaces and policy names are DNS names (no '_'), so the separator is unambiguous
        return f"{namespace}_{policy}.audit.jsonl"


@dataclass(frozen=True)
class Backend:
    """Where the files and the job table are, and how to reach them."""

    volume_path: str | None
    azure_blob: AzureBlobStorage | None
    azure_connection_string: str | None = field(repr=False)
    database: DatabaseSpec | None
    database_url: str | None = field(repr=False)
    audit: AuditTarget | None = None

    @property
    def storage_key(self) -> str:
        """Cleanups of the same storage are serialised on this key."""
        if self.volume_path is not None:
            return f"volume:{self.volume_path}"
        blob = self.azure_blob
        return f"blob:{blob.container if blob else ''}/{blob.prefix if blob else ''}"

    def with_secrets(self, *, database_url: str | None, azure_connection_string: str | None) -> Backend:
        """The operator's Secret values in place of the offline stand-ins (a None value changes nothing)."""
        return replace(
            self,
            database_url=database_url or self.database_url,
            azure_connection_string=azure_connection_string or self.azure_connection_string,
        )


@dataclass(frozen=True)
class EffectivePolicy:
    """A CleanupPolicy with all defaults resolved, in one part per consumer."""

    name: str
    rules: CleanupRules
    schedule: Schedule
    backend: Backend

    def with_backend(self, backend: Backend) -> EffectivePolicy:
        return replace(self, backend=backend)

    def run_id_problem(self, job_id: str | None, chunk_id: str | None) -> str | None:
        """Why a CleanupRun's jobId or chunkId can never name a file under this policy, or None.

        The run's own validation knows only the widest id alphabet; this applies the policy's
        ``naming.idCharacters``, so a jobId no file could carry is refused instead of matching nothing.
        """
        for field_name, value in (("jobId", job_id), ("chunkId", chunk_id)):
            problem = self.rules.naming.id_problem(value) if value is not None else None
            if problem:
                return f"spec.{field_name}: {problem} in policy {self.name}"
        return None


def resolve_policy(name: str, spec: CleanupPolicySpec, settings: OperatorSettings) -> EffectivePolicy:
    """Fill the spec's gaps from the settings; raises ValueError naming a field if they conflict."""
    backend = resolve_backend(spec, settings)
    return EffectivePolicy(
        name=name,
        rules=resolve_rules(spec, settings, backend),
        schedule=resolve_schedule(spec, settings),
        backend=backend,
    )


def resolve_backend(spec: CleanupPolicySpec, settings: OperatorSettings) -> Backend:
    volume, blob = spec.storage.volume, spec.storage.azure_blob
    database = spec.jobs.database if spec.jobs else None
    # a secret reference is resolved by the operator (Backend.with_secrets); offline the setting stands in
    database_url = (database.url or settings.database_url) if database is not None else None
    azure_connection_string = None
    if blob is not None:
        azure_connection_string = blob.connection_string or (
            settings.azure_connection_string if blob.connection_string_secret_ref is not None else None
        )
    volume_path = (volume.path or check_volume_path(str(settings.temp_storage_path))) if volume else None
    return Backend(
        volume_path=volume_path,
        azure_blob=blob,
        azure_connection_string=azure_connection_string,
        database=database,
        database_url=database_url,
        audit=_audit(spec, volume_path),
    )


def _audit(spec: CleanupPolicySpec, volume_path: str | None) -> AuditTarget | None:
    """The audit target; a directory inside the cleaned tree is refused (the cleanup could delete its own
    record). Lexical here; the writer checks the real paths again when it opens the file."""
    audit = spec.audit
    if audit is None:
        return None
    directory = audit.directory
    if directory is not None and volume_path is not None and inside(directory, volume_path):
        raise ValueError(
            f"spec.audit.directory: {directory} lies inside the cleaned volume {volume_path}; "
            "put the audit outside the tree it records"
        )
    return AuditTarget(directory=directory, max_bytes=parse_quantity(audit.max_bytes), backups=audit.backups)


def inside(path: str, root: str) -> bool:
    """Whether normalised absolute ``path`` is ``root`` or below it."""
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


def _capacity(spec: CleanupPolicySpec) -> int | None:
    volume, blob = spec.storage.volume, spec.storage.azure_blob
    capacity: int | None = None
    if volume is not None:
        capacity = parse_quantity(volume.capacity) if volume.capacity is not None else None
    elif blob is not None:
        capacity = parse_quantity(blob.capacity)
    if capacity is not None and capacity <= 0:
        raise ValueError("spec.storage: capacity must be larger than zero")
    return capacity


def _min_free(spec: CleanupPolicySpec, settings: OperatorSettings, capacity: int | None) -> int:
    thresholds = spec.thresholds
    min_free = (
        parse_quantity(thresholds.min_free_space)
        if thresholds.min_free_space is not None
        else settings.min_free_space_bytes
    )
    if capacity is not None and thresholds.min_free_space is not None and min_free >= capacity:
        # free = capacity - used would always be below the floor: a permanent emergency deleting everything.
        # An inherited default is only not applied (see ``min_free_for``); the user's own value is refused.
        raise ValueError(unsatisfiable_message(min_free, capacity, "capacity"))
    return min_free


def resolve_rules(spec: CleanupPolicySpec, settings: OperatorSettings, backend: Backend) -> CleanupRules:
    thresholds = spec.thresholds
    warning = thresholds.warning_percent if thresholds.warning_percent is not None else settings.warning_threshold
    emergency = (
        thresholds.emergency_percent
        if thresholds.emergency_percent is not None
        else settings.emergency_cleanup_threshold
    )
    if warning >= emergency:
        raise ValueError(
            f"spec.thresholds: warningPercent ({warning:g}) must be below emergencyPercent ({emergency:g})"
        )
    capacity = _capacity(spec)
    database, blob, limits = backend.database, backend.azure_blob, spec.limits
    return CleanupRules(
        naming=Naming.build(spec.naming.job_pattern, spec.naming.chunk_pattern, spec.naming.id_characters),
        capacity_bytes=capacity,
        warning_percent=warning,
        emergency_percent=emergency,
        emergency_buffer_percent=thresholds.emergency_buffer_percent,
        min_free_bytes=_min_free(spec, settings, capacity),
        min_free_inherited=thresholds.min_free_space is None,
        orphan_max_age_hours=(
            spec.orphans.max_age_hours if spec.orphans.max_age_hours is not None else settings.max_orphan_age_hours
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
        has_job_source=database is not None,
        active_statuses=normalized_set(database.active_statuses) if database else frozenset(),
        failed_statuses=normalized_set(database.failed_statuses) if database else frozenset(),
        finished_statuses=normalized_set(database.finished_statuses) if database else frozenset(),
        max_delete_percent=limits.max_delete_percent,
        emergency_max_delete_percent=limits.emergency_max_delete_percent,
        blob_storage=blob is not None,
        include_archived=bool(blob and blob.include_archive_tier),
    )


def resolve_schedule(spec: CleanupPolicySpec, settings: OperatorSettings) -> Schedule:
    emergency_check = (
        parse_duration(spec.schedule.emergency_check_interval)
        if spec.schedule.emergency_check_interval
        else settings.emergency_check_interval_minutes * 60
    )
    return Schedule(
        suspend=spec.suspend,
        scheduled_cron=spec.schedule.scheduled or scheduled_cron(settings.scheduled_cleanup_interval_minutes),
        orphaned_cron=spec.schedule.orphaned,
        emergency_check_seconds=emergency_check,
        stats_seconds=parse_duration(spec.schedule.stats_interval),
        monitor_storage=settings.enable_storage_monitoring,
        predictive=_predictive(spec),
    )


def _predictive(spec: CleanupPolicySpec) -> Predictive | None:
    prediction = spec.prediction
    if prediction is None:
        return None
    return Predictive(
        horizon_seconds=parse_duration(prediction.horizon),
        min_confidence=prediction.min_confidence,
        cooldown_seconds=parse_duration(prediction.cooldown),
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


def min_free_for(rules: CleanupRules, size: int) -> MinFree:
    """The floor for a storage of ``size`` bytes: the capacity, or the filesystem's size (used + available)."""
    configured = rules.min_free_bytes
    if configured < size:
        return MinFree(configured)
    what = "capacity" if rules.capacity_bytes is not None else "filesystem size"
    if rules.min_free_inherited:
        return MinFree(
            0,
            applied=False,
            note=f"{MIN_FREE_SETTING} ({format_bytes(configured)}) is not below the {what} "
            f"({format_bytes(size)}); minFreeSpace is not applied to this policy",
        )
    return MinFree(0, applied=False, unsatisfiable=True, note=unsatisfiable_message(configured, size, what))
