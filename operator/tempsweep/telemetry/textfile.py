"""Metrics as a file for node-exporter's textfile collector (``tempsweep scan --metrics-file PATH``).

For those who run the CLI from cron: node-exporter reads ``*.prom`` files from its
``--collector.textfile.directory``. The file is written to a temporary name beside it and renamed
(prometheus-client's ``write_to_textfile``), so the collector never reads half a file.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import write_to_textfile

from tempsweep.models import StorageStats
from tempsweep.telemetry.metrics import Metrics, Pass
from tempsweep.telemetry.observe import observe_pass, observe_stats


def write_stats_file(path: str, namespace: str, policy: str, stats: StorageStats, now: datetime) -> None:
    """The per-policy gauges of one scan, plus the time of that scan; OSError when it cannot be written."""
    metrics = Metrics()
    observe_stats(metrics, namespace, policy, stats)
    observe_pass(metrics, namespace, policy, Pass.STATISTICS, now)
    write_to_textfile(path, metrics.registry)
