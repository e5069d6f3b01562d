"""The agent's state and its tick: which policies and runs concern this node, and handing out their work.

Each tick looks at the policies and runs (of the watched namespaces, or all) in the agent's local copy
(``cache``: listed once, then watched) and reads the Node's labels again every ``labels_seconds``. Work
goes to a small thread pool; a policy or run already being worked on is skipped until its work ends, so
nothing of one object overlaps itself, and the per-storage lock (``controller.state.StorageLocks``)
serialises every cleanup of one path on this node, as in the operator.

Fail closed: until the Node's labels and every object have been read once the agent acts on nothing; a
policy that no longer selects the node is left alone at once (its entry withdrawn); a policy or run that
disappears from the copy, or a policy suspended, stops the cleanups running for it at the next batch
boundary.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tempsweep.agent.cache import ObjectCache
from tempsweep.agent.entries import find_entry, withdraw
from tempsweep.agent.hostroot import HostRoot
from tempsweep.controller.expiry import FINAL_PHASES
from tempsweep.controller.kube import Kube
from tempsweep.controller.node_api import node_labels
from tempsweep.controller.node_policies import node_scoped, node_selector
from tempsweep.controller.state import OperatorState, PolicyMemory
from tempsweep.models import OperatorSettings
from tempsweep.models.node_scope import PolicyNodeStatus, selector_matches

log = logging.getLogger("tempsweep.agent")

#: How often the Node's labels are read again (a relabelled node joins or leaves policies this much later);
#: ``TEMPSWEEP_AGENT_LABELS_SECONDS``.
LABELS_SECONDS = 30.0
#: Cleanups of different policies (and runs) on this node at the same time.
WORKERS = 4


@dataclass
class Agent:
    """Everything one node's agent keeps between ticks."""

    node: str
    settings: OperatorSettings
    namespaces: list[str] = field(default_factory=list)
    host: HostRoot = field(default_factory=HostRoot)
    kube: Kube = field(default_factory=Kube)
    state: OperatorState = field(init=False)  # what controller.runtime and the engine's locks expect
    memories: dict[str, PolicyMemory] = field(default_factory=dict)
    written: dict[str, PolicyNodeStatus] = field(default_factory=dict)  # by policy uid: this agent's last entry
    labels: dict[str, str] | None = None
    labels_read: float = 0.0
    labels_seconds: float = LABELS_SECONDS
    busy: set[str] = field(default_factory=set)
    stopping: threading.Event = field(default_factory=threading.Event)
    last_tick: float = field(default_factory=time.monotonic)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor = field(init=False)
    _policies: ObjectCache = field(init=False)
    _runs: ObjectCache = field(init=False)

    def __post_init__(self) -> None:
        self.state = OperatorState(self.host.settings(self.settings), kube=self.kube)
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="agent")
        self._policies = ObjectCache(self.kube, "cleanuppolicies", self.namespaces, self.stopping)
        self._runs = ObjectCache(self.kube, "cleanupruns", self.namespaces, self.stopping)

    def start(self) -> None:
        """Start following the policies and runs (the first ticks find nothing until both are listed)."""
        self._policies.start()
        self._runs.start()

    @property
    def identity(self) -> str:
        return self.state.identity

    def runtime_body(self, body: Any) -> dict[str, Any]:
        """The policy as ``controller.runtime`` opens it here (see ``hostroot``); PolicyNotReady if not allowed."""
        return self.host.policy(body, self.settings)

    def memory(self, uid: str) -> PolicyMemory:
        return self.memories.setdefault(uid, PolicyMemory())

    def tick(self) -> None:
        """One round: labels, policies, runs. An API error skips the round (the next one tries again)."""
        self.last_tick = time.monotonic()
        if not self._read_labels():
            return
        policies, runs = self._policies.objects(), self._runs.objects()
        if policies is None or runs is None:
            return  # not listed yet: act on nothing
        self._stops(policies, runs)
        for body in policies:
            self._policy(body)
        for body in runs:
            self._run(body)

    def _read_labels(self) -> bool:
        if self.labels is None or time.monotonic() - self.labels_read >= self.labels_seconds:
            self.labels = node_labels(self.kube, self.node)
            self.labels_read = time.monotonic()
        return self.labels is not None

    def selects_me(self, policy: Any) -> bool:
        return node_scoped(policy) and selector_matches(node_selector(policy), self.labels or {})

    def read_labels_now(self) -> None:
        """Read the Node's labels again, now (NotFound when the Node is gone; an API error propagates)."""
        self.labels = node_labels(self.kube, self.node)
        self.labels_read = time.monotonic()

    def confirmed(self, policy: Any) -> dict[str, Any] | None:
        """The policy as the API server has it now, if it may still be cleaned on this node; None if not.

        Read just before a cleanup deletes anything: the copy (a lagging or failed watch) and the labels
        (read every ``labels_seconds``) may be stale. None when the policy is gone or is another object of
        the same name, is being deleted, suspended, no longer node-scoped, or its spec changed since the
        copy (the copy's due work no longer applies: the next tick decides afresh), or when the Node, read
        again here, is gone or no longer selected. Any other API error propagates: nothing is done.
        """
        from tempsweep.controller.kube import NotFound

        meta = policy.get("metadata") or {}
        try:
            fresh = self.kube.get_policy(str(meta.get("namespace")), str(meta.get("name")))
            self.read_labels_now()
        except NotFound as exc:
            log.info("%s: not cleaned on this node: %s", _key(policy), exc)
            return None
        now = fresh.get("metadata") or {}
        same = now.get("uid") == meta.get("uid") and now.get("generation") == meta.get("generation")
        if not same or now.get("deletionTimestamp") or (fresh.get("spec") or {}).get("suspend") is True:
            log.info("%s: changed or deleted since this agent's copy: not cleaned this tick", _key(policy))
            return None
        if not self.selects_me(fresh):
            log.info("%s: no longer selects node %s: not cleaned", _key(policy), self.node)
            return None
        return fresh

    def _policy(self, body: Any) -> None:
        if not node_scoped(body):
            return
        uid = _uid(body)
        if not self.selects_me(body):
            self.memories.pop(uid, None)
            self.written.pop(uid, None)
            if find_entry(body, self.node, PolicyNodeStatus) is not None:
                log.info("%s: this node is no longer selected; its entry is withdrawn", _key(body))
                withdraw(self.kube, body, self.node)
            return
        from tempsweep.agent.policies import tick_policy

        self._submit(uid, tick_policy, body)

    def _run(self, body: Any) -> None:
        status = body.get("status") or {}
        if status.get("phase") in FINAL_PHASES or self.node not in (status.get("targetNodes") or []):
            return
        from tempsweep.agent.runs import execute_node_run

        self._submit(_uid(body), execute_node_run, body)

    def _submit(self, uid: str, work: Any, body: Any) -> None:
        with self._guard:
            if uid in self.busy or self.stopping.is_set():
                return
            self.busy.add(uid)

        def task() -> None:
            try:
                work(self, body)
            except Exception:  # one object's failure must not stop the agent: logged, tried again next tick
                log.exception("%s: failed; tried again at the next tick", _key(body))
            finally:
                with self._guard:
                    self.busy.discard(uid)

        self._pool.submit(task)

    def _stops(self, policies: list[Any], runs: list[Any]) -> None:
        """Stop signals from the listing: objects gone, policies suspended (as the operator's watch does)."""
        present = {_uid(body) for body in policies + runs}
        with self._guard:
            busy = set(self.busy)
        for uid in busy - present:
            self.state.stops.stop(uid, "the object was deleted")
        for body in policies:
            uid = _uid(body)
            if (body.get("spec") or {}).get("suspend") is True:
                self.state.stops.stop(uid, "the policy was suspended")
            elif body.get("metadata", {}).get("deletionTimestamp"):
                self.state.stops.stop(uid, "the policy was deleted")
            elif not self.selects_me(body) and node_scoped(body):
                self.state.stops.stop(uid, "the policy no longer selects this node")
            else:
                self.state.stops.clear(uid)
        for uid in set(self.memories) - present:
            self.memories.pop(uid, None)
        for uid in set(self.written) - present:
            self.written.pop(uid, None)

    def shutdown(self) -> None:
        """Stop taking work; running cleanups stop at their next batch and leave their run to the next agent."""
        self.stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _uid(body: Any) -> str:
    return str((body.get("metadata") or {}).get("uid") or "")


def _key(body: Any) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"
