"""Finished CleanupRuns expire from one sweeper, not from a timer per run.

A Kopf timer on an object makes Kopf put its finalizer on that object, and only a running operator
removes it: with the operator uninstalled, `kubectl delete` of a finished run hung and its namespace
stayed Terminating. Instead the watch stream tells ``FinishedRuns`` which runs are finished and when each
expires (``ttlSecondsAfterFinished`` after ``completionTime``, default one day), and one task deletes the
expired ones every ``TEMPSWEEP_TTL_CHECK_SECONDS``. Each deletion is bound to the run's uid, so a new
run that took the name meanwhile is never deleted in its place.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tempsweep.controller.kube import Kube
from tempsweep.controller.schedule import parse_time
from tempsweep.models import RunPhase

log = logging.getLogger(__name__)

DEFAULT_RUN_TTL_SECONDS = 86_400
FINAL_PHASES = (RunPhase.SUCCEEDED.value, RunPhase.FAILED.value, RunPhase.CANCELLED.value)


@dataclass(frozen=True)
class FinishedRun:
    namespace: str
    name: str
    uid: str
    expires: datetime


def finished_run(body: Any) -> FinishedRun | None:
    """When this run expires, or None while it is not finished (or has no completion time to count from)."""
    status, spec, meta = body.get("status") or {}, body.get("spec") or {}, body.get("metadata") or {}
    finished = parse_time(status.get("completionTime"))
    if status.get("phase") not in FINAL_PHASES or finished is None:
        return None
    ttl = spec.get("ttlSecondsAfterFinished")
    seconds = DEFAULT_RUN_TTL_SECONDS if ttl is None else int(ttl)
    namespace, name = meta.get("namespace") or "default", meta.get("name") or "?"
    return FinishedRun(namespace, name, str(meta.get("uid") or ""), finished + timedelta(seconds=seconds))


class FinishedRuns:
    """The finished runs the watch stream has shown, by uid; a deleted run leaves with its DELETED event."""

    def __init__(self) -> None:
        self._runs: dict[str, FinishedRun] = {}
        self._guard = threading.Lock()

    def observe(self, event_type: str | None, body: Any) -> None:
        uid = str((body.get("metadata") or {}).get("uid") or "")
        run = None if event_type == "DELETED" else finished_run(body)
        with self._guard:
            if run is None:
                self._runs.pop(uid, None)
            else:
                self._runs[uid] = run

    def expired(self, now: datetime) -> list[FinishedRun]:
        with self._guard:
            return [run for run in self._runs.values() if run.expires <= now]


async def sweep_forever(runs: FinishedRuns, kube: Kube, interval: float) -> None:
    """Delete expired runs every ``interval`` seconds until cancelled; a failed deletion is tried again."""
    while True:
        await asyncio.sleep(interval)
        for run in runs.expired(datetime.now(UTC)):
            try:
                await asyncio.to_thread(kube.delete_run, run.namespace, run.name, uid=run.uid)
            except Exception as exc:  # an outage: the run stays in the map and is tried at the next sweep
                log.warning("[%s/%s] expiring the finished run failed: %s", run.namespace, run.name, exc)
