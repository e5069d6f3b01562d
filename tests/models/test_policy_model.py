"""CleanupPolicy: the documented defaults, camelCase on the wire, and one clear line for every mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sweep_helpers import effective_policy, merge, policy_document
from tempsweep.models import CleanupPolicy, InputError, parse_policy
from tempsweep.models.effective import MinFree, min_free_for
from tempsweep.models.policy import LimitsSpec

VOLUME = "/data/tempsweep/volume"


def _parse(**overrides: Any) -> CleanupPolicy:
    return parse_policy(merge(policy_document(VOLUME), overrides), source="policy.yaml")


def test_a_minimal_policy_gets_the_documented_defaults() -> None:
    document = {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupPolicy",
        "metadata": {"name": "minimal"},
        "spec": {"storage": {"volume": {"path": VOLUME}}},
    }
    spec = parse_policy(document, source="policy.yaml").spec

    assert spec.naming.job_pattern == "job_{job_id}_"
    assert spec.naming.chunk_pattern == "job_{job_id}_chunk_{chunk_id}_"
    assert spec.jobs is None
    assert spec.thresholds.emergency_buffer_percent == 10
    assert spec.orphans.emergency_max_age_hours == 1
    assert spec.schedule.orphaned == "30 */6 * * *"
    assert spec.schedule.stats_interval == "30s"
    assert spec.exclude == []
    assert spec.suspend is False
    policy = effective_policy(VOLUME, thresholds=None, limits=None)
    assert (policy.rules.warning_percent, policy.rules.emergency_percent) == (85, 95)
    assert policy.rules.min_free_bytes == 2**30
    assert (policy.rules.orphan_max_age_hours, policy.rules.failed_cleanup_after_hours) == (24, 1)
    assert (policy.rules.batch_size, policy.rules.max_files_per_run) == (1000, 10_000)
    assert policy.schedule.scheduled_cron == "0 * * * *"
    assert policy.schedule.emergency_check_seconds == 300
    assert policy.schedule.stats_seconds == 30
    assert policy.rules.dry_run is False and policy.rules.keep_for_debugging is False


def test_database_defaults_are_the_original_tables() -> None:
    database = _parse(spec={"jobs": {"database": {"url": "sqlite:///jobs.db"}}}).spec.jobs.database  # type: ignore[union-attr]

    assert (database.table, database.id_column, database.status_column, database.updated_at_column) == (
        "crawl_jobs",
        "id",
        "status",
        "updated_at",
    )
    assert database.active_statuses == ["pending", "running"]
    assert database.failed_statuses == ["failed", "cancelled", "error"]
    assert database.finished_statuses == ["completed", "succeeded", "done", "finished", "success"]
    limits = LimitsSpec()
    assert (limits.max_delete_percent, limits.emergency_max_delete_percent) == (50, 100)


def test_the_wire_form_is_camel_case_and_round_trips() -> None:
    policy = _parse(
        spec={"thresholds": {"minFreeSpace": "2Gi"}, "orphans": {"maxAgeHours": 12}, "dryRun": True}
    )
    wire = policy.spec.to_wire()

    assert wire["thresholds"]["minFreeSpace"] == "2Gi"
    assert wire["orphans"]["maxAgeHours"] == 12
    assert wire["dryRun"] is True
    assert "min_free_space" not in str(wire)
    assert type(policy.spec).model_validate(wire) == policy.spec


def test_every_field_has_a_description() -> None:
    from tempsweep.models import CleanupPolicySpec, CleanupRunSpec

    def undocumented(model: type, prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description:
                missing.append(prefix + name)
            annotation = field.annotation
            for candidate in getattr(annotation, "__args__", (annotation,)):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    missing += undocumented(candidate, f"{prefix}{name}.")
        return missing

    assert undocumented(CleanupPolicySpec, "spec.") == []
    assert undocumented(CleanupRunSpec, "spec.") == []


BAD_POLICIES = [
    ("unknown-field", {"spec": {"limits": {"batchSizee": 5}}}, "spec.limits.batchSizee: unknown field"),
    ("unknown-top-level-field", {"spec": {"dryrun": True}}, "spec.dryrun: unknown field"),
    ("wrong-kind", {"kind": "CleanupRun"}, "kind: got 'CleanupRun'"),
    ("wrong-api-version", {"apiVersion": "tempsweep.io/v1"}, "apiVersion: got 'tempsweep.io/v1'"),
    ("missing-name", {"metadata": None}, "metadata: required field is missing"),
    (
        "relative-path",
        {"spec": {"storage": {"volume": {"path": "data/volume"}}}},
        "spec.storage.volume.path:",
    ),
    ("system-path", {"spec": {"storage": {"volume": {"path": "/etc"}}}}, "spec.storage.volume.path:"),
    (
        "parent-reference",
        {"spec": {"storage": {"volume": {"path": "/data/../etc"}}}},
        "spec.storage.volume.path:",
    ),
    ("path-not-a-string", {"spec": {"storage": {"volume": {"path": 5}}}}, "spec.storage.volume.path:"),
    ("batch-size-text", {"spec": {"limits": {"batchSize": "many"}}}, "spec.limits.batchSize:"),
    ("batch-size-zero", {"spec": {"limits": {"batchSize": 0}}}, "spec.limits.batchSize:"),
    ("batch-size-boolean", {"spec": {"limits": {"batchSize": True}}}, "spec.limits.batchSize:"),
    ("max-files-negative", {"spec": {"limits": {"maxFilesPerRun": -1}}}, "spec.limits.maxFilesPerRun:"),
    ("age-boolean", {"spec": {"orphans": {"maxAgeHours": True}}}, "spec.orphans.maxAgeHours:"),
    (
        "buffer-boolean",
        {"spec": {"thresholds": {"emergencyBufferPercent": False}}},
        "spec.thresholds.emergencyBufferPercent:",
    ),
    (
        "wait-boolean",
        {"spec": {"failedJobs": {"cleanupAfterHours": False}}},
        "spec.failedJobs.cleanupAfterHours:",
    ),
    ("dry-run-text", {"spec": {"dryRun": "maybe"}}, "spec.dryRun:"),
    ("dry-run-number", {"spec": {"dryRun": 1}}, "spec.dryRun:"),
    (
        "capacity-not-a-size",
        {"spec": {"storage": {"volume": {"capacity": "lots"}}}},
        "spec.storage.volume.capacity:",
    ),
    (
        "capacity-a-list",
        {"spec": {"storage": {"volume": {"capacity": [50]}}}},
        "spec.storage.volume.capacity: ",
    ),
    (
        "capacity-boolean",
        {"spec": {"storage": {"volume": {"capacity": True}}}},
        "spec.storage.volume.capacity: ",
    ),
    (
        "free-space-fractional-bytes",
        {"spec": {"thresholds": {"minFreeSpace": 1.5}}},
        "spec.thresholds.minFreeSpace: ",
    ),
    ("free-space-negative", {"spec": {"thresholds": {"minFreeSpace": -1}}}, "spec.thresholds.minFreeSpace: "),
    (
        "warning-above-emergency",
        {"spec": {"thresholds": {"warningPercent": 96, "emergencyPercent": 90}}},
        "spec.thresholds: warningPercent must be below emergencyPercent",
    ),
    (
        "percent-above-100",
        {"spec": {"thresholds": {"emergencyPercent": 101}}},
        "spec.thresholds.emergencyPercent:",
    ),
    ("no-backend", {"spec": {"storage": {"volume": None}}}, "spec.storage: set exactly one storage backend"),
    ("job-pattern-without-id", {"spec": {"naming": {"jobPattern": "job_"}}}, "spec.naming.jobPattern:"),
    (
        "chunk-pattern-without-chunk",
        {"spec": {"naming": {"chunkPattern": "job_{job_id}_"}}},
        "spec.naming.chunkPattern:",
    ),
    (
        "pattern-with-slash",
        {"spec": {"naming": {"jobPattern": "a/job_{job_id}_"}}},
        "spec.naming.jobPattern:",
    ),
    ("unknown-placeholder", {"spec": {"naming": {"jobPattern": "job_{jobid}_"}}}, "spec.naming.jobPattern:"),
    (
        "sql-injection-table",
        {"spec": {"jobs": {"database": {"url": "sqlite://", "table": "jobs; drop"}}}},
        "spec.jobs.database.table:",
    ),
    (
        "bad-column",
        {"spec": {"jobs": {"database": {"url": "sqlite://", "statusColumn": "1st"}}}},
        "spec.jobs.database.statusColumn:",
    ),
    (
        "status-both-active-and-failed",
        {"spec": {"jobs": {"database": {"url": "sqlite://", "activeStatuses": ["running", "failed"]}}}},
        "spec.jobs.database: status 'failed' is listed both",
    ),
    (
        "status-active-and-finished-after-normalizing",
        {"spec": {"jobs": {"database": {"url": "sqlite://", "finishedStatuses": [" Running "]}}}},
        "spec.jobs.database: status ' Running ' is listed both in activeStatuses and in finishedStatuses",
    ),
    (
        "status-failed-and-finished-by-case",
        {"spec": {"jobs": {"database": {"url": "sqlite://", "failedStatuses": ["DONE"]}}}},
        "spec.jobs.database: status 'done' is listed both in failedStatuses and in finishedStatuses",
    ),
    (
        "blank-status",
        {"spec": {"jobs": {"database": {"url": "sqlite://", "finishedStatuses": ["  "]}}}},
        "spec.jobs.database: finishedStatuses: a status may not be empty",
    ),
    (
        "delete-percent-over-100",
        {"spec": {"limits": {"maxDeletePercent": 150}}},
        "spec.limits.maxDeletePercent:",
    ),
    (
        "emergency-delete-percent-negative",
        {"spec": {"limits": {"emergencyMaxDeletePercent": -1}}},
        "spec.limits.emergencyMaxDeletePercent:",
    ),
    (
        "no-active-status",
        {"spec": {"jobs": {"database": {"url": "sqlite://", "activeStatuses": []}}}},
        "spec.jobs.database.activeStatuses:",
    ),
    ("bad-cron", {"spec": {"schedule": {"orphaned": "every hour"}}}, "spec.schedule.orphaned:"),
    ("bad-duration", {"spec": {"schedule": {"statsInterval": "soon"}}}, "spec.schedule.statsInterval:"),
    (
        "zero-duration",
        {"spec": {"schedule": {"emergencyCheckInterval": "0s"}}},
        "spec.schedule.emergencyCheckInterval:",
    ),
    ("exclude-not-a-list", {"spec": {"exclude": "*.lock"}}, "spec.exclude:"),
]


@pytest.mark.parametrize(
    ("override", "expected"), [case[1:] for case in BAD_POLICIES], ids=[case[0] for case in BAD_POLICIES]
)
def test_a_bad_policy_is_one_line_naming_the_file_and_the_field(
    override: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InputError) as raised:
        _parse(**override)

    message = str(raised.value)
    assert message.startswith(f"policy.yaml: {expected}")
    assert "\n" not in message


@pytest.mark.parametrize(
    "document",
    [None, [], "a string", 42],
    ids=["empty", "list", "string", "number"],
)
def test_a_document_that_is_not_an_object_is_refused(document: object) -> None:
    with pytest.raises(InputError, match="^policy.yaml: expected a Kubernetes object"):
        parse_policy(document, source="policy.yaml")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"storage": {"volume": {"capacity": 0}}}, "spec.storage: capacity must be larger than zero"),
        (
            {"storage": {"volume": {"capacity": "1Mi"}}, "thresholds": {"minFreeSpace": "2Mi"}},
            "spec.thresholds.minFreeSpace",
        ),
        (
            {"storage": {"volume": {"capacity": "1Mi"}}, "thresholds": {"minFreeSpace": "1Mi"}},
            "spec.thresholds.minFreeSpace (1.0MiB) must be smaller than the capacity (1.0MiB)",
        ),
        ({"thresholds": {"warningPercent": 96}}, "spec.thresholds: warningPercent (96) must be below"),
    ],
    ids=[
        "zero-capacity",
        "free-space-above-capacity",
        "free-space-equal-to-capacity",
        "warning-vs-setting",
    ],
)
def test_a_policy_that_cannot_work_with_the_settings_is_refused(
    tmp_path: Path, overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError) as raised:
        effective_policy(tmp_path, **overrides)
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("capacity", "env"),
    [("500Mi", {}), ("1Gi", {}), ("20Mi", {"TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB": "0.5"})],
    ids=["default-above", "default-equal", "setting-above"],
)
def test_an_inherited_free_space_floor_the_capacity_cannot_meet_is_not_applied(
    tmp_path: Path, capacity: str, env: dict[str, str]
) -> None:
    """The policy never wrote minFreeSpace: the operator's default is dropped for it, not turned into an
    error (or a permanent emergency), and the reason is given."""
    policy = effective_policy(tmp_path, env=env, storage={"volume": {"capacity": capacity}}, thresholds=None)
    assert policy.rules.capacity_bytes is not None
    floor = min_free_for(policy.rules, policy.rules.capacity_bytes)
    assert (floor.bytes, floor.applied, floor.unsatisfiable) == (0, False, False)
    assert floor.note is not None
    assert "TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB" in floor.note and "not applied" in floor.note


def test_an_inherited_floor_below_the_capacity_applies(tmp_path: Path) -> None:
    policy = effective_policy(tmp_path, storage={"volume": {"capacity": "2Gi"}}, thresholds=None)
    assert min_free_for(policy.rules, 2 * 2**30) == MinFree(2**30)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("50Gi", 50 * 2**30),
        ("512Mi", 512 * 2**20),
        ("1G", 10**9),
        ("1.5Ki", 1536),
        (1048576, 2**20),
        ("42", 42),
    ],
    ids=["gibibytes", "mebibytes", "gigabytes", "fractional-kibibytes", "plain-bytes", "bytes-as-text"],
)
def test_capacity_accepts_kubernetes_quantities(tmp_path: Path, value: object, expected: int) -> None:
    policy = effective_policy(tmp_path, storage={"volume": {"capacity": value}})
    assert policy.rules.capacity_bytes == expected
