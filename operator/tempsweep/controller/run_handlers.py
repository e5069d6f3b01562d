"""Kopf handlers of CleanupRun: execute each run exactly once, report progress, expire finished runs.

Registered on import; ``main.run_operator`` imports this module with ``policies``.
"""

from __future__ import annotations

import os
from typing import Any

import kopf

from tempsweep.controller.cleanups import post_run_event, run_locked
from tempsweep.controller.kube import NotFound
from tempsweep.controller.policy_status import now_utc
from tempsweep.controller.run_status import RunReporter
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime, build_runtime
from tempsweep.controller.schedule import parse_time
from tempsweep.controller.state import OperatorState, operator_state
from tempsweep.controller.writer import POLICIES, RUNS, ObjectRef, StatusWriter
from tempsweep.engine import RunRequest
from tempsweep.models import GROUP, VERSION, InputError, RunPhase, parse_run
from tempsweep.models.resources import PolicyStatus

#: How often each finished run checks its ttlSecondsAfterFinished.
TTL_CHECK_SECONDS = float(os.environ.get("TEMPSWEEP_TTL_CHECK_SECONDS", "60"))
DEFAULT_RUN_TTL_SECONDS = 86_400
FINAL_PHASES = (RunPhase.SUCCEEDED.value, RunPhase.FAILED.value)


class RunRefused(Exception):
    """The run cannot start; ``reason`` is the Complete condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@kopf.on.create(GROUP, VERSION, RUNS)
def run_created(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """Execute a new CleanupRun exactly once."""
    execute_run(body, ObjectRef.of(RUNS, meta), operator_state(memo))


@kopf.on.resume(GROUP, VERSION, RUNS)
def run_resumed(body: kopf.Body, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """After a restart: finish runs that were Pending or Running (re-running deletes nothing extra)."""
    execute_run(body, ObjectRef.of(RUNS, meta), operator_state(memo))


def execute_run(body: kopf.Body, ref: ObjectRef, state: OperatorState) -> None:
    """Claim the run, prepare it, run it under the storage lock, report it; the policy learns the result."""
    latest = state.kube.get_run(ref.namespace, ref.name).get("status") or {}
    if latest.get("phase") in FINAL_PHASES:
        return
    with state.claims.claim(ref.uid) as owned:
        if not owned:
            return
        reporter = RunReporter(StatusWriter(state.kube, ref), int(body.get("metadata", {}).get("generation") or 0))
        reporter.started()
        try:
            request, runtime = prepare_run(body, ref, state)
        except RunRefused as refused:
            kopf.event(body, type="Warning", reason=refused.reason, message=str(refused))
            reporter.refused(refused.reason, str(refused))
            return
        result = run_locked(runtime, request, state.locks, reporter)
        assert result is not None  # a CleanupRun waits for the storage
        reporter.finished(result)
    post_run_event(body, result)
    StatusWriter(state.kube, ObjectRef(POLICIES, ref.namespace, runtime.name)).write(PolicyStatus.last_cleanup(result))


def prepare_run(body: kopf.Body, ref: ObjectRef, state: OperatorState) -> tuple[RunRequest, PolicyRuntime]:
    """The engine's request and the policy's runtime; RunRefused says why the run cannot start."""
    try:
        run = parse_run(dict(body), source=f"CleanupRun {ref.key}")
    except InputError as exc:
        raise RunRefused("InvalidSpec", str(exc)) from None
    try:
        policy_body = state.kube.get_policy(ref.namespace, run.spec.policy_ref.name)
        runtime = build_runtime(policy_body, state)
    except NotFound as exc:
        message = f"{exc}: a CleanupRun can only use a policy in its own namespace"
        raise RunRefused("PolicyNotFound", message) from None
    except PolicyNotReady as exc:
        raise RunRefused(exc.reason, str(exc)) from None
    problem = runtime.policy.run_id_problem(run.spec.job_id, run.spec.chunk_id)
    if problem:  # an id the policy's naming.idCharacters does not allow: no file could carry it
        raise RunRefused("InvalidSpec", f"CleanupRun {ref.key}: {problem}")
    return RunRequest.from_spec(run.spec), runtime


@kopf.timer(
    GROUP,
    VERSION,
    RUNS,
    interval=TTL_CHECK_SECONDS,
    when=lambda status, **_: (status or {}).get("phase") in FINAL_PHASES,
)
def run_ttl(spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """Delete finished runs once ``ttlSecondsAfterFinished`` (default one day) has passed."""
    ttl = spec.get("ttlSecondsAfterFinished")
    ttl = DEFAULT_RUN_TTL_SECONDS if ttl is None else int(ttl)
    finished = parse_time(status.get("completionTime"))
    if finished is not None and (now_utc() - finished).total_seconds() >= ttl:
        ref = ObjectRef.of(RUNS, meta)
        operator_state(memo).kube.delete_run(ref.namespace, ref.name)
