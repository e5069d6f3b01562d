"""What a CleanupRun's status says while it runs and when it ends, through the run's one writer.

``RunReporter`` is the run's ``RunObserver``: it writes Running when the run starts, a throttled
progress report while the engine deletes, a note when the run waits for another cleanup of the same
storage, and the final status (the engine's ``RunStatus`` composed into ``CleanupRunStatus``).
``pending`` and ``queue_full`` are what a run says while it waits in its storage's queue (``run_queue``).

Counts add up across restarts: a run resumed after the operator died continues the figures it had last
reported (``carried``, deletions per reason included), so its progress, final status, event, the policy's
``lastCleanup*`` and the history row cover the whole run, and its ``startTime`` stays the first pass's.
What may be missing is bounded by one progress interval: files deleted after the last report and before
the operator died (the second pass finds them gone and does not count them).
Progress writes are best effort (a failed one is skipped); the final status is retried until it lands.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from tempsweep.controller.conditions import condition
from tempsweep.controller.kube import Written
from tempsweep.controller.writer import StatusWriter
from tempsweep.engine import Progress
from tempsweep.models import RunPhase, RunStatus, RunType
from tempsweep.models.quantities import format_bytes
from tempsweep.models.resources import CleanupRunStatus, RunProgress

PROGRESS_EVERY_SECONDS = 1.0
#: The final status is written again after 1, 2, 4 ... seconds, at most this long apart, until it lands.
FINAL_RETRY_MAX_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class RunReporter:
    """Reports one CleanupRun's life to its status."""

    def __init__(
        self,
        writer: StatusWriter,
        generation: int,
        carried: RunProgress | None = None,
        first_start: datetime | None = None,
    ) -> None:
        self.name = writer.ref.name
        self.uid = writer.ref.uid  # the audit names the run by both (a name can be reused)
        self._writer = writer
        self._generation = generation
        self._carried = carried or RunProgress()
        self._first_start = first_start  # a resumed run keeps the start of its first pass
        self._planned = 0
        self._last_report = 0.0

    def started(self) -> None:
        self._writer.write(self.started_status())

    def started_status(self) -> CleanupRunStatus:
        """Running (written with the run's claim, in one patch)."""
        return CleanupRunStatus(
            phase=RunPhase.RUNNING,
            observed_generation=self._generation,
            start_time=self._first_start or _now(),
            message="running",
            queue_position=0,
        )

    def waiting(self) -> None:
        self._writer.write(CleanupRunStatus(message="waiting for another cleanup of the same storage"))

    def progress(self, report: Progress) -> None:
        self._planned = report.files_planned
        if time.monotonic() - self._last_report < PROGRESS_EVERY_SECONDS:
            return
        self._last_report = time.monotonic()
        carried = self._carried
        figures = RunProgress(
            files_planned=carried.files_planned + report.files_planned,
            files_deleted=carried.files_deleted + report.files_deleted,
            bytes_freed=carried.bytes_freed + report.bytes_freed,
            deleted_by_reason=_add(carried.deleted_by_reason, report.deleted_by_reason),
            updated_time=_now(),
        )
        self._writer.write(CleanupRunStatus(progress=figures))

    def complete(self, result: RunStatus) -> RunStatus:
        """The whole run's result: this pass's, plus what the run had reported before a restart."""
        carried = self._carried
        if self._first_start is not None and self._first_start < result.start_time:
            result = result.model_copy(update={"start_time": self._first_start})
        if not (carried.files_deleted or carried.bytes_freed):
            return result
        note = (
            f"including {carried.files_deleted} files ({format_bytes(carried.bytes_freed)}) deleted before the "
            "operator restarted"
        )
        return result.model_copy(
            update={
                "files_deleted": result.files_deleted + carried.files_deleted,
                "bytes_freed": result.bytes_freed + carried.bytes_freed,
                "deleted_by_reason": _add(carried.deleted_by_reason, result.deleted_by_reason),
                "message": f"{result.message}; {note}",
            }
        )

    def refused(self, reason: str, message: str) -> None:
        """The run could not start (bad spec, no such policy, policy not ready)."""
        now = _now()
        self._write_final(
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
        self._write_final(
            CleanupRunStatus(
                result=result,
                completion_time=now,
                observed_generation=self._generation,
                # the last throttled report may be older than the end: the final figures close it
                progress=RunProgress(
                    files_planned=max(self._planned, done),
                    files_deleted=result.files_deleted,
                    bytes_freed=result.bytes_freed,
                    deleted_by_reason=dict(result.deleted_by_reason),
                    updated_time=now,
                ),
                conditions=[condition("Complete", result.phase is RunPhase.SUCCEEDED, reason, result.message, now)],
            )
        )

    def _write_final(self, status: CleanupRunStatus) -> None:
        """Write until the API server takes it, or the run is gone (or the write can never succeed)."""
        delay = 1.0
        while self._writer.write(status) is Written.FAILED:
            time.sleep(delay)
            delay = min(2 * delay, FINAL_RETRY_MAX_SECONDS)


def _add(first: Mapping[str, int] | None, second: Mapping[str, int] | None) -> dict[str, int]:
    """Per-reason counts of two passes added up."""
    total = dict(first or {})
    for reason, count in (second or {}).items():
        total[reason] = total.get(reason, 0) + count
    return total


def storage_label(storage: str) -> str:
    """``volume:/data/tmp`` -> ``volume /data/tmp``; ``blob:c/p`` -> ``blob container c/p`` (for messages)."""
    kind, _, where = storage.partition(":")
    return f"volume {where}" if kind == "volume" else f"blob container {where}"


def pending(storage: str, position: int, total: int) -> CleanupRunStatus:
    """A run waiting in its storage's queue: its place, in ``queuePosition`` and in the message."""
    return CleanupRunStatus(
        phase=RunPhase.PENDING,
        queue_position=position,
        message=f"waiting for {storage_label(storage)}: {position} of {total} in its queue",
    )


def queue_full(storage: str, total: int, retry_seconds: float) -> CleanupRunStatus:
    """A run not queued yet because its storage's queue is full: it is tried again, never dropped."""
    return CleanupRunStatus(
        phase=RunPhase.PENDING,
        message=f"the queue of {storage_label(storage)} is full ({total} runs waiting): not queued yet, "
        f"tried again in {retry_seconds:g} s",
    )


def cancelled_before_start(run_type: RunType, reason: str, *, dry_run: bool) -> RunStatus:
    """The result of a run cancelled while it waited in the queue: nothing done in this pass."""
    now = _now()
    label = "dry run: would delete 0 files (0 B)" if dry_run else "deleted 0 files (0 B)"
    return RunStatus(
        phase=RunPhase.CANCELLED,
        message=f"{run_type.value}: {label}; cancelled before it started: {reason}",
        trigger=run_type,
        start_time=now,
        end_time=now,
        duration_seconds=0.0,
        dry_run=dry_run,
    )
