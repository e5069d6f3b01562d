"""The cluster half of ``make demo``: the operator on the local control plane, driven with kubectl.

Starts (or reuses) the control plane built from upstream sources (tests/controlplane), installs
the CRDs, puts the job-database URL in a Secret, starts ``tempsweep operator`` against a fresh
sample volume, applies the examples one by one as a user would, and prints ``kubectl get tempsweep``.
A script of the repository (``demo/``): it uses the repository's control-plane launcher.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = "tempsweep-demo"
DEADLINE_S = 120


class DemoCluster:
    def __init__(self, repo: Path, work: Path) -> None:
        self.repo = repo
        self.work = work
        self.state = work / "cluster"
        self.kubectl_bin = repo / ".local" / "bin" / "kubectl"
        self.env = {**os.environ, "TEMPSWEEP_CLUSTER_DIR": str(self.state)}

    def up(self) -> None:
        launcher = self.repo / "tests" / "controlplane" / "cluster.py"
        subprocess.run([sys.executable, str(launcher), "up"], env=self.env, check=True)
        self.env["KUBECONFIG"] = str(self.state / "kubeconfig")

    def down(self) -> None:
        launcher = self.repo / "tests" / "controlplane" / "cluster.py"
        subprocess.run([sys.executable, str(launcher), "down"], env=self.env, check=False)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [str(self.kubectl_bin), *args], input=stdin, text=True, capture_output=True, env=self.env, timeout=60
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def wait_for(self, kind: str, name: str, ready: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            found = json.loads(self.kubectl("-n", NAMESPACE, "get", kind, name, "-o", "json"))
            if ready(found.get("status") or {}):
                return dict(found)
            time.sleep(0.5)
        raise RuntimeError(f"{kind}/{name}: timed out waiting for {what}")


#: The metrics the demo shows (at most two lines of each): the policy's usage, health and predicted time to
#: full, runs, bytes freed.
_SHOWN_METRICS = (
    "tempsweep_storage_usage_ratio{",
    "tempsweep_storage_health{",
    "tempsweep_storage_predicted_full_seconds{",
    "tempsweep_cleanup_runs_total{",
    "tempsweep_cleanup_freed_bytes_total{",
)


def _metrics_excerpt(port: int, policy: str) -> str:
    """A few lines of the operator's /metrics: the policy's non-zero figures of the metrics above."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    shown = []
    for prefix in _SHOWN_METRICS:
        mine = [line for line in lines if line.startswith(prefix) and f'policy="{policy}"' in line]
        shown += [line for line in mine if not line.endswith(" 0.0")][:2]
    return "\n".join(shown) + f"\n... ({len(lines)} lines in all)\n"


