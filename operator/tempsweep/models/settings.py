"""Operator-wide settings from ``TEMP_STORAGE_CLEANUP_*`` variables: the defaults a policy inherits.

The names are the original cleanup service's, so its deployments keep their configuration.
A bad value is reported as one line naming the variable (``SettingsError``), never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "TEMP_STORAGE_CLEANUP_"


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable."""


class OperatorSettings(BaseSettings):
    """Operator-wide defaults and switches."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    temp_storage_path: Path = Field(
        default=Path("/var/lib/tempsweep/volumes"), description="Default volume path and allowed root."
    )
    allowed_roots: str | None = Field(
        default=None,
        description="Colon-separated roots a policy's volume may lie under (default: the storage path).",
    )
    emergency_cleanup_threshold: float = Field(default=95.0, gt=0, le=100)
    warning_threshold: float = Field(default=85.0, gt=0, le=100)
    max_orphan_age_hours: float = Field(default=24, gt=0)
    cleanup_batch_size: int = Field(default=1000, gt=0, le=100_000)
    scheduled_cleanup_interval_minutes: int = Field(default=60, gt=0, le=1440)
    emergency_check_interval_minutes: float = Field(default=5, gt=0)
    cleanup_failed_jobs_after_hours: float = Field(default=1, ge=0)
    min_free_space_gb: float = Field(default=1.0, ge=0)
    max_files_per_cleanup: int = Field(default=10_000, gt=0)
    enable_storage_monitoring: bool = True
    log_cleanup_stats: bool = True
    cleanup_dry_run: bool = False
    keep_temp_files_for_debugging: bool = False
    database_url: str | None = Field(default=None, repr=False)

    @field_validator("temp_storage_path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"{str(value)!r} is relative: the storage path must be absolute")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OperatorSettings:
        if self.warning_threshold >= self.emergency_cleanup_threshold:
            raise ValueError("WARNING_THRESHOLD must be below EMERGENCY_CLEANUP_THRESHOLD")
        scheduled_cron(self.scheduled_cleanup_interval_minutes)
        return self

    @property
    def min_free_space_bytes(self) -> int:
        """MIN_FREE_SPACE_GB in bytes (GiB, as the original service's disk checks used)."""
        return int(self.min_free_space_gb * 2**30)

    @property
    def allowed_root_paths(self) -> list[Path]:
        """The roots under which a policy's volume may lie."""
        if self.allowed_roots:
            return [Path(part) for part in self.allowed_roots.split(":") if part]
        return [self.temp_storage_path]


def scheduled_cron(minutes: int) -> str:
    """The cron expression for SCHEDULED_CLEANUP_INTERVAL_MINUTES, aligned to the wall clock."""
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *" if minutes > 1 else "* * * * *"
    if minutes % 60 == 0 and 1440 % minutes == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    raise ValueError(
        "SCHEDULED_CLEANUP_INTERVAL_MINUTES must divide an hour or a day evenly (e.g. 15, 30, 60, 120, 360)"
    )


def load_settings(environ: Mapping[str, str] | None = None) -> OperatorSettings:
    """Settings from the environment (or the given mapping); SettingsError names the bad variable."""
    try:
        if environ is None:
            return OperatorSettings()
        values = {
            key[len(PREFIX) :].lower(): value for key, value in environ.items() if key.startswith(PREFIX)
        }
        return OperatorSettings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"])
        variable = f"{PREFIX}{location.upper()}" if location else PREFIX + "*"
        message = error["msg"].removeprefix("Value error, ")
        if not location:
            raise SettingsError(f"{PREFIX}{message}") from None
        raise SettingsError(f"{variable}: {message}") from None
