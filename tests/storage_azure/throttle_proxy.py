"""A tiny HTTP proxy in front of Azurite that throttles, or loses answers, for the first N requests.

Azurite never throttles, so this is how the tests see real ``503 ServerBusy`` answers (with a
``Retry-After`` header, as the service sends them) and check that listing and batch deletion
retry them. With ``hold`` the proxy forwards a request to Azurite (which carries it out) and then
holds the answer past the client's read timeout: the answer is lost, as on a bad network.
Everything else is forwarded byte for byte to the real Azurite; SharedKey signatures do not cover
the host, so a connection string pointing at the proxy authenticates as usual.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_BUSY_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
    b"<Message>The server is busy (throttled by the test proxy).</Message></Error>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class ThrottlingProxy:
    def __init__(
        self,
        target_port: int,
        throttle: Mapping[str, int],
        retry_after: str | None = "0",
        hold: Mapping[str, int] | None = None,
        hold_seconds: float = 0.0,
    ) -> None:
        self.target_port = target_port
        self.remaining = dict(throttle)  # method -> how many more requests to answer 503
        self.retry_after = retry_after
        self.to_hold = dict(hold or {})  # method -> how many more answers to hold back
        self.hold_seconds = hold_seconds
        self.throttled = 0
        self.held = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, name="throttle-proxy", daemon=True)

    def _take_throttle(self, method: str) -> bool:
        with self._lock:
            if self.remaining.get(method, 0) > 0:
                self.remaining[method] -= 1
                self.throttled += 1
                return True
            self.forwarded += 1
            return False

    def _take_hold(self, method: str) -> bool:
        with self._lock:
            if self.to_hold.get(method, 0) > 0:
                self.to_hold[method] -= 1
                self.held += 1
                return True
            return False

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy._take_throttle(self.command):
                    self.send_response(503, "Server Busy")
                    self.send_header("x-ms-error-code", "ServerBusy")
                    if proxy.retry_after is not None:
                        self.send_header("Retry-After", proxy.retry_after)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(_BUSY_BODY)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(_BUSY_BODY)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    if body is not None:
                        headers["Content-Length"] = str(len(body))
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    if proxy._take_hold(self.command):
                        proxy._stopping.wait(proxy.hold_seconds)  # the client gives up meanwhile
                        self.close_connection = True
                        return
                    self.send_response(response.status, response.reason)
                    for key, value in response.getheaders():
                        if key.lower() not in _HOP_BY_HOP:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def throttling_proxy(
    target_port: int,
    throttle: Mapping[str, int],
    retry_after: str | None = "0",
    hold: Mapping[str, int] | None = None,
    hold_seconds: float = 0.0,
) -> Iterator[ThrottlingProxy]:
    proxy = ThrottlingProxy(target_port, throttle, retry_after, hold, hold_seconds)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
