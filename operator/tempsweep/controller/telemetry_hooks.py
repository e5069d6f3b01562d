"""The operator's one door to its Prometheus metrics: handlers call these hooks, never the metrics.

``OperatorTelemetry`` lives in ``OperatorState``. It owns the metrics (an ``Exposition``: one ``Metrics``
per policy, rendered when it changes, and the operator's own with the process and Python collectors)
and the ``/metrics`` server, which Kopf's startup handler starts and its cleanup handler stops. Each
hook turns one thing the operator learned into ``tempsweep.telemetry``'s observe calls: statistics
computed, a storage that cannot be read, a prediction, a cleanup reported, a timer tick's passes, a
policy deleted. With ``--metrics-port 0`` there is no exposition and every hook returns at once, so the
operator without metrics does no metrics work at all (``make bench`` compares the two).

A deleted policy's series are dropped (``forget``) and its uid remembered: a cleanup or statistics pass
that was still running when the policy went never brings its series back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from tempsweep.controller.schedule import DueWork, Observed
from tempsweep.models import Health, RunStatus, StorageStats
from tempsweep.models.effective import Schedule
from tempsweep.models.prediction import Prediction
from tempsweep.models.resources import PolicyStatus
from tempsweep.telemetry import (
    Pass,
    observe_pass,
    observe_prediction,
    observe_run,
    observe_run_duration,
    observe_stats,
    observe_timer_lag,
)
from tempsweep.telemetry.exposition import Exposition
from tempsweep.telemetry.serve import DEFAULT_PORT, MetricsServer

log = logging.getLogger(__name__)


class PolicyKey(Protocol):
    """Which policy a figure belongs to: its namespace and name (the labels) and its uid. A policy's
    ``ObjectRef`` and its ``PolicyRuntime`` both are one."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def uid(self) -> str: ...


@dataclass(frozen=True)
class DuePasses:
    """When each pass a tick found due became due (``due_times``), and when the tick's work started."""

    due_at: dict[Pass, datetime]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))


def due_times(schedule: Schedule | None, observed: Observed, due: DueWork) -> dict[Pass, datetime]:
    """When each due pass became due: an interval after its last run, or its cron slot. A pass that
    never ran has no due time (its first run is not late), so it gets no timer-lag sample."""
    times: dict[Pass, datetime] = {}
    if schedule is None:
        return times
    if due.stats and observed.last_stats is not None:
        times[Pass.STATISTICS] = observed.last_stats + timedelta(seconds=schedule.stats_seconds)
    if due.emergency and observed.last_emergency_check is not None:
        times[Pass.EMERGENCY_CHECK] = observed.last_emergency_check + timedelta(
            seconds=schedule.emergency_check_seconds
        )
    if due.scheduled is not None:
        times[Pass.SCHEDULED] = due.scheduled
    if due.orphaned is not None:
        times[Pass.ORPHANED] = due.orphaned
    return times


def completed_passes(written: PolicyStatus, stats_computed: bool) -> set[Pass]:
    """The passes a tick completed, read from the status it wrote (a busy storage leaves a pass due)."""
    done = {Pass.STATISTICS} if stats_computed else set()
    for pass_, at in (
        (Pass.EMERGENCY_CHECK, written.last_emergency_check_time),
        (Pass.SCHEDULED, written.last_scheduled_time),
        (Pass.ORPHANED, written.last_orphaned_time),
    ):
        if at is not None:
            done.add(pass_)
    return done


