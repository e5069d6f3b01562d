"""Exactly-once execution across operator instances: a run is claimed before it executes.

Two operators that both see a CleanupRun (unpeered, during a rolling update, misconfigured) must not both
delete its files. Before executing, an operator writes ``status.claim`` (its identity and a renew time)
with the ``resourceVersion`` it read as a precondition: of two racing writes the API server takes one and
refuses the other (409), so exactly one operator holds the claim. The holder renews it every third of the
lease while it works; a claim whose renew time is older than the lease belongs to an operator that died,
and another may take it over (the run is then finished by the second pass, as after a restart).
"""

from __future__ import annotations

import enum
import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tempsweep.controller.kube import NotFound, Written
from tempsweep.controller.schedule import parse_time
from tempsweep.controller.timing import load_timing
from tempsweep.controller.writer import StatusWriter
from tempsweep.models.resources import CleanupRunStatus, RunClaim

#: A claim not renewed for this long is taken to belong to a dead operator.
LEASE_SECONDS = load_timing().run_lease_seconds


def operator_identity() -> str:
    """``POD_ID`` (the Deployment sets it to the pod's name), else host, pid and a random part."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Claim(enum.Enum):
    FREE = "free"  # nobody holds it, or the holder's lease expired
    MINE = "mine"  # this operator holds it (a resume after a restart of the same pod name)
    HELD = "held"  # another live operator holds it


def claim_state(status: dict[str, Any], me: str, now: datetime) -> tuple[Claim, str | None]:
    """Who holds the run according to ``status``, and the holder's name. Pure."""
    claim = status.get("claim") if isinstance(status.get("claim"), dict) else None
    if not claim or not claim.get("holder"):
        return Claim.FREE, None
    holder = str(claim["holder"])
    if holder == me:
        return Claim.MINE, holder
    renewed = parse_time(claim.get("renewTime"))
    lease = float(claim.get("leaseSeconds") or LEASE_SECONDS)
    if renewed is None or now - renewed > timedelta(seconds=lease):
        return Claim.FREE, holder
    return Claim.HELD, holder


class RunLease:
    """This operator's claim on one run while it executes: taken once, renewed on a thread, given up at the end."""

    def __init__(self, writer: StatusWriter, me: str) -> None:
        self._writer, self._me = writer, me
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost_to: str | None = None

    def _claim(self) -> CleanupRunStatus:
        now = datetime.now(UTC).replace(microsecond=0)
        return CleanupRunStatus(claim=RunClaim(holder=self._me, renew_time=now, lease_seconds=LEASE_SECONDS))

    def acquire(self, resource_version: str, *, also: CleanupRunStatus | None = None) -> Written:
        """Claim the run as it was at ``resource_version``: DONE, or CONFLICT when someone wrote first.
        ``also``: more status written in the same patch (the Running status: one write, not two)."""
        claim = self._claim()
        if also is not None:
            claim = also.model_copy(update={"claim": claim.claim})
        return self._writer.write(claim, resource_version=resource_version)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self._writer.ref.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _renew(self) -> None:
        ref = self._writer.ref
        while not self._done.wait(LEASE_SECONDS / 3):
            try:
                status = self._writer.kube.get_run(ref.namespace, ref.name).get("status") or {}
            except NotFound:
                return  # the run is gone: the stop check says so
            except Exception:  # an outage: keep working; the claim may lapse, the next read tells
                continue
            holder = (status.get("claim") or {}).get("holder")
            if holder not in (None, self._me):
                self.lost_to = str(holder)
                return
            self._writer.write(self._claim())
