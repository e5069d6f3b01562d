"""One CleanupRun's part on this node: claimed per node, executed by the engine, reported in this node's entry.

The operator has written the run's ``targetNodes`` (``controller.node_runs``); an agent whose node is one
of them executes the run here. Its entry in ``status.nodes`` is its claim: the agent writes it Running with
its identity and a renew time (conditional on the run's resourceVersion, so of two agents racing on one
node only one wins), renews it every third of the run lease while it works, and writes the result at the
end. An agent that dies mid-run leaves its entry Running; the node's next agent takes it over once the
claim has lapsed and runs the rest (files already deleted are simply not found again), its figures
carried on from the last report, as the operator does for a run it resumes.

Fail closed: the agent re-reads the policy and checks, before touching anything, that it is node-scoped,
still selects this node and is ready here; otherwise this node's part fails with the reason, deleting
nothing. An agent that is stopping (SIGTERM) stops at the next batch and writes no result: the run stays
claimed until the lease lapses and the next agent finishes it. The same holds for an agent that has had
no renewal confirmed by the API server for two thirds of the lease, or that has seen another agent holding
its claim (``agent.deadline``): it stops at the next batch and writes nothing more to the run, so a late
write of a cut-off agent never overwrites the claim of the agent that took the node's part over.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tempsweep.agent.deadline import ClaimDeadline
from tempsweep.agent.entries import find_entry, write_run_entry
from tempsweep.controller.claims import LEASE_SECONDS
from tempsweep.controller.cleanups import run_locked
from tempsweep.controller.expiry import FINAL_PHASES
from tempsweep.controller.kube import NotFound, Written
from tempsweep.controller.run_execution import RunRefused
from tempsweep.controller.runtime import PolicyNotReady, PolicyRuntime, build_runtime
from tempsweep.controller.writer import RUNS, ObjectRef
from tempsweep.engine import Progress, RunRequest
from tempsweep.models import InputError, RunPhase, RunStatus, parse_run
from tempsweep.models.node_scope import NodeRunStatus
from tempsweep.models.quantities import format_bytes
from tempsweep.models.status import shortened

if TYPE_CHECKING:
    from tempsweep.agent.loop import Agent

log = logging.getLogger("tempsweep.agent")

PROGRESS_EVERY_SECONDS = 1.0
CLAIM_ATTEMPTS = 5
FINAL_RETRY_MAX_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def execute_node_run(agent: Agent, body: Any) -> None:
    """Claim this node's part of the run, execute it, write its result (or leave it to the next agent)."""
    reporter = _claim(agent, body)
    if reporter is None:
        return
    reporter.start_renewing()
    try:
        result = _execute(agent, body, reporter)
    finally:
        reporter.stop_renewing()
    problem = reporter.deadline.problem()
    if problem is not None:
        log.warning("%s: stopped, writing nothing more to the run: %s", reporter.name, problem)
    elif result is not None and not agent.stopping.is_set():
        reporter.finished(result)


def _claim(agent: Agent, body: Any) -> NodeRunReporter | None:
    """This node's claim on the run, or None (finished here, held by a live agent of this node, or gone).

    Conditional on the run as just read: other nodes' agents write the same object all the time, so a
    conflict is read afresh and tried again a few times rather than left to the next tick.
    """
    meta = body.get("metadata") or {}
    for _attempt in range(CLAIM_ATTEMPTS):
        try:
            current = agent.kube.get_run(str(meta.get("namespace")), str(meta.get("name")))
        except NotFound:
            return None
        status = current.get("status") or {}
        entry = find_entry(current, agent.node, NodeRunStatus)
        if status.get("phase") in FINAL_PHASES or agent.node not in (status.get("targetNodes") or []):
            return None
        if entry is not None and entry.phase.value in FINAL_PHASES:
            return None
        if entry is not None and entry.agent not in ("", agent.identity) and not _lapsed(entry):
            return None  # another agent of this node holds it (a rolling update): wait for its result or lease
        reporter = NodeRunReporter(agent, current.get("metadata") or {}, entry)
        outcome = reporter.claim(str((current.get("metadata") or {}).get("resourceVersion") or ""))
        if outcome is Written.DONE:
            return reporter
        if outcome is not Written.CONFLICT:
            return None  # the next tick looks again
    return None


