"""Invalid objects: the API server rejects what the CRD schema can express; the operator refuses the rest
(Ready=False or Failed, with a reason and a message naming the field). None of them deletes anything.
Also: the CRDs in crds/ are exactly what the models generate.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e.operator_helpers import make_files, merge, policy, run, tree
from support.operator_process import Kube, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e

VOLUME = "/var/lib/tempsweep/volumes/never-used"  # the API server never checks paths on disk


def _policy(**spec: Any) -> dict[str, Any]:
    return policy("bad", VOLUME, **spec)


def _run(**spec: Any) -> dict[str, Any]:
    document = run("bad", "valid", "ChunkCompletion", jobId="1", chunkId="1")
    document["spec"] = merge(document["spec"], spec)
    return document


REJECTED = [
    pytest.param(
        _policy(thresholds={"warningPercent": 95, "emergencyPercent": 90}),
        "warningPercent must be below emergencyPercent",
        id="policy-warning-not-below-emergency",
    ),
    pytest.param(
        _policy(thresholds={"warningPercent": 150}),
        "spec.thresholds.warningPercent: Invalid value: 150",
        id="policy-percent-over-100",
    ),
    pytest.param(
        _policy(storage={"volume": {"path": "volumes/sample"}}),
        "path must be absolute and must not contain '..'",
        id="policy-relative-path",
    ),
    pytest.param(
        _policy(storage={"volume": {"path": "/var/lib/tempsweep/volumes/../../../etc"}}),
        "path must be absolute and must not contain '..'",
        id="policy-path-traversal",
    ),
    pytest.param(
        _policy(storage={"azureBlob": {"container": "temp", "capacity": "1Gi", "accountUrl": "https://a.example"}}),
        "set exactly one storage backend: volume or azureBlob",
        id="policy-two-storage-backends",
    ),
    pytest.param(
        _policy(storage={"volume": None}),
        "set exactly one storage backend: volume or azureBlob",
        id="policy-no-storage-backend",
    ),
    pytest.param(_policy(retention="7d"), 'unknown field "spec.retention"', id="policy-unknown-field"),
    pytest.param(
        _policy(limits={"batchSize": "ten"}),
        'spec.limits.batchSize: Invalid value: "string": spec.limits.batchSize in body must be of type integer',
        id="policy-wrong-type",
    ),
    pytest.param(
        _policy(limits={"batchSize": -5}),
        "spec.limits.batchSize: Invalid value: -5: spec.limits.batchSize in body should be greater than 0",
        id="policy-negative-limit",
    ),
    pytest.param(
        _policy(limits={"maxFilesPerRun": 0}),
        "spec.limits.maxFilesPerRun in body should be greater than 0",
        id="policy-zero-limit",
    ),
    pytest.param(_policy(dryRun="yes"), "spec.dryRun in body must be of type boolean", id="policy-dryrun-string"),
    pytest.param(
        _run(type="Everything"),
        'spec.type: Unsupported value: "Everything"',
        id="run-unknown-type",
    ),
    pytest.param(_run(jobId=None), "ChunkCompletion needs jobId and chunkId", id="run-chunk-without-jobid"),
    pytest.param(
        _run(completedFiles=["../../etc/passwd"]),
        'spec.completedFiles[0]: Invalid value: "../../etc/passwd": spec.completedFiles[0] in body should match',
        id="run-completed-files-traversal",
    ),
    pytest.param(
        _run(completedFiles=["a.jpg", ".."]),
        "completedFiles entries must be plain file names",
        id="run-completed-files-dotdot",
    ),
    pytest.param(
        _run(type="Orphaned", jobId=None, chunkId=None, maxAgeHours=-1),
        "spec.maxAgeHours in body should be greater than 0",
        id="run-negative-age",
    ),
    pytest.param(
        _run(type="Emergency", chunkId=None),
        "jobId only applies to ChunkCompletion and CrashRecovery",
        id="run-jobid-on-emergency",
    ),
    pytest.param(
        _run(type="Scheduled", jobId=None, chunkId=None, completedFiles=["a"]),
        "chunkId and completedFiles only apply to ChunkCompletion",
        id="run-files-on-scheduled",
    ),
    pytest.param(
        _run(jobId="1/../2"),
        'spec.jobId: Invalid value: "1/../2": spec.jobId in body should match',
        id="run-job-id-with-slash",
    ),
    pytest.param(_run(chunkId="a b"), "spec.chunkId in body should match", id="run-chunk-id-with-space"),
    pytest.param(_run(policyRef=None), "spec.policyRef: Required value", id="run-without-policy"),
    pytest.param(
        _run(ttlSecondsAfterFinished=-1),
        "spec.ttlSecondsAfterFinished in body should be greater than or equal to 0",
        id="run-negative-ttl",
    ),
    pytest.param(_run(forceDelete=True), 'unknown field "spec.forceDelete"', id="run-unknown-field"),
]


@pytest.mark.parametrize(("document", "message"), REJECTED)
def test_the_api_server_rejects(kube: Kube, document: dict[str, Any], message: str) -> None:
    result = kube.apply(document, check=False)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr
    kind = document["kind"].lower()
    assert kube.get(kind, "bad") is None  # nothing was stored, so nothing can act on it


# Accepted by the schema, refused by the operator: (name, spec overrides, reason, message fragment).
REFUSED_POLICIES = [
    ("bad-cron", {"schedule": {"scheduled": "every minute"}}, "InvalidSpec", "not a cron expression"),
    ("bad-duration", {"schedule": {"statsInterval": "soon"}}, "InvalidSpec", "'soon' is not a duration"),
    ("bad-capacity", {"storage": {"volume": {"capacity": "lots"}}}, "InvalidSpec", "'lots' is not a size"),
    (
        "floor-over-capacity",
        {"storage": {"volume": {"capacity": "1Mi"}}, "thresholds": {"minFreeSpace": "2Mi"}},
        "InvalidSpec",
        "spec.thresholds.minFreeSpace (2.0MiB) must be smaller than the capacity (1.0MiB)",
    ),
    ("no-job-id", {"naming": {"jobPattern": "job_"}}, "InvalidSpec", "jobPattern"),
    (
        "ambiguous-pattern",
        {"naming": {"jobPattern": "job-{job_id}-", "chunkPattern": "job-{job_id}-chunk-{chunk_id}-"}},
        "InvalidSpec",
        "spec.naming.jobPattern: '-' right after {job_id} may also occur inside an id",
    ),
    (
        "sql-table",
        {"jobs": {"database": {"url": "sqlite:////nonexistent.db", "table": "jobs; DROP TABLE jobs"}}},
        "InvalidSpec",
        "is not a plain SQL identifier",
    ),
    ("system-path", {"storage": {"volume": {"path": "/etc"}}}, "InvalidSpec", "'/etc' is a system path"),
]


def test_the_operator_refuses_and_nothing_is_deleted(
    kube: Kube, kubectl: Any, operator: OperatorProcess, operator_root: Path, tmp_path: Path
) -> None:
    valid = operator_root / "valid"
    outside = tmp_path / "outside"  # a real directory, but not under the operator's allowed root
    for directory in (valid, outside):
        make_files(directory, [f"job_1_chunk_1_{i}.tmp" for i in range(3)], size=1024, age_hours=100)
        make_files(directory, ["stray.tmp", "job_2_x.tmp"], size=1024, age_hours=100)
    before = {directory: tree(directory) for directory in (valid, outside)}

    kube.apply(policy("valid", valid, suspend=True))  # the one good policy; runs below could use it
    for name, spec, _, _ in REFUSED_POLICIES:
        kube.apply(policy(name, valid, **spec))
    eager = {  # everything would be due at once: an emergency, both crons, every check each second
        "storage": {"volume": {"capacity": "6Ki"}},
        "orphans": {"maxAgeHours": 1},
        "schedule": {
            "scheduled": "* * * * *",
            "orphaned": "* * * * *",
            "statsInterval": "1s",
            "emergencyCheckInterval": "1s",
        },
    }
    kube.apply(policy("outside", outside, **eager))

    for name, _, reason, fragment in REFUSED_POLICIES:
        ready = wait_for(f"Ready on {name}", lambda n=name: kube.condition("cleanuppolicy", n, "Ready"))
        assert (ready["status"], ready["reason"]) == ("False", reason), (name, ready)
        assert fragment in ready["message"], (name, ready)
    ready = wait_for("Ready on outside", lambda: kube.condition("cleanuppolicy", "outside", "Ready"))
    assert (ready["status"], ready["reason"]) == ("False", "PathNotAllowed")
    assert f"spec.storage.volume.path {outside} is not under an allowed root ({operator_root})" in ready["message"]
    assert "health" not in kube.status("cleanuppolicy", "outside")  # not even scanned
    warnings = {(e["involvedObject"]["name"], e["reason"]) for e in kube.events() if e["type"] == "Warning"}
    assert ("outside", "PathNotAllowed") in warnings
    assert ("bad-cron", "InvalidSpec") in warnings

    # runs the API server accepts but the operator must fail
    kubectl("create", "namespace", f"{kube.namespace}-other")
    other = Kube(kubectl, f"{kube.namespace}-other")
    other.apply(policy("elsewhere", valid))  # no operator watches it; it only exists
    failing = {
        "missing-policy": (
            run("missing-policy", "no-such-policy", "Orphaned"),
            "PolicyNotFound",
            "CleanupPolicy 'no-such-policy' not found in namespace",
        ),
        "other-namespace": (
            run("other-namespace", "elsewhere", "Orphaned"),
            "PolicyNotFound",
            "a CleanupRun can only use a policy in its own namespace",
        ),
        "outside-run": (run("outside-run", "outside", "Orphaned"), "PathNotAllowed", "not under an allowed root"),
        "invalid-policy": (run("invalid-policy", "bad-cron", "Scheduled"), "InvalidSpec", "not a cron expression"),
        # the schema admits any printable id; the policy's naming.idCharacters does not allow '_'
        "bad-job-id": (
            run("bad-job-id", "valid", "CrashRecovery", jobId="1_2"),
            "InvalidSpec",
            "spec.jobId: '1_2' contains '_', which naming.idCharacters",
        ),
    }
    for document, _, _ in failing.values():
        kube.apply(document)
    for name, (_, reason, fragment) in failing.items():
        result = kube.wait_run(name)
        assert result["phase"] == "Failed", (name, result)
        complete = {c["type"]: c for c in result["conditions"]}["Complete"]
        assert (complete["status"], complete["reason"]) == ("False", reason), (name, complete)
        assert fragment in result["message"], (name, result["message"])
        assert result.get("filesDeleted", 0) == 0
        event = wait_for(
            f"a Warning event for {name}", lambda n=name: [e for e in kube.events(n) if e["type"] == "Warning"]
        )
        assert event[0]["reason"] == reason

    # the refused policies' timers keep ticking without ever acting; wait for evidence of three more ticks
    long_ago = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    patch = json.dumps({"status": {"lastScheduledTime": long_ago, "lastOrphanedTime": long_ago}})
    kube("patch", "cleanuppolicy", "outside", "--subresource=status", "--type=merge", "-p", patch)
    started = datetime.now(UTC)

    def ticked_three_times() -> bool:
        tick = ((operator.probe() or {}).get("policies") or {}).get(f"{kube.namespace}/outside", {}).get("tick")
        return bool(tick) and datetime.fromisoformat(tick) >= started + timedelta(seconds=3)

    wait_for("three more timer ticks of the refused policy", ticked_three_times, timeout=30)
    status = kube.status("cleanuppolicy", "outside")
    assert "lastCleanupTime" not in status and status["lastScheduledTime"] == long_ago
    assert {directory: tree(directory) for directory in (valid, outside)} == before
