"""Job status from the application's own SQL table, with SQLAlchemy Core.

The table and column names come from the policy and were already checked to be plain identifiers;
here they are additionally quoted by SQLAlchemy, and every value is a bound parameter. The table's
columns are read once (one catalog query, counted) so ids taken from file names -- always text --
are compared in the id column's own type: integer, UUID or text. That keeps the index usable, and
an id that cannot exist in the column (``abc`` in an integer column) is simply unknown to the table
rather than an error; ``007`` in an integer column is job 7.

Every statement runs in a read-only transaction with the policy's ``queryTimeoutSeconds`` (see
``tempsweep.jobs.database``). Lookups send IN lists of at most ``IN_LIST_LIMIT`` ids (on PostgreSQL
spelled ``id = ANY(array)``, which is what the planner makes of an IN list anyway). Any failure
becomes a ``JobSourceError`` with a message that names the problem and never the password; after a
failure the source answers with the same error, without touching the database, for
``RETRY_AFTER_S`` seconds, so a run over many files against a dead server costs one connection
attempt, not one per batch. A new source (the next run) tries again at once.

Timestamps may be ``timestamp with time zone`` (converted to UTC), ``timestamp`` without time zone
(taken as UTC), ISO 8601 text or epoch seconds (SQLite). A job whose status is NULL is reported
with the first active status: nobody can tell it is done, so its files are kept.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    any_,
    bindparam,
    cast,
    column,
    func,
    inspect,
    select,
    table,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import ColumnElement, TableClause
from sqlalchemy.types import TypeEngine

from tempsweep.engine.ports import JobCounts, JobRecord, JobSourceError
from tempsweep.jobs.database import describe_error, safe_url, shared_engine, transaction
from tempsweep.models.policy import DatabaseSpec
from tempsweep.models.statuses import normalize_status, normalized_set

log = logging.getLogger(__name__)

IN_LIST_LIMIT = 1000
RETRY_AFTER_S = 30.0
_INTEGER_TEXT = re.compile(r"^-?[0-9]{1,19}$")
_INT64 = (-(2**63), 2**63 - 1)

T = TypeVar("T")
KeyOf = Callable[[str], Hashable | None]


def _integer_key(job_id: str) -> int | None:
    if not _INTEGER_TEXT.match(job_id):
        return None
    value = int(job_id)
    return value if _INT64[0] <= value <= _INT64[1] else None


def _uuid_key(job_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        return None


def _text_key(job_id: str) -> str:
    return job_id


def _fetch_all(statement: Any, connection: Any) -> list[Any]:
    return list(connection.execute(statement).all())


def _to_utc(value: object) -> datetime | None:
    """A column value as an aware UTC datetime; None when it is missing or unreadable."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _normalized(status: ColumnElement[Any]) -> ColumnElement[Any]:
    """``lower(trim(status))``: statuses compare ignoring case and surrounding spaces, as in the engine.

    The status column's index (if any) cannot serve this; both queries read every failed or every
    listed job anyway, once per run or statistics refresh.
    """
    return func.lower(func.trim(status))


