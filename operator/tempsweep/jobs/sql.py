"""Job status from the application's own SQL table, with SQLAlchemy Core.

The table and column names come from the policy and were already checked to be plain identifiers;
here they are additionally quoted by SQLAlchemy, and every value is a bound parameter. The column
types are read once from the database, so ids taken from file names (always text) are compared in
the column's own type and an index on the id column is used. Any database error becomes a
``JobSourceError`` whose message names the database without its password.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, and_, column, create_engine, func, inspect, select, table
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.sql import TableClause

from tempsweep.engine.ports import JobCounts, JobRecord, JobSourceError
from tempsweep.models.policy import DatabaseSpec

log = logging.getLogger(__name__)

IN_LIST_LIMIT = 1000


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


class SqlJobSource:
    """Reads ``table`` (id, status, updated_at) through one engine."""

    def __init__(self, database: DatabaseSpec, url: str, *, engine: Engine | None = None) -> None:
        self.database = database
        self.safe_url = safe_url(url)
        try:
            self._engine = engine or create_engine(url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise JobSourceError(f"jobs.database.url: {self.safe_url} is not a usable URL: {exc}") from None
        self._table: TableClause | None = None
        self._id_is_integer = False
        self._queries = 0

    @property
    def query_count(self) -> int:
        return self._queries

    def _fail(self, exc: BaseException) -> JobSourceError:
        return JobSourceError(f"job database {self.safe_url}: {_first_line(exc)}")

    def _bind_table(self) -> TableClause:
        """Check the table and columns exist and learn their types (one round trip, once)."""
        if self._table is not None:
            return self._table
        db = self.database
        schema, _, name = db.table.rpartition(".")
        try:
            found = {col["name"]: col["type"] for col in inspect(self._engine).get_columns(name, schema or None)}
        except SQLAlchemyError as exc:
            if "NoSuchTable" in type(exc).__name__:
                raise JobSourceError(f"job database {self.safe_url}: table {db.table!r} does not exist") from None
            raise self._fail(exc) from None
        if not found:
            raise JobSourceError(f"job database {self.safe_url}: table {db.table!r} does not exist")
        for field, name_ in (("idColumn", db.id_column), ("statusColumn", db.status_column),
                             ("updatedAtColumn", db.updated_at_column)):
            if name_ not in found:
                raise JobSourceError(
                    f"job database {self.safe_url}: table {db.table!r} has no column {name_!r} "
                    f"(jobs.database.{field})"
                )
        self._id_is_integer = isinstance(found[db.id_column], Integer)
        self._table = table(
            name,
            column(db.id_column, found[db.id_column]),
            column(db.status_column, found[db.status_column]),
            column(db.updated_at_column, found[db.updated_at_column]),
            schema=schema or None,
        )
        return self._table

    def _rows(self, statement: Any) -> list[Any]:
        try:
            with self._engine.connect() as connection:
                self._queries += 1
                return list(connection.execute(statement))
        except SQLAlchemyError as exc:
            raise self._fail(exc) from None

    def _record(self, row: Any) -> JobRecord:
        updated = row[2]
        if isinstance(updated, str):
            updated = datetime.fromisoformat(updated)
        if isinstance(updated, datetime):
            updated = updated.replace(tzinfo=UTC) if updated.tzinfo is None else updated.astimezone(UTC)
        else:
            updated = None
        return JobRecord(job_id=str(row[0]), status=str(row[1]), updated_at=updated)

    def check(self) -> None:
        """Raise JobSourceError unless the table can be read."""
        try:
            self._bind_table()
        except SQLAlchemyError as exc:
            raise self._fail(exc) from None

    def lookup(self, job_ids: Sequence[str]) -> Mapping[str, JobRecord]:
        jobs = self._bind_table()
        db = self.database
        keys: list[Any] = list(job_ids)
        if self._id_is_integer:
            keys = [int(key) for key in job_ids if key.isdigit()]
        found: dict[str, JobRecord] = {}
        id_col, status_col, updated_col = (jobs.c[db.id_column], jobs.c[db.status_column],
                                           jobs.c[db.updated_at_column])
        for start in range(0, len(keys), IN_LIST_LIMIT):
            chunk = keys[start : start + IN_LIST_LIMIT]
            statement = select(id_col, status_col, updated_col).where(id_col.in_(chunk))
            for row in self._rows(statement):
                record = self._record(row)
                found[record.job_id] = record
        return found

    def failed_jobs(self) -> Sequence[JobRecord]:
        jobs = self._bind_table()
        db = self.database
        statement = select(jobs.c[db.id_column], jobs.c[db.status_column], jobs.c[db.updated_at_column]).where(
            jobs.c[db.status_column].in_(db.failed_statuses)
        )
        return [self._record(row) for row in self._rows(statement)]

    def counts(self) -> JobCounts:
        jobs = self._bind_table()
        db = self.database
        status = jobs.c[db.status_column]
        statement = (
            select(status, func.count())
            .where(and_(status.in_([*db.active_statuses, *db.failed_statuses])))
            .group_by(status)
        )
        per_status = {str(row[0]): int(row[1]) for row in self._rows(statement)}
        return JobCounts(
            active=sum(per_status.get(s, 0) for s in db.active_statuses),
            failed=sum(per_status.get(s, 0) for s in db.failed_statuses),
        )

    def close(self) -> None:
        self._engine.dispose()
