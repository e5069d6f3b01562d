"""What the policy and the run handlers share: the operator settings, the clock, names and run events."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import kopf

from tempsweep.models import OperatorSettings, RunPhase
from tempsweep.models.status import RunStatus

#: How often each policy's timer wakes to see what is due (the schedules themselves live in the spec).
TICK_SECONDS = float(os.environ.get("TEMPSWEEP_TICK_SECONDS", "10"))
#: How often each finished run checks its ttlSecondsAfterFinished.
TTL_CHECK_SECONDS = float(os.environ.get("TEMPSWEEP_TTL_CHECK_SECONDS", "60"))
POLICIES, RUNS = "cleanuppolicies", "cleanupruns"
#: Kopf's worker threads for sync handlers; the Kubernetes client's connection pool is at least this large,
#: so a thread never waits for a connection another one holds (nor is a connection thrown away after use).
WORKER_THREADS = 16

_settings: OperatorSettings | None = None


def configure(settings: OperatorSettings) -> None:
    global _settings
    _settings = settings


def settings() -> OperatorSettings:
    if _settings is None:  # imported without run_operator (e.g. `kopf run`): read the environment
        from tempsweep.models import load_settings

        configure(load_settings())
    assert _settings is not None
    return _settings


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def post_run_event(body: kopf.Body, result: RunStatus) -> None:
    """One event per finished cleanup; a failure with a named cause (BlastRadiusExceeded) uses that reason."""
    if result.phase is RunPhase.FAILED:
        reason = result.reason.value if result.reason is not None else "CleanupFailed"
        kopf.event(body, type="Warning", reason=reason, message=result.message)
    else:
        kopf.event(body, type="Normal", reason="CleanupFinished", message=result.message)
