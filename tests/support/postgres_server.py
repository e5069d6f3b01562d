"""pytest plugin: a real, throw-away PostgreSQL server for the test session.

Fixtures:

``postgres_server`` (session)
    A :class:`PostgresServer` started from Debian's server binaries (the newest of
    ``/usr/lib/postgresql/*/bin``) in a temporary data directory, listening on a free port of 127.0.0.1.
    Host (TCP) connections need the superuser's password (scram-sha-256), so a wrong password is refused.
    The server is stopped (``pg_ctl stop -m immediate``) and its directory removed at the end of the session.

``postgres_db`` (function)
    Creates a fresh, uniquely named database for one test and yields its SQLAlchemy URL (a string, driver
    ``postgresql+psycopg``); the database is dropped afterwards.

When the binaries are missing, the tests that use these fixtures skip locally and fail in CI
(see ``support.components.missing_component``); ``make postgres`` installs them.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.components import missing_component
from support.probing import free_port

HOW_TO_GET = "run `make postgres` (installs Debian's postgresql)"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60
_PG_ENV_TO_DROP = (
    "PGDATA",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSERVICE",
)


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb, pg_ctl and postgres, or None."""

    def version_key(path: str) -> tuple[int, ...]:
        version = Path(path).parent.name
        return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)

    candidates = [
        Path(path)
        for path in glob.glob("/usr/lib/postgresql/*/bin")
        if all(os.access(Path(path) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres"))
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda p: version_key(str(p)))


def _others_can_traverse(path: Path) -> bool:
    """True when every directory from / down to ``path`` lets other users pass (o+x)."""
    for directory in [path, *path.parents]:
        try:
            if not directory.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


class PostgresServer:
    """One PostgreSQL server in its own temporary directory. Use :meth:`url` to connect."""

    host = "127.0.0.1"

    def __init__(self, bindir: Path, base_dir: Path, port: int, run_as: str | None) -> None:
        self.bindir = bindir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "sock"
        self.log_file = base_dir / "server.log"
        self.port = port
        self.user = SUPERUSER
        self.password = secrets.token_urlsafe(18)
        self._run_as = run_as  # the OS user running initdb/pg_ctl when we are root, else None

    # -- connection details -------------------------------------------------------------------------------

    def url(self, dbname: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        """SQLAlchemy URL (as a string, password included) for database ``dbname``."""
        from sqlalchemy.engine import URL

        return URL.create(
            drivername=driver,
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=dbname,
        ).render_as_string(hide_password=False)

    def __repr__(self) -> str:
        return f"PostgresServer(host={self.host!r}, port={self.port}, dir={str(self.base_dir)!r})"

    # -- lifecycle ------------------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _PG_ENV_TO_DROP}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        return env

    def _run(
        self, tool: str, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        result = subprocess.run(
            command,
            cwd=self.base_dir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed with exit code {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{self._log_tail()}"
            )
        return result

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "server log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    def init(self) -> None:
        """Run initdb and write the server settings (port, listen address, socket dir, fsync off)."""
        self.socket_dir.mkdir(mode=0o700)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._run_as is not None:
            owner = pwd.getpwnam(self._run_as)
            for path in (self.base_dir, self.socket_dir, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        try:
            self._run(
                "initdb",
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.user,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "password_encryption": "'scram-sha-256'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "log_min_messages": "warning",
        }
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write("\n# tempsweep test server\n")
            for key, value in settings.items():
                handle.write(f"{key} = {value}\n")

    def is_running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self) -> None:
        """Start the server (same port, same data) and wait until it accepts connections; no-op if running."""
        if self.is_running():
            return
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            timeout=START_TIMEOUT_S + 30,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and wait for it (mode: smart/fast/immediate); no-op if stopped."""
        if not self.is_running():
            return
        self._run("pg_ctl", "stop", "-w", "-t", str(START_TIMEOUT_S), "-m", mode, "-D", str(self.data_dir))

    def connect(self, dbname: str = "postgres") -> Any:
        """A psycopg connection as the superuser, in autocommit (use it in a ``with``)."""
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname, autocommit=True
        )

    def _admin_statement(self, template: str, name: str) -> None:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL(template).format(sql.Identifier(name)))

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        self._admin_statement("CREATE DATABASE {}", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (disconnecting its clients) if it exists."""
        self._admin_statement("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def destroy(self) -> None:
        """Stop immediately (if running) and remove the whole directory."""
        try:
            if self.data_dir.exists():
                self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data_dir), check=False)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _make_base_dir(run_as: str | None) -> Path:
    parent = Path(tempfile.gettempdir())
    if run_as is not None and not _others_can_traverse(parent):
        parent = Path("/tmp")  # the postgres user must reach its data directory
    return Path(tempfile.mkdtemp(prefix="tempsweep-pg-", dir=parent))


def start_server(bindir: Path, base_dir: Path, run_as: str | None) -> PostgresServer:
    """initdb and start a server in BASE_DIR on a free port; removes BASE_DIR again if that fails."""
    server = PostgresServer(bindir, base_dir, free_port(), run_as)
    try:
        server.init()
        server.start()
    except BaseException:
        server.destroy()
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        missing_component("PostgreSQL server", HOW_TO_GET)
        raise AssertionError("unreachable")  # missing_component skips or fails
    run_as: str | None = None
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the server as the postgres system user.
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            missing_component("PostgreSQL server (the `postgres` system user)", HOW_TO_GET)
        if shutil.which("runuser") is None:
            missing_component("PostgreSQL server (`runuser`, from util-linux)", "install util-linux")
        run_as = SUPERUSER

    server = start_server(bindir, _make_base_dir(run_as), run_as)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database for this test; yields its SQLAlchemy URL."""
    postgres_server.start()  # a test before may have stopped the server and failed before restarting it
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        if postgres_server.is_running():
            postgres_server.drop_database(name)
