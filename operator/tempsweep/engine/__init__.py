"""The cleanup engine: pure planning (which files go and why) plus a small applier.

Talks to storage and job status only through the protocols in ``tempsweep.engine.ports``; never
imports kopf, kubernetes, SQLAlchemy or Azure (an import-linter contract holds it to that).
"""

from tempsweep.engine.context import CleanupContext, Progress
from tempsweep.engine.ports import (
    DeleteResult,
    FileEntry,
    JobCounts,
    JobRecord,
    JobSource,
    JobSourceError,
    Outcome,
    StorageError,
    StorageProvider,
    Usage,
)
from tempsweep.engine.request import RunRequest
from tempsweep.engine.runs import run_cleanup
from tempsweep.engine.stats import compute_stats, health_of

__all__ = [
    "CleanupContext",
    "DeleteResult",
    "FileEntry",
    "JobCounts",
    "JobRecord",
    "JobSource",
    "JobSourceError",
    "Outcome",
    "Progress",
    "RunRequest",
    "StorageError",
    "StorageProvider",
    "Usage",
    "compute_stats",
    "health_of",
    "run_cleanup",
]
