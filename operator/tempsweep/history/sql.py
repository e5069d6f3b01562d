"""Cleanup history in SQL: one row per finished run in ``jobs.database.historyTable`` (off unless set).

This is the original service's "tracks cleanup statistics", kept where the application's own
tools can query it. The table is created on first use (and again if someone drops it). Writing it
is best effort: a failure is logged and returned as a message, never raised, so history can never
fail, delay much or undo a cleanup. The write runs in its own short transaction with the policy's
statement timeout on the engine shared per URL (``tempsweep.jobs.database``).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from tempsweep.engine.ports import JobSourceError
from tempsweep.jobs.database import describe_error, safe_url, scrub, shared_engine, transaction
from tempsweep.models.policy import DatabaseSpec
from tempsweep.models.status import RunStatus

log = logging.getLogger(__name__)

_ID_TYPE = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only
_tables: dict[str, Table] = {}
_tables_lock = threading.Lock()


def history_table(name: str) -> Table:
    """The history table's layout, under ``name`` (a plain identifier, checked by the policy model)."""
    with _tables_lock:
        found = _tables.get(name)
        if found is None:
            found = Table(
                name,
                MetaData(),
                Column("id", _ID_TYPE, primary_key=True, autoincrement=True),
                Column("namespace", String(63)),
                Column("policy", String(253), nullable=False, index=True),
                Column("run_name", String(253), nullable=False),
                Column("trigger", String(32), nullable=False),
                Column("phase", String(16), nullable=False),
                Column("dry_run", Boolean, nullable=False),
                Column("start_time", DateTime(timezone=True), nullable=False, index=True),
                Column("end_time", DateTime(timezone=True), nullable=False),
                Column("duration_seconds", Float, nullable=False),
                Column("files_scanned", BigInteger, nullable=False),
                Column("files_deleted", BigInteger, nullable=False),
                Column("files_skipped", BigInteger, nullable=False),
                Column("files_skipped_in_use", BigInteger, nullable=False),
                Column("directories_removed", BigInteger, nullable=False),
                Column("would_remove_directories", BigInteger, nullable=False),
                Column("bytes_freed", BigInteger, nullable=False),
                Column("would_delete_count", BigInteger, nullable=False),
                Column("would_free_bytes", BigInteger, nullable=False),
                Column("storage_before_percent", Float),
                Column("storage_after_percent", Float),
                Column("deleted_by_reason", JSON, nullable=False),
                Column("error_count", Integer, nullable=False),
                Column("errors", JSON, nullable=False),
                Column("job_queries", Integer, nullable=False),
                Column("message", Text, nullable=False),
                Column("recorded_at", DateTime(timezone=True), nullable=False),
            )
            _tables[name] = found
        return found


#: RunStatus fields that are columns, in the model's own names; the row is the model's dump of these.
_STATUS_COLUMNS = {
    "trigger",
    "phase",
    "dry_run",
    "start_time",
    "end_time",
    "duration_seconds",
    "files_scanned",
    "files_deleted",
    "files_skipped",
    "files_skipped_in_use",
    "directories_removed",
    "would_remove_directories",
    "bytes_freed",
    "would_delete_count",
    "would_free_bytes",
    "storage_before_percent",
    "storage_after_percent",
    "deleted_by_reason",
    "error_count",
    "errors",
    "job_queries",
    "message",
}


def history_row(policy_name: str, run_name: str, status: RunStatus, namespace: str | None = None) -> dict[str, Any]:
    """The values of one history row: the run's status as the model dumps it, plus who and when."""
    row = status.model_dump(mode="python", include=_STATUS_COLUMNS)
    row.update(trigger=status.trigger.value, phase=status.phase.value)
    return {
        **row,
        "namespace": namespace,
        "policy": policy_name,
        "run_name": run_name,
        "recorded_at": datetime.now(UTC),
    }


def _already_exists(exc: SQLAlchemyError) -> bool:
    """Two writers created the table at the same moment: the loser sees a duplicate."""
    original = getattr(exc, "orig", None)
    return isinstance(exc, DBAPIError) and (
        getattr(original, "sqlstate", None) in ("42P07", "23505") or "already exists" in str(original)
    )


def _append(engine: Engine, table: Table, row: dict[str, Any], timeout: float) -> None:
    with transaction(engine, timeout, read_only=False) as connection:
        table.create(connection, checkfirst=True)
        connection.execute(table.insert().values(**row))


class SqlHistory:
    """The ``HistoryRecorder`` of a policy with ``jobs.database.historyTable``: one row per finished run."""

    def __init__(self, database: DatabaseSpec, url: str, policy_name: str, namespace: str | None = None) -> None:
        assert database.history_table, "only for a policy with a history table"
        self._table_name = database.history_table
        self._timeout = float(database.query_timeout_seconds)
        self._url = url
        self._policy = policy_name
        self._namespace = namespace

    def record(self, run_name: str, status: RunStatus) -> str | None:
        """Append one row; None, or why it failed. Never raises: the cleanup has already happened and
        its own status stands whatever this returns."""
        url, timeout = self._url, self._timeout
        where = f"cleanup history table {self._table_name!r}"
        try:
            engine = shared_engine(url)
            table = history_table(self._table_name)
            row = history_row(self._policy, run_name, status, self._namespace)
            try:
                _append(engine, table, row, timeout)
            except SQLAlchemyError as exc:
                if not _already_exists(exc):
                    raise
                _append(engine, table, row, timeout)  # another writer created the table meanwhile
            return None
        except JobSourceError as exc:
            message = f"{where}: {exc}"
        except SQLAlchemyError as exc:
            message = f"{where} not written: {describe_error(exc, url, timeout_s=timeout)}"
        except Exception as exc:  # history must never break a cleanup, whatever goes wrong in it
            log.exception("cleanup history for run %s of policy %s", run_name, self._policy)
            message = scrub(f"{where} not written ({safe_url(url)}): {type(exc).__name__}: {exc}", url)
        log.warning("%s", message)
        return message
