"""Kopf handlers of CleanupRun: execute each run exactly once, report progress, stop it when asked.

Finished runs expire from one sweeper (``expiry``); no handler here makes Kopf put a finalizer on a run.

Registered on import; ``main.run_operator`` imports this module with ``policies``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf

from tempsweep.controller.claims import LEASE_SECONDS, Claim, RunLease, claim_state
from tempsweep.controller.cleanups import post_run_event, run_locked
from tempsweep.controller.expiry import FINAL_PHASES, sweep_forever
from tempsweep.controller.kube import NotFound, Written
from tempsweep.controller.node_runs import coordinate
from tempsweep.controller.policy_status import now_utc
from tempsweep.controller.run_status import RunReporter
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime, build_runtime
from tempsweep.controller.state import OperatorState, ensure_state, operator_state
from tempsweep.controller.timing import load_timing
from tempsweep.controller.writer import POLICIES, RUNS, ObjectRef, StatusWriter
from tempsweep.engine import RunRequest
from tempsweep.models import GROUP, VERSION, InputError, RunPhase, RunStatus, parse_run
from tempsweep.models.resources import PolicyStatus, RunProgress

#: How often a running CleanupRun reads itself back to see whether it was deleted.
RUN_RECHECK_SECONDS = 2.0
#: How often the sweeper deletes finished runs whose ttlSecondsAfterFinished has passed.
TTL_CHECK_SECONDS = load_timing().ttl_check_seconds


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
    current = state.kube.get_run(ref.namespace, ref.name)
    latest = current.get("status") or {}
    if latest.get("phase") in FINAL_PHASES or (current.get("metadata") or {}).get("uid") != ref.uid:
        return
    policy_name = ((body.get("spec") or {}).get("policyRef") or {}).get("name")
    if not state.shards.owns(f"{ref.namespace}/{policy_name}"):  # --shards: the policy's holder runs it
        raise kopf.TemporaryError(
            "the policy's shard is held by another replica; looking again later", delay=LEASE_SECONDS
        )
    if coordinate(body, current, ref, state):  # a node-scoped policy's run: its nodes' agents execute it
        return
    with state.claims.claim(ref.uid) as owned:
        if not owned:
            return
        writer = StatusWriter(state.kube, ref)
        lease = _claim_or_wait(writer, current, state.identity)
        try:
            result, runtime = _execute(body, ref, state, writer, lease)
        finally:
            lease.stop()
    if result is not None and runtime is not None:
        post_run_event(body, result)
        state.telemetry.run_finished(runtime, result)
        StatusWriter(state.kube, ObjectRef(POLICIES, ref.namespace, runtime.name)).write(
            PolicyStatus.last_cleanup(result)
        )


def _claim_or_wait(writer: StatusWriter, current: dict[str, Any], me: str) -> RunLease:
    """This operator's lease on the run; TemporaryError (Kopf retries after a lease) while another holds it."""
    held, holder = claim_state(current.get("status") or {}, me, now_utc())
    if held is Claim.HELD:
        raise kopf.TemporaryError(f"executed by operator {holder}; checking again later", delay=LEASE_SECONDS)
    lease = RunLease(writer, me)
    outcome = lease.acquire(str((current.get("metadata") or {}).get("resourceVersion") or ""))
    for _ in range(2):  # a conflict may be any write (another replica's Kopf annotations), not a claim
        if outcome is not Written.CONFLICT:
            break
        current = writer.kube.get_run(writer.ref.namespace, writer.ref.name)
        if claim_state(current.get("status") or {}, me, now_utc())[0] is Claim.HELD:
            break
        outcome = lease.acquire(str((current.get("metadata") or {}).get("resourceVersion") or ""))
    if outcome is Written.CONFLICT:
        raise kopf.TemporaryError("another operator claimed the run first; checking again later", delay=LEASE_SECONDS)
    if outcome is not Written.DONE:
        raise kopf.TemporaryError(f"the run could not be claimed ({outcome.value})", delay=5)
    lease.start()
    return lease


