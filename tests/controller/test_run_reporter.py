"""A CleanupRun's reporter: figures that go on after a restart, a final status written until it lands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tempsweep.controller import run_status
from tempsweep.controller.kube import Written
from tempsweep.controller.run_execution import carried_progress
from tempsweep.controller.run_status import RunReporter
from tempsweep.controller.writer import RUNS, ObjectRef, StatusWriter
from tempsweep.engine import Progress
from tempsweep.models import RunPhase, RunStatus, RunType
from tempsweep.models.base import WireModel
from tempsweep.models.resources import RunProgress, status_patch

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FlakyApi:
    """Stands in for the API client: refuses the first ``failures`` writes as an outage would."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.patches: list[dict[str, Any]] = []

    def patch_status(self, plural: str, namespace: str, name: str, status: WireModel, **_: str) -> Written:
        if self.failures:
            self.failures -= 1
            return Written.FAILED
        self.patches.append(status_patch(status))
        return Written.DONE


def reporter(api: FlakyApi, carried: RunProgress | None = None) -> RunReporter:
    return RunReporter(StatusWriter(api, ObjectRef(RUNS, "ns", "r", "uid")), 1, carried)  # type: ignore[arg-type]


def result(deleted: int, freed: int) -> RunStatus:
    return RunStatus(
        phase=RunPhase.SUCCEEDED,
        message=f"Orphaned: deleted {deleted} files",
        trigger=RunType.ORPHANED,
        start_time=NOW,
        end_time=NOW,
        duration_seconds=1.0,
        files_deleted=deleted,
        bytes_freed=freed,
    )


def test_a_resumed_run_continues_the_figures_it_had_reported() -> None:
    status = {"phase": "Running", "progress": {"filesPlanned": 70, "filesDeleted": 60, "bytesFreed": 600}}
    api = FlakyApi()
    report = reporter(api, carried_progress(status))

    report.progress(Progress(files_planned=5, files_deleted=4, bytes_freed=40))
    whole = report.complete(result(40, 400))

    assert api.patches[-1]["progress"]["filesDeleted"] == 64
    assert (whole.files_deleted, whole.bytes_freed) == (100, 1000)
    assert whole.message.startswith("Orphaned: deleted 40 files; including 60 files")


def test_a_resumed_run_adds_up_its_deletions_per_reason_and_keeps_its_first_start() -> None:
    status = {
        "phase": "Pending",  # a resumed run waits in the queue before it runs again
        "startTime": "2025-12-31T23:00:00Z",
        "progress": {"filesDeleted": 60, "bytesFreed": 600, "deletedByReason": {"Expired": 50, "ChunkDone": 10}},
    }
    api = FlakyApi()
    first = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    report = RunReporter(StatusWriter(api, ObjectRef(RUNS, "ns", "r", "uid")), 1, carried_progress(status), first)  # type: ignore[arg-type]

    report.started()
    report.progress(Progress(5, 4, 40, {"Expired": 4}))
    this_pass = result(40, 400).model_copy(update={"deleted_by_reason": {"Expired": 30, "OrphanNoJob": 10}})
    whole = report.complete(this_pass)
    report.finished(whole)

    assert api.patches[0]["startTime"] == "2025-12-31T23:00:00Z"
    assert api.patches[1]["progress"]["deletedByReason"] == {"Expired": 54, "ChunkDone": 10}
    assert whole.deleted_by_reason == {"Expired": 80, "ChunkDone": 10, "OrphanNoJob": 10}
    assert whole.start_time == first
    assert api.patches[-1]["deletedByReason"] == api.patches[-1]["progress"]["deletedByReason"]
    assert api.patches[-1]["startTime"] == "2025-12-31T23:00:00Z"


def test_a_new_or_finished_run_carries_nothing() -> None:
    assert carried_progress({}) is None
    assert carried_progress({"phase": "Succeeded", "progress": {"filesDeleted": 3}}) is None
    plain = result(5, 50)
    assert reporter(FlakyApi()).complete(plain) is plain


def test_the_final_status_is_written_again_until_it_lands(monkeypatch: Any) -> None:
    monkeypatch.setattr(run_status.time, "sleep", lambda _: None)  # the back-off itself is not under test
    api = FlakyApi(failures=3)

    reporter(api).finished(result(5, 50))

    assert len(api.patches) == 1
    assert api.patches[0]["phase"] == "Succeeded" and api.patches[0]["filesDeleted"] == 5
