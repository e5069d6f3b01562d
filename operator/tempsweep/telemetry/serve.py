"""Serve metrics over HTTP for Prometheus (``GET /metrics``), on a port of its own.

A separate port from Kopf's liveness endpoint: a slow scrape never delays a liveness probe, and the
port can be exposed to Prometheus without exposing the probe. The body comes from a function: the
operator's ``Exposition.render`` (pre-rendered per policy), or ``generate_latest`` of a registry. The
server is the standard library's WSGI server, one thread per request, as prometheus-client's own
``start_http_server`` uses; the answer is always the text format 0.0.4, which Prometheus accepts
whatever it asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST

DEFAULT_PORT = 8081


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a hanging client never keeps the operator from exiting


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature of the base class
        """One line per scrape on stderr would be noise."""


class MetricsServer:
    """A running metrics endpoint; ``stop()`` closes its socket. OSError when the port cannot be bound."""

    def __init__(self, render: Callable[[], bytes], *, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
                return [b""]
            body = render()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
            return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]

        self._server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
        self._thread = Thread(target=self._server.serve_forever, name="metrics-server", daemon=True)
        self._thread.start()
        self.port = int(self._server.server_port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
