"""Build the job source a policy names (or none, for age-only policies)."""

from __future__ import annotations

from tempsweep.engine.ports import JobSource, JobSourceError
from tempsweep.models.effective import EffectivePolicy


def open_job_source(policy: EffectivePolicy, *, url: str | None = None) -> JobSource | None:
    """A checked SQL job source for ``spec.jobs.database``; JobSourceError says what is wrong."""
    database = policy.database
    if database is None:
        return None
    url = url or policy.database_url
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
    source.check()
    return source
