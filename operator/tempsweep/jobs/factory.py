"""Build the job source a policy names (or none, for age-only policies)."""

from __future__ import annotations

from tempsweep.engine.ports import JobSource, JobSourceError
from tempsweep.jobs.unavailable import UnavailableJobSource
from tempsweep.models.effective import Backend


def open_job_source(backend: Backend) -> JobSource | None:
    """The job source for ``spec.jobs.database``, checked once.

    A configuration that cannot work (no URL, not a URL) raises JobSourceError: it is bad input. A
    database that does not answer, or lacks the table or a column, gives an ``UnavailableJobSource``:
    that is an outage, and the engine keeps every file that depends on job status.
    """
    database = backend.database
    if database is None:
        return None
    url = backend.database_url
    if not url:
        if database.url_secret_ref is not None:
            raise JobSourceError(
                "spec.jobs.database.urlSecretRef is read in the cluster; offline, set "
                "TEMP_STORAGE_CLEANUP_DATABASE_URL or spec.jobs.database.url"
            )
        raise JobSourceError(
            "spec.jobs.database: no url (set url, urlSecretRef, or TEMP_STORAGE_CLEANUP_DATABASE_URL)"
        )
    from tempsweep.jobs.sql import SqlJobSource

    source = SqlJobSource(database, url)
    try:
        source.check()
    except JobSourceError as exc:
        source.close()
        return UnavailableJobSource(str(exc))
    return source
