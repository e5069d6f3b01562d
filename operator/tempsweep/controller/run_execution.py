"""One CleanupRun taken from its storage's queue: claimed, executed, reported; or its cancellation recorded.

``QueuedRun`` is what ``run_handlers`` puts into ``RunQueues``: everything here runs in the storage's own
thread (``execute``), the queue's refresher (``waiting``) or its cancellation thread (``cancelled``), never
in one of Kopf's workers. Each runs in a copy of the handler's context, so ``kopf.event`` works from them.

Exactly once: the run is claimed (``claims``) right before it executes, with the ``resourceVersion`` just
read as a precondition; a run another live operator holds is set aside until its claim would expire.
Queue writes (Pending, positions) are conditional on the version of the run this operator last saw and
are skipped while another operator holds the run, so a waiting run's message never lands on a run that
another operator is executing or has finished.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import kopf

from tempsweep.controller.claims import LEASE_SECONDS, Claim, RunLease, claim_state
from tempsweep.controller.cleanups import post_run_event, run_locked
from tempsweep.controller.expiry import FINAL_PHASES
from tempsweep.controller.kube import NotFound, Written
from tempsweep.controller.policy_status import now_utc
from tempsweep.controller.run_status import RunReporter, cancelled_before_start, pending
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime, build_runtime, resolve
from tempsweep.controller.schedule import parse_time
from tempsweep.controller.state import OperatorState
from tempsweep.controller.writer import POLICIES, ObjectRef, StatusWriter
from tempsweep.engine import RunRequest
from tempsweep.models import InputError, RunStatus, RunType, parse_run
from tempsweep.models.resources import PolicyStatus, RunProgress
from tempsweep.models.roots import volume_path_refusal

log = logging.getLogger(__name__)

#: How often a running CleanupRun reads itself back to see whether it was deleted.
RUN_RECHECK_SECONDS = 2.0
#: Reads and claims that fail for an outage are tried again after 1, 2, 4 ... at most this many seconds.
OUTAGE_RETRY_MAX_SECONDS = 30.0


class RunRefused(Exception):
    """The run cannot start; ``reason`` is the Complete condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_run(body: Any, ref: ObjectRef, state: OperatorState) -> tuple[str, str]:
    """The storage key a run queues on and its policy's uid; RunRefused says why it can never run.

    Cheap (no storage or job source opened, the policy as the watch last showed it): the handler calls it
    before queueing, so a bad run is refused at once instead of after the backlog. The full check, with
    the policy read afresh, is made again when the run starts.
    """
    run = _parse(body, ref)
    seen = state.policies.get(ref.namespace, run.spec.policy_ref.name)
    if seen is not None:
        try:
            return _check_against(seen, run, ref, state)
        except RunRefused:
            pass  # the watch may be behind: ask the API server before refusing
    try:
        policy_body = state.kube.get_policy(ref.namespace, run.spec.policy_ref.name)
    except NotFound as exc:
        raise RunRefused("PolicyNotFound", f"{exc}: a CleanupRun can only use a policy in its own namespace") from None
    return _check_against(policy_body, run, ref, state)


def _check_against(policy_body: dict[str, Any], run: Any, ref: ObjectRef, state: OperatorState) -> tuple[str, str]:
    try:
        policy = resolve(policy_body, state.settings)
    except PolicyNotReady as exc:
        raise RunRefused(exc.reason, str(exc)) from None
    path = policy.backend.volume_path
    refusal = volume_path_refusal(path, ref.namespace, state.settings) if path is not None else None
    if refusal is not None:
        raise RunRefused("PathNotAllowed", refusal)
    problem = policy.run_id_problem(run.spec.job_id, run.spec.chunk_id)
    if problem:  # an id the policy's naming.idCharacters does not allow: no file could carry it
        raise RunRefused("InvalidSpec", f"CleanupRun {ref.key}: {problem}")
    return policy.backend.storage_key, str((policy_body.get("metadata") or {}).get("uid") or "")


def _parse(body: Any, ref: ObjectRef) -> Any:
    try:
        return parse_run(dict(body), source=f"CleanupRun {ref.key}")
    except InputError as exc:
        raise RunRefused("InvalidSpec", str(exc)) from None


def prepare_run(body: Any, ref: ObjectRef, state: OperatorState) -> tuple[RunRequest, PolicyRuntime]:
    """The engine's request and the policy's runtime; RunRefused says why the run cannot start."""
    run = _parse(body, ref)
    try:
        policy_body = state.kube.get_policy(ref.namespace, run.spec.policy_ref.name)
        runtime = build_runtime(policy_body, state)
    except NotFound as exc:
        raise RunRefused("PolicyNotFound", f"{exc}: a CleanupRun can only use a policy in its own namespace") from None
    except PolicyNotReady as exc:
        raise RunRefused(exc.reason, str(exc)) from None
    problem = runtime.policy.run_id_problem(run.spec.job_id, run.spec.chunk_id)
    if problem:
        raise RunRefused("InvalidSpec", f"CleanupRun {ref.key}: {problem}")
    return RunRequest.from_spec(run.spec), runtime


