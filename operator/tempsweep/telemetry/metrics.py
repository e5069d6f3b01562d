"""Every Prometheus metric tempsweep exposes, declared once (prometheus-client).

Names follow Prometheus conventions (base units, ``_total``, ``_bytes``, ``_seconds``, ``_ratio``). Labels
are bounded: ``namespace`` and ``policy`` name a CleanupPolicy, and the others take a fixed set of values
(``type``: the 6 run types, ``phase``: Succeeded/Failed/Cancelled, ``reason``: the 10 deletion reasons,
``state``: the 4 health states, ``pass``: the 4 timer passes). No path, job id or run name ever becomes a label, so the
series count grows with the number of policies only (README, Monitoring, states the bound).

A ``Metrics`` owns its registry: the operator uses one with the process and Python collectors, the CLI
and the tests a fresh one each, so figures never leak between them.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    gc_collector,
    platform_collector,
    process_collector,
)

from tempsweep.models import DeletionReason, Health, RunPhase, RunType

# No ``*_created`` series beside every counter and histogram: they double the series count and no
# query of ours needs them (counter resets are detected by Prometheus itself).
disable_created_metrics()  # type: ignore[no-untyped-call]

POLICY = ("namespace", "policy")
RUN_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
TIMER_LAG_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)


class Pass(StrEnum):
    """The periodic passes the operator makes over each policy (the ``pass`` label)."""

    STATISTICS = "Statistics"
    EMERGENCY_CHECK = "EmergencyCheck"
    SCHEDULED = "Scheduled"
    ORPHANED = "Orphaned"


#: The phases a finished run is counted under (the ``phase`` label); all exist from a type's first run on.
FINAL_PHASES = (RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELLED)
#: The most series one policy can have, derived from the label sets so a new enum value moves it: 19 plain
#: gauges, a health state set, one timestamp per pass, type x final phase run counters, two counters per
#: deletion reason (files, bytes), 3 per-type counters (skipped, errors, seconds) and 1 job-query counter.
#: README, Monitoring, quotes it.
MAX_SERIES_PER_POLICY = (
    19 + len(Health) + len(Pass) + len(RunType) * len(FINAL_PHASES) + 2 * len(DeletionReason)
    + 3 * len(RunType) + 1
)
#: The operator's own series besides the process/Python collectors: the run-duration histogram by type
#: and the timer-lag histogram by pass (their buckets, +Inf, sum and count).
OPERATOR_SERIES = len(RunType) * (len(RUN_DURATION_BUCKETS) + 3) + len(Pass) * (len(TIMER_LAG_BUCKETS) + 3)


class Metrics:
    """The metric objects, registered in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None, *, runtime_collectors: bool = False) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if runtime_collectors:
            process_collector.ProcessCollector(registry=self.registry)
            platform_collector.PlatformCollector(registry=self.registry)
            gc_collector.GCCollector(registry=self.registry)
        r = self.registry

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, POLICY + extra, registry=r)

        # Per policy, refreshed with the statistics.
        self.capacity_bytes = gauge("tempsweep_storage_capacity_bytes", "Capacity the usage is measured against.")
        self.free_bytes = gauge("tempsweep_storage_free_bytes", "Free bytes of that capacity.")
        self.used_bytes = gauge("tempsweep_storage_used_bytes", "Used bytes of that capacity.")
        self.usage_ratio = gauge("tempsweep_storage_usage_ratio", "Used share of the capacity, 0..1.")
        self.warning_ratio = gauge(
            "tempsweep_storage_warning_threshold_ratio", "Usage ratio from which health is Warning."
        )
        self.emergency_ratio = gauge(
            "tempsweep_storage_emergency_threshold_ratio", "Usage ratio from which emergency cleanup runs."
        )
        self.min_free_bytes = gauge(
            "tempsweep_storage_min_free_bytes", "The free-space floor applied (0: none)."
        )
        self.temp_files = gauge("tempsweep_temp_files", "Files under the storage root.")
        self.temp_files_bytes = gauge("tempsweep_temp_files_bytes", "Bytes of those files.")
        self.orphaned_files = gauge("tempsweep_orphaned_files", "Files an Orphaned run would delete now.")
        self.orphaned_files_bytes = gauge("tempsweep_orphaned_files_bytes", "Bytes of those files.")
        self.archived_blobs = gauge("tempsweep_archived_blobs", "Archive-tier blobs (Azure only).")
        self.archived_blobs_bytes = gauge("tempsweep_archived_blobs_bytes", "Bytes of archive-tier blobs.")
        self.health = gauge(
            "tempsweep_storage_health", "Health as a state set: 1 for the current state, 0 for the others.",
            ("state",),
        )
        self.cleanup_needed = gauge("tempsweep_storage_cleanup_needed", "1 when an emergency cleanup is due.")
        self.job_source_up = gauge(
            "tempsweep_job_source_up", "1 when job status could be read at the last statistics, else 0."
        )
        self.fill_rate = gauge(
            "tempsweep_storage_fill_rate_bytes_per_second", "Fitted growth of used bytes since the last cleanup."
        )
        self.full_seconds = gauge(
            "tempsweep_storage_predicted_full_seconds",
            "Predicted seconds until the storage is full; absent when it is not filling measurably.",
        )
        self.emergency_seconds = gauge(
            "tempsweep_storage_predicted_emergency_seconds",
            "Predicted seconds until the emergency threshold; absent when not filling measurably.",
        )
        self.prediction_confidence = gauge(
            "tempsweep_storage_prediction_confidence_ratio", "Confidence of the prediction, 0..1."
        )
        self.last_success = gauge(
            "tempsweep_pass_last_success_timestamp_seconds",
            "Unix time a periodic pass last completed for the policy.", ("pass",),
        )

        # Per cleanup.
        self.runs = Counter(
            "tempsweep_cleanup_runs", "Cleanups finished, by type and phase.", POLICY + ("type", "phase"),
            registry=r,
        )
        self.files_deleted = Counter(
            "tempsweep_cleanup_files_deleted", "Files deleted, by reason.", POLICY + ("reason",), registry=r
        )
        self.bytes_freed = Counter(
            "tempsweep_cleanup_freed_bytes", "Bytes freed by deletions, by reason.", POLICY + ("reason",),
            registry=r,
        )
        self.files_skipped = Counter(
            "tempsweep_cleanup_files_skipped", "Planned files left alone because they changed.",
            POLICY + ("type",), registry=r,
        )
        self.errors = Counter(
            "tempsweep_cleanup_errors", "Errors during cleanups.", POLICY + ("type",), registry=r
        )
        self.seconds = Counter(
            "tempsweep_cleanup_seconds", "Wall time spent in cleanups (divided by runs: the mean duration).",
            POLICY + ("type",), registry=r,
        )
        self.job_queries = Counter(
            "tempsweep_job_source_queries", "Queries sent to the job source by cleanups.", POLICY, registry=r
        )

        # The operator itself. Run durations are a histogram by type only: per policy it would be 15 series
        # per type, half of a policy's series and most of a scrape's time (per policy: ``seconds`` above).
        self.duration = Histogram(
            "tempsweep_cleanup_duration_seconds", "Wall time of a cleanup, over every policy.", ("type",),
            buckets=RUN_DURATION_BUCKETS, registry=r,
        )
        self.timer_lag = Histogram(
            "tempsweep_timer_lag_seconds", "How late a due periodic pass started.", ("pass",),
            buckets=TIMER_LAG_BUCKETS, registry=r,
        )

    def per_policy(self) -> list[Gauge | Counter | Histogram]:
        """Every metric labelled by namespace and policy (first two labels)."""
        return [m for m in vars(self).values() if isinstance(m, Gauge | Counter | Histogram) and m not in
                (self.timer_lag, self.duration)]
