"""Helpers for the SQL job source tests: a real job table, policies, runs and real file trees.

The application reads its job table as a dedicated login role (``tempsweep_reader``) that may only
SELECT from it -- the least privilege an operator should get -- and whose password is recognisable,
so every test can check that no message, status or log line ever carries it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from tempsweep.engine import CleanupContext, RunRequest, run_cleanup
from tempsweep.models import CleanupPolicySpec, CleanupRunSpec, EffectivePolicy, RunStatus, load_settings
from tempsweep.models.effective import resolve_policy

READER = "tempsweep_reader"
#: recognisable, and with characters that must be percent-encoded in a URL
READER_PASSWORD = "Recognisable-S3cret/p@ss%word"
HOUR = 3600.0
POLICY_NAME = "crawler-temp"


def assert_no_password(text: str, password: str = READER_PASSWORD) -> None:
    """Neither the password nor its percent-encoded spellings appear in ``text``."""
    for spelling in {password, quote(password, safe=""), quote(password)}:
        assert spelling not in text, f"the password leaked into: {text}"


@dataclass
class JobDatabase:
    """A fresh PostgreSQL database holding the application's job table."""

    admin_url: str
    reader_url: str
    server: Any

    @classmethod
    def fresh(cls, server: Any, reader: str) -> JobDatabase:
        """A new database on ``server`` whose sessions run in New York time, so UTC handling is exercised."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        admin = sa.engine.make_url(server.create_database(name))
        as_reader = admin.set(username=reader, password=READER_PASSWORD)
        plain = {"hide_password": False}
        database = cls(admin.render_as_string(**plain), as_reader.render_as_string(**plain), server)
        database.execute(f"ALTER DATABASE {name} SET timezone TO 'America/New_York'")
        return database

    @property
    def name(self) -> str:
        return str(sa.engine.make_url(self.admin_url).database)

    def drop(self) -> None:
        if self.server.is_running():
            self.server.drop_database(self.name)

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool)

    def execute(self, *statements: str, params: Iterable[dict[str, Any]] | None = None) -> None:
        engine = self.engine()
        try:
            with engine.begin() as conn:
                for statement in statements:
                    if params is None:
                        conn.execute(sa.text(statement))
                    else:
                        conn.execute(sa.text(statement), list(params))
        finally:
            engine.dispose()

    def scalar(self, query: str) -> Any:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(query)).scalar()
        finally:
            engine.dispose()

    def create_jobs(
        self,
        rows: Iterable[tuple[Any, str | None, datetime | None]],
        *,
        id_type: str = "bigint",
        timestamp_type: str = "timestamptz",
        status_type: str = "text",
        table: str = "crawl_jobs",
    ) -> None:
        """A realistic job table (more columns than tempsweep reads), readable by the reader role."""
        self.execute(
            f"""CREATE TABLE {table} (
                id {id_type} PRIMARY KEY,
                url text NOT NULL DEFAULT 'https://example.org/',
                status {status_type},
                pages_done integer NOT NULL DEFAULT 0,
                created_at {timestamp_type} NOT NULL DEFAULT now(),
                updated_at {timestamp_type}
            )""",
            f"CREATE INDEX ON {table} (status)",
            f"GRANT SELECT ON {table} TO {READER}",
        )
        values = [{"id": job_id, "status": status, "updated_at": updated} for job_id, status, updated in rows]
        if values:
            self.execute(
                f"INSERT INTO {table} (id, status, updated_at)"
                f" VALUES (:id, CAST(:status AS {status_type}), :updated_at)",
                params=values,
            )
        self.execute(f"ANALYZE {table}")

    def url_with(self, **parts: Any) -> str:
        """The reader's URL with some parts changed (password, port, database...)."""
        return sa.engine.make_url(self.reader_url).set(**parts).render_as_string(hide_password=False)


# -- policies, runs and trees ------------------------------------------------------------------------


def make_policy(root: Path, url: str | None, *, database: dict[str, Any] | None = None, **spec: Any) -> EffectivePolicy:
    """A resolved policy for a volume at ``root`` reading jobs from ``url`` (age-only when url is None).

    The blast-radius guard is off (maxDeletePercent 100), as in ``sweep_helpers.policy_spec``.
    """
    document: dict[str, Any] = {
        "storage": {"volume": {"path": str(root)}},
        "thresholds": {"minFreeSpace": 0},
        "orphans": {"maxAgeHours": 24},
        "failedJobs": {"cleanupAfterHours": 1},
        "limits": {"batchSize": 100, "maxFilesPerRun": 100_000, "parallelism": 2, "maxDeletePercent": 100},
        **spec,
    }
    if url is not None:
        document["jobs"] = {"database": {"url": url, **(database or {})}}
    return resolve_policy(POLICY_NAME, CleanupPolicySpec.model_validate(document), load_settings({}))


def run_spec(kind: str, **fields: Any) -> CleanupRunSpec:
    return CleanupRunSpec.model_validate({"policyRef": {"name": POLICY_NAME}, "type": kind, **fields})


def execute(policy: EffectivePolicy, spec: CleanupRunSpec, jobs: Any, now: datetime, **context: Any) -> RunStatus:
    """One cleanup through the engine's entry point, on the policy's real volume."""
    from tempsweep.storage.volume import VolumeStorage

    assert policy.backend.volume_path is not None
    storage = VolumeStorage(policy.backend.volume_path)
    ctx = CleanupContext(policy=policy, storage=storage, jobs=jobs, now=now, **context)
    return run_cleanup(ctx, RunRequest.from_spec(spec))


def make_files(root: Path, ages: dict[str, float], now: datetime) -> None:
    """Files under ``root`` whose modification times lie ``ages[name]`` hours before ``now``."""
    for relative, age_hours in ages.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 32)
        stamp = now.timestamp() - age_hours * HOUR
        os.utime(path, (stamp, stamp))


def files_under(root: Path) -> set[str]:
    return {
        Path(directory, name).relative_to(root).as_posix() for directory, _, names in os.walk(root) for name in names
    }


def ago(now: datetime, hours: float, *, naive: bool = False) -> datetime:
    """``hours`` before ``now``; naive (UTC wall time) for ``timestamp without time zone`` columns."""
    value = now - timedelta(hours=hours)
    return value.replace(tzinfo=None) if naive else value


def record_history(
    policy: EffectivePolicy, url: str, run_name: str, status: RunStatus, namespace: str | None = None
) -> str | None:
    """One history row through the policy's recorder (none without a history table), as the CLI and the
    operator write it."""
    from tempsweep.history import open_history

    backend = policy.backend.with_secrets(database_url=url, azure_connection_string=None)
    history = open_history(backend, policy.name, namespace)
    return history.record(run_name, status) if history is not None else None
