"""The world the operator-as-ServiceAccount tests attack: one operator, two namespaces, roots and bait.

World            kubectl reads and waits for one running operator (OperatorProcess) that watches
                 namespaces A and B; B owns ROOT/b through TEMP_STORAGE_CLEANUP_NAMESPACE_ROOTS.
World.armed      a policy whose emergency check deletes, every second, each file older than an hour
                 that it can see: any escape shows up as a deleted bait file within a tick.
policy, run      CleanupPolicy / CleanupRun documents (policies are quiet unless told otherwise).
make_files, files   real files with chosen ages; the regular files under a directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.controlplane import ControlPlane, Kubectl
from support.operator_process import OperatorProcess
from support.probing import wait_for

API = "tempsweep.io/v1alpha1"
NEVER = "0 0 1 1 *"  # a cron slot no test run reaches
OLD_HOURS = 1000.0
FINAL = ("Succeeded", "Failed")


@dataclass
class Attack:
    """Bait that must survive, and the policy that must not have reached it."""

    namespace: str
    policy: str
    bait: Path
    files: set[str]
    created: datetime
    ticks: bool  # whether the policy's timer keeps ticking (it does unless its storage raises)


@dataclass
class World:
    """One operator, authenticated as its ServiceAccount, watching two namespaces; B owns root/b."""

    plane: ControlPlane
    kubectl: Kubectl
    kubeconfig: Path
    operator: OperatorProcess
    a: str
    b: str
    root: Path
    outside: Path
    attacks: list[Attack] = field(default_factory=list)

    def apply(
        self, namespace: str, document: dict[str, Any], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-f", "-", input=json.dumps(document), namespace=namespace, check=check)

    def get(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        result = self.kubectl("get", kind, name, "-o", "json", namespace=namespace, check=False)
        if result.returncode != 0:
            assert "NotFound" in result.stderr, result.stderr
            return None
        body: dict[str, Any] = json.loads(result.stdout)
        return body

    def status(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        return dict((self.get(namespace, kind, name) or {}).get("status") or {})

    def condition(self, namespace: str, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        conditions = self.status(namespace, kind, name).get("conditions") or []
        return next((dict(c) for c in conditions if c["type"] == type_), None)

    def wait_condition(self, namespace: str, name: str, status: str, timeout: float = 30) -> dict[str, Any]:
        return wait_for(
            lambda: f"CleanupPolicy {namespace}/{name} Ready={status}\n{self.tail()}",
            lambda: (
                c
                if (c := self.condition(namespace, "cleanuppolicy", name, "Ready")) and c["status"] == status
                else None
            ),
            timeout=timeout,
        )

    def wait_run(self, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
        return wait_for(
            lambda: f"CleanupRun {namespace}/{name} to finish\n{self.tail()}",
            lambda: s if (s := self.status(namespace, "cleanuprun", name)).get("phase") in FINAL else None,
            timeout=timeout,
        )

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        items = json.loads(self.kubectl("get", "events", "-o", "json", namespace=namespace).stdout)["items"]
        return [e for e in items if e["involvedObject"]["name"] == name]

    def heartbeat(self, seconds: int = 3) -> None:
        """Wait until the heartbeat policy's emergency check has run SECONDS more times (1 s interval)."""

        def last() -> datetime | None:
            value = self.status(self.a, "cleanuppolicy", "heartbeat").get("lastEmergencyCheckTime")
            return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

        start = wait_for("the heartbeat's first emergency check", last)
        wait_for(
            f"{seconds} more timer ticks", lambda: (t := last()) is not None and (t - start).total_seconds() >= seconds
        )

    def tail(self, lines: int = 40) -> str:
        return "--- operator log\n" + "\n".join(self.operator.log().splitlines()[-lines:])

    @staticmethod
    def armed(name: str, path: Path | str) -> dict[str, Any]:
        """A policy whose emergency check every second deletes every file older than an hour it can see."""
        return policy(
            name,
            path,
            storage={"volume": {"path": str(path), "capacity": "1Ki"}},
            thresholds={"warningPercent": 10, "emergencyPercent": 20, "minFreeSpace": 0},
            orphans={"maxAgeHours": 1, "emergencyMaxAgeHours": 1},
            schedule={"emergencyCheckInterval": "1s", "statsInterval": "1s"},
        )

    def bait(self, name: str) -> tuple[Path, set[str]]:
        directory = self.outside / name
        names = {"victim.tmp", "job_1001_chunk_7_image1.jpg", "deep/victim.tmp"}
        make_files(directory, names, age_hours=OLD_HOURS, size=1000)
        return directory, names

    def expect_survives(
        self, namespace: str, policy_name: str, bait: Path, names: set[str], *, ticks: bool = True
    ) -> None:
        """Assert the bait is intact now, and have the last test check it again after more ticks."""
        self.attacks.append(Attack(namespace, policy_name, bait, names, datetime.now(UTC), ticks))
        assert files(bait) == names


def policy(name: str, path: Path | str, **spec: Any) -> dict[str, Any]:
    """A quiet CleanupPolicy (timers never due, large capacity) unless SPEC overrides it."""
    body: dict[str, Any] = {
        "storage": {"volume": {"path": str(path), "capacity": "1Gi"}},
        "thresholds": {"minFreeSpace": "1Mi"},
        "schedule": {"scheduled": NEVER, "orphaned": NEVER, "statsInterval": "1h", "emergencyCheckInterval": "1h"},
    }
    for key, value in spec.items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    return {"apiVersion": API, "kind": "CleanupPolicy", "metadata": {"name": name}, "spec": body}


def run(name: str, policy_name: str, type_: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "CleanupRun",
        "metadata": {"name": name},
        "spec": {"policyRef": {"name": policy_name}, "type": type_, **spec},
    }


def make_files(directory: Path, names: set[str] | list[str], *, age_hours: float = 0.0, size: int = 100) -> None:
    stamp = time.time() - age_hours * 3600
    for name in names:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (stamp, stamp))


def files(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and not p.is_symlink()}