def _lapsed(entry: NodeRunStatus) -> bool:
    return entry.renew_time is None or _now() - entry.renew_time > timedelta(seconds=LEASE_SECONDS)


def _execute(agent: Agent, body: Any, reporter: NodeRunReporter) -> RunStatus | None:
    ref = ObjectRef.of(RUNS, body.get("metadata") or {})
    try:
        request, runtime = _prepare(agent, body, ref)
    except RunRefused as refused:
        reporter.refused(refused.reason, str(refused))
        return None

    def stop() -> str | None:
        if agent.stopping.is_set():
            return "the agent is stopping"
        problem = reporter.deadline.problem()
        if problem is not None:
            return problem
        return agent.state.stops.check(ref.uid, runtime.uid)

    log.info("%s: running %s on node %s", ref.key, request.type.value, agent.node)
    return run_locked(runtime, request, agent.state.locks, reporter, should_stop=stop)


def _prepare(agent: Agent, body: Any, ref: ObjectRef) -> tuple[RunRequest, PolicyRuntime]:
    """As the operator's ``prepare_run``, on this node: the policy re-read, still selecting this node, its
    path allowed here and open; RunRefused says why not."""
    try:
        run = parse_run(dict(body), source=f"CleanupRun {ref.key}")
        policy = agent.kube.get_policy(ref.namespace, run.spec.policy_ref.name)
    except InputError as exc:
        raise RunRefused("InvalidSpec", str(exc)) from None
    except NotFound as exc:
        raise RunRefused("PolicyNotFound", str(exc)) from None
    try:
        agent.read_labels_now()  # the copy may be up to labels_seconds old
    except NotFound as exc:
        raise RunRefused("NodeNotFound", f"{exc}: nothing was done here") from None
    if not agent.selects_me(policy):
        raise RunRefused("NodeNotSelected", f"the policy no longer selects node {agent.node}: nothing was done here")
    try:
        runtime = build_runtime(agent.runtime_body(policy), agent.state)
    except PolicyNotReady as exc:
        raise RunRefused(exc.reason, str(exc)) from None
    problem = runtime.policy.run_id_problem(run.spec.job_id, run.spec.chunk_id)
    if problem:
        raise RunRefused("InvalidSpec", f"CleanupRun {ref.key}: {problem}")
    return RunRequest.from_spec(run.spec), runtime


