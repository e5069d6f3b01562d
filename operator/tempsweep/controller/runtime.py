"""From a CleanupPolicy object to a ready engine context, or a clear reason why not.

Everything the cluster adds to the offline path lives here: the allowed-roots check (the admin's
decision, ``TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS``), and secrets read through the API. Secret values
go straight into the job source or storage client and nowhere else: not logs, status or events.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from tempsweep.controller import kube
from tempsweep.engine import CleanupContext, JobSourceError, StorageError
from tempsweep.engine.ports import JobSource, StorageProvider
from tempsweep.jobs.factory import open_job_source
from tempsweep.models import EffectivePolicy, InputError, OperatorSettings, parse_policy, resolve_policy
from tempsweep.models.effective import min_free_for
from tempsweep.models.roots import volume_path_refusal
from tempsweep.storage.factory import open_storage

log = logging.getLogger(__name__)

#: A policy timer reuses its job source (secret read once, table checked once) for this long, as long as
#: the policy's generation is unchanged and the source keeps working; a new secret value is picked up
#: within this time, or at once after the database fails.
JOB_SOURCE_REUSE_SECONDS = 300.0
_job_sources: dict[tuple[str, str], tuple[tuple[str, int], float, JobSource]] = {}
_job_sources_guard = threading.Lock()


class PolicyNotReady(Exception):
    """The policy cannot be acted on; ``reason`` is a condition reason, the message says why."""

    def __init__(self, reason: str, message: str, *, condition: str = "Ready") -> None:
        super().__init__(message)
        self.reason = reason
        self.condition = condition


@dataclass
class PolicyRuntime:
    """A validated policy with its storage and (optional) job source."""

    namespace: str
    name: str
    policy: EffectivePolicy
    storage: StorageProvider
    jobs: JobSource | None
    job_error: str | None = None
    job_error_reason: str = "QueryFailed"  # or SecretMissing: the condition reason for job_error

    @property
    def lock_key(self) -> str:
        """Runs on the same storage are serialised on this key."""
        if self.policy.volume_path is not None:
            return f"volume:{self.policy.volume_path}"
        blob = self.policy.spec.storage.azure_blob
        return f"blob:{blob.container if blob else ''}/{blob.prefix if blob else ''}"

    def context(self, **kwargs: Any) -> CleanupContext:
        return CleanupContext(policy=self.policy, storage=self.storage, jobs=self.jobs, **kwargs)


def resolve(body: dict[str, Any], settings: OperatorSettings) -> EffectivePolicy:
    """Parse and resolve a policy object; PolicyNotReady(InvalidSpec) when it does not validate."""
    meta = body.get("metadata") or {}
    source = f"CleanupPolicy {meta.get('namespace')}/{meta.get('name')}"
    try:
        document = parse_policy(body, source=source)
        return resolve_policy(document.metadata.name, document.spec, settings)
    except (InputError, ValueError) as exc:
        raise PolicyNotReady("InvalidSpec", str(exc)) from None


def build_runtime(
    body: dict[str, Any], settings: OperatorSettings, *, need_jobs: bool = True, reuse_jobs: bool = False
) -> PolicyRuntime:
    """Validate a policy against the cluster and open its storage and job source.

    A job source that cannot be reached does not make the policy unusable: the runtime carries
    ``job_error`` and no job source, and the engine then deletes nothing that depends on job status.

    ``reuse_jobs`` (the policy timer, every few seconds for every policy) reuses a working job source
    instead of reading the secret and checking the table again: that was most of an idle operator's
    CPU. A CleanupRun opens its own, so its ``jobQueries`` count only its own queries.
    """
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace") or "default", meta.get("name") or "?"
    policy = resolve(body, settings)
    if policy.volume_path is not None:
        refusal = volume_path_refusal(policy.volume_path, namespace, settings)
        if refusal is not None:
            raise PolicyNotReady("PathNotAllowed", refusal)
    blob_secret = None
    blob = policy.spec.storage.azure_blob
    try:
        if blob is not None and blob.connection_string_secret_ref is not None:
            ref = blob.connection_string_secret_ref
            blob_secret = kube.read_secret_value(namespace, ref.name, ref.key)
    except kube.NotFound as exc:
        raise PolicyNotReady("SecretMissing", str(exc)) from None
    try:
        storage = open_storage(policy, azure_connection_string=blob_secret)
    except StorageError as exc:
        raise PolicyNotReady("StorageUnavailable", str(exc), condition="StorageHealthy") from None
    _check_min_free(policy, storage)
    runtime = PolicyRuntime(namespace, name, policy, storage, None)
    if policy.database is not None and need_jobs:
        identity = (str(meta.get("uid") or ""), int(meta.get("generation") or 0))
        if reuse_jobs:
            runtime.jobs = _reusable_jobs(namespace, name, identity)
        if runtime.jobs is None:
            _open_jobs(runtime)
            if reuse_jobs and runtime.jobs is not None:
                with _job_sources_guard:
                    _job_sources[(namespace, name)] = (identity, time.monotonic(), runtime.jobs)
    return runtime


def _check_min_free(policy: EffectivePolicy, storage: StorageProvider) -> None:
    """An explicit minFreeSpace the filesystem can never satisfy makes the policy not ready.

    With a capacity, ``resolve_policy`` has already refused it; the filesystem's size is only known
    here. A storage whose usage cannot be read is left to the statistics, which report it as they always
    have; the engine refuses an emergency on such a floor anyway.
    """
    if policy.capacity_bytes is not None:
        return
    try:
        usage = storage.filesystem_usage()
    except StorageError:
        return
    if usage is not None:
        floor = min_free_for(policy, usage.total)
        if floor.unsatisfiable:
            raise PolicyNotReady("MinFreeSpaceUnsatisfiable", f"{floor.note}; the policy is not cleaned")


def _reusable_jobs(namespace: str, name: str, identity: tuple[str, int]) -> JobSource | None:
    with _job_sources_guard:
        cached = _job_sources.get((namespace, name))
        if cached is None:
            return None
        if cached[0] != identity or time.monotonic() - cached[1] > JOB_SOURCE_REUSE_SECONDS:
            del _job_sources[(namespace, name)]
            return None
        return cached[2]


def forget_job_source(namespace: str, name: str) -> None:
    """Open a fresh job source next time (the policy was deleted, or its database failed)."""
    with _job_sources_guard:
        _job_sources.pop((namespace, name), None)


def _open_jobs(runtime: PolicyRuntime) -> None:
    """Fill in the runtime's job source, or why there is none (a missing secret or an unusable database)."""
    database = runtime.policy.database
    assert database is not None
    url = None
    try:
        if database.url_secret_ref is not None and not database.url:
            ref = database.url_secret_ref
            url = kube.read_secret_value(runtime.namespace, ref.name, ref.key)
        runtime.jobs = open_job_source(runtime.policy, url=url)
    except kube.NotFound as exc:
        runtime.job_error, runtime.job_error_reason = f"spec.jobs.database.urlSecretRef: {exc}", "SecretMissing"
    except JobSourceError as exc:
        runtime.job_error, runtime.job_error_reason = str(exc), "QueryFailed"
