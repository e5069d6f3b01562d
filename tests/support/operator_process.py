"""Pytest plugin: tempsweep's CRDs on the test control plane and `tempsweep operator` as a real subprocess.

The operator runs as its own process, exactly as a user starts it, so a test can SIGKILL it in the middle
of a run and start it again. Its output goes to a log file; when a test fails, the tail of every operator
log the test used is added to the report.

Fixtures:
    tempsweep_crds   (session) applies crds/ once and waits until both CRDs are Established and served.
    operator_root    (function) a fresh directory: the operator's only allowed root
                     (TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS). Test volumes are made beneath it.
    start_operator   (function) start_operator(*namespaces, options=(), **env) -> a started OperatorProcess;
                     OPTIONS are more command-line arguments (e.g. --peering NAME --priority N); every
                     process it started is stopped at the end of the test.
    operator         (function) one operator watching the test's `namespace`, started and ready.
    kube             (function) a Kube: kubectl bound to the test's `namespace`, with status polling.

Environment given to the operator: KUBECONFIG of the control plane, TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS,
TEMPSWEEP_TICK_SECONDS=1, TEMPSWEEP_TTL_CHECK_SECONDS=1 and TEMPSWEEP_RUN_LEASE_SECONDS=10 (tests run fast; a run
claimed by an operator that was killed is taken over 10 s later), plus any overrides.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from support.controlplane import ControlPlane, Kubectl
from support.probing import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
CRD_NAMES = ("cleanuppolicies.tempsweep.io", "cleanupruns.tempsweep.io")
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
LOG_TAIL_LINES = 60



class OperatorProcess:
    """`tempsweep operator --namespace NS... --liveness URL [OPTIONS]`, a child process with its log in a file."""

    def __init__(
        self,
        *,
        namespaces: list[str],
        env: dict[str, str],
        log_path: Path,
        cwd: Path = REPO,
        options: Sequence[str] = (),
    ) -> None:
        self.namespaces = namespaces
        self.options = list(options)
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def liveness_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the operator was never started"
        return self.process.pid

    @property
    def command(self) -> list[str]:
        command = [sys.executable, "-m", "tempsweep.cli", "operator"]
        for namespace in self.namespaces:
            command += ["--namespace", namespace]
        return command + ["--liveness", self.liveness_url, *self.options]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = READY_TIMEOUT) -> OperatorProcess:
        """Start the process and wait until its liveness endpoint answers 200."""
        assert not self.alive(), "the operator is already running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"===== tempsweep operator start #{self.starts}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # a Ctrl-C of pytest does not reach it; we stop it ourselves
            )
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                pytest.fail(
                    f"the operator exited with {self.process.returncode} while starting\n{self.tail()}",
                    pytrace=False,
                )
            if self.probe() is not None:
                return self
            if time.monotonic() > deadline:
                pytest.fail(f"the operator was not ready within {timeout:g} s\n{self.tail()}", pytrace=False)
            time.sleep(0.1)

    def healthy(self) -> bool:
        return self.probe() is not None

    def probe(self) -> dict[str, Any] | None:
        """The liveness endpoint's JSON when it answers 200, else None."""
        try:
            with urllib.request.urlopen(self.liveness_url, timeout=2) as response:
                if response.status != 200:
                    return None
                body: dict[str, Any] = json.loads(response.read() or b"{}")
                return body
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no final patches, as when a node dies."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)
        self._mark(f"killed with SIGKILL (exit {self.process.returncode})")

    def stop(self) -> None:
        """SIGTERM (Kopf shuts down gracefully), then SIGKILL if it does not exit in time."""
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
        self._mark(f"stopped (exit {self.process.returncode})")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log().splitlines()[-lines:]
        return f"--- last {len(text)} lines of {self.log_path}\n" + "\n".join(text)

    def _mark(self, what: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"===== tempsweep operator {what}\n")


class StartOperator(Protocol):
    def __call__(self, *namespaces: str, options: Sequence[str] = (), **env: str) -> OperatorProcess: ...


