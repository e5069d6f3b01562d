"""CleanupRun specs, naming patterns, quantities and the status shapes users read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sweep_helpers import run_document
from tempsweep.models import InputError, RunPhase, RunStatus, RunType, parse_run
from tempsweep.models.naming import compile_pattern
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
    ("job-id-with-underscore", {"type": "CrashRecovery", "jobId": "1_2"}, "spec.jobId:"),
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
    ("name", "ids"),
    [
        ("job_42_chunk_7_image.jpg", {"job_id": "42", "chunk_id": "7"}),
        ("job_a-b_chunk_C-9_x", {"job_id": "a-b", "chunk_id": "C-9"}),
        ("job_42_image.jpg", None),
        ("xjob_42_chunk_7_image.jpg", None),
        ("job__chunk_7_image.jpg", None),
    ],
    ids=["digits", "letters-and-dashes", "job-without-chunk", "not-at-the-start", "empty-id"],
)
def test_a_file_belongs_to_a_chunk_when_its_name_starts_with_the_pattern(name: str, ids: dict | None) -> None:
    assert (
        compile_pattern("job_{job_id}_chunk_{chunk_id}_", require=("job_id", "chunk_id")).match(name) == ids
    )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("", "empty"),
        ("job_", "{job_id}"),
        ("job_{job_id}_{job_id}", "only once"),
        ("job_{job_id}_{", "unbalanced"),
    ],
    ids=["empty", "no-placeholder", "repeated-placeholder", "unbalanced-brace"],
)
def test_an_unusable_pattern_says_what_is_wrong(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        compile_pattern(template)


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
