"""``tempsweep operator``: start Kopf with tempsweep's handlers."""

from __future__ import annotations

import logging
import os
import sys

from tempsweep.controller.timing import load_timing
from tempsweep.models import SettingsError, load_settings
from tempsweep.telemetry.serve import DEFAULT_PORT as DEFAULT_METRICS_PORT

#: DEBUG, INFO (default) or WARNING; DEBUG also shows every timer tick and every probe request.
LOG_LEVEL_VARIABLE = "TEMPSWEEP_LOG_LEVEL"


#: The watch-event handlers run on every event of every object (a dictionary update each): not news.
_QUIET_HANDLERS = frozenset({"Handler 'policy_event' succeeded.", "Handler 'run_event' succeeded."})


class _QuietTicks(logging.Filter):
    """Drop Kopf's "Timer '...' succeeded." lines: every policy ticks every few seconds, so at INFO they
    would bury everything else (100 policies: ten lines a second). Failures are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not (message.startswith("Timer '") or message in _QUIET_HANDLERS)


def configure_logging(level_name: str | None, log_format: str = "text") -> None:
    """Kopf's formatter, so every line about an object names it (``[namespace/name] ...``); or, with
    ``log_format="json"``, one JSON object per line with namespace, policy and run fields."""
    import kopf

    level = (level_name or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING"):
        raise SettingsError(f"{LOG_LEVEL_VARIABLE}: {level_name!r} is not one of DEBUG, INFO, WARNING")
    kopf.configure(debug=level == "DEBUG", quiet=level == "WARNING", log_prefix=True)
    if level != "DEBUG":
        logging.getLogger("kopf.objects").addFilter(_QuietTicks())
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # one line per liveness probe
    if log_format == "json":
        from tempsweep.telemetry.jsonlog import use_json

        use_json()


def run_operator(
    *,
    namespaces: list[str],
    liveness: str | None,
    peering: str | None,
    priority: int = 0,
    log_format: str = "text",
    metrics_port: int = DEFAULT_METRICS_PORT,
    sharding: tuple[int, int] | None = None,
) -> int:
    """Run until stopped. Standalone unless a peering object is named (for more than one replica).

    With peering, Kopf pauses this operator while a live peer of higher priority is in the peering
    object, and pauses every operator while two of the same priority are. With ``sharding`` (shard
    count, Lease seconds) every replica works only the policies of the shards whose Leases it holds.
    ``/metrics`` is served on ``metrics_port`` (0: no metrics at all); a port that cannot be listened on
    stops the operator (exit 2).
    """
    try:
        settings = load_settings()
        load_timing()  # checked here, before the handlers' imports read it
        configure_logging(os.environ.get(LOG_LEVEL_VARIABLE), log_format)
    except SettingsError as exc:
        print(f"tempsweep: error: {exc}", file=sys.stderr)
        return 2
    import kopf

    from tempsweep.controller import policies, run_handlers, shard_handlers
    from tempsweep.controller.state import OperatorState
    from tempsweep.controller.telemetry_hooks import OperatorTelemetry

    assert policies and run_handlers and shard_handlers  # imported for their Kopf registrations
    telemetry = OperatorTelemetry(metrics_port)
    state = OperatorState(settings, telemetry=telemetry)
    if sharding is not None:
        problem = shard_handlers.use_shards(state, namespaces, *sharding)
        if problem:
            print(f"tempsweep: error: {problem}", file=sys.stderr)
            return 2
    try:
        kopf.run(
            memo=kopf.Memo(state=state),
            standalone=peering is None,
            peering_name=peering,
            priority=priority,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness or None,
        )
    except Exception:
        if telemetry.failure is None:
            raise
        print(f"tempsweep: error: {telemetry.failure}", file=sys.stderr)  # Kopf logged the startup failure
        return 2
    return 0
