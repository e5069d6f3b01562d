"""Health follows the storage (issue 14, finding 7): a volume that disappears is not Healthy.

The statistics of the last reading said Healthy; once the storage cannot be read, keeping that figure next to
Ready=False told two stories. Health is Unknown until the storage can be read again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2e.operator_helpers import make_files, policy
from support.operator_process import Kube, OperatorProcess

pytestmark = pytest.mark.e2e


def test_a_policy_whose_storage_is_gone_is_not_healthy(
    kube: Kube, operator: OperatorProcess, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["a.tmp"])
    kube.apply(policy("p", volume, schedule={"statsInterval": "1s"}))
    assert kube.wait_status("cleanuppolicy", "p", lambda s: s.get("health"), "statistics")["health"] == "Healthy"

    shutil.rmtree(volume)

    gone = kube.wait_status(
        "cleanuppolicy", "p", lambda s: s.get("health") != "Healthy", "health to follow the storage", timeout=60
    )
    assert gone["health"] == "Unknown"
    conditions = {c["type"]: c for c in gone["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["StorageHealthy"]["status"] == "False"

    make_files(volume, ["b.tmp"])
    back = kube.wait_status(
        "cleanuppolicy", "p", lambda s: s.get("health") == "Healthy", "health once the storage is back", timeout=60
    )
    assert back["tempFilesCount"] == 1