class NodeRunReporter:
    """This node's entry of one run while it executes: the claim, its renewal, progress and the result.

    Every write carries the whole entry as it stands, from one place under one lock.
    """

    def __init__(self, agent: Agent, meta: dict[str, Any], previous: NodeRunStatus | None) -> None:
        self.name = f"{meta.get('name')}@{agent.node}"  # the history row's (and audit line's) run name
        self.uid = str(meta.get("uid") or "")
        self._agent, self._meta = agent, {"name": meta.get("name"), "namespace": meta.get("namespace")}
        self._carried = previous if previous is not None and previous.phase is RunPhase.RUNNING else None
        start = previous.start_time if previous is not None and previous.start_time else _now()
        self._entry = NodeRunStatus(node=agent.node, phase=RunPhase.RUNNING, message="running", start_time=start,
                                    agent=agent.identity)
        if self._carried is not None:
            self._entry = self._entry.model_copy(update=self._carried_figures(0, 0, 0))
        self._guard = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_report = 0.0
        self.deadline = ClaimDeadline(LEASE_SECONDS)

    def _carried_figures(self, planned: int, deleted: int, freed: int) -> dict[str, int]:
        carried = self._carried
        return {
            "files_planned": planned + (carried.files_planned if carried else 0),
            "files_deleted": deleted + (carried.files_deleted if carried else 0),
            "bytes_freed": freed + (carried.bytes_freed if carried else 0),
        }

    def _write(self, update: dict[str, Any], *, resource_version: str = "") -> Written:
        """Every write renews the claim; none once the claim is not surely ours (FAILED, nothing sent)."""
        if self.deadline.problem() is not None:
            return Written.FAILED
        sent = self.deadline.now()
        with self._guard:
            self._entry = self._entry.model_copy(update={**update, "renew_time": _now()})
            entry = self._entry
        outcome = write_run_entry(self._agent.kube, self._meta, entry, resource_version=resource_version)
        if outcome is Written.DONE:
            self.deadline.renewed(sent)
        return outcome

    def claim(self, resource_version: str) -> Written:
        return self._write({}, resource_version=resource_version)

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew, name=f"claim-{self.name}", daemon=True)
        self._thread.start()

    def stop_renewing(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _renew(self) -> None:
        """Renew every third of the lease; after a failed attempt try again sooner, until the deadline."""
        wait = LEASE_SECONDS / 3
        while not self._done.wait(wait) and self.deadline.problem() is None:
            wait = LEASE_SECONDS / 12  # unless this attempt is confirmed
            try:
                current = self._agent.kube.get_run(str(self._meta["namespace"]), str(self._meta["name"]))
            except NotFound:
                self.deadline.lost("the run is gone")
                return
            except Exception:  # an outage: the deadline stops the cleanup if it lasts
                log.warning("%s: claim not renewed (API unreachable), %.0fs left", self.name,
                            self.deadline.seconds_left())
                continue
            holder = find_entry(current, self._agent.node, NodeRunStatus)
            if holder is not None and holder.agent not in ("", self._agent.identity):
                self.deadline.lost(f"agent {holder.agent} took this node's part over")
                return
            if self._write({}) is Written.DONE:
                wait = LEASE_SECONDS / 3

    # -- RunObserver ---------------------------------------------------------------------------------

    def progress(self, report: Progress) -> None:
        if time.monotonic() - self._last_report < PROGRESS_EVERY_SECONDS:
            return
        self._last_report = time.monotonic()
        self._write(self._carried_figures(report.files_planned, report.files_deleted, report.bytes_freed))

    def waiting(self) -> None:
        self._write({"message": "waiting for another cleanup of the same storage on this node"})

    def complete(self, result: RunStatus) -> RunStatus:
        """The whole part's result: this pass's plus what the previous agent had reported before it died."""
        carried = self._carried
        if carried is None or not (carried.files_deleted or carried.bytes_freed):
            return result
        note = (
            f"including {carried.files_deleted} files ({format_bytes(carried.bytes_freed)}) deleted before the "
            "agent restarted"
        )
        return result.model_copy(
            update={
                "files_deleted": result.files_deleted + carried.files_deleted,
                "bytes_freed": result.bytes_freed + carried.bytes_freed,
                "message": f"{result.message}; {note}",
            }
        )

    # -- the end ---------------------------------------------------------------------------------------

    def refused(self, reason: str, message: str) -> None:
        log.warning("%s: not run on this node: %s", self.name, message)
        text = shortened(f"{reason}: {message}", 1024)
        self._final({"phase": RunPhase.FAILED, "message": text, "completion_time": _now()})

    def finished(self, result: RunStatus) -> None:
        done = result.would_delete_count if result.dry_run else result.files_deleted + result.files_skipped
        self._final(
            {
                "phase": result.phase,
                "message": shortened(result.message, 1024),
                "reason": result.reason,
                "completion_time": _now(),
                "dry_run": result.dry_run,
                "files_scanned": result.files_scanned,
                "files_planned": max(self._entry.files_planned, done),
                "files_deleted": result.files_deleted,
                "files_skipped": result.files_skipped,
                "bytes_freed": result.bytes_freed,
                "error_count": result.error_count,
                "would_delete_count": result.would_delete_count,
                "would_free_bytes": result.would_free_bytes,
            }
        )

    def _final(self, update: dict[str, Any]) -> None:
        """Write until the API server takes it, the run is gone, or the agent is stopping."""
        delay = 1.0
        while (
            self._write(update) is Written.FAILED
            and self.deadline.problem() is None
            and not self._agent.stopping.wait(min(delay, self.deadline.seconds_left()))
        ):
            delay = min(2 * delay, FINAL_RETRY_MAX_SECONDS)
