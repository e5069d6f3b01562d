"""TEMP_STORAGE_CLEANUP_* settings: the original names and defaults; a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep_helpers import effective_policy
from tempsweep.models import OperatorSettings, SettingsError, load_settings, parse_policy, resolve_policy

P = "TEMP_STORAGE_CLEANUP_"


def test_the_defaults_are_the_original_services() -> None:
    settings = load_settings({})

    assert settings.emergency_cleanup_threshold == 95.0
    assert settings.warning_threshold == 85.0
    assert settings.max_orphan_age_hours == 24
    assert settings.cleanup_batch_size == 1000
    assert settings.scheduled_cleanup_interval_minutes == 60
    assert settings.emergency_check_interval_minutes == 5
    assert settings.cleanup_failed_jobs_after_hours == 1
    assert settings.min_free_space_bytes == 2**30
    assert settings.max_files_per_cleanup == 10_000
    assert settings.cleanup_dry_run is False
    assert settings.keep_temp_files_for_debugging is False


def test_every_documented_variable_is_read() -> None:
    settings = load_settings(
        {
            f"{P}TEMP_STORAGE_PATH": "/srv/temp",
            f"{P}EMERGENCY_CLEANUP_THRESHOLD": "90",
            f"{P}WARNING_THRESHOLD": "70",
            f"{P}MAX_ORPHAN_AGE_HOURS": "12",
            f"{P}CLEANUP_BATCH_SIZE": "50",
            f"{P}SCHEDULED_CLEANUP_INTERVAL_MINUTES": "30",
            f"{P}EMERGENCY_CHECK_INTERVAL_MINUTES": "2",
            f"{P}CLEANUP_FAILED_JOBS_AFTER_HOURS": "3",
            f"{P}MIN_FREE_SPACE_GB": "0.5",
            f"{P}MAX_FILES_PER_CLEANUP": "77",
            f"{P}ENABLE_STORAGE_MONITORING": "false",
            f"{P}LOG_CLEANUP_STATS": "false",
            f"{P}CLEANUP_DRY_RUN": "true",
            f"{P}KEEP_TEMP_FILES_FOR_DEBUGGING": "true",
            f"{P}DATABASE_URL": "sqlite:////tmp/jobs.db",
            f"{P}AZURE_CONNECTION_STRING": "AccountName=a;AccountKey=k",
            "UNRELATED_VARIABLE": "ignored",
        }
    )

    assert settings.temp_storage_path == Path("/srv/temp")
    assert (settings.emergency_cleanup_threshold, settings.warning_threshold) == (90, 70)
    assert settings.max_orphan_age_hours == 12
    assert settings.cleanup_batch_size == 50
    assert settings.scheduled_cleanup_interval_minutes == 30
    assert settings.emergency_check_interval_minutes == 2
    assert settings.cleanup_failed_jobs_after_hours == 3
    assert settings.min_free_space_bytes == 2**29
    assert settings.max_files_per_cleanup == 77
    assert not settings.enable_storage_monitoring and not settings.log_cleanup_stats
    assert settings.cleanup_dry_run and settings.keep_temp_files_for_debugging
    assert settings.database_url == "sqlite:////tmp/jobs.db"
    assert settings.azure_connection_string == "AccountName=a;AccountKey=k"
    assert "AccountKey" not in repr(settings)


def test_settings_are_the_defaults_a_silent_policy_inherits(tmp_path: Path) -> None:
    env = {
        f"{P}EMERGENCY_CLEANUP_THRESHOLD": "90",
        f"{P}WARNING_THRESHOLD": "70",
        f"{P}MAX_ORPHAN_AGE_HOURS": "12",
        f"{P}CLEANUP_BATCH_SIZE": "50",
        f"{P}MAX_FILES_PER_CLEANUP": "77",
        f"{P}CLEANUP_FAILED_JOBS_AFTER_HOURS": "3",
        f"{P}MIN_FREE_SPACE_GB": "2",
        f"{P}SCHEDULED_CLEANUP_INTERVAL_MINUTES": "15",
        f"{P}EMERGENCY_CHECK_INTERVAL_MINUTES": "2",
    }
    policy = effective_policy(tmp_path, env=env, thresholds=None, limits=None)

    assert (policy.rules.emergency_percent, policy.rules.warning_percent) == (90, 70)
    assert policy.rules.orphan_max_age_hours == 12
    assert (policy.rules.batch_size, policy.rules.max_files_per_run) == (50, 77)
    assert policy.rules.failed_cleanup_after_hours == 3
    assert policy.rules.min_free_bytes == 2 * 2**30
    assert policy.schedule.scheduled_cron == "*/15 * * * *"
    assert policy.schedule.emergency_check_seconds == 120


def test_a_policy_value_wins_over_the_setting(tmp_path: Path) -> None:
    env = {f"{P}MAX_ORPHAN_AGE_HOURS": "12", f"{P}CLEANUP_BATCH_SIZE": "50"}
    policy = effective_policy(tmp_path, env=env, orphans={"maxAgeHours": 2}, limits={"batchSize": 9})

    assert policy.rules.orphan_max_age_hours == 2
    assert policy.rules.batch_size == 9


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WARNING_THRESHOLD": "95", "EMERGENCY_CLEANUP_THRESHOLD": "90"}, "WARNING_THRESHOLD"),
        ({"WARNING_THRESHOLD": "95"}, "WARNING_THRESHOLD"),
        ({"EMERGENCY_CLEANUP_THRESHOLD": "101"}, "EMERGENCY_CLEANUP_THRESHOLD"),
        ({"EMERGENCY_CLEANUP_THRESHOLD": "0"}, "EMERGENCY_CLEANUP_THRESHOLD"),
        ({"WARNING_THRESHOLD": "high"}, "WARNING_THRESHOLD"),
        ({"MIN_FREE_SPACE_GB": "-1"}, "MIN_FREE_SPACE_GB"),
        ({"CLEANUP_BATCH_SIZE": "-5"}, "CLEANUP_BATCH_SIZE"),
        ({"CLEANUP_BATCH_SIZE": "0"}, "CLEANUP_BATCH_SIZE"),
        ({"MAX_FILES_PER_CLEANUP": "-1"}, "MAX_FILES_PER_CLEANUP"),
        ({"MAX_ORPHAN_AGE_HOURS": "-3"}, "MAX_ORPHAN_AGE_HOURS"),
        ({"CLEANUP_FAILED_JOBS_AFTER_HOURS": "-1"}, "CLEANUP_FAILED_JOBS_AFTER_HOURS"),
        ({"SCHEDULED_CLEANUP_INTERVAL_MINUTES": "7"}, "SCHEDULED_CLEANUP_INTERVAL_MINUTES"),
        ({"SCHEDULED_CLEANUP_INTERVAL_MINUTES": "0"}, "SCHEDULED_CLEANUP_INTERVAL_MINUTES"),
        ({"SCHEDULED_CLEANUP_INTERVAL_MINUTES": "hourly"}, "SCHEDULED_CLEANUP_INTERVAL_MINUTES"),
        ({"EMERGENCY_CHECK_INTERVAL_MINUTES": "0"}, "EMERGENCY_CHECK_INTERVAL_MINUTES"),
        ({"CLEANUP_DRY_RUN": "perhaps"}, "CLEANUP_DRY_RUN"),
        ({"TEMP_STORAGE_PATH": "relative/temp"}, "TEMP_STORAGE_PATH"),
    ],
    ids=[
        "warning-above-emergency",
        "warning-equal-to-default-emergency",
        "emergency-above-100",
        "emergency-zero",
        "warning-not-a-number",
        "negative-free-space",
        "negative-batch",
        "zero-batch",
        "negative-max-files",
        "negative-orphan-age",
        "negative-failed-wait",
        "interval-not-dividing-an-hour",
        "zero-interval",
        "interval-not-a-number",
        "zero-emergency-check",
        "dry-run-not-a-boolean",
        "relative-storage-path",
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({P + key: value for key, value in env.items()})

    message = str(raised.value)
    assert f"{P}{variable}" in message
    assert "\n" not in message


def test_the_process_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{P}MAX_ORPHAN_AGE_HOURS", "6")
    assert load_settings().max_orphan_age_hours == 6
    monkeypatch.setenv(f"{P}MAX_ORPHAN_AGE_HOURS", "-6")
    with pytest.raises(SettingsError, match=f"{P}MAX_ORPHAN_AGE_HOURS"):
        load_settings()


def test_settings_are_immutable() -> None:
    settings = OperatorSettings.model_validate({})
    with pytest.raises(ValueError):
        settings.warning_threshold = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("credential", "expected"),
    [
        pytest.param({"connectionStringSecretRef": {"name": "s", "key": "k"}}, "from-env", id="secret-ref-offline"),
        pytest.param({"connectionString": "inline"}, "inline", id="inline-wins"),
        pytest.param({"accountUrl": "https://a.blob.core.windows.net"}, None, id="account-url-ignores-it"),
    ],
)
def test_the_azure_connection_string_setting_stands_in_only_for_a_secret_reference(
    credential: dict[str, object], expected: str | None
) -> None:
    document = {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupPolicy",
        "metadata": {"name": "blobs"},
        "spec": {"storage": {"azureBlob": {"container": "temp", "capacity": "10Gi", **credential}}},
    }
    settings = load_settings({f"{P}AZURE_CONNECTION_STRING": "from-env"})

    policy = resolve_policy("blobs", parse_policy(document, source="p.yaml").spec, settings)

    assert policy.backend.azure_connection_string == expected
    assert "from-env" not in repr(policy) and "inline" not in repr(policy)
