"""Helpers for the Azure Blob tests: policies on a real Azurite container, blobs, clocks.

Azurite stamps ``last_modified`` at upload, so a test makes blobs *old* by planning at a ``now``
in the future (``CleanupContext.now``) rather than by waiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from support.azurite_server import AzuriteServer, BlobContainer
from tempsweep.engine import CleanupContext, JobRecord, RunRequest
from tempsweep.engine.ports import JobSource
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import CleanupRunSpec, EffectivePolicy, load_settings, parse_policy, resolve_policy
from tempsweep.storage.azure_blob import AzureBlobStorage
from tempsweep.storage.azure_errors import Backoff

#: Short retries, so tests against a dead endpoint finish in about a second.
FAST_BACKOFF = Backoff(attempts=3, first_delay=0.05, max_delay=0.2, first_overload_delay=0.1, max_overload_delay=0.4)


def policy_document(
    container: str,
    connection_string: str,
    *,
    prefix: str = "tmp/",
    capacity: str = "1Gi",
    jobs: bool = True,
    **spec: Any,
) -> dict[str, Any]:
    """A CleanupPolicy document for an azureBlob container (jobs come from a MemoryJobSource).

    The blast-radius guard is off unless ``limits`` sets it: the containers here are meant to be emptied.
    """
    limits = {"maxDeletePercent": 100, **spec.pop("limits", {})}
    document: dict[str, Any] = {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupPolicy",
        "metadata": {"name": "blobs"},
        "spec": {
            "storage": {
                "azureBlob": {
                    "container": container,
                    "prefix": prefix,
                    "capacity": capacity,
                    "connectionString": connection_string,
                }
            },
            "thresholds": {"minFreeSpace": "1"},
            "limits": limits,
            **spec,
        },
    }
    if jobs:
        document["spec"]["jobs"] = {"database": {"url": "sqlite:///unused-the-tests-pass-a-memory-source.db"}}
    return document


def effective(document: dict[str, Any]) -> EffectivePolicy:
    policy = parse_policy(document, source="test-policy.yaml")
    return resolve_policy(policy.metadata.name, policy.spec, load_settings({}))


def run_spec(kind: str, **fields: Any) -> RunRequest:
    return RunRequest.from_spec(CleanupRunSpec.model_validate({"policyRef": {"name": "blobs"}, "type": kind, **fields}))


def upload(container: BlobContainer, names: Iterable[str], data: bytes = b"x" * 100) -> None:
    for name in names:
        container.client.upload_blob(name, data, overwrite=True)


def blob_names(container: BlobContainer) -> set[str]:
    return {blob.name for blob in container.client.list_blobs()}


def newest_upload(container: BlobContainer) -> datetime:
    newest: datetime = max(blob.last_modified for blob in container.client.list_blobs())
    return newest


def jobs(*records: tuple[str, str, float | None], now: datetime) -> MemoryJobSource:
    """Job records as (id, status, hours since the last update) relative to ``now``."""
    return MemoryJobSource(
        JobRecord(job_id, status, now - timedelta(hours=hours) if hours is not None else None)
        for job_id, status, hours in records
    )


class Blobs:
    """One test's view of Azurite: the container, a storage for a policy, and contexts at an instant."""

    def __init__(self, azurite: AzuriteServer, container: BlobContainer) -> None:
        self.azurite = azurite
        self.container = container

    @property
    def name(self) -> str:
        return str(self.container.name)

    def policy(self, **kwargs: Any) -> EffectivePolicy:
        return effective(policy_document(self.name, self.azurite.connection_string, **kwargs))

    def storage(self, policy: EffectivePolicy, **options: Any) -> AzureBlobStorage:
        options.setdefault("backoff", FAST_BACKOFF)
        blob = policy.backend.azure_blob
        assert blob is not None
        options.setdefault("connection_string", policy.backend.azure_connection_string)
        return AzureBlobStorage.from_spec(blob, **options)

    def context(
        self,
        policy: EffectivePolicy,
        *,
        hours_later: float = 0.0,
        job_source: JobSource | None = None,
        storage: Any = None,
        **options: Any,
    ) -> CleanupContext:
        """A context planning at ``hours_later`` after the newest blob was uploaded."""
        now = newest_upload(self.container) + timedelta(hours=hours_later) if hours_later else datetime.now(UTC)
        return CleanupContext(
            policy=policy,
            storage=storage if storage is not None else self.storage(policy, **options),
            jobs=job_source,
            now=now,
        )

    def upload(self, names: Iterable[str], data: bytes = b"x" * 100) -> None:
        upload(self.container, names, data)

    def names(self) -> set[str]:
        return blob_names(self.container)
