"""Fixtures for the SQL job source tests: a real PostgreSQL with a reader role, and clean engine caches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from jobs.helpers import READER, READER_PASSWORD, JobDatabase
from tempsweep.jobs.database import dispose_engines


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    """Each test starts without pooled connections from the one before (databases are dropped after each)."""
    yield
    dispose_engines()


@pytest.fixture(scope="session")
def reader_role(postgres_server: Any) -> str:
    """A login role that can read tables it is granted, and nothing else."""
    from psycopg import sql

    with postgres_server.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone()
        statement = "ALTER ROLE {} LOGIN PASSWORD {}" if exists else "CREATE ROLE {} LOGIN PASSWORD {}"
        conn.execute(sql.SQL(statement).format(sql.Identifier(READER), sql.Literal(READER_PASSWORD)))
    return READER


@pytest.fixture
def job_db(postgres_server: Any, reader_role: str) -> Iterator[JobDatabase]:
    """A fresh database (sessions in New York time) for one test, dropped afterwards."""
    postgres_server.start()  # a test before may have stopped the server and failed before restarting it
    database = JobDatabase.fresh(postgres_server, reader_role)
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