class SqlJobSource:
    """Reads ``table`` (id, status, updated_at) through the engine shared by every user of ``url``."""

    def __init__(self, database: DatabaseSpec, url: str) -> None:
        self.database = database
        self.safe_url = safe_url(url)
        self._url = url
        self._engine = shared_engine(url)
        self._timeout = float(database.query_timeout_seconds)
        self._table: TableClause | None = None
        self._key_of: KeyOf = _text_key
        self._array_type: TypeEngine[Any] | None = None  # PostgreSQL: look ids up with = ANY(array)
        self._row_key: Callable[[Any], Hashable] = str
        self._queries = 0
        self._failure: tuple[float, str] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The full URL, for writing cleanup history to the same database. Never log it: use safe_url."""
        return self._url

    @property
    def query_count(self) -> int:
        """Statements sent for job status (the one-time catalog read of the table counts as one)."""
        return self._queries

    # -- running statements ---------------------------------------------------------------------------

    def _columns_by_field(self) -> dict[str, str]:
        db = self.database
        return {
            "idColumn": db.id_column,
            "statusColumn": db.status_column,
            "updatedAtColumn": db.updated_at_column,
        }

    def _run(self, work: Callable[[Any], T]) -> T:
        """Run ``work(connection)`` in a bounded read-only transaction; JobSourceError on any failure."""
        with self._lock:
            if self._failure is not None:
                failed_at, message = self._failure
                if time.monotonic() - failed_at < RETRY_AFTER_S:
                    raise JobSourceError(message)
                self._failure = None
            self._queries += 1
        try:
            with transaction(self._engine, self._timeout) as connection:
                return work(connection)
        except (SQLAlchemyError, OSError) as exc:
            message = describe_error(
                exc,
                self._url,
                timeout_s=self._timeout,
                table=self.database.table,
                columns=self._columns_by_field(),
            )
            with self._lock:
                self._failure = (time.monotonic(), message)
            log.warning("%s", message)
            raise JobSourceError(message) from None

    def _bind_table(self) -> TableClause:
        """Check that the table and its columns exist and learn their types (once per source)."""
        if self._table is not None:
            return self._table
        db = self.database
        schema, _, name = db.table.rpartition(".")

        def read_columns(connection: Any) -> dict[str, Any]:
            return {col["name"]: col["type"] for col in inspect(connection).get_columns(name, schema or None)}

        found = self._run(read_columns)  # a missing table raises NoSuchTableError, described there
        if not found:  # some dialects answer an empty list instead of raising
            raise self._remember(
                f"job database {self.safe_url}: table {db.table!r} does not exist (jobs.database.table)"
            )
        for field, column_name in self._columns_by_field().items():
            if column_name not in found:
                raise self._remember(
                    f"job database {self.safe_url}: table {db.table!r} has no column {column_name!r} "
                    f"(jobs.database.{field}); it has {', '.join(sorted(found))}"
                )
        id_type = found[db.id_column]
        array_type: TypeEngine[Any] | None = None
        if isinstance(id_type, Integer | Numeric):
            self._key_of, self._row_key = _integer_key, int
            # int4 = ANY(int8[]) still uses the index, and an id beyond int4 is simply not found
            array_type = BigInteger() if isinstance(id_type, Integer) else id_type
        elif isinstance(id_type, Uuid):
            self._key_of, self._row_key = _uuid_key, lambda value: _uuid_key(str(value))
            array_type = id_type
        elif isinstance(id_type, String):
            array_type = Text()
        if self._engine.dialect.name == "postgresql":
            self._array_type = array_type
        self._table = table(
            name,
            column(db.id_column, id_type),
            column(db.status_column, found[db.status_column]),  # compared as text: enums need no listing
            column(db.updated_at_column),  # untyped: the driver's value, converted by _to_utc
            schema=schema or None,
        )
        return self._table

    def _remember(self, message: str) -> JobSourceError:
        with self._lock:
            self._failure = (time.monotonic(), message)
        log.warning("%s", message)
        return JobSourceError(message)

    def _columns(self) -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
        """The id, the status as text (so an enum column accepts any configured status) and updated_at."""
        jobs = self._bind_table()
        db = self.database
        status = cast(jobs.c[db.status_column], Text).label(db.status_column)
        return jobs.c[db.id_column], status, jobs.c[db.updated_at_column]

    def _id_in(self, id_col: ColumnElement[Any], keys: list[Hashable]) -> ColumnElement[bool]:
        """``id IN (...)``; on PostgreSQL as ``id = ANY(array)``, which is what the server turns an IN list
        into anyway (same plan, same index scan), but one bound parameter instead of a thousand: the
        statement text stays the same, so the driver and SQLAlchemy stop re-parsing it on every lookup."""
        if self._array_type is None:
            return id_col.in_(keys)
        return id_col == any_(bindparam("job_ids", value=keys, type_=ARRAY(self._array_type)))

    def _record(self, job_id: str, status: object, updated_at: object) -> JobRecord:
        text = str(status) if status is not None else self.database.active_statuses[0]
        return JobRecord(job_id=job_id, status=text, updated_at=_to_utc(updated_at))

    # -- JobSource ------------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise JobSourceError unless the table and its three columns can be read."""
        self._bind_table()

    def lookup(self, job_ids: Sequence[str]) -> Mapping[str, JobRecord]:
        id_col, status_col, updated_col = self._columns()
        wanted: dict[Hashable, list[str]] = {}
        for job_id in job_ids:
            key = self._key_of(job_id)
            if key is not None:  # an id the column cannot hold is not in the table
                wanted.setdefault(key, []).append(job_id)
        keys = list(wanted)
        found: dict[str, JobRecord] = {}
        started = time.monotonic()
        for start in range(0, len(keys), IN_LIST_LIMIT):
            chunk = keys[start : start + IN_LIST_LIMIT]
            statement = select(id_col, status_col, updated_col).where(self._id_in(id_col, chunk))
            rows = self._run(partial(_fetch_all, statement))
            for row_id, status, updated_at in rows:
                for job_id in wanted.get(self._row_key(row_id), ()):
                    found[job_id] = self._record(job_id, status, updated_at)
        log.debug(
            "looked up %d job ids in %d queries (%.1f ms)",
            len(job_ids),
            -(-len(keys) // IN_LIST_LIMIT),
            1000 * (time.monotonic() - started),
        )
        return found

    def failed_jobs(self) -> Sequence[JobRecord]:
        id_col, status_col, updated_col = self._columns()
        failed = normalized_set(self.database.failed_statuses)
        if not failed:
            return []
        statement = select(id_col, status_col, updated_col).where(_normalized(status_col).in_(sorted(failed)))
        rows = self._run(partial(_fetch_all, statement))
        # SQL's lower/trim prefilter; Python's normalization decides (they differ on rare whitespace/letters)
        return [
            self._record(str(row_id), status, updated_at)
            for row_id, status, updated_at in rows
            if status is not None and normalize_status(str(status)) in failed
        ]

    def counts(self) -> JobCounts:
        _, status_col, _ = self._columns()
        db = self.database
        active, failed = normalized_set(db.active_statuses), normalized_set(db.failed_statuses)
        normal = _normalized(status_col)
        statement = select(normal, func.count()).where(normal.in_(sorted(active | failed))).group_by(normal)
        rows = self._run(partial(_fetch_all, statement))
        per_status = {str(status): int(count) for status, count in rows}
        return JobCounts(
            active=sum(count for status, count in per_status.items() if status in active),
            failed=sum(count for status, count in per_status.items() if status in failed),
        )

    def close(self) -> None:
        """Nothing to release: the pooled engine is shared by every source of this URL."""
