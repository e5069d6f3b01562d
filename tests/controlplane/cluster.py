#!/usr/bin/env python3
"""Run a local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager) for tests and the demo.

    cluster.py up       start it (or reuse a healthy running one); writes the admin kubeconfig
    cluster.py down     stop exactly the processes `up` started and remove the state
    cluster.py stop [COMPONENT...]    stop components (default: all) but keep etcd's data, ports and
                                      certificates: an API outage, as a test or a person wants it
    cluster.py start [COMPONENT...]   start stopped components again on the same ports (default: all)
    cluster.py status   report; exit 0 only if it is running and ready
    cluster.py env      print `export KUBECONFIG=... PATH=...` for `eval "$(cluster.py env)"`

The binaries come from tests/controlplane/build.sh (.local/bin). kube-controller-manager runs only the
controllers a namespaced operator's tests need (namespace deletion, garbage collection, service accounts
and their tokens, aggregated ClusterRoles). There is no kubelet and no scheduler: pods stay Pending.

Environment:
    TEMPSWEEP_CLUSTER_DIR   state directory (default <repo>/.local/cluster)
    TEMPSWEEP_BIN_DIR       binaries (default <repo>/.local/bin)

Standard library only (Python 3.11); certificates are made with the openssl command.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
#: The server processes, in start order (stopped in reverse).
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
#: kube-controller-manager's controllers: what makes namespace deletion, garbage collection and service
#: account tokens real. Not the node, pod, volume, job or certificate controllers: without a kubelet they
#: would only add load.
CONTROLLERS = (
    "namespace",
    "garbagecollector",
    "serviceaccount",
    "serviceaccount-token",
    "clusterrole-aggregation",
)
ETCD_TIMEOUT = 30.0
APISERVER_TIMEOUT = 120.0
CONTROLLER_MANAGER_TIMEOUT = 60.0
#: A restart reuses the ports in the kubeconfig; an outgoing connection may hold one for a moment.
REBIND_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
OUTAGE_GRACE = 3.0
PORT_ATTEMPTS = 3
CONTEXT = "tempsweep-test"


class ClusterError(RuntimeError):
    """Something the user has to know about; the message says what and what to do."""


def _log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def default_state_dir() -> Path:
    return Path(os.environ.get("TEMPSWEEP_CLUSTER_DIR") or REPO / ".local" / "cluster").resolve()


def default_bin_dir() -> Path:
    return Path(os.environ.get("TEMPSWEEP_BIN_DIR") or REPO / ".local" / "bin").resolve()


@dataclass(frozen=True)
class Info:
    """What a running control plane looks like to its users."""

    state_dir: Path
    bin_dir: Path
    kubeconfig: Path
    server: str
    etcd_url: str
    controller_manager_url: str
    reused: bool = False  # up() found it already running


class Cluster:
    def __init__(self, state_dir: Path | None = None, bin_dir: Path | None = None) -> None:
        self.dir = (state_dir or default_state_dir()).resolve()
        self.bin_dir = (bin_dir or default_bin_dir()).resolve()
        self.pki = self.dir / "pki"
        self.kubeconfig = self.dir / "kubeconfig"
        self.state_file = self.dir / "state.json"

    # ---- paths -------------------------------------------------------------------------------
    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    def missing_binaries(self) -> list[str]:
        return [b for b in BINARIES if not os.access(self.binary(b), os.X_OK)]

    def pid_file(self, name: str) -> Path:
        return self.dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise up/down on one state directory (two terminals, parallel test sessions)."""
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.dir.parent / f".{self.dir.name}.lock"
        with open(lock_path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _log(f"waiting for another cluster.py on {self.dir} (lock {lock_path})")
                deadline = time.monotonic() + APISERVER_TIMEOUT + ETCD_TIMEOUT + 60
                while True:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise ClusterError(f"gave up waiting for the lock {lock_path}") from None
                        time.sleep(0.5)
            yield

    # ---- processes ---------------------------------------------------------------------------
    def _our_cmdline(self, name: str, pid: int) -> bool:
        """True if PID is alive and runs our binary for this state directory."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return False
        if stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}:
            _reap(pid)
            return False
        argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        return bool(argv) and argv[0] == str(self.binary(name)) and any(str(self.dir) in a for a in argv[1:])

    def read_pid(self, name: str) -> int | None:
        try:
            return int(self.pid_file(name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running_pid(self, name: str) -> int | None:
        """NAME's PID from its PID file if that process is alive and ours; clears stale PID files.

        "Ours" means: argv[0] is our binary and an argument names our state directory.
        """
        path = self.pid_file(name)
        if not path.exists():
            return None
        pid = self.read_pid(name)
        if pid is not None and self._our_cmdline(name, pid):
            return pid
        if pid is None:
            _log(f"stale PID file {path} (unreadable); ignoring it")
        elif _alive(pid):
            _log(f"stale PID file {path}: PID {pid} now belongs to another program; not touching it")
        else:
            _log(f"stale PID file {path}: {name} (PID {pid}) is not running")
        path.unlink(missing_ok=True)
        return None

    def orphans(self, name: str) -> list[int]:
        """Processes of ours for this state directory that no PID file records (a lost PID file)."""
        if not self.dir.exists():
            return []
        known = self.read_pid(name)
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid != known and pid != os.getpid() and self._our_cmdline(name, pid):
                found.append(pid)
        return found

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        argv = [str(self.binary(name)), *args]
        with open(self.log_file(name), "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                cwd=self.dir,
            )
        self.pid_file(name).write_text(f"{proc.pid}\n")
        _log(f"started {name} (PID {proc.pid}), log {self.log_file(name)}")
        return proc

    def _stop(self, name: str, grace: float = STOP_TIMEOUT) -> None:
        """Stop NAME's recorded process, and any orphaned process of ours for this state directory."""
        pids = []
        pid = self.running_pid(name)
        if pid is not None:
            _log(f"stopping {name} (PID {pid})")
            pids.append(pid)
        for orphan in self.orphans(name):
            _log(f"stopping {name} (PID {orphan}) of {self.dir}, which no PID file records")
            pids.append(orphan)
        for p in pids:
            _signal(p, signal.SIGTERM)
        for p in pids:
            if not _wait_gone(p, grace):
                _log(f"{name} (PID {p}) did not stop within {grace:.0f} s of SIGTERM; killing it")
                _signal(p, signal.SIGKILL)
                if not _wait_gone(p, 5):
                    raise ClusterError(f"{name} (PID {p}) survives SIGKILL")
        self.pid_file(name).unlink(missing_ok=True)

    def _log_tail(self, name: str, lines: int = 25) -> str:
        try:
            text = self.log_file(name).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:])

    # ---- state -------------------------------------------------------------------------------
    def read_state(self) -> dict[str, object] | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    def info(self) -> Info | None:
        state = self.read_state()
        if not state:
            return None
        if not all(key in state for key in STATE_KEYS):
            return None  # written by an older cluster.py: `up` restarts it cleanly
        return Info(
            state_dir=self.dir,
            bin_dir=self.bin_dir,
            kubeconfig=self.kubeconfig,
            server=str(state["server"]),
            etcd_url=str(state["etcd_url"]),
            controller_manager_url=str(state["controller_manager_url"]),
        )

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def _get(self, url: str, timeout: float = 3.0) -> tuple[int, str]:
        ctx = self._ssl_context() if url.startswith("https:") else None
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def healthy(self) -> bool:
        """All three processes are ours and alive, and each answers its health check."""
        info = self.info()
        if info is None or not self.kubeconfig.exists():
            return False
        if any(self.running_pid(name) is None for name in COMPONENTS):
            return False
        if any(self.orphans(name) for name in COMPONENTS):
            _log("found processes of this state directory that no PID file records")
            return False
        try:
            # Ask etcd directly too: the apiserver's /readyz notices a dead etcd only after a while.
            etcd_status, body = self._get(f"{info.etcd_url}/health")
            if etcd_status != 200 or '"health":"true"' not in body.replace(" ", ""):
                return False
            status, _ = self._get(f"{info.server}/readyz")
            manager_status, _ = self._get(f"{info.controller_manager_url}/healthz")
        except (OSError, ssl.SSLError):
            return False
        return status == 200 and manager_status == 200

    # ---- commands ----------------------------------------------------------------------------
    def up(self) -> Info:
        missing = self.missing_binaries()
        if missing:
            raise ClusterError(
                f"missing {', '.join(missing)} in {self.bin_dir}; build them first with "
                "`make controlplane` (bash tests/controlplane/build.sh)"
            )
        with self.lock():
            if self.healthy():
                info = self.info()
                assert info is not None
                _log(f"reusing the running control plane at {info.server} (kubeconfig {self.kubeconfig})")
                return dataclasses.replace(info, reused=True)
            etcd_pid, api_pid = self.running_pid("etcd"), self.running_pid("kube-apiserver")
            manager_pid = self.running_pid("kube-controller-manager")
            if etcd_pid or api_pid or manager_pid or self.dir.exists():
                if api_pid and not etcd_pid:
                    _log("etcd is not running but kube-apiserver is: restarting the control plane cleanly")
                elif etcd_pid or api_pid or manager_pid:
                    _log("the control plane is running but not ready: restarting it cleanly")
                else:
                    _log(f"no running control plane; clearing old state in {self.dir}")
                self._stop_all(etcd_running=etcd_pid is not None)
                shutil.rmtree(self.dir, ignore_errors=True)
            return self._fresh_start()

    def down(self) -> None:
        with self.lock():
            if not self.dir.exists():
                _log(f"nothing to stop ({self.dir} does not exist)")
                return
            self._stop_all(etcd_running=self.running_pid("etcd") is not None)
            shutil.rmtree(self.dir, ignore_errors=True)
            _log(f"stopped; removed {self.dir}")

    def _stop_all(self, *, etcd_running: bool) -> None:
        self._stop("kube-controller-manager", grace=5)
        # Without etcd the apiserver's graceful shutdown only waits for timeouts.
        self._stop("kube-apiserver", grace=STOP_TIMEOUT if etcd_running else 3)
        self._stop("etcd")

    # ---- outages: stop and start components, keeping etcd's data, ports and certificates --------
    def stop(self, components: tuple[str, ...] = COMPONENTS) -> None:
        """Stop COMPONENTS (SIGTERM, then SIGKILL), later ones first; `start` brings them back as they were."""
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ClusterError(f"unknown component(s) {', '.join(sorted(unknown))}; known: {', '.join(COMPONENTS)}")
        with self.lock():
            if self.info() is None:
                raise ClusterError(f"no control plane in {self.dir}; start one with `up`")
            for name in reversed(COMPONENTS):
                if name in components:
                    # The apiserver stops listening at once but may take 15 s and more to exit while
                    # clients hold watches; its state is all in etcd, so it need not finish.
                    self._stop(name, grace=OUTAGE_GRACE if name != "etcd" else STOP_TIMEOUT)

    def start(self, components: tuple[str, ...] = COMPONENTS) -> Info:
        """Start COMPONENTS that are not running, in order, on the ports and data they had; wait until ready."""
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ClusterError(f"unknown component(s) {', '.join(sorted(unknown))}; known: {', '.join(COMPONENTS)}")
        with self.lock():
            info = self.info()
            if info is None:
                raise ClusterError(f"no control plane in {self.dir}; start one with `up`")
            for name in COMPONENTS:
                if name in components and self.running_pid(name) is None:
                    self._restart(name, info)
            return info

    def _restart(self, name: str, info: Info) -> None:
        """Start NAME on its recorded port; retry while the port is briefly held by someone else."""
        deadline = time.monotonic() + REBIND_TIMEOUT
        while True:
            try:
                if name == "etcd":
                    self._start_etcd(_port(info.etcd_url), _port(self._etcd_peer_url()))
                elif name == "kube-apiserver":
                    self._start_apiserver(_port(info.server), info.etcd_url)
                else:
                    self._start_controller_manager(_port(info.controller_manager_url))
                return
            except _PortClash as clash:
                if time.monotonic() > deadline:
                    raise ClusterError(f"{clash}; gave up after {REBIND_TIMEOUT:.0f} s") from None
                _log(f"{clash}; retrying on the same port")
                time.sleep(0.5)

    def _etcd_peer_url(self) -> str:
        state = self.read_state() or {}
        return str(state["etcd_peer_url"])

    def _fresh_start(self) -> Info:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self._make_pki()
        last_error = ""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            etcd_port, peer_port, api_port, manager_port = _free_ports(4)
            try:
                etcd_url = self._start_etcd(etcd_port, peer_port)
                server = self._start_apiserver(api_port, etcd_url)
                self._write_kubeconfig(server)
                manager_url = self._start_controller_manager(manager_port)
            except _PortClash as clash:
                last_error = str(clash)
                _log(f"{clash}; retrying with other ports (attempt {attempt}/{PORT_ATTEMPTS})")
                self._stop_all(etcd_running=True)
                shutil.rmtree(self.dir / "etcd", ignore_errors=True)
                continue
            except BaseException:
                self._stop_all(etcd_running=True)
                raise
            state = {
                "server": server,
                "etcd_url": etcd_url,
                "etcd_peer_url": f"http://127.0.0.1:{peer_port}",
                "controller_manager_url": manager_url,
            }
            self.state_file.write_text(json.dumps(state, indent=2) + "\n")
            try:
                self._wait_default_namespace(server)
            except BaseException:
                self._stop_all(etcd_running=True)
                self.state_file.unlink(missing_ok=True)
                raise
            info = self.info()
            assert info is not None
            _log(f"ready: {server}; kubeconfig {self.kubeconfig}")
            return info
        raise ClusterError(f"could not find free ports after {PORT_ATTEMPTS} attempts: {last_error}")

    def _start_etcd(self, port: int, peer_port: int) -> str:
        url = f"http://127.0.0.1:{port}"
        peer = f"http://127.0.0.1:{peer_port}"
        proc = self._start(
            "etcd",
            [
                "--name=tempsweep",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=tempsweep={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        deadline = time.monotonic() + ETCD_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive("etcd", proc)
            try:
                status, body = self._get(f"{url}/health", timeout=2)
                if status == 200 and '"health":"true"' in body.replace(" ", ""):
                    return url
            except OSError:
                pass
            time.sleep(0.2)
        raise ClusterError(
            f"etcd did not become healthy within {ETCD_TIMEOUT:.0f} s:\n{self._log_tail('etcd')}"
        )

    def _start_apiserver(self, port: int, etcd_url: str) -> str:
        server = f"https://127.0.0.1:{port}"
        p = self.pki
        proc = self._start(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={p}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                f"--service-account-issuer={server}",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
            ],
        )
        deadline = time.monotonic() + APISERVER_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            self._check_alive("kube-apiserver", proc)
            if self.running_pid("etcd") is None:
                raise ClusterError(f"etcd died while kube-apiserver was starting:\n{self._log_tail('etcd')}")
            try:
                status, body = self._get(f"{server}/readyz", timeout=2)
                if status == 200:
                    return server
                last = f"/readyz {status}: {body.strip()[-300:]}"
            except (OSError, ssl.SSLError) as err:
                last = str(err)
            time.sleep(0.3)
        raise ClusterError(
            f"kube-apiserver not ready within {APISERVER_TIMEOUT:.0f} s ({last}):\n"
            f"{self._log_tail('kube-apiserver')}"
        )

    def _start_controller_manager(self, port: int) -> str:
        """kube-controller-manager with the admin kubeconfig; its /healthz is served on PORT with our CA."""
        url = f"https://127.0.0.1:{port}"
        p = self.pki
        proc = self._start(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={p}",
                f"--tls-cert-file={p / 'controller-manager.crt'}",
                f"--tls-private-key-file={p / 'controller-manager.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                # our apiserver has no front proxy: do not look for its request-header CA (an error a second)
                "--authentication-skip-lookup=true",
                f"--controllers={','.join(CONTROLLERS)}",
                # signs the tokens of legacy service-account token Secrets, as the apiserver verifies them
                f"--service-account-private-key-file={p / 'sa.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                "--use-service-account-credentials=false",  # every controller uses the admin kubeconfig
                "--leader-elect=false",  # one instance; a lease would only delay the start after a restart
            ],
        )
        deadline = time.monotonic() + CONTROLLER_MANAGER_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            self._check_alive("kube-controller-manager", proc)
            try:
                status, body = self._get(f"{url}/healthz", timeout=2)
                if status == 200:
                    return url
                last = f"/healthz {status}: {body.strip()[-300:]}"
            except (OSError, ssl.SSLError) as err:
                last = str(err)
            time.sleep(0.3)
        raise ClusterError(
            f"kube-controller-manager not healthy within {CONTROLLER_MANAGER_TIMEOUT:.0f} s ({last}):\n"
            f"{self._log_tail('kube-controller-manager')}"
        )

    def _wait_default_namespace(self, server: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = self._get(f"{server}/api/v1/namespaces/default", timeout=2)
                if status == 200:
                    return
            except (OSError, ssl.SSLError):
                pass
            time.sleep(0.3)
        raise ClusterError("the `default` namespace did not appear within 60 s")

    def _check_alive(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        code = proc.poll()
        if code is None:
            return
        self.pid_file(name).unlink(missing_ok=True)
        tail = self._log_tail(name)
        if "address already in use" in tail.rsplit("    ==== ", 1)[-1]:  # this start's lines only
            raise _PortClash(f"{name} could not bind its port (address already in use)")
        raise ClusterError(f"{name} exited with code {code} during start-up; log tail:\n{tail}")

    # ---- certificates and kubeconfig ---------------------------------------------------------
    def _make_pki(self) -> None:
        if not shutil.which("openssl"):
            raise ClusterError("the openssl command is required to make the cluster's certificates")
        p = self.pki
        p.mkdir(parents=True, exist_ok=True)
        os.chmod(p, 0o700)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            p / "ca.key",
            "-out",
            p / "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=tempsweep-test-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        )
        self._leaf(
            "apiserver",
            "/CN=kube-apiserver",
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,IP:10.0.0.1\n"
            "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
        )
        self._leaf(
            "controller-manager",
            "/CN=kube-controller-manager",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
        )
        self._leaf(
            "admin",
            "/O=system:masters/CN=tempsweep-admin",
            "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
        )
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p / "sa.key")
        _openssl("pkey", "-in", p / "sa.key", "-pubout", "-out", p / "sa.pub")

    def _leaf(self, name: str, subject: str, extensions: str) -> None:
        p = self.pki
        ext = p / f"{name}.ext"
        ext.write_text(extensions)
        _openssl(
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            p / f"{name}.key",
            "-out",
            p / f"{name}.csr",
            "-subj",
            subject,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            p / f"{name}.csr",
            "-CA",
            p / "ca.crt",
            "-CAkey",
            p / "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            ext,
            "-out",
            p / f"{name}.crt",
        )

    def _write_kubeconfig(self, server: str) -> None:
        def b64(name: str) -> str:
            return base64.b64encode((self.pki / name).read_bytes()).decode()

        text = f"""apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {server}
    certificate-authority-data: {b64("ca.crt")}
users:
- name: {CONTEXT}-admin
  user:
    client-certificate-data: {b64("admin.crt")}
    client-key-data: {b64("admin.key")}
contexts:
- name: {CONTEXT}
  context:
    cluster: {CONTEXT}
    user: {CONTEXT}-admin
    namespace: default
current-context: {CONTEXT}
"""
        tmp = self.kubeconfig.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        tmp.replace(self.kubeconfig)

    # ---- reporting ---------------------------------------------------------------------------
    def status(self) -> bool:
        info = self.info()
        print(f"state dir:  {self.dir}")
        print(
            f"binaries:   {self.bin_dir}"
            + (f" (missing: {', '.join(self.missing_binaries())})" if self.missing_binaries() else "")
        )
        for name in COMPONENTS:
            pid = self.running_pid(name)
            print(f"{name + ':':<24} {'running, PID ' + str(pid) if pid else 'not running'}")
            for orphan in self.orphans(name):
                print(f"{'':<24} also PID {orphan}, which no PID file records (`up`/`down` stop it)")
        ok = self.healthy()
        if info:
            print(f"server:     {info.server} ({'ready' if ok else 'NOT ready'})")
            print(f"kubeconfig: {self.kubeconfig}")
        else:
            print("server:     (not started)")
        return ok


class _PortClash(Exception):
    pass


#: What state.json records; a state file without all of them is from an older cluster.py.
STATE_KEYS = ("server", "etcd_url", "etcd_peer_url", "controller_manager_url")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _openssl(*args: object) -> None:
    cmd = ["openssl", *(str(a) for a in args)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise ClusterError(f"{shlex.join(cmd)} failed:\n{result.stderr}")


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _reap(pid: int) -> None:
    """Collect PID if it is a zombie child of this process (the pytest fixture starts clusters)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "stop", "start", "status", "env"])
    parser.add_argument("components", nargs="*", metavar="COMPONENT", help=f"for stop/start: {', '.join(COMPONENTS)}")
    args = parser.parse_args(argv)
    if args.components and args.command not in ("stop", "start"):
        parser.error("components are only for stop and start")
    chosen = tuple(args.components) or COMPONENTS
    cluster = Cluster()
    try:
        if args.command == "up":
            info = cluster.up()
            print(f"export KUBECONFIG={shlex.quote(str(info.kubeconfig))}")
            print(f"# kubectl: {cluster.binary('kubectl')}  server: {info.server}")
        elif args.command == "down":
            cluster.down()
        elif args.command == "stop":
            cluster.stop(chosen)
        elif args.command == "start":
            info = cluster.start(chosen)
            _log(f"running: {info.server}")
        elif args.command == "status":
            return 0 if cluster.status() else 1
        elif args.command == "env":
            print(f"export KUBECONFIG={shlex.quote(str(cluster.kubeconfig))}")
            print(f'export PATH={shlex.quote(str(cluster.bin_dir))}:"$PATH"')
    except ClusterError as err:
        _log(f"ERROR: {err}")
        return 1
    except KeyboardInterrupt:
        _log("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
