"""Connections to the application's database: one pooled engine per URL, bounded transactions, safe messages.

Every policy that names the same database URL shares one SQLAlchemy engine inside the process
(``shared_engine``): for a server, a small pool whose connections are pinged before use, so a server
restart costs nothing but a reconnect; a SQLite file is simply opened per transaction. Each unit
of work runs in a transaction that carries its own limits, because the engine is shared while the
limits belong to each policy:

* PostgreSQL: ``BEGIN READ ONLY`` (psycopg's ``read_only``) for reads, and
  ``set_config('statement_timeout', ..., is_local => true)`` -- the bound-parameter form of
  ``SET LOCAL`` -- so the timeout ends with the transaction and also works behind PgBouncer in
  transaction mode. Waiting for a lock counts against the timeout too.
* SQLite: ``PRAGMA query_only`` for reads, ``busy_timeout`` for lock waits and a progress handler
  that interrupts a statement still running at the deadline. A database file must already exist;
  it is never created by reading it.

``describe_error`` turns any failure into one line that says what went wrong (unreachable,
authentication refused, timed out, missing table or column) and never contains the password.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, create_engine, func, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError
from sqlalchemy.pool import NullPool

from tempsweep.engine.ports import JobSourceError

log = logging.getLogger(__name__)

#: Seconds libpq waits for a TCP connection and the start-up handshake (its minimum is 2).
CONNECT_TIMEOUT_S = 10
#: Pool per URL: the operator's timers read little and often; a few connections suffice.
POOL_SIZE, POOL_OVERFLOW = 2, 3
POOL_RECYCLE_S = 1800
_POSTGRES_CONNECT_ARGS = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "application_name": "tempsweep",
    # a server that disappears mid-query is noticed within about a minute instead of never
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
_SQLITE_PROGRESS_STEPS = 10_000  # VM instructions between deadline checks (well under a millisecond)

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


# -- URLs ----------------------------------------------------------------------------------------------


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL, with plain ``postgresql://`` meaning psycopg 3 (the driver tempsweep ships)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise JobSourceError(
            "jobs.database.url: not a database URL (expected e.g. "
            "postgresql+psycopg://user:password@host/db or sqlite:////path/jobs.db)"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _as_url(url: str | URL) -> URL | None:
    try:
        return url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return None


def _secrets(url: URL) -> list[str]:
    """What must never be shown: the password and, when an unencoded '@' in it made the parser take
    part of it for the host (``user:p@ss@host``), that part too."""
    secrets = [str(url.password)] if url.password else []
    if url.host and "@" in url.host:
        secrets.append(url.host.rpartition("@")[0])
    return secrets


def safe_url(url: str | URL) -> str:
    """The URL for messages: the password masked as ``***``."""
    parsed = _as_url(url)
    if parsed is None:
        return "<unparseable database URL>"
    if parsed.host and "@" in parsed.host:  # a password with an unencoded '@'
        parsed = parsed.set(host=parsed.host.rpartition("@")[2], password="***")
    return parsed.render_as_string(hide_password=True)


def scrub(text: str, url: str | URL | None) -> str:
    """``text`` with every spelling of the URL's password (plain or percent-encoded) replaced by ``***``."""
    parsed = _as_url(url) if url is not None else None
    if parsed is None:
        return text
    for secret in _secrets(parsed):
        for spelling in sorted({secret, quote(secret, safe=""), quote(secret)}, key=len, reverse=True):
            text = text.replace(spelling, "***")
    return text


# -- engines -------------------------------------------------------------------------------------------


def _sqlite_file_url(url: URL) -> URL:
    """Open an existing SQLite file in read-write mode without ever creating it."""
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:") or url.query:
        return url
    return url.set(database=f"file:{quote(path)}?mode=rw", query={"uri": "true"})


def _create(url: URL) -> Engine:
    backend = url.get_backend_name()
    options: dict[str, object] = {"pool_pre_ping": True}
    if backend == "postgresql":
        connect_args = {key: value for key, value in _POSTGRES_CONNECT_ARGS.items() if key not in url.query}
        options.update(
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            pool_recycle=POOL_RECYCLE_S,
            pool_timeout=CONNECT_TIMEOUT_S * 3,
            connect_args=connect_args,
        )
    elif backend == "sqlite":
        options["connect_args"] = {"check_same_thread": False}
        if url.database and url.database != ":memory:":
            # a file: opening it is cheap, and each transaction then sees the path as it is now
            url = _sqlite_file_url(url)
            options["poolclass"] = NullPool
    return create_engine(url, **options)


