"""``tempsweep agent --node-name NAME``: start the node agent, answer its liveness probe, stop on SIGTERM.

The liveness endpoint answers 200 while the agent's loop keeps ticking (a tick that waits on a busy API
server is not a dead agent, but a loop silent for ten ticks and two minutes is); cleanups run on worker
threads and never hold the loop up.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tempsweep.agent.loop import LABELS_SECONDS
from tempsweep.controller.timing import _seconds, load_timing
from tempsweep.models import SettingsError, load_settings

log = logging.getLogger("tempsweep.agent")

LABELS_VARIABLE = "TEMPSWEEP_AGENT_LABELS_SECONDS"


def run_agent(
    *, node: str, namespaces: list[str], liveness: str | None, host_root: str = "/", log_format: str = "text"
) -> int:
    """Run until SIGTERM/SIGINT. Exit 2 with one line for bad settings or a node that does not exist."""
    from tempsweep.controller.kube import NotFound
    from tempsweep.controller.node_runs import wait_seconds

    try:
        settings = load_settings()
        timing = load_timing()
        wait_seconds()
        labels_seconds = _seconds(os.environ, LABELS_VARIABLE, LABELS_SECONDS, 1, 86_400)
    except SettingsError as exc:
        print(f"tempsweep: error: {exc}", file=sys.stderr)
        return 2
    _logging(log_format)
    from tempsweep.agent.hostroot import HostRoot
    from tempsweep.agent.loop import Agent

    agent = Agent(node=node, settings=settings, namespaces=namespaces, host=HostRoot(host_root))
    agent.labels_seconds = labels_seconds
    from kubernetes.config import ConfigException

    try:
        agent.tick()  # reads the Node's labels: a node that does not exist is a bad --node-name
    except NotFound as exc:
        print(f"tempsweep: error: --node-name: {exc}", file=sys.stderr)
        return 2
    except ConfigException as exc:
        print(f"tempsweep: error: no Kubernetes configuration (in-cluster or KUBECONFIG): {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an outage at start: keep trying, as every later tick does
        log.warning("first tick failed, trying again: %s: %s", type(exc).__name__, exc)
    agent.start()
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    server = _serve_liveness(liveness, agent, timing.tick_seconds) if liveness else None
    log.info("agent of node %s started (identity %s)", node, agent.identity)
    while not stop.wait(timing.tick_seconds):
        try:
            agent.tick()
        except Exception as exc:  # an API outage: the next tick tries again
            log.warning("tick failed, trying again: %s: %s", type(exc).__name__, exc)
    log.info("stopping: running cleanups stop at their next batch")
    agent.shutdown()
    if server is not None:
        server.shutdown()
    return 0


def _logging(log_format: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if log_format == "json":
        from tempsweep.telemetry.jsonlog import use_json

        use_json()


def _serve_liveness(url: str, agent: Any, tick_seconds: float) -> ThreadingHTTPServer:
    parts = urlsplit(url)
    stale_after = max(10 * tick_seconds, 120.0)

    class Probe(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            silent = time.monotonic() - agent.last_tick
            healthy = silent <= stale_after
            body = json.dumps({"node": agent.node, "secondsSinceTick": round(silent, 1)}).encode()
            self.send_response(200 if healthy else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:  # one line per probe is noise
            return

    server = ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 8080), Probe)
    threading.Thread(target=server.serve_forever, name="liveness", daemon=True).start()
    return server