class Kube:
    """kubectl bound to one namespace, with the few reads the operator tests repeat."""

    FINAL = ("Succeeded", "Failed", "Cancelled")

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace

    def __call__(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("namespace", self.namespace)
        return self.kubectl(*args, **kwargs)

    def apply(self, document: dict[str, Any] | str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        text = document if isinstance(document, str) else json.dumps(document)
        return self("apply", "-f", "-", input=text, check=check)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result = self("get", kind, name, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr or "not found" in result.stderr:
                return None
            raise AssertionError(f"kubectl get {kind} {name} failed: {result.stderr}")
        body: dict[str, Any] = json.loads(result.stdout)
        return body

    def status(self, kind: str, name: str) -> dict[str, Any]:
        body = self.get(kind, name)
        return dict((body or {}).get("status") or {})

    def wait_status(
        self, kind: str, name: str, ready: Callable[[dict[str, Any]], object], what: str, timeout: float = 30
    ) -> dict[str, Any]:
        """Poll the object's status until READY(status) is truthy; return that status."""
        found: dict[str, Any] = {}

        def probe() -> bool:
            found.clear()
            found.update(self.status(kind, name))
            return bool(ready(found))

        wait_for(f"{kind} {self.namespace}/{name}: {what}", probe, timeout=timeout)
        return dict(found)

    def wait_run(self, name: str, timeout: float = 30) -> dict[str, Any]:
        """A CleanupRun's status once it reaches a final phase: Succeeded, Failed or Cancelled."""
        return self.wait_status("cleanuprun", name, lambda s: s.get("phase") in self.FINAL, "a final phase", timeout)

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        for condition in self.status(kind, name).get("conditions") or []:
            if condition.get("type") == type_:
                return dict(condition)
        return None

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        args = ["get", "events", "-o", "json"]
        if name is not None:
            args.append(f"--field-selector=involvedObject.name={name}")
        items: list[dict[str, Any]] = json.loads(self(*args).stdout)["items"]
        return items

    def table(self, *args: str) -> list[dict[str, str]]:
        """`kubectl get ARGS` as printed: one dict per row, keyed by the header's column names."""
        lines = [line for line in self("get", *args).stdout.splitlines() if line.strip()]
        return parse_table(lines)


def parse_table(lines: list[str]) -> list[dict[str, str]]:
    """Split kubectl's fixed-width table by the header's column offsets (names may contain a space)."""
    header = lines[0]
    starts = [0]
    index = 0
    while True:
        gap = header.find("   ", index)
        if gap < 0:
            break
        start = len(header) - len(header[gap:].lstrip(" "))
        starts.append(start)
        index = start
    bounds = list(zip(starts, starts[1:] + [None], strict=True))
    names = [header[a:b].strip() for a, b in bounds]
    return [{name: line[a:b].strip() for name, (a, b) in zip(names, bounds, strict=True)} for line in lines[1:]]


_PROCESSES = pytest.StashKey[list[OperatorProcess]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for process in item.stash.get(_PROCESSES, []):
            report.sections.append((f"operator log {process.log_path.name}", process.tail()))


@pytest.fixture(scope="session")
def tempsweep_crds(kubectl: Kubectl) -> tuple[str, ...]:
    """Both CRDs applied from crds/ (the CRD files, not its kustomization), Established and served."""
    files = [path for path in sorted(CRD_DIR.glob("*.yaml")) if "kind: CustomResourceDefinition" in path.read_text()]
    assert len(files) == len(CRD_NAMES), f"expected {len(CRD_NAMES)} CRD files in {CRD_DIR}, found {files}"
    kubectl("apply", *(arg for path in files for arg in ("-f", str(path))))
    kubectl("wait", "--for=condition=established", "--timeout=60s", *(f"crd/{name}" for name in CRD_NAMES))
    # Right after establishment the API server may answer 429 "storage is (re)initializing".
    wait_for(
        "the tempsweep resources to be served",
        lambda: kubectl("get", "tempsweep", "--all-namespaces", check=False).returncode == 0,
        timeout=60,
    )
    return CRD_NAMES


@pytest.fixture
def operator_root(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    return root


@pytest.fixture
def start_operator(
    control_plane: ControlPlane,
    tempsweep_crds: tuple[str, ...],
    operator_root: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[StartOperator]:
    started: list[OperatorProcess] = []
    request.node.stash[_PROCESSES] = started

    def start(*namespaces: str, options: Sequence[str] = (), **overrides: str) -> OperatorProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("TEMP_STORAGE_CLEANUP_")}
        env.update(
            KUBECONFIG=str(control_plane.kubeconfig),
            TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS=str(operator_root),
            TEMPSWEEP_TICK_SECONDS="1",
            TEMPSWEEP_TTL_CHECK_SECONDS="1",
            TEMPSWEEP_RUN_LEASE_SECONDS="10",
            PYTHONUNBUFFERED="1",
        )
        env.update(overrides)
        log_path = tmp_path / f"operator-{len(started) + 1}.log"
        process = OperatorProcess(namespaces=list(namespaces), env=env, log_path=log_path, options=options)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def operator(start_operator: StartOperator, namespace: str) -> OperatorProcess:
    return start_operator(namespace)


@pytest.fixture
def kube(kubectl: Kubectl, namespace: str, tempsweep_crds: tuple[str, ...]) -> Kube:
    return Kube(kubectl, namespace)


__all__ = [
    "Kube",
    "OperatorProcess",
    "StartOperator",
    "free_port",
    "kube",
    "parse_table",
    "operator",
    "operator_root",
    "start_operator",
    "tempsweep_crds",
    "wait_for",
]
