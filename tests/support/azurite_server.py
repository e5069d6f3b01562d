"""pytest plugin: a real Azurite (Azure Storage emulator) blob service for the test session.

Fixtures:

``azurite`` (session)
    An :class:`AzuriteServer`: ``azurite-blob`` from ``.local/azurite`` (installed by ``make azurite``),
    listening on a free port of 127.0.0.1, with its data in a temporary directory, using the well-known
    development account ``devstoreaccount1``. Stopped and its directory removed at the end of the session.

``blob_container`` (function)
    A fresh, uniquely named container; yields a :class:`BlobContainer` with ``name`` and ``client``
    (an ``azure.storage.blob.ContainerClient``). The container is deleted afterwards.

When Azurite is not installed, the tests that use these fixtures skip locally and fail in CI
(see ``support.components.missing_component``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from support.components import missing_component
from support.probing import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO_ROOT / ".local" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
HOW_TO_GET = "run `make azurite`"

# Microsoft's documented development-storage account (the same for every Azurite installation).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class AzuriteServer:
    """One ``azurite-blob`` process; ``stop()``/``start()`` keep the port and the data directory."""

    host = "127.0.0.1"
    account_name = ACCOUNT_NAME
    account_key = ACCOUNT_KEY

    def __init__(self, executable: Path, base_dir: Path, port: int) -> None:
        self.executable = executable
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.log_file = base_dir / "azurite.log"
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return self.connection_string_via(self.port)

    def connection_string_via(self, port: int) -> str:
        """This account reached through another local port: a proxy in front of Azurite, or a dead port.

        SharedKey signatures do not cover the host, so the key still authenticates.
        """
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint=http://{self.host}:{port}/{self.account_name};"
        )

    def service_client(self, **kwargs: Any) -> Any:
        """A ``BlobServiceClient`` for this emulator (keyword arguments go to the client)."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string, **kwargs)

    def __repr__(self) -> str:
        return f"AzuriteServer(port={self.port}, dir={str(self.base_dir)!r})"

    @property
    def pid(self) -> int | None:
        """The azurite-blob (node) process id while it runs."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "azurite log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        """Start azurite-blob and wait (bounded) until its port answers; no-op if running."""
        if self.is_running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_handle = self.log_file.open("ab")
        command = [
            str(self.executable),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.port),
            "--location",
            str(self.data_dir),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ]
        self._process = subprocess.Popen(
            command,
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches node and nothing else
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._close()
                raise RuntimeError(
                    f"azurite-blob exited with code {code} during start-up\n{self._log_tail()}"
                )
            if _port_answers(self.host, self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"azurite-blob did not answer on port {self.port} within {START_TIMEOUT_S}s\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop azurite-blob: SIGTERM (it saves its metadata), SIGKILL after a bound; no-op if stopped."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._signal(process, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT_S)
        # wait until the port is free again, so start() can bind the same port at once
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _port_answers(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._close()

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def _close(self) -> None:
        self._process = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


@dataclass
class BlobContainer:
    name: str
    client: Any  # azure.storage.blob.ContainerClient


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    if not os.access(AZURITE_BLOB, os.X_OK):
        missing_component("Azurite", HOW_TO_GET)
    if shutil.which("node") is None:
        missing_component("Azurite (node is not on PATH)", HOW_TO_GET)
    server = AzuriteServer(AZURITE_BLOB, Path(tempfile.mkdtemp(prefix="tempsweep-azurite-")), free_port())
    try:
        server.start()
    except BaseException:
        server.destroy()
        raise
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def blob_container(azurite: AzuriteServer) -> Iterator[BlobContainer]:
    """A fresh container for this test, deleted afterwards."""
    azurite.start()  # a test before may have stopped Azurite and failed before restarting it
    name = f"t-{uuid.uuid4().hex[:24]}"
    service = azurite.service_client()
    client = service.create_container(name)
    try:
        yield BlobContainer(name=name, client=client)
    finally:
        if azurite.is_running():
            from azure.core.exceptions import ResourceNotFoundError

            with contextlib.suppress(ResourceNotFoundError):
                service.delete_container(name)
        client.close()
        service.close()
