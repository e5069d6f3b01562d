"""Pytest plugin: a real Prometheus (built by ``make prometheus``) scraping what a test points it at.

Fixture:
    start_prometheus  (function) start_prometheus(targets, rules=None, job=...) -> a started PrometheusServer
                      that scrapes TARGETS (``host:port``) every second and evaluates RULES (a Prometheus rule
                      file as a dict) every second; stopped at the end of the test.

The server runs with its data in the test's temporary directory and answers its HTTP API on a free port.
``query`` and ``wait_query`` use ``/api/v1/query``; ``rules`` and ``alerts`` the rules and alerts APIs.
When the binary is missing the test skips locally and fails in CI (``support.components``).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from support.components import missing_component
from support.probing import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / ".local" / "bin" / "prometheus"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

Vector = list[dict[str, Any]]


class PrometheusServer:
    """One ``prometheus`` process with a static scrape config; its log is kept beside its data."""

    def __init__(self, directory: Path, targets: Sequence[str], rules: dict[str, Any] | None, job: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.log_path = directory / "prometheus.log"
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                # honor_labels as the shipped ServiceMonitor does: the policy's namespace label is kept
                {"job_name": job, "honor_labels": True, "static_configs": [{"targets": list(targets)}]}
            ],
        }
        if rules is not None:
            (directory / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
            config["rule_files"] = [str(directory / "rules.yaml")]
        (directory / "prometheus.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={self.directory / 'prometheus.yaml'}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: f"Prometheus to be ready\n{self.tail()}", self._ready, timeout=READY_TIMEOUT)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"prometheus exited with {self.process.returncode}\n{self.tail()}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            text = []
        return f"--- last {len(text)} lines of {self.log_path}\n" + "\n".join(text)

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of a successful API answer; AssertionError with Prometheus's error otherwise."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        assert body.get("status") == "success", f"{path} {params}: {body.get('errorType')}: {body.get('error')}"
        return body["data"]

    def query(self, expr: str) -> Vector:
        """An instant query; the result as a list of {metric, value} (a scalar becomes one such entry)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: Vector = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of EXPR, or None when it returns no series (AssertionError for several)."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} returned {len(result)} series: {result}"
        return float(result[0]["value"][1]) if result else None

    def wait_value(
        self, expr: str, ready: Callable[[float], bool], what: str, timeout: float = 60.0
    ) -> float:
        """Poll EXPR until it has one value READY accepts; that value."""
        def probe() -> float | None:
            value = self.value(expr)
            return value if value is not None and ready(value) else None

        found: float = wait_for(lambda: f"{what} ({expr} is {self.value(expr)})", probe, timeout=timeout)
        return found

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, with its group's name under ``group``."""
        groups = self.api("rules")["groups"]
        return [{**rule, "group": group["name"]} for group in groups for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        """The pending and firing alerts."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts


class StartPrometheus(Protocol):
    def __call__(
        self, targets: Sequence[str], rules: dict[str, Any] | None = None, job: str = "prometheus"
    ) -> PrometheusServer: ...


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    if not PROMETHEUS.is_file():
        missing_component("prometheus", "run `make prometheus` (builds it from the upstream Go module)")
    started: list[PrometheusServer] = []

    def start(targets: Sequence[str], rules: dict[str, Any] | None = None, job: str = "prometheus") -> PrometheusServer:
        directory = tmp_path / f"prometheus-{len(started) + 1}"
        directory.mkdir()
        server = PrometheusServer(directory, targets, rules, job)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


__all__ = ["PrometheusServer", "StartPrometheus", "start_prometheus"]
