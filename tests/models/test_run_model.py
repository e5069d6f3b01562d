"""CleanupRun specs, quantities and the status shapes users read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sweep_helpers import run_document
from tempsweep.models import InputError, RunPhase, RunStatus, RunType, parse_run
from tempsweep.models.quantities import parse_duration, parse_quantity


def _document(spec: dict[str, Any]) -> dict[str, Any]:
    fields = dict(spec)
    return run_document(fields.pop("type"), **fields)


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "ChunkCompletion", "jobId": "42", "chunkId": "7"},
        {"type": "ChunkCompletion", "jobId": "a-1", "chunkId": "b-2", "completedFiles": ["x.jpg"]},
        {"type": "CrashRecovery"},
        {"type": "CrashRecovery", "jobId": "42"},
        {"type": "Orphaned", "maxAgeHours": 12},
        {"type": "Emergency", "dryRun": True},
        {"type": "Scheduled"},
    ],
    ids=["chunk", "chunk-with-files", "crash-all", "crash-one", "orphaned", "emergency-dry-run", "scheduled"],
)
def test_each_scenario_accepts_its_own_fields(spec: dict[str, Any]) -> None:
    run = parse_run(_document(spec), source="run.yaml")
    assert run.spec.type is RunType(spec["type"])


BAD_RUNS = [
    ("unknown-type", {"type": "Everything"}, "spec.type:"),
    (
        "chunk-without-chunk-id",
        {"type": "ChunkCompletion", "jobId": "1"},
        "spec: ChunkCompletion needs jobId",
    ),
    (
        "chunk-without-job-id",
        {"type": "ChunkCompletion", "chunkId": "1"},
        "spec: ChunkCompletion needs jobId",
    ),
    ("chunk-id-on-crash", {"type": "CrashRecovery", "chunkId": "1"}, "spec: chunkId and completedFiles"),
    (
        "files-on-orphaned",
        {"type": "Orphaned", "completedFiles": ["a.jpg"]},
        "spec: chunkId and completedFiles",
    ),
    (
        "empty-files-on-orphaned",
        {"type": "Orphaned", "completedFiles": []},
        "spec: chunkId and completedFiles",
    ),
    ("job-id-on-orphaned", {"type": "Orphaned", "jobId": "1"}, "spec: jobId does not apply to Orphaned"),
    ("job-id-on-emergency", {"type": "Emergency", "jobId": "1"}, "spec: jobId does not apply to Emergency"),
    (
        "age-on-scheduled",
        {"type": "Scheduled", "maxAgeHours": 3},
        "spec: maxAgeHours only applies to Orphaned",
    ),
    ("negative-age", {"type": "Orphaned", "maxAgeHours": -1}, "spec.maxAgeHours:"),
    ("boolean-age", {"type": "Orphaned", "maxAgeHours": True}, "spec.maxAgeHours:"),
    ("job-id-with-slash", {"type": "CrashRecovery", "jobId": "../1"}, "spec.jobId: '../1' is not an id"),
    ("job-id-with-space", {"type": "CrashRecovery", "jobId": "1 2"}, "spec.jobId: '1 2' is not an id"),
    ("job-id-with-backslash", {"type": "CrashRecovery", "jobId": "1\\2"}, "spec.jobId:"),
    ("chunk-id-empty", {"type": "ChunkCompletion", "jobId": "1", "chunkId": ""}, "spec.chunkId:"),
    ("job-id-a-number", {"type": "CrashRecovery", "jobId": 42}, "spec.jobId:"),
    ("dry-run-text", {"type": "Scheduled", "dryRun": "yes please"}, "spec.dryRun:"),
    (
        "files-not-a-list",
        {"type": "ChunkCompletion", "jobId": "1", "chunkId": "2", "completedFiles": "a.jpg"},
        "spec.completedFiles:",
    ),
    ("ttl-boolean", {"type": "Scheduled", "ttlSecondsAfterFinished": True}, "spec.ttlSecondsAfterFinished:"),
    ("unknown-field", {"type": "Scheduled", "forceDelete": True}, "spec.forceDelete: unknown field"),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [case[1:] for case in BAD_RUNS], ids=[case[0] for case in BAD_RUNS]
)
def test_a_bad_run_is_one_line_naming_the_field(spec: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_run(_document(spec), source="run.yaml")
    assert str(raised.value).startswith(f"run.yaml: {expected}")


def test_a_run_without_a_policy_reference_names_it() -> None:
    document = run_document("Scheduled")
    del document["spec"]["policyRef"]
    with pytest.raises(InputError, match=r"^run.yaml: spec.policyRef: required field is missing"):
        parse_run(document, source="run.yaml")


@pytest.mark.parametrize(
    "value", ["", "-1Gi", "1 GB", "1Gib", "ten"], ids=["empty", "negative", "unit-GB", "unit-Gib", "word"]
)
def test_a_size_that_is_not_a_quantity_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_quantity(value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), (45, 45)],
    ids=["seconds", "minutes", "hours-and-minutes", "bare-number"],
)
def test_durations_read_like_kubernetes(value: str | int, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_a_run_status_is_flat_camel_case_json() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = RunStatus(
        phase=RunPhase.SUCCEEDED,
        message="ok",
        trigger=RunType.ORPHANED,
        start_time=now,
        end_time=now,
        duration_seconds=0.5,
        files_deleted=2,
        deleted_by_reason={"OrphanNoJobId": 2},
    )
    wire = status.to_wire()

    assert wire["phase"] == "Succeeded"
    assert wire["trigger"] == "Orphaned"
    assert wire["startTime"] == "2026-01-02T03:04:05Z"
    assert wire["filesDeleted"] == 2
    assert wire["deletedByReason"] == {"OrphanNoJobId": 2}
    assert "storageBeforePercent" not in wire, "unset optional fields are left out"
