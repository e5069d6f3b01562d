"""The metrics endpoint over real HTTP, as Prometheus scrapes it."""

from __future__ import annotations

import urllib.request

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tempsweep.models import Health, StorageStats
from tempsweep.telemetry import Metrics, observe_stats
from tempsweep.telemetry.serve import MetricsServer


def test_a_scrape_returns_the_current_figures_and_a_second_server_can_take_the_port_after_stop() -> None:
    metrics = Metrics(runtime_collectors=True)
    observe_stats(metrics, "ns", "p", StorageStats(
        usage_percent=40, emergency_threshold=90, warning_threshold=80, total_bytes=1000, free_bytes=600,
        temp_files_count=3, temp_files_size_bytes=30, active_jobs_count=0, failed_jobs_count=0,
        orphaned_files_count=0, orphaned_files_size_bytes=0, cleanup_needed=False, health=Health.HEALTHY,
    ))
    server = MetricsServer(lambda: generate_latest(metrics.registry), host="127.0.0.1", port=0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as response:
            content_type = response.headers["Content-Type"]
            text = response.read().decode()
    finally:
        server.stop()

    assert content_type.startswith("text/plain")
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["tempsweep_storage_used_bytes"].value == 400
    assert samples["tempsweep_storage_used_bytes"].labels == {"namespace": "ns", "policy": "p"}
    assert "process_cpu_seconds_total" in samples

    again = MetricsServer(lambda: b"", host="127.0.0.1", port=server.port)
    again.stop()
