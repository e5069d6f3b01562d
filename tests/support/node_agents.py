"""Pytest plugin: Node objects registered through the API and `tempsweep agent` processes, one per node.

No kubelet is involved: a Node is an API object like any other, and the agent reads only its labels. Each
agent process gets its own directory standing for its node's disk (``--host-root``): the policy names the
node path (``NODE_PATH``), and the agent of node N finds it under ``<tmp>/disks/N``.

Agents tick every second, read their Node's labels every second and let a dead agent's claim lapse after 10 s.

Fixtures:
    register_nodes  (function) register_nodes(**labels_by_short_name) -> {short name: Node name}; Node
                    names are unique to the test and carry the label ``tempsweep-test=<namespace>``
                    (``TEST_LABEL``), so a policy selecting it never sees another test's nodes. Deleted
                    at the end of the test.
    start_agent     (function) start_agent(node, **env) -> a started AgentProcess for that Node, watching
                    the test's namespace, its disk under ``disk(node)``; stopped at the end of the test.
    disk            (function) disk(node) -> the directory standing for NODE_PATH on that node.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.controlplane import ControlPlane, Kubectl
from support.operator_process import _PROCESSES, OperatorProcess

NODE_PATH = "/data/scratch"  # the policy's path, as on every node
NODE_ROOT = "/data"  # the agents' allowed root, as on every node
TEST_LABEL = "tempsweep-test"


class AgentProcess(OperatorProcess):
    """`tempsweep agent --node-name NODE --namespace NS --host-root DIR --liveness URL`, a child process."""

    def __init__(self, *, node: str, host_root: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.node = node
        self.host_root = host_root

    @property
    def command(self) -> list[str]:
        command = [sys.executable, "-m", "tempsweep.cli", "agent", "--node-name", self.node]
        for namespace in self.namespaces:
            command += ["--namespace", namespace]
        return command + ["--host-root", str(self.host_root), "--liveness", self.liveness_url, *self.options]


@pytest.fixture
def register_nodes(kubectl: Kubectl, namespace: str) -> Iterator[Callable[..., dict[str, str]]]:
    created: list[str] = []

    def register(**labels_by_node: dict[str, str]) -> dict[str, str]:
        names = {}
        for short, labels in labels_by_node.items():
            name = f"{namespace}-{short}"[:63]
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": {TEST_LABEL: namespace, **labels}},
            }
            kubectl("apply", "-f", "-", input=json.dumps(node))
            created.append(name)
            names[short] = name
        return names

    yield register
    if created:
        kubectl("delete", "node", *created, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Callable[[str], Path]:
    def where(node: str) -> Path:
        path = tmp_path / "disks" / node / NODE_PATH.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        return path

    return where


@pytest.fixture
def start_agent(
    control_plane: ControlPlane,
    tempsweep_crds: tuple[str, ...],
    namespace: str,
    tmp_path: Path,
    disk: Callable[[str], Path],
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []
    request.node.stash.setdefault(_PROCESSES, [])

    def start(node: str, **overrides: str) -> AgentProcess:
        disk(node)
        env = {key: value for key, value in os.environ.items() if not key.startswith("TEMP_STORAGE_CLEANUP_")}
        env.update(
            KUBECONFIG=str(control_plane.kubeconfig),
            TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS=NODE_ROOT,
            TEMPSWEEP_TICK_SECONDS="1",
            TEMPSWEEP_RUN_LEASE_SECONDS="10",
            TEMPSWEEP_AGENT_LABELS_SECONDS="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(overrides)
        process = AgentProcess(
            node=node,
            host_root=tmp_path / "disks" / node,
            namespaces=[namespace],
            env=env,
            log_path=tmp_path / f"agent-{node}-{len(started) + 1}.log",
        )
        started.append(process)
        request.node.stash[_PROCESSES].append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