def show_prediction(cluster: DemoCluster, volume: Path, name: str) -> None:
    """A running job writes 8 MiB at a time; the operator samples usage with each statistics pass and
    status.prediction says when the volume fills up at that rate."""
    print("\n# job 1001 (running) writes 8 MiB per statistics pass; the operator fits the fill rate")
    prediction: dict[str, Any] = {}
    status = cluster.wait_for("cleanuppolicy", name, lambda s: "tempFilesCount" in s, "statistics")["status"]
    for step in range(12):
        count = status["tempFilesCount"] + 1  # excluded files (*.lock) are not counted
        (volume / f"job_1001_chunk_9_part{step:02d}.bin").write_bytes(b"\0" * 8 * 2**20)
        status = cluster.wait_for(
            "cleanuppolicy", name, lambda s, n=count: s.get("tempFilesCount") == n, "statistics"
        )["status"]
        prediction = status.get("prediction") or {}
        if prediction.get("fullAt"):
            break
    print(
        f"status.prediction: filling at {float(prediction.get('fillRateBytesPerHour') or 0) / 2**30:.1f} GiB/h, "
        f"FULL IN {prediction.get('fullIn')} (fullAt {prediction.get('fullAt')}, emergencyAt "
        f"{prediction.get('emergencyAt')}), confidence {prediction.get('confidence')}, "
        f"{prediction.get('samplesUsed')} samples"
    )
    print(cluster.kubectl("-n", NAMESPACE, "get", "cleanuppolicy"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the operator exited; its log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the operator did not become healthy; its log:\n{log.read_text()[-3000:]}")


def run_cluster_demo(repo: Path, work: Path, volume: Path, database: Path, examples: list[Path]) -> int:
    cluster = DemoCluster(repo, work)
    print("\n=== Part 2: the operator on a local control plane (etcd + kube-apiserver built from source) ===")
    cluster.up()
    operator: subprocess.Popen[bytes] | None = None
    try:
        cluster.kubectl(
            "apply",
            "-f",
            str(repo / "crds" / "tempsweep.io_cleanuppolicies.yaml"),
            "-f",
            str(repo / "crds" / "tempsweep.io_cleanupruns.yaml"),
        )
        cluster.kubectl(
            "wait",
            "--for",
            "condition=established",
            "crd/cleanuppolicies.tempsweep.io",
            "crd/cleanupruns.tempsweep.io",
            "--timeout=60s",
        )
        cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        cluster.kubectl("-n", NAMESPACE, "delete", "cleanupruns,cleanuppolicies", "--all", "--wait=false", check=False)
        secret = cluster.kubectl(
            "-n",
            NAMESPACE,
            "create",
            "secret",
            "generic",
            "crawler-jobs-db",
            f"--from-literal=url=sqlite:///{database}",
            "--dry-run=client",
            "-o",
            "yaml",
        )
        cluster.kubectl("apply", "-f", "-", stdin=secret)

        port, metrics_port = _free_port(), _free_port()
        log = work / "operator.log"
        env = {
            **cluster.env,
            "TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS": str(volume.parent),
            "TEMP_STORAGE_CLEANUP_TEMP_STORAGE_PATH": str(volume.parent),
            "TEMPSWEEP_TICK_SECONDS": "2",
            "TEMPSWEEP_PREDICTION_MIN_SPAN_SECONDS": "4",  # a fit from seconds of samples, not 10 minutes
        }
        with log.open("wb") as sink:
            operator = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("tempsweep")),
                    "operator",
                    "-n",
                    NAMESPACE,
                    "--liveness",
                    f"http://127.0.0.1:{port}/healthz",
                    "--metrics-port",
                    str(metrics_port),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", operator, log)
        print(f"operator running (log: {log})")

        policy = yaml.safe_load(examples[0].read_text())
        policy["spec"]["storage"]["volume"]["path"] = str(volume)
        policy["spec"]["schedule"]["statsInterval"] = "1s"  # a usage sample every tick, for the prediction
        cluster.kubectl("-n", NAMESPACE, "apply", "-f", "-", stdin=yaml.safe_dump(policy))
        cluster.wait_for("cleanuppolicy", policy["metadata"]["name"], lambda s: "health" in s, "statistics")
        print("$ kubectl apply -f policy.yaml   # the policy is validated and gets statistics")
        print(cluster.kubectl("-n", NAMESPACE, "get", "cleanuppolicy"))
        failures = 0
        for example in examples[1:]:
            name = yaml.safe_load(example.read_text())["metadata"]["name"]
            cluster.kubectl("-n", NAMESPACE, "apply", "-f", str(example))
            done = cluster.wait_for(
                "cleanuprun", name, lambda s: s.get("phase") in ("Succeeded", "Failed"), "a final phase"
            )
            status = done["status"]
            failures += status["phase"] != "Succeeded"
            print(f"$ kubectl apply -f {example.name}\n  {status['phase']}: {status.get('message')}")
        show_prediction(cluster, volume, policy["metadata"]["name"])
        print("\n$ kubectl get tempsweep")
        print(cluster.kubectl("-n", NAMESPACE, "get", "tempsweep"))
        print(f"$ curl -s localhost:{metrics_port}/metrics | grep ...   # what Prometheus scrapes (a few lines)")
        print(_metrics_excerpt(metrics_port, policy["metadata"]["name"]))
        print("$ kubectl get events")
        print(
            cluster.kubectl(
                "-n",
                NAMESPACE,
                "get",
                "events",
                "--sort-by=.lastTimestamp",
                "-o",
                "custom-columns=TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message",
            )
        )
        return 1 if failures else 0
    finally:
        if operator is not None:
            os.killpg(operator.pid, signal.SIGTERM)
            try:
                operator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(operator.pid, signal.SIGKILL)
        if os.environ.get("TEMPSWEEP_DEMO_KEEP_CLUSTER") != "1":
            cluster.down()
        else:
            print(f"cluster kept: export KUBECONFIG={cluster.state / 'kubeconfig'}")