class OperatorTelemetry:
    """The operator's metrics and their endpoint; ``port`` 0 turns both off."""

    def __init__(self, port: int = DEFAULT_PORT, host: str = "0.0.0.0") -> None:
        self.port = port
        self.host = host
        self.exposition = Exposition() if port else None
        self.failure: str | None = None  # why the endpoint could not start (the operator exits with it)
        self._server: MetricsServer | None = None
        self._gone: set[str] = set()
        self._seen: dict[tuple[str, str, str], object] = {}  # the last figures rendered, per policy and kind
        self._guard = threading.Lock()

    def start(self) -> None:
        """Serve ``/metrics``; OSError (e.g. the port is taken) is kept in ``failure`` and raised."""
        if self.exposition is None or self._server is not None:
            return
        try:
            self._server = MetricsServer(self.exposition.render, host=self.host, port=self.port)
        except OSError as exc:
            self.failure = f"--metrics-port {self.port}: cannot listen on {self.host}: {exc.strerror or exc}"
            raise
        log.info("serving Prometheus metrics on http://%s:%d/metrics", self.host, self._server.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def serving_port(self) -> int | None:
        """The port actually listened on (``port`` may be taken by the OS when tests ask for 0)."""
        return self._server.port if self._server is not None else None

    @contextmanager
    def _live(self, policy: PolicyKey) -> Iterator[Exposition | None]:
        """The exposition, unless metrics are off or the policy was deleted; held against a concurrent
        ``forget`` (and against another hook rendering the same policy)."""
        with self._guard:
            yield None if self.exposition is None or policy.uid in self._gone else self.exposition

    def _changed(self, policy: PolicyKey, kind: str, value: object) -> bool:
        """Whether ``value`` differs from the last one of this kind for the policy (and remember it): an
        unchanged figure is not rendered again."""
        key = (policy.namespace, policy.name, kind)
        if self._seen.get(key, _NOTHING) == value:
            return False
        self._seen[key] = value
        return True

    def stats(self, policy: PolicyKey, stats: StorageStats, at: datetime) -> None:
        """A statistics pass: its time, and the per-policy gauges when a figure changed."""
        with self._live(policy) as exposition:
            if exposition is None:
                return
            observe_pass(exposition.operator, policy.namespace, policy.name, Pass.STATISTICS, at)
            if self._changed(policy, "stats", stats):
                with exposition.updating(policy.namespace, policy.name) as metrics:
                    observe_stats(metrics, policy.namespace, policy.name, stats)

    def storage_unknown(self, policy: PolicyKey) -> None:
        """The storage could not be read: health is Unknown (the last figures stay as they were)."""
        with self._live(policy) as exposition:
            if exposition is None:
                return
            self._seen.pop((policy.namespace, policy.name, "stats"), None)  # the next figures are news
            with exposition.updating(policy.namespace, policy.name) as metrics:
                for state in Health:
                    metrics.health.labels(policy.namespace, policy.name, state.value).set(state is Health.UNKNOWN)

    def prediction(self, policy: PolicyKey, prediction: Prediction | None, now: datetime) -> None:
        """A new time-to-full prediction (None: nothing to predict): the fill-rate and time-until gauges.
        Rendered again unless nothing changed and there is no time-until (those count down)."""
        figures = None if prediction is None else (
            prediction.fill_rate_bytes_per_hour, prediction.confidence, prediction.full_at, prediction.emergency_at
        )
        counting_down = prediction is not None and (prediction.full_at or prediction.emergency_at) is not None
        with self._live(policy) as exposition:
            if exposition is None or not (self._changed(policy, "prediction", figures) or counting_down):
                return
            with exposition.updating(policy.namespace, policy.name) as metrics:
                observe_prediction(metrics, policy.namespace, policy.name, prediction, now)

    def run_finished(self, policy: PolicyKey, result: RunStatus) -> None:
        """A cleanup the operator reported (a CleanupRun, or a timer's cleanup that did something)."""
        with self._live(policy) as exposition:
            if exposition is None:
                return
            with exposition.updating(policy.namespace, policy.name) as metrics:
                observe_run(metrics, policy.namespace, policy.name, result)
            observe_run_duration(exposition.operator, result)

    def tick_finished(self, policy: PolicyKey, due: DuePasses, done: Iterable[Pass]) -> None:
        """A timer tick's work ended: each pass it completed gets its time and, when it had a due time, how
        late it started. (Statistics record their time with the figures, in ``stats``.)"""
        finished = datetime.now(UTC)
        with self._live(policy) as exposition:
            if exposition is None:
                return
            for pass_ in done:
                if pass_ is not Pass.STATISTICS:
                    observe_pass(exposition.operator, policy.namespace, policy.name, pass_, finished)
                if pass_ in due.due_at:
                    observe_timer_lag(exposition.operator, pass_, due.due_at[pass_], due.started)

    def forget(self, policy: PolicyKey) -> None:
        """The policy was deleted: its series go, and stay gone."""
        with self._guard:
            if self.exposition is None:
                return
            if policy.uid:
                self._gone.add(policy.uid)
            self.exposition.forget(policy.namespace, policy.name)
            for key in [key for key in self._seen if key[:2] == (policy.namespace, policy.name)]:
                del self._seen[key]


_NOTHING = object()
