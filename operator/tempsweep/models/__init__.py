"""The objects of tempsweep: policy and run specs, statuses, settings. Pure data, no I/O.

These pydantic models are the single source of truth: the CLI parses YAML into them, the operator
parses API objects into them, and the CRDs are generated from them.
"""

from tempsweep.models.documents import (
    API_VERSION,
    GROUP,
    VERSION,
    CleanupPolicy,
    CleanupRun,
    InputError,
    parse_policy,
    parse_run,
)
from tempsweep.models.effective import EffectivePolicy, resolve_policy
from tempsweep.models.enums import DeletionReason, Health, RunPhase, RunType
from tempsweep.models.policy import CleanupPolicySpec
from tempsweep.models.run import CleanupRunSpec
from tempsweep.models.settings import OperatorSettings, SettingsError, load_settings
from tempsweep.models.status import RunStatus, StorageStats

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "CleanupPolicy",
    "CleanupPolicySpec",
    "CleanupRun",
    "CleanupRunSpec",
    "DeletionReason",
    "EffectivePolicy",
    "Health",
    "InputError",
    "OperatorSettings",
    "RunPhase",
    "RunStatus",
    "RunType",
    "SettingsError",
    "StorageStats",
    "load_settings",
    "parse_policy",
    "parse_run",
    "resolve_policy",
]