def _execute(
    body: kopf.Body, ref: ObjectRef, state: OperatorState, writer: StatusWriter, lease: RunLease
) -> tuple[RunStatus | None, PolicyRuntime | None]:
    latest = state.kube.get_run(ref.namespace, ref.name).get("status") or {}
    generation = int(body.get("metadata", {}).get("generation") or 0)
    reporter = RunReporter(writer, generation, carried_progress(latest))
    reporter.started()
    try:
        request, runtime = prepare_run(body, ref, state)
    except RunRefused as refused:
        kopf.event(body, type="Warning", reason=refused.reason, message=str(refused))
        reporter.refused(refused.reason, str(refused))
        return None, None
    try:
        stop = RunStopCheck(state, ref, runtime.uid, lease)
        result = run_locked(runtime, request, state.locks, reporter, should_stop=stop)
    finally:
        state.stops.clear(ref.uid)
    assert result is not None  # a CleanupRun waits for the storage
    reporter.finished(result)
    return result, runtime


def carried_progress(status: dict[str, Any]) -> RunProgress | None:
    """What a run interrupted by a restart had reported: its figures go on from there."""
    progress = status.get("progress")
    if status.get("phase") != RunPhase.RUNNING.value or not isinstance(progress, dict):
        return None
    return RunProgress.model_validate(progress)


class RunStopCheck:
    """Asked between batches whether the run must stop: its policy deleted or suspended (``StopSignals``,
    from the policy's watch events), or the run itself deleted or replaced.

    The run's own events cannot tell: Kopf handles one object's events one after the other, so its
    DELETED event waits until this very handler returns. So the run is read back, at most every
    ``RUN_RECHECK_SECONDS``; a read that fails (an API outage) is no reason to stop.
    """

    def __init__(self, state: OperatorState, ref: ObjectRef, policy_uid: str, lease: RunLease) -> None:
        self._state, self._ref, self._policy_uid, self._lease = state, ref, policy_uid, lease
        self._next_read = time.monotonic() + RUN_RECHECK_SECONDS

    def __call__(self) -> str | None:
        if self._lease.lost_to is not None:
            return f"operator {self._lease.lost_to} took the run over (this one's claim had expired)"
        reason = self._state.stops.check(self._ref.uid, self._policy_uid)
        if reason is not None or time.monotonic() < self._next_read:
            return reason
        self._next_read = time.monotonic() + RUN_RECHECK_SECONDS
        try:
            meta = self._state.kube.get_run(self._ref.namespace, self._ref.name).get("metadata") or {}
        except NotFound:
            return "the CleanupRun was deleted"
        except Exception:  # the API server is unreachable: go on, ask again later
            return None
        if meta.get("uid") != self._ref.uid or meta.get("deletionTimestamp"):
            return "the CleanupRun was deleted"
        return None


@kopf.on.event(GROUP, VERSION, RUNS)
async def run_event(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A CleanupRun deleted while it runs stops at the next batch boundary (no finalizer needed: the
    watch stream says so even when the object is already gone); a finished one is due to expire."""
    state, uid = operator_state(memo), str(body.get("metadata", {}).get("uid") or "")
    state.finished.observe(type, body)
    if (type == "DELETED" or body.get("metadata", {}).get("deletionTimestamp")) and state.claims.holds(uid):
        state.stops.stop(uid, "the CleanupRun was deleted")


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


@kopf.on.startup()
async def start_sweeper(memo: kopf.Memo, **_: Any) -> None:
    """One task for the whole operator expires finished runs (see ``expiry``)."""
    state = ensure_state(memo)
    state.background.append(asyncio.create_task(sweep_forever(state.finished, state.kube, TTL_CHECK_SECONDS)))


@kopf.on.cleanup()
async def stop_sweeper(memo: kopf.Memo, **_: Any) -> None:
    state = operator_state(memo)
    for task in state.background:
        task.cancel()
    await asyncio.gather(*state.background, return_exceptions=True)
    state.background.clear()