def carried_progress(status: dict[str, Any]) -> RunProgress | None:
    """What a run interrupted by a restart had reported: its figures go on from there.

    A resumed run waits in the queue as Pending, so any unfinished phase with progress carries it.
    """
    progress = status.get("progress")
    if status.get("phase") in FINAL_PHASES or not isinstance(progress, dict):
        return None
    return RunProgress.model_validate(progress)


class QueuedRun:
    """A CleanupRun in its storage's queue (``run_queue.QueuedWork``)."""

    def __init__(self, body: Any, ref: ObjectRef, state: OperatorState, storage: str, policy_uid: str) -> None:
        self.uid, self.storage, self.policy_uid = ref.uid, storage, policy_uid
        self._ref, self._state = ref, state
        self._body: dict[str, Any] = dict(body)  # the latest version the watch showed (``observe``)
        self._context = contextvars.copy_context()  # Kopf's, for kopf.event from the queue's threads

    def observe(self, body: Any) -> None:
        """A newer version from the watch: queue writes are made conditional on it."""
        self._body = dict(body)

    # -- while waiting ------------------------------------------------------------------------------
    def waiting(self, position: int, total: int) -> bool:
        """Write Pending with the place, onto the version last seen; skipped (False) while another operator
        holds the run or it has finished, and when the run changed since (the next refresh tries again)."""
        body = self._body
        status, meta = body.get("status") or {}, body.get("metadata") or {}
        if status.get("phase") in FINAL_PHASES or claim_state(status, self._state.identity, now_utc())[0] is Claim.HELD:
            return False
        outcome = StatusWriter(self._state.kube, self._ref).write(
            pending(self.storage, position, total), resource_version=str(meta.get("resourceVersion") or "")
        )
        return outcome is Written.DONE

    def cancelled(self, reason: str) -> None:
        """Record a run that left the queue without running (run deleted, policy deleted or suspended)."""
        self._context.copy().run(self._record_cancelled, reason)

    def _record_cancelled(self, reason: str) -> None:
        body = self._body
        status = body.get("status") or {}
        if status.get("phase") in FINAL_PHASES:
            return
        run_type, dry_run = _type_of(body)
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        reporter = RunReporter(
            StatusWriter(self._state.kube, self._ref), generation, carried_progress(status), _first_start(status)
        )
        result = reporter.complete(cancelled_before_start(run_type, reason, dry_run=dry_run))
        reporter.finished(result)  # a deleted run: GONE at once
        post_run_event(body, result)
        self._tell_policy(body, result, history=True)

    # -- its turn -----------------------------------------------------------------------------------
    def execute(self) -> float | Callable[[], None] | None:
        """Claim the run and execute it; then what is left to write (for the storage's finisher), or a delay
        when another operator holds it (tried again then), or None when there was nothing to do."""
        return self._context.copy().run(self._execute)

    def _execute(self) -> float | Callable[[], None] | None:
        state, ref = self._state, self._ref
        reason = state.stops.check(ref.uid, self.policy_uid)
        if reason is not None:  # stopped while it waited, before the queue heard of it
            self._record_cancelled(reason)
            return None
        writer = StatusWriter(state.kube, ref)
        claimed = self._claim(writer)
        if isinstance(claimed, float) or claimed is None:
            return claimed
        lease, current, reporter = claimed
        try:
            result, runtime = self._run(current, reporter, lease)
        except BaseException:
            lease.stop()
            state.stops.clear(ref.uid)
            raise
        context = self._context.copy()

        def finish() -> None:  # the storage is free for the next run while this is written
            context.run(self._finish, current, lease, reporter, (result, runtime))

        return finish

    def _finish(
        self,
        current: dict[str, Any],
        lease: RunLease,
        reporter: RunReporter,
        outcome: tuple[RunStatus | None, PolicyRuntime | None],
    ) -> None:
        result, runtime = outcome
        try:
            if result is not None and runtime is not None:
                reporter.finished(result)
                post_run_event(current, result)
                self._tell_policy(current, result, history=False, policy_uid=runtime.uid)
        finally:
            lease.stop()
            self._state.stops.clear(self._ref.uid)

    def _claim(self, writer: StatusWriter) -> tuple[RunLease, dict[str, Any], RunReporter] | float | None:
        """This operator's lease, the run as claimed and its reporter; a delay while another operator holds it;
        None when there is nothing to do (finished, deleted: its cancellation is recorded).

        The first attempt uses the version the watch last showed (no read); the claim's resourceVersion
        precondition refuses it if anything changed since, and then the run is read afresh. The claim and
        the Running status are one write.
        """
        delay = 1.0
        current: dict[str, Any] | None = self._body
        while True:
            if current is None:
                current = self._read()
            if current is None:
                self._record_cancelled("the CleanupRun was deleted")
                return None
            self._body = current
            status = current.get("status") or {}
            if status.get("phase") in FINAL_PHASES:
                return None
            held, holder = claim_state(status, self._state.identity, now_utc())
            if held is Claim.HELD:
                log.info("[%s] executed by operator %s; looked at again when its claim expires", self._ref.key, holder)
                return _until_expiry(status)
            generation = int((current.get("metadata") or {}).get("generation") or 0)
            reporter = RunReporter(writer, generation, carried_progress(status), _first_start(status))
            lease = RunLease(writer, self._state.identity)
            version = str((current.get("metadata") or {}).get("resourceVersion") or "")
            outcome = lease.acquire(version, also=reporter.started_status())
            if outcome is Written.DONE:
                lease.start()
                return lease, current, reporter
            if outcome is Written.REFUSED:
                log.warning("[%s] the claim was refused; tried again after a lease", self._ref.key)
                return float(LEASE_SECONDS)
            if outcome is Written.FAILED:
                time.sleep(delay)
                delay = min(2 * delay, OUTAGE_RETRY_MAX_SECONDS)
            current = None  # GONE or CONFLICT (or an outage): read it afresh

    def _read(self) -> dict[str, Any] | None:
        """The run as it is now; None when it is gone or the name is another object's. Retried in an outage."""
        delay = 1.0
        while True:
            try:
                current = self._state.kube.get_run(self._ref.namespace, self._ref.name)
            except NotFound:
                return None
            except Exception as exc:  # the API server is unreachable: this storage waits, nothing else does
                if self._state.stops.check(self._ref.uid) is not None:
                    return None
                log.warning("[%s] reading the run failed, tried again in %g s: %s", self._ref.key, delay, exc)
                time.sleep(delay)
                delay = min(2 * delay, OUTAGE_RETRY_MAX_SECONDS)
                continue
            return current if (current.get("metadata") or {}).get("uid") == self._ref.uid else None

    def _run(
        self, current: dict[str, Any], reporter: RunReporter, lease: RunLease
    ) -> tuple[RunStatus | None, PolicyRuntime | None]:
        """Prepare and execute the claimed run under the storage's lock; the final status is ``_finish``'s."""
        state, ref = self._state, self._ref
        try:
            request, runtime = prepare_run(current, ref, state)
        except RunRefused as refused:
            kopf.event(current, type="Warning", reason=refused.reason, message=str(refused))  # type: ignore[arg-type]
            reporter.refused(refused.reason, str(refused))
            return None, None
        stop = RunStopCheck(state, ref, runtime.uid, lease)
        result = run_locked(runtime, request, state.locks, reporter, should_stop=stop)
        assert result is not None  # a CleanupRun waits for the storage
        return result, runtime

    def _tell_policy(self, body: Any, result: RunStatus, *, history: bool, policy_uid: str = "") -> None:
        """The policy's lastCleanup* (bound to its uid: never a new policy of that name); with ``history``,
        its history row too (a run that executed has had it written by ``run_locked``)."""
        spec = body.get("spec") or {}
        name = str((spec.get("policyRef") or {}).get("name") or "")
        policy_uid = policy_uid or self.policy_uid  # the policy the run executed against, else the one it queued for
        writer = StatusWriter(self._state.kube, ObjectRef(POLICIES, self._ref.namespace, name, policy_uid))
        if writer.write(PolicyStatus.last_cleanup(result)) is not Written.DONE or not history:
            return
        try:
            runtime = build_runtime(self._state.kube.get_policy(self._ref.namespace, name), self._state)
        except (NotFound, PolicyNotReady):
            return
        if runtime.history is not None and runtime.uid == policy_uid:
            problem = runtime.history.record(self._ref.name, result)
            if problem:
                log.warning("%s/%s: %s", runtime.namespace, runtime.name, problem)


