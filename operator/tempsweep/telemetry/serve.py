"""Serve a ``Metrics`` registry over HTTP for Prometheus (``GET /metrics``), on a port of its own.

A separate port from Kopf's liveness endpoint: a slow scrape never delays a liveness probe, and the
port can be exposed to Prometheus without exposing the probe. prometheus-client's own threaded server
does the work (it also answers gzip and OpenMetrics requests).
"""

from __future__ import annotations

from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from tempsweep.telemetry.metrics import Metrics

DEFAULT_PORT = 8081


class MetricsServer:
    """A running metrics endpoint; ``stop()`` closes its socket."""

    def __init__(self, metrics: Metrics, *, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
        self._server: WSGIServer
        self._thread: Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=metrics.registry)
        self.port = int(self._server.server_port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
