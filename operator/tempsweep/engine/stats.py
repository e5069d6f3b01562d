"""Storage statistics for a policy's status (and ``tempsweep scan``): one streamed pass, no deletions."""

from __future__ import annotations

from tempsweep.engine.context import CleanupContext
from tempsweep.engine.emergency import emergency_needed
from tempsweep.engine.ports import FilesystemStorage, JobSourceError, Usage
from tempsweep.engine.rules import orphan_rule
from tempsweep.models.effective import EffectivePolicy, min_free_for
from tempsweep.models.enums import Health
from tempsweep.models.status import StorageStats


def health_of(usage_percent: float, policy: EffectivePolicy) -> Health:
    """Healthy below the warning threshold, Warning from it, Critical from the emergency threshold."""
    if usage_percent >= policy.rules.emergency_percent:
        return Health.CRITICAL
    if usage_percent >= policy.rules.warning_percent:
        return Health.WARNING
    return Health.HEALTHY


def compute_stats(ctx: CleanupContext) -> StorageStats:
    """Count files, orphans and jobs, and measure usage; raises StorageError if the storage is unusable."""
    clock = ctx.clock()
    policy = ctx.policy
    rule = orphan_rule(policy, clock, policy.rules.orphan_max_age_hours)
    inventory, resolver = ctx.inventory()
    orphan_count = orphan_bytes = 0
    for item in inventory:
        if rule(item) is not None:
            orphan_count += 1
            orphan_bytes += item.entry.size
    usage: Usage = ctx.usage(inventory.bytes_total)
    active = failed = 0
    job_error = resolver.error
    if policy.rules.has_job_source and ctx.jobs is not None:
        try:
            counts = ctx.jobs.counts()
            active, failed = counts.active, counts.failed
        except JobSourceError as exc:
            job_error = job_error or str(exc)
    floor = min_free_for(policy.rules, usage.total)
    archived = inventory.archived_count if policy.rules.blob_storage else None
    return StorageStats(
        usage_percent=round(usage.percent, 2),
        emergency_threshold=policy.rules.emergency_percent,
        warning_threshold=policy.rules.warning_percent,
        total_bytes=usage.total,
        free_bytes=usage.free,
        temp_files_count=inventory.files_scanned,
        temp_files_size_bytes=inventory.bytes_scanned,
        files_skipped_in_use=len(ctx.storage.skipped_in_use()) if isinstance(ctx.storage, FilesystemStorage) else 0,
        active_jobs_count=active,
        failed_jobs_count=failed,
        orphaned_files_count=orphan_count,
        orphaned_files_size_bytes=orphan_bytes,
        archived_blobs_count=archived,
        archived_blobs_size_bytes=inventory.archived_bytes if archived is not None else None,
        # a floor the storage can never satisfy calls for no emergency (the run refuses one anyway)
        cleanup_needed=emergency_needed(usage, policy),
        health=health_of(usage.percent, policy),
        job_source_error=job_error,
        near_miss_files_count=inventory.near_miss_count,
        files_kept_unrecognized_status=inventory.unrecognized_files,
        unrecognized_job_statuses=sorted(resolver.unrecognized),
        effective_min_free_space_bytes=None if floor.unsatisfiable else floor.bytes,
    )