def _type_of(body: Any) -> tuple[RunType, bool]:
    spec = body.get("spec") or {}
    try:
        run_type = RunType(str(spec.get("type")))
    except ValueError:
        run_type = RunType.ORPHANED  # never reached: a run with a bad type is refused before it is queued
    return run_type, bool(spec.get("dryRun"))


def _first_start(status: dict[str, Any]) -> datetime | None:
    """When a resumed run first started (a run that never started has no startTime)."""
    return parse_time(status.get("startTime")) if status.get("phase") not in FINAL_PHASES else None


def _until_expiry(status: dict[str, Any]) -> float:
    """Seconds until another operator's claim would expire (at least one, at most one lease)."""
    claim = status.get("claim") or {}
    renewed = parse_time(claim.get("renewTime"))
    lease = float(claim.get("leaseSeconds") or LEASE_SECONDS)
    if renewed is None:
        return lease
    left = (renewed + timedelta(seconds=lease) - now_utc()).total_seconds()
    return min(max(left + 1.0, 1.0), lease + 1.0)


class RunStopCheck:
    """Asked between batches whether the run must stop: its policy deleted or suspended (``StopSignals``,
    from the policy's watch events), or the run itself deleted or replaced.

    The run's own DELETED event sets the stop at once (``run_handlers.run_event``) unless the watch missed
    it (a reconnect): so the run is also read back, at most every ``RUN_RECHECK_SECONDS``; a read that
    fails (an API outage) is no reason to stop.
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
