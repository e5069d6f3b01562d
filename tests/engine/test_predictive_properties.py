"""Property: a Predictive cleanup never deletes a file that the Orphaned and CrashRecovery runs would keep.

The prediction only decides *when* the gentle cleanup runs, so on any tree, job table and policy (the
generator of ``test_safety_properties``: active, failed, finished, unknown and unlisted jobs, job
directories, chunks, young files, excluded locks, symlinks in and out of the root, dry runs, the guard),
what Predictive deletes on one copy is a subset of what Orphaned and then CrashRecovery delete on another.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from test_safety_properties import Case, _build, cases

from sweep_helpers import effective_policy, execute, job, regular_files, run_spec
from tempsweep.jobs import MemoryJobSource
from tempsweep.storage import VolumeStorage


def _deleted(base: Path, case: Case, now: datetime, kinds: list[str]) -> set[str]:
    tree, _ = _build(base, case, now)
    before = regular_files(tree.root)
    jobs = MemoryJobSource([job(job_id, status, hours, now) for job_id, (status, hours) in case.table.items()])
    limits = {**case.policy["limits"], "maxFilesPerRun": 1000}  # no walk-order dependence between copies
    policy = effective_policy(tree.root, **{**case.policy, "limits": limits})
    for kind in kinds:
        execute(policy, VolumeStorage(str(tree.root)), run_spec(kind), jobs=jobs, now=now)
    return before - regular_files(tree.root)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_predictive_deletes_nothing_the_orphan_and_crash_rules_keep(case: Case) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="tempsweep-predictive-") as gentle, \
            tempfile.TemporaryDirectory(prefix="tempsweep-regular-") as regular:
        predictive = _deleted(Path(gentle), case, now, ["Predictive"])
        allowed = _deleted(Path(regular), case, now, ["Orphaned", "CrashRecovery"])

    assert predictive <= allowed, f"Predictive deleted {sorted(predictive - allowed)} that the rules keep"