def shared_engine(url: str) -> Engine:
    """The process-wide engine for ``url`` (created on first use); JobSourceError if the URL is unusable."""
    parsed = parse_url(url)
    key = parsed.render_as_string(hide_password=False)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            try:
                engine = _create(parsed)
            except (ArgumentError, NoSuchModuleError, ImportError, ValueError, TypeError) as exc:
                raise JobSourceError(
                    scrub(f"jobs.database.url: {safe_url(parsed)} cannot be used: {exc}", parsed)
                ) from None
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests, shutdown)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


# -- bounded transactions ------------------------------------------------------------------------------


@contextmanager
def transaction(engine: Engine, timeout_s: float, *, read_only: bool = True) -> Iterator[Connection]:
    """A connection inside one transaction whose statements each stop after ``timeout_s``.

    With ``read_only`` the database itself refuses any write. The transaction commits when the
    block ends normally and rolls back otherwise.
    """
    backend = engine.dialect.name
    with engine.connect() as connection:
        if backend == "postgresql":
            if read_only:
                connection = connection.execution_options(postgresql_readonly=True)
            with connection.begin():
                timeout_ms = str(max(1, math.ceil(timeout_s * 1000)))
                connection.execute(select(func.set_config("statement_timeout", timeout_ms, True)))
                yield connection
        elif backend == "sqlite":
            with connection.begin(), _sqlite_limits(connection, timeout_s, read_only):
                yield connection
        else:  # other databases: no limits we know how to set portably
            with connection.begin():
                yield connection


@contextmanager
def _sqlite_limits(connection: Connection, timeout_s: float, read_only: bool) -> Iterator[None]:
    """Inside a transaction: refuse writes, wait for locks and run at most until the deadline."""
    raw: Any = connection.connection.driver_connection
    deadline = time.monotonic() + timeout_s
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, math.ceil(timeout_s * 1000))}")
    if read_only:
        connection.exec_driver_sql("PRAGMA query_only = ON")
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)
        if read_only:  # an in-memory database keeps its connection: leave it writable for others
            raw.execute("PRAGMA query_only = OFF")


# -- messages ------------------------------------------------------------------------------------------

_AUTH_WORDS = ("authentication failed", "no password supplied")
_UNREACHABLE_WORDS = (
    "refused",
    "timeout expired",
    "could not translate",
    "no route",
    "network is unreachable",
    "unable to open database file",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "consuming input failed",
)
_CONNECT_PREFIX = re.compile(r"^connection failed:\s*|^connection to server at [^:]*failed:\s*", re.I)


def _server_text(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(original).__name__
    # psycopg nests them: "connection failed: connection to server at ... failed: ..."
    text = _CONNECT_PREFIX.sub("", _CONNECT_PREFIX.sub("", text))
    return text.replace("FATAL:  ", "").replace("FATAL: ", "")


def describe_error(
    exc: BaseException,
    url: str | URL,
    *,
    timeout_s: float | None = None,
    table: str | None = None,
    columns: dict[str, str] | None = None,
) -> str:
    """One line saying what went wrong with the database, naming the policy field to look at.

    ``columns`` maps policy field names (``idColumn``...) to column names, so a missing column is
    reported with the field that names it. The password never appears.
    """
    where = f"job database {safe_url(url)}"
    original = getattr(exc, "orig", None) or exc
    sqlstate = getattr(original, "sqlstate", None) or ""
    text = _server_text(exc)
    lowered = text.lower()
    if isinstance(exc, NoSuchTableError) or sqlstate == "42P01" or lowered.startswith("no such table"):
        message = f"{where}: table {table!r} does not exist (jobs.database.table)"
    elif sqlstate == "42703" or lowered.startswith("no such column"):
        message = f"{where}: {text}{_column_field(text, columns)}"
    elif sqlstate == "57014" or lowered == "interrupted":
        limit = f" after {timeout_s:g} s" if timeout_s is not None else ""
        message = f"{where}: query timed out{limit} (jobs.database.queryTimeoutSeconds)"
    elif "database is locked" in lowered:
        message = f"{where}: timed out waiting for a lock (jobs.database.queryTimeoutSeconds)"
    elif sqlstate in ("28P01", "28000") or any(word in lowered for word in _AUTH_WORDS):
        message = f"{where}: {text}; check the user and password in the URL"
    elif sqlstate == "3D000" or re.search(r'database ".*" does not exist', text):
        message = f"{where}: {text}"
    elif sqlstate == "42501" or "permission denied" in lowered:
        message = f"{where}: {text} (the database user lacks a privilege)"
    elif any(word in lowered for word in _UNREACHABLE_WORDS):
        message = f"{where} is unreachable: {text}"
    else:
        message = f"{where}: {text}"
    return scrub(message, url)


def _column_field(text: str, columns: dict[str, str] | None) -> str:
    for field, name in (columns or {}).items():
        if re.search(rf"\b{re.escape(name)}\b", text):
            return f" (jobs.database.{field})"
    return ""
