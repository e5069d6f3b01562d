"""What a CleanupRun's status says while it runs and when it ends, through the run's one writer.

``RunReporter`` is the run's ``RunObserver``: it writes Running when the run starts, a throttled
progress report while the engine deletes, a note when the run waits for another cleanup of the same
storage, and the final status (the engine's ``RunStatus`` composed into ``CleanupRunStatus``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tempsweep.controller.conditions import condition
from tempsweep.controller.writer import StatusWriter
from tempsweep.engine import Progress
from tempsweep.models import RunPhase, RunStatus
from tempsweep.models.resources import CleanupRunStatus, RunProgress

PROGRESS_EVERY_SECONDS = 1.0


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class RunReporter:
    """Reports one CleanupRun's life to its status."""

    def __init__(self, writer: StatusWriter, generation: int) -> None:
        self.name = writer.ref.name
        self._writer = writer
        self._generation = generation
        self._planned = 0
        self._last_report = 0.0

    def started(self) -> None:
        self._writer.write(
            CleanupRunStatus(
                phase=RunPhase.RUNNING, observed_generation=self._generation, start_time=_now(), message="running"
            )
        )

    def waiting(self) -> None:
        self._writer.write(CleanupRunStatus(message="waiting for another cleanup of the same storage"))

    def progress(self, report: Progress) -> None:
        self._planned = report.files_planned
        if time.monotonic() - self._last_report < PROGRESS_EVERY_SECONDS:
            return
        self._last_report = time.monotonic()
        figures = RunProgress(
            files_planned=report.files_planned,
            files_deleted=report.files_deleted,
            bytes_freed=report.bytes_freed,
            updated_time=_now(),
        )
        self._writer.write(CleanupRunStatus(progress=figures))

    def refused(self, reason: str, message: str) -> None:
        """The run could not start (bad spec, no such policy, policy not ready)."""
        now = _now()
        self._writer.write(
            CleanupRunStatus(
                phase=RunPhase.FAILED,
                message=message,
                completion_time=now,
                observed_generation=self._generation,
                conditions=[condition("Complete", False, reason, message, now)],
            )
        )

    def finished(self, result: RunStatus) -> None:
        now = _now()
        done = result.would_delete_count if result.dry_run else result.files_deleted + result.files_skipped
        reason = result.reason.value if result.reason is not None else result.phase.value
        self._writer.write(
            CleanupRunStatus(
                result=result,
                completion_time=now,
                observed_generation=self._generation,
                # the last throttled report may be older than the end: the final figures close it
                progress=RunProgress(
                    files_planned=max(self._planned, done),
                    files_deleted=result.files_deleted,
                    bytes_freed=result.bytes_freed,
                    updated_time=now,
                ),
                conditions=[condition("Complete", result.phase is RunPhase.SUCCEEDED, reason, result.message, now)],
            )
        )
