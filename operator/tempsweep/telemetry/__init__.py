"""What tempsweep tells monitoring: Prometheus metrics, the textfile-collector file, JSON log lines.

Sits beside ``tempsweep.storage`` and ``tempsweep.jobs``: it reads the typed records of
``tempsweep.models`` and never imports the controller, so the operator and the CLI share it.
"""

from tempsweep.telemetry.metrics import Metrics, Pass
from tempsweep.telemetry.observe import (
    forget_policy,
    observe_pass,
    observe_prediction,
    observe_run,
    observe_run_duration,
    observe_stats,
    observe_timer_lag,
)

__all__ = [
    "Metrics",
    "Pass",
    "forget_policy",
    "observe_pass",
    "observe_prediction",
    "observe_run",
    "observe_run_duration",
    "observe_stats",
    "observe_timer_lag",
]
