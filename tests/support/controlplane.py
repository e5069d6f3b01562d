"""Pytest plugin: a real Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager) and its kubectl.

Fixtures:
    control_plane   (session) starts the control plane of tests/controlplane/cluster.py, or reuses a
                    healthy one already running in the same state directory; stops it at the end only
                    if this session started it. Returns a ControlPlane.
    kubectl         (session) kubectl(*args, input=None, check=True, namespace=None, timeout=60)
                    -> subprocess.CompletedProcess[str], the built kubectl with the admin kubeconfig.
    namespace       (function) a fresh, uniquely named namespace; deleted afterwards without waiting
                    (kube-controller-manager empties and removes it, unless finalizers hold its objects).
    outage          (function) an Outage: stop the API server (or any part of the control plane) in the
                    middle of a test and start it again with etcd's data, ports and certificates kept.
                    Whatever the test left stopped is started again at teardown.

The state directory is TEMPSWEEP_CLUSTER_DIR (default .local/cluster), the binaries TEMPSWEEP_BIN_DIR
(default .local/bin, made by `make controlplane`). Missing binaries skip locally and fail in CI.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import pytest

from support.components import missing_component

CLUSTER_SCRIPT = Path(__file__).resolve().parents[1] / "controlplane" / "cluster.py"


def _load_cluster_module() -> ModuleType:
    """tests/controlplane is not a package; load cluster.py by path (once)."""
    name = "tempsweep_test_cluster"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CLUSTER_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class ControlPlane:
    kubeconfig: Path
    bin_dir: Path
    server: str
    state_dir: Path
    started_here: bool
    cluster: Any = field(default=None, repr=False, compare=False)  # the cluster.Cluster running it

    @property
    def kubectl_path(self) -> Path:
        return self.bin_dir / "kubectl"

    def env(self) -> dict[str, str]:
        """os.environ plus KUBECONFIG pointing at this control plane."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


class Kubectl(Protocol):
    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        namespace: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    cluster_mod = _load_cluster_module()
    cluster = cluster_mod.Cluster()
    missing = cluster.missing_binaries()
    if missing:
        missing_component(
            f"the Kubernetes control plane ({', '.join(missing)} in {cluster.bin_dir})",
            "run `make controlplane` (bash tests/controlplane/build.sh)",
        )
    try:
        info = cluster.up()
    except cluster_mod.ClusterError as err:
        pytest.fail(f"could not start the control plane: {err}", pytrace=False)
    plane = ControlPlane(
        kubeconfig=info.kubeconfig,
        bin_dir=info.bin_dir,
        server=info.server,
        state_dir=info.state_dir,
        started_here=not info.reused,
        cluster=cluster,
    )
    yield plane
    if plane.started_here:
        cluster.down()


def _make_kubectl(plane: ControlPlane) -> Kubectl:
    def kubectl(
        *args: str,
        input: str | None = None,
        check: bool = True,
        namespace: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(plane.kubectl_path), f"--kubeconfig={plane.kubeconfig}"]
        if namespace is not None:
            cmd.append(f"--namespace={namespace}")
        cmd.extend(str(a) for a in args)
        try:
            result = subprocess.run(
                cmd, input=input, capture_output=True, text=True, timeout=timeout, env=plane.env()
            )
        except subprocess.TimeoutExpired as err:
            raise AssertionError(
                f"kubectl timed out after {timeout} s: {shlex.join(cmd)}\n"
                f"--- stdout\n{_text(err.stdout)}\n--- stderr\n{_text(err.stderr)}"
            ) from None
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl failed (exit {result.returncode}): {shlex.join(cmd)}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    return kubectl


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    return _make_kubectl(control_plane)


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "test"
    name = f"{base}-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    # Not waiting: kube-controller-manager removes it in the background; objects whose finalizers nobody
    # removes any more (an operator already stopped) keep it Terminating, which harms no later test.
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


APISERVER = ("kube-apiserver",)


class Outage:
    """Stops parts of the session's control plane mid-test and starts them again as they were.

    etcd keeps its data directory, every component its port, and the PKI stays, so kubeconfigs (the
    operator's too) work again after the restart and every object is still there. Components:
    "etcd", "kube-apiserver", "kube-controller-manager" (stopped later-first, started in order).
    """

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.module = _load_cluster_module()
        self.stopped: set[str] = set()

    def stop(self, *components: str) -> None:
        """Stop COMPONENTS (default: the API server) with SIGTERM, SIGKILL after a grace period."""
        chosen = components or APISERVER
        self._call(self.plane.cluster.stop, chosen)
        self.stopped.update(chosen)

    def start(self) -> None:
        """Start everything stopped, on the same ports with the same data, and wait until it is ready."""
        self._call(self.plane.cluster.start, self.module.COMPONENTS)
        self.stopped.clear()

    @contextlib.contextmanager
    def down(self, *components: str, seconds: float = 0.0) -> Iterator[None]:
        """COMPONENTS (default: the API server) are stopped inside the block, for at least SECONDS.

        The body runs while they are down (probe the operator, count failures); if it finishes sooner,
        the outage goes on until SECONDS have passed since the stop. The start happens even if the body fails.
        """
        self.stop(*components)
        stopped_at = time.monotonic()
        try:
            yield
            remaining = seconds - (time.monotonic() - stopped_at)
            if remaining > 0:
                time.sleep(remaining)  # the outage's length is the test's input, not a wait for a condition
        finally:
            self.start()

    def _call(self, method: Any, components: tuple[str, ...]) -> None:
        try:
            method(tuple(components))
        except self.module.ClusterError as err:
            pytest.fail(f"control plane outage: {err}", pytrace=False)


@pytest.fixture
def outage(control_plane: ControlPlane) -> Iterator[Outage]:
    helper = Outage(control_plane)
    yield helper
    if helper.stopped:
        helper.start()


__all__: list[str] = [
    "APISERVER",
    "ControlPlane",
    "Kubectl",
    "Outage",
    "control_plane",
    "kubectl",
    "namespace",
    "outage",
]
