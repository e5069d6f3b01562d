"""From a CleanupPolicy object to a ready engine context, or a clear reason why not.

Everything the cluster adds to the offline path lives here: the allowed-roots check (the admin's
decision, ``TEMP_STORAGE_CLEANUP_ALLOWED_ROOTS``), and secrets read through the API. Secret values
go straight into the job source or storage client and nowhere else: not logs, status or events.
A job source that cannot be opened becomes an ``UnavailableJobSource``: the policy stays usable and
the engine keeps every file that depends on job status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tempsweep.controller.kube import Kube, NotFound
from tempsweep.controller.state import OperatorState, PolicyMemory, ReusedJobSource
from tempsweep.engine import CleanupContext, JobSourceError, StorageError
from tempsweep.engine.ports import AuditSink, HistoryRecorder, JobSource, StorageProvider
from tempsweep.history import open_history
from tempsweep.jobs.factory import open_job_source
from tempsweep.jobs.unavailable import UnavailableJobSource
from tempsweep.models import EffectivePolicy, InputError, OperatorSettings, RunType, parse_policy, resolve_policy
from tempsweep.models.effective import min_free_for
from tempsweep.models.roots import volume_path_refusal
from tempsweep.storage.audit import AuditLabels, open_audit
from tempsweep.storage.factory import open_storage

#: A policy timer reuses its job source (secret read once, table checked once) for this long, as long as
#: the policy's generation is unchanged and the source keeps working; a new secret value is picked up
#: within this time, or at once after the database fails.
JOB_SOURCE_REUSE_SECONDS = 300.0


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
    generation: int
    policy: EffectivePolicy
    storage: StorageProvider
    jobs: JobSource | None
    history: HistoryRecorder | None = None
    log_summary: bool = True  # TEMP_STORAGE_CLEANUP_LOG_CLEANUP_STATS: log each run's one-line summary
    uid: str = ""  # the policy object's: a deleted or suspended policy stops its cleanups (StopSignals)

    @property
    def lock_key(self) -> str:
        """Runs on the same storage are serialised on this key."""
        return self.policy.backend.storage_key

    @property
    def job_outage(self) -> UnavailableJobSource | None:
        """The job source when it could not even be opened (a missing secret, a refused connection)."""
        return self.jobs if isinstance(self.jobs, UnavailableJobSource) else None

    def audit(self, run_name: str, run_type: RunType, run_uid: str | None) -> AuditSink | None:
        """The policy's audit sink (``spec.audit``) bound to one run, or None."""
        labels = AuditLabels(self.namespace, self.name, run_name, run_type.value, run_uid)
        return open_audit(self.policy.backend, labels)

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


def build_runtime(body: dict[str, Any], state: OperatorState, memory: PolicyMemory | None = None) -> PolicyRuntime:
    """Validate a policy against the cluster and open its storage and job source.

    With ``memory`` (the policy timer, every few seconds for every policy) a working job source is
    reused instead of reading the secret and checking the table again: that was most of an idle
    operator's CPU. A CleanupRun opens its own, so its ``jobQueries`` count only its own queries.
    """
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace") or "default", meta.get("name") or "?"
    policy = resolve(body, state.settings)
    backend = policy.backend
    if backend.volume_path is not None:
        refusal = volume_path_refusal(backend.volume_path, namespace, state.settings)
        if refusal is not None:
            raise PolicyNotReady("PathNotAllowed", refusal)
    try:
        blob_secret = _secret(
            state.kube, namespace, backend.azure_blob and backend.azure_blob.connection_string_secret_ref
        )
    except NotFound as exc:
        raise PolicyNotReady("SecretMissing", str(exc)) from None
    policy = policy.with_backend(backend.with_secrets(database_url=None, azure_connection_string=blob_secret))
    try:
        storage = open_storage(policy.backend)
    except StorageError as exc:
        raise PolicyNotReady("StorageUnavailable", str(exc), condition="StorageHealthy") from None
    _check_min_free(policy, storage)
    generation = int(meta.get("generation") or 0)
    reused = _reused_jobs(memory, generation) if memory is not None else None
    jobs: JobSource | None = None
    if reused is not None:
        jobs = reused.source
        policy = policy.with_backend(
            policy.backend.with_secrets(database_url=reused.database_url, azure_connection_string=None)
        )
    elif backend.database is not None:
        policy, jobs = _open_jobs(state.kube, namespace, policy)
        if memory is not None and jobs is not None and not isinstance(jobs, UnavailableJobSource):
            memory.job_source = ReusedJobSource(generation, time.monotonic(), jobs, policy.backend.database_url)
    history = open_history(policy.backend, name, namespace)
    return PolicyRuntime(
        namespace,
        name,
        generation,
        policy,
        storage,
        jobs,
        history,
        state.settings.log_cleanup_stats,
        uid=str(meta.get("uid") or ""),
    )


def _check_min_free(policy: EffectivePolicy, storage: StorageProvider) -> None:
    """An explicit minFreeSpace the filesystem can never satisfy makes the policy not ready.

    With a capacity, ``resolve_policy`` has already refused it; the filesystem's size is only known
    here. A storage whose usage cannot be read is left to the statistics, which report it as they always
    have; the engine refuses an emergency on such a floor anyway.
    """
    if policy.rules.capacity_bytes is not None:
        return
    try:
        usage = storage.filesystem_usage()
    except StorageError:
        return
    if usage is not None:
        floor = min_free_for(policy.rules, usage.total)
        if floor.unsatisfiable:
            raise PolicyNotReady("MinFreeSpaceUnsatisfiable", f"{floor.note}; the policy is not cleaned")


def _secret(kube: Kube, namespace: str, ref: Any) -> str | None:
    return kube.read_secret_value(namespace, ref.name, ref.key) if ref is not None else None


def _reused_jobs(memory: PolicyMemory, generation: int) -> ReusedJobSource | None:
    cached = memory.job_source
    if cached is not None and (
        cached.generation != generation or time.monotonic() - cached.opened > JOB_SOURCE_REUSE_SECONDS
    ):
        memory.job_source = cached = None
    return cached


def _open_jobs(kube: Kube, namespace: str, policy: EffectivePolicy) -> tuple[EffectivePolicy, JobSource | None]:
    """The policy with its database URL read from the Secret, and its job source -- or an unavailable
    one saying why (a missing secret, an unusable database)."""
    database = policy.backend.database
    assert database is not None
    try:
        url = _secret(kube, namespace, database.url_secret_ref) if not database.url else None
    except NotFound as exc:
        return policy, UnavailableJobSource(f"spec.jobs.database.urlSecretRef: {exc}", reason="SecretMissing")
    policy = policy.with_backend(policy.backend.with_secrets(database_url=url, azure_connection_string=None))
    try:
        return policy, open_job_source(policy.backend)
    except JobSourceError as exc:
        return policy, UnavailableJobSource(str(exc))
