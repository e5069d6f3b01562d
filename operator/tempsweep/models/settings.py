"""Operator-wide settings from ``TEMP_STORAGE_CLEANUP_*`` variables: the defaults a policy inherits.

The names are the original cleanup service's, so its deployments keep their configuration.
A bad value is reported as one line naming the variable (``SettingsError``), never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tempsweep.models.paths import check_volume_path

PREFIX = "TEMP_STORAGE_CLEANUP_"
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


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
    namespace_roots: str | None = Field(
        default=None,
        description="Roots reserved for namespaces, e.g. 'team-a=/v/a:/v/a2,team-b=/v/b': a listed namespace "
        "may use only its roots, no namespace may use another's (the longest matching root owns a path).",
    )
    emergency_cleanup_threshold: float = Field(default=95.0, gt=0, le=100, allow_inf_nan=False)
    warning_threshold: float = Field(default=85.0, gt=0, le=100, allow_inf_nan=False)
    max_orphan_age_hours: float = Field(default=24, gt=0, allow_inf_nan=False)
    cleanup_batch_size: int = Field(default=1000, gt=0, le=100_000)
    scheduled_cleanup_interval_minutes: int = Field(default=60, gt=0, le=1440)
    emergency_check_interval_minutes: float = Field(default=5, gt=0, allow_inf_nan=False)
    cleanup_failed_jobs_after_hours: float = Field(default=1, ge=0, allow_inf_nan=False)
    min_free_space_gb: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    max_files_per_cleanup: int = Field(default=10_000, gt=0)
    enable_storage_monitoring: bool = True
    log_cleanup_stats: bool = True
    cleanup_dry_run: bool = False
    keep_temp_files_for_debugging: bool = False
    database_url: str | None = Field(default=None, repr=False)
    azure_connection_string: str | None = Field(default=None, repr=False)

    @field_validator("temp_storage_path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"{str(value)!r} is relative: the storage path must be absolute")
        return value

    @field_validator("namespace_roots")
    @classmethod
    def _namespace_roots(cls, value: str | None) -> str | None:
        parse_namespace_roots(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OperatorSettings:
        if self.warning_threshold >= self.emergency_cleanup_threshold:
            raise ValueError("WARNING_THRESHOLD must be below EMERGENCY_CLEANUP_THRESHOLD")
        scheduled_cron(self.scheduled_cleanup_interval_minutes)
        allowed = [str(root) for root in self.allowed_root_paths]
        for namespace, roots in self.namespace_root_paths.items():
            for root in roots:
                if not any(root == base or root.startswith(base.rstrip("/") + "/") for base in allowed):
                    raise ValueError(
                        f"NAMESPACE_ROOTS: {root} (namespace {namespace}) is not under "
                        f"{PREFIX}ALLOWED_ROOTS ({':'.join(allowed)})"
                    )
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

    @property
    def namespace_root_paths(self) -> dict[str, tuple[str, ...]]:
        """NAMESPACE_ROOTS as namespace -> its normalised roots (empty when not set)."""
        return parse_namespace_roots(self.namespace_roots)


def parse_namespace_roots(text: str | None) -> dict[str, tuple[str, ...]]:
    """``team-a=/v/a:/v/a2,team-b=/v/b`` as a mapping; ValueError says which entry is wrong."""
    mapping: dict[str, tuple[str, ...]] = {}
    owners: dict[str, str] = {}
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        namespace, equals, paths = (part.strip() for part in entry.partition("="))
        if not equals or not paths:
            raise ValueError(f"{entry!r} is not NAMESPACE=/root[:/root...]")
        if not _NAMESPACE.match(namespace):
            raise ValueError(f"{namespace!r} is not a namespace name")
        if namespace in mapping:
            raise ValueError(f"namespace {namespace} is listed twice")
        roots = []
        for raw in paths.split(":"):
            if not raw.strip():
                continue
            try:
                root = check_volume_path(raw.strip())
            except ValueError as exc:
                raise ValueError(f"namespace {namespace}: {exc}") from None
            if owners.get(root, namespace) != namespace:
                raise ValueError(f"{root} is assigned to both {owners[root]} and {namespace}")
            owners[root] = namespace
            roots.append(root)
        if not roots:
            raise ValueError(f"namespace {namespace} has no roots")
        mapping[namespace] = tuple(roots)
    return mapping


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
