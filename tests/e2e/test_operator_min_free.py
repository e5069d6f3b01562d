"""minFreeSpace in the cluster: an inherited default the storage cannot meet is not applied (and the status
says so), an explicit one the filesystem cannot meet makes the policy Ready=False; nothing is deleted.

The small filesystem is a real 20 MiB tmpfs under the operator's allowed root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import make_files, policy, run, tree
from support.mounts import Mounts
from support.operator_process import Kube, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e

FILES = ["stale.tmp", "job_1_chunk_1_a.tmp", "fresh.tmp"]
EAGER = {"schedule": {"statsInterval": "1s", "emergencyCheckInterval": "1s"}}
NO_FLOOR = {"thresholds": {"minFreeSpace": None}}  # the key removed: the 1 GiB default is inherited


@pytest.fixture
def small(operator_root: Path) -> Iterator[Path]:
    with Mounts(required=True) as mounts:
        yield mounts.tmpfs(operator_root / "small", size="20m")


def _condition(kube: Kube, name: str, type_: str) -> dict[str, Any]:
    return wait_for(f"{type_} on {name}", lambda: kube.condition("cleanuppolicy", name, type_))


def test_min_free_space_rules_in_the_cluster(kube: Kube, operator: OperatorProcess, small: Path) -> None:
    volumes = {name: small / name for name in ("inherited-fs", "explicit-fs")}
    volumes["inherited-capacity"] = small.parent / "capacity"
    volumes["applied"] = small.parent / "applied"
    for directory in volumes.values():
        make_files(directory, FILES[:2], size=1024, age_hours=100)
        make_files(directory, FILES[2:], size=1024)
    before = {name: tree(directory) for name, directory in volumes.items()}
    no_capacity = {"storage": {"volume": {"capacity": None}}}

    kube.apply(policy("inherited-fs", volumes["inherited-fs"], **EAGER, **NO_FLOOR, **no_capacity))
    kube.apply(policy("explicit-fs", volumes["explicit-fs"], thresholds={"minFreeSpace": "20Mi"}, **no_capacity))
    kube.apply(policy("inherited-capacity", volumes["inherited-capacity"], **EAGER, **NO_FLOOR))  # 1Gi capacity
    kube.apply(policy("applied", volumes["applied"], **EAGER))  # its own 1Ki floor

    # the inherited default is not applied, and the status says so, both against a filesystem and a capacity
    for name, size in (("inherited-fs", "20.0MiB"), ("inherited-capacity", "1.0GiB")):
        applied = _condition(kube, name, "MinFreeSpaceApplied")
        assert (applied["status"], applied["reason"]) == ("False", "MinFreeSpaceNotApplied"), applied
        assert "TEMP_STORAGE_CLEANUP_MIN_FREE_SPACE_GB (1.0GiB) is not below the" in applied["message"]
        assert size in applied["message"]
        assert _condition(kube, name, "Ready")["status"] == "True"
        status = kube.status("cleanuppolicy", name)
        assert status["effectiveMinFreeSpaceBytes"] == 0
        assert status["cleanupNeeded"] is False
        event = wait_for(
            f"a MinFreeSpaceNotApplied event on {name}",
            lambda n=name: [e for e in kube.events(n) if e["reason"] == "MinFreeSpaceNotApplied"],
        )
        assert event[0]["type"] == "Warning" and "not applied" in event[0]["message"]
    applied = _condition(kube, "applied", "MinFreeSpaceApplied")
    assert (applied["status"], applied["reason"]) == ("True", "Applied")
    assert kube.status("cleanuppolicy", "applied")["effectiveMinFreeSpaceBytes"] == 1024

    # the explicit floor the filesystem can never meet: not ready, never cleaned
    ready = _condition(kube, "explicit-fs", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MinFreeSpaceUnsatisfiable"), ready
    assert "spec.thresholds.minFreeSpace (20.0MiB) must be smaller than the filesystem size (20.0MiB)" in (
        ready["message"]
    )
    warnings = wait_for(
        "a MinFreeSpaceUnsatisfiable event",
        lambda: [e for e in kube.events("explicit-fs") if e["reason"] == "MinFreeSpaceUnsatisfiable"],
    )
    assert warnings[0]["type"] == "Warning"

    # manual emergencies: refused on the unsatisfiable floor, no emergency on the inherited one
    kube.apply(run("on-explicit", "explicit-fs", "Emergency"))
    kube.apply(run("on-inherited", "inherited-fs", "Emergency"))
    refused = kube.wait_run("on-explicit")
    assert refused["phase"] == "Failed" and "spec.thresholds.minFreeSpace" in refused["message"]
    complete = {c["type"]: c for c in refused["conditions"]}["Complete"]
    assert complete["reason"] == "MinFreeSpaceUnsatisfiable"
    calm = kube.wait_run("on-inherited")
    assert calm["phase"] == "Succeeded", calm["message"]
    assert calm["effectiveMinFreeSpaceBytes"] == 0 and calm.get("filesDeleted", 0) == 0
    assert "no emergency" in calm["message"]

    # the timers' emergency checks (every second) have run on the inherited policies meanwhile
    for name in ("inherited-fs", "inherited-capacity"):
        kube.wait_status("cleanuppolicy", name, lambda s: s.get("lastEmergencyCheckTime"), "an emergency check")
    assert {name: tree(directory) for name, directory in volumes.items()} == before
