"""Strict input in the cluster: ``kubectl apply`` asks the API server for strict field validation
(kubectl's default, ``--validate=strict``), so a misplaced or unknown field is refused and the object is
never stored: nothing can run from it. A key given twice is not: kubectl merges it away before sending.
Without strict validation (``--validate=false``) the API server prunes unknown fields from the stored
object, as the CRD's structural schema demands, which is why the CLI, which has no API server in front
of it, refuses them itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from e2e.operator_helpers import make_files, policy, run, tree
from support.operator_process import Kube, OperatorProcess

pytestmark = pytest.mark.e2e

OLD = ["stale.tmp", "job_7_x.tmp", "nested/old.tmp"]


@pytest.fixture
def volume(operator_root: Path) -> Path:
    directory = operator_root / "strict"
    make_files(directory, OLD, size=100, age_hours=1000)
    return directory


def test_a_dry_run_one_level_too_far_out_is_refused_and_nothing_runs(
    kube: Kube, operator: OperatorProcess, volume: Path
) -> None:
    kube.apply(policy("strict", volume, orphans={"maxAgeHours": 1}))
    document = run("misplaced", "strict", "Orphaned")
    document["dryRun"] = True  # meant as spec.dryRun

    result = kube.apply(document, check=False)

    assert result.returncode != 0, result.stdout
    assert 'unknown field "dryRun"' in result.stderr
    assert kube.get("cleanuprun", "misplaced") is None
    assert tree(volume) == set(OLD)


def test_unknown_fields_at_any_depth_are_refused_by_kubectl_apply(
    kube: Kube, operator: OperatorProcess, volume: Path
) -> None:
    unknown_top = {**policy("top", volume), "suspend": True}
    result = kube.apply(unknown_top, check=False)
    assert result.returncode != 0 and 'unknown field "suspend"' in result.stderr
    assert kube.get("cleanuppolicy", "top") is None

    deep = policy("deep", volume, storage={"volume": {"sizeLimit": "1Gi"}})
    result = kube.apply(deep, check=False)
    assert result.returncode != 0 and 'unknown field "spec.storage.volume.sizeLimit"' in result.stderr
    assert kube.get("cleanuppolicy", "deep") is None

    assert tree(volume) == set(OLD)


def test_kubectl_merges_a_repeated_key_before_the_api_server_sees_it(
    kube: Kube, operator: OperatorProcess, volume: Path
) -> None:
    """A known limit, stated in the README: kubectl decodes the manifest (last key wins) and sends the API
    server an object without the repetition, so neither it nor the operator can refuse one. The offline
    CLI does; ``tempsweep scan --policy FILE`` checks a policy manifest before it is applied."""
    kube.apply(policy("strict", volume, suspend=True))
    twice = yaml.safe_dump(run("twice", "strict", "Orphaned", dryRun=True), sort_keys=False) + "  dryRun: false\n"
    assert twice.count("dryRun") == 2

    kube.apply(twice)

    stored = kube.get("cleanuprun", "twice")
    assert stored is not None and stored["spec"]["dryRun"] is False
