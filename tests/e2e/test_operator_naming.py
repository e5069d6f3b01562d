"""Names through kubectl: a running job's directory is kept, near misses are kept and shown in status."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.operator_helpers import job_table, make_files, policy, run, tree
from support.operator_process import Kube, OperatorProcess

pytestmark = pytest.mark.e2e


def test_job_directories_and_near_misses_in_status_and_runs(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "named"
    url = job_table(operator_root / "jobs.db", {"41": ("running", 0), "43": ("completed", 30)})
    make_files(volume, ["job_41/frames/0001.png", "job_43/frames/0001.png", "job_4.1_x.png"], age_hours=48)
    kube.apply(policy("named", volume, jobs={"database": {"url": url}}))

    status = kube.wait_status("cleanuppolicy", "named", lambda s: s.get("observedGeneration") == 1, "statistics")
    assert status["nearMissFilesCount"] == 1
    assert status["orphanedFilesCount"] == 1  # job 43's directory; 41 runs, the near miss is kept

    kube.apply(run("orphans", "named", "Orphaned"))
    result = kube.wait_run("orphans")

    assert result["phase"] == "Succeeded", result
    assert tree(volume) == {"job_41/frames/0001.png", "job_4.1_x.png"}
    assert result["deletedByReason"] == {"OrphanFinishedJob": 1}
    assert (result["nearMissFiles"], result["nearMissExamples"]) == (1, ["job_4.1_x.png"])
    assert "does not parse under spec.naming" in result["message"]
