"""String enums shared by status, events, logs and the CRDs: one spelling everywhere."""

from __future__ import annotations

from enum import StrEnum


class RunType(StrEnum):
    """The cleanup scenarios of the original service."""

    CHUNK_COMPLETION = "ChunkCompletion"
    CRASH_RECOVERY = "CrashRecovery"
    EMERGENCY = "Emergency"
    ORPHANED = "Orphaned"
    SCHEDULED = "Scheduled"
    PREDICTIVE = "Predictive"  # the gentle cleanup spec.prediction starts early: orphans and failed jobs only


class RunPhase(StrEnum):
    """Where a CleanupRun is in its life. The engine reports only the three final phases."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"  # stopped at a batch boundary: its run, its policy deleted, or the policy suspended


class RunReason(StrEnum):
    """Why a run ended Failed, where the cause has a name of its own (status, condition and event reason)."""

    BLAST_RADIUS_EXCEEDED = "BlastRadiusExceeded"
    NODES_NOT_REACHED = "NodesNotReached"  # node scope: a target node's agent never reported (none there?)
    AUDIT_UNAVAILABLE = "AuditUnavailable"  # spec.audit asks for a record that cannot be written


class Health(StrEnum):
    """Storage health: Healthy below the warning threshold, Critical from the emergency threshold; Unknown
    while the operator cannot read the storage (never computed from figures, so the engine never says it)."""

    HEALTHY = "Healthy"
    WARNING = "Warning"
    CRITICAL = "Critical"
    UNKNOWN = "Unknown"


class DeletionReason(StrEnum):
    """Why a file was (or would be) deleted. Every deletion carries exactly one."""

    CHUNK_COMPLETED = "ChunkCompleted"
    FAILED_JOB = "FailedJob"
    ORPHAN_NO_JOB_ID = "OrphanNoJobId"
    ORPHAN_UNKNOWN_JOB = "OrphanUnknownJob"
    ORPHAN_FAILED_JOB = "OrphanFailedJob"
    ORPHAN_FINISHED_JOB = "OrphanFinishedJob"
    EXPIRED = "Expired"
    EMERGENCY_ORPHAN = "EmergencyOrphan"
    EMERGENCY_FAILED_JOB = "EmergencyFailedJob"
    EMERGENCY_OLDEST = "EmergencyOldest"
