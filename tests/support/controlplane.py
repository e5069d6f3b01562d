"""Pytest plugin: a real Kubernetes control plane (etcd + kube-apiserver) and its kubectl.

Fixtures:
    control_plane   (session) starts the control plane of tests/controlplane/cluster.py, or reuses a
                    healthy one already running in the same state directory; stops it at the end only
                    if this session started it. Returns a ControlPlane.
    kubectl         (session) kubectl(*args, input=None, check=True, namespace=None, timeout=60)
                    -> subprocess.CompletedProcess[str], the built kubectl with the admin kubeconfig.
    namespace       (function) a fresh, uniquely named namespace; deleted (left Terminating) afterwards.

The state directory is TEMPSWEEP_CLUSTER_DIR (default .local/cluster), the binaries TEMPSWEEP_BIN_DIR
(default .local/bin, made by `make controlplane`). Missing binaries skip locally and fail in CI.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

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
    # Without kube-controller-manager the namespace stays Terminating; that is expected.
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


__all__: list[str] = ["ControlPlane", "Kubectl", "control_plane", "kubectl", "namespace"]
