"""Every status key the operator can write is declared in the CRD (the API server prunes the rest silently).

The patches are built by the same code the handlers use (``RunReporter``, ``PolicyStatus`` parts),
from real engine results, and checked against the generated files in crds/.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tempsweep.controller.conditions import condition
from tempsweep.controller.kube import Written
from tempsweep.controller.run_status import RunReporter, pending, queue_full
from tempsweep.controller.writer import RUNS, ObjectRef, StatusWriter
from tempsweep.engine import CleanupContext, Progress, RunRequest, compute_stats, run_cleanup
from tempsweep.models import RunType, load_settings, parse_policy, resolve_policy
from tempsweep.models.base import WireModel
from tempsweep.models.resources import PolicyStatus, RunProgress, status_patch
from tempsweep.storage.memory import MemoryStorage

CRDS = Path(__file__).resolve().parents[2] / "crds"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def status_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"tempsweep.io_{plural}.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def undeclared(value: Any, schema: dict[str, Any], path: str = "status") -> list[str]:
    """Paths in ``value`` that ``schema`` does not declare."""
    if isinstance(value, dict) and "properties" in schema:
        found = []
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{path}.{key}")
            else:
                found += undeclared(item, schema["properties"][key], f"{path}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [bad for item in value for bad in undeclared(item, schema["items"], f"{path}[]")]
    return []


class Recorder:
    """Stands in for the API client: keeps the patches it is given."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_status(self, plural: str, namespace: str, name: str, status: WireModel, **_: str) -> Written:
        self.patches.append(status_patch(status))
        return Written.DONE


def engine_results() -> tuple[Any, Any]:
    document = {
        "apiVersion": "tempsweep.io/v1alpha1",
        "kind": "CleanupPolicy",
        "metadata": {"name": "p"},
        "spec": {"storage": {"volume": {"path": "/tmp/x", "capacity": "10Gi"}}},
    }
    policy = resolve_policy("p", parse_policy(document, source="p").spec, load_settings({}))
    storage = MemoryStorage()
    storage.put("loose.tmp", 100, (NOW.timestamp() - 10 * 86_400))
    ctx = CleanupContext(policy=policy, storage=storage, now=NOW)
    return compute_stats(ctx), run_cleanup(ctx, RunRequest(RunType.ORPHANED))


def test_every_key_of_a_runs_status_is_in_the_crd() -> None:
    _, result = engine_results()
    api = Recorder()
    reporter = RunReporter(StatusWriter(api, ObjectRef(RUNS, "ns", "r", "uid")), generation=1)  # type: ignore[arg-type]
    reporter.started()
    reporter.waiting()
    reporter.progress(Progress(files_planned=3, files_deleted=1, bytes_freed=10))
    reporter.refused("InvalidSpec", "spec.type: bad")
    reporter.finished(result)
    writer = StatusWriter(api, ObjectRef(RUNS, "ns", "r", "uid"))  # type: ignore[arg-type]
    writer.write(pending("volume:/v", 3, 12))
    writer.write(queue_full("volume:/v", 1000, 30))

    assert len(api.patches) == 7
    assert api.patches[-2]["queuePosition"] == 3 and api.patches[-2]["phase"] == "Pending"
    assert {"filesDeleted", "wouldDeleteByReason", "progress", "completionTime"} <= set(api.patches[4])
    schema = status_schema("cleanupruns")
    assert [bad for patch in api.patches for bad in undeclared(patch, schema)] == []


def test_every_key_of_a_policys_status_is_in_the_crd() -> None:
    stats, result = engine_results()
    every_field = PolicyStatus(
        observed_generation=2,
        conditions=[condition("Ready", True, "Validated", "ok", NOW).model_copy(update={"observed_generation": 2})],
        stats=stats,
        last_stats_time=NOW,
        last_emergency_check_time=NOW,
        last_scheduled_time=NOW,
        last_orphaned_time=NOW,
    )
    patch = status_patch(every_field) | status_patch(PolicyStatus.last_cleanup(result))

    assert {"usagePercent", "jobSourceError", "lastCleanupPhase", "conditions"} <= set(patch)
    assert patch["jobSourceError"] is None, "statistics are written whole: a recovered job source clears the error"
    assert "lastCleanupTime" not in status_patch(every_field), "a field left None is not part of the patch"
    assert undeclared(patch, status_schema("cleanuppolicies")) == []


def test_a_key_the_crd_lacks_is_caught() -> None:
    """The control: the check fails on a key the schema does not declare, also inside a nested object."""
    patch = {**status_patch(PolicyStatus(observed_generation=1)), "usagePercnt": 1.0}
    assert undeclared(patch, status_schema("cleanuppolicies")) == ["status.usagePercnt"]
    nested = {"progress": {**status_patch(RunProgress()), "filesPlaned": 1}}
    assert undeclared(nested, status_schema("cleanupruns")) == ["status.progress.filesPlaned"]
