"""The shard and member Leases (``coordination.k8s.io/v1``) in the operator's namespace: list, write, delete.

Every write is conditional: a Lease that exists is replaced with the ``resourceVersion`` this replica
read (the API server refuses the write with 409 when anyone wrote since), one that does not is created
(409 when another replica created it first). So of two replicas that go for the same Lease exactly one
gets it, which is all the shard assignment relies on. The official client is synchronous; these are
called from a worker thread, never on the event loop.

Names and labels: ``tempsweep-shard-<N>-<i>`` for shard ``i`` of ``N`` (the count is in the name, so a
rolling update that changes ``--shards`` sees the other count's Leases as foreign), and
``tempsweep-member-<identity>`` for each replica's presence. All carry ``tempsweep.io/lease`` (``shard``
or ``member``) and ``tempsweep.io/shards`` (a replica's fair share counts only members of its own count).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tempsweep.controller.kube import REQUEST_TIMEOUT, Kube, Written

KIND_LABEL, COUNT_LABEL = "tempsweep.io/lease", "tempsweep.io/shards"
MANAGED = {"app.kubernetes.io/managed-by": "tempsweep"}


@dataclass(frozen=True)
class LeaseRecord:
    """One Lease as listed: which shard (or member) it is, who holds it, its version and duration."""

    name: str
    kind: str  # "shard" or "member"
    count: int | None  # shard Leases: the shard count they belong to
    shard: int | None
    holder: str
    version: str
    duration: float
    transitions: int = 0
    acquired: str | None = None  # acquireTime, as written


def shard_lease_name(count: int, shard: int) -> str:
    return f"tempsweep-shard-{count}-{shard}"


def member_lease_name(identity: str) -> str:
    """A DNS-1123 name for a replica's member Lease; identities that are not one get a hash suffix."""
    clean = re.sub(r"[^a-z0-9-]+", "-", identity.lower()).strip("-")[:40] or "replica"
    if clean != identity:
        clean = f"{clean}-{hashlib.blake2b(identity.encode(), digest_size=4).hexdigest()}"
    return f"tempsweep-member-{clean}"


def _micro_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: Any) -> LeaseRecord | None:
    labels = lease.metadata.labels or {}
    kind = labels.get(KIND_LABEL)
    spec = lease.spec
    holder = (spec.holder_identity or "") if spec else ""
    duration = float((spec.lease_duration_seconds or 0) if spec else 0)
    transitions = int((spec.lease_transitions or 0) if spec else 0)
    acquired = _micro_time(spec.acquire_time) if spec and spec.acquire_time else None
    name, version = lease.metadata.name, str(lease.metadata.resource_version or "")
    if kind == "member":
        count_label = str(labels.get(COUNT_LABEL) or "")
        member_count = int(count_label) if count_label.isdigit() else None
        return LeaseRecord(name, "member", member_count, None, holder, version, duration, transitions, acquired)
    match = re.fullmatch(r"tempsweep-shard-(\d+)-(\d+)", name or "")
    if kind != "shard" or match is None:
        return None
    count, shard = int(match.group(1)), int(match.group(2))
    if shard >= count:
        return None
    return LeaseRecord(name, "shard", count, shard, holder, version, duration, transitions, acquired)


class LeaseStore(Protocol):
    """What the shard keeper needs from Leases: ``LeaseApi`` (the API server), ``MemoryLeases`` (tests)."""

    namespace: str

    def list(self) -> list[LeaseRecord]: ...

    def hold(
        self, name: str, holder: str, duration: int, *, previous: LeaseRecord | None, labels: dict[str, str]
    ) -> Written: ...

    def delete(self, record: LeaseRecord) -> Written: ...


class MemoryLeases:
    """Leases in a dictionary with the API server's one rule that matters here: a write is conditional on
    the version it was based on (create: on absence). For property tests of the shard assignment."""

    def __init__(self, namespace: str = "memory") -> None:
        self.namespace = namespace
        self.leases: dict[str, LeaseRecord] = {}
        self._versions = 0

    def list(self) -> list[LeaseRecord]:
        return list(self.leases.values())

    def hold(
        self, name: str, holder: str, duration: int, *, previous: LeaseRecord | None, labels: dict[str, str]
    ) -> Written:
        current = self.leases.get(name)
        if (previous is None) != (current is None) or (current and previous and current.version != previous.version):
            return Written.CONFLICT
        self._versions += 1
        match = re.fullmatch(r"tempsweep-shard-(\d+)-(\d+)", name)
        count, shard = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        kind = labels.get(KIND_LABEL, "shard")
        if kind == "member":
            count = int(labels[COUNT_LABEL]) if COUNT_LABEL in labels else None
        self.leases[name] = LeaseRecord(name, kind, count, shard, holder, str(self._versions), float(duration))
        return Written.DONE

    def delete(self, record: LeaseRecord) -> Written:
        current = self.leases.get(record.name)
        if current is None or current.version != record.version:
            return Written.CONFLICT
        del self.leases[record.name]
        return Written.DONE


class LeaseApi:
    """The operator's Lease calls in one namespace."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace

    def _api(self) -> Any:
        return self.kube.coordination()

    def list(self) -> list[LeaseRecord]:
        """Every tempsweep Lease of the namespace (one request); raises on an API failure."""
        listed = self._api().list_namespaced_lease(
            self.namespace, label_selector=KIND_LABEL, _request_timeout=REQUEST_TIMEOUT
        )
        return [record for record in (_record(lease) for lease in listed.items) if record is not None]

    def hold(
        self, name: str, holder: str, duration: int, *, previous: LeaseRecord | None, labels: dict[str, str]
    ) -> Written:
        """Write ``holder`` (``""``: release) into Lease ``name`` as of ``previous`` (None: create it)."""
        now = _micro_time(datetime.now(UTC))
        changed = previous is None or previous.holder != holder
        spec: dict[str, Any] = {
            "holderIdentity": holder or None,
            "leaseDurationSeconds": duration,
            "renewTime": now if holder else None,
            "leaseTransitions": (previous.transitions if previous else 0)
            + (1 if changed and holder and previous else 0),
        }
        if holder and changed:
            spec["acquireTime"] = now
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": self.namespace, "labels": {**MANAGED, **labels}},
            "spec": spec,
        }
        try:
            if previous is None:
                self._api().create_namespaced_lease(self.namespace, body, _request_timeout=REQUEST_TIMEOUT)
            else:
                body["metadata"]["resourceVersion"] = previous.version
                if not changed and previous.acquired:  # a renewal keeps the acquire time
                    spec["acquireTime"] = previous.acquired
                self._api().replace_namespaced_lease(name, self.namespace, body, _request_timeout=REQUEST_TIMEOUT)
        except Exception as exc:  # an ApiException or a connection error during an outage
            return _outcome(exc)
        return Written.DONE

    def delete(self, record: LeaseRecord) -> Written:
        """Delete a lapsed member Lease, only if nobody wrote it since it was listed."""
        import kubernetes

        options = kubernetes.client.V1DeleteOptions(
            preconditions=kubernetes.client.V1Preconditions(resource_version=record.version)
        )
        try:
            self._api().delete_namespaced_lease(
                record.name, self.namespace, body=options, _request_timeout=REQUEST_TIMEOUT
            )
        except Exception as exc:
            return _outcome(exc)
        return Written.DONE


def _outcome(exc: Exception) -> Written:
    status = getattr(exc, "status", None)
    if status in (404, 409):
        return Written.CONFLICT  # gone, created or written by someone else since it was listed
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        return Written.REFUSED  # e.g. 403: the RBAC for Leases is missing
    return Written.FAILED
