"""Two writers of one policy's status, interleaved against the real API server.

The create handler and the policy's first timer tick both write a policy's conditions, each judged from
the object as it was when the handler started. A merge patch replaces a list whole: the tick, judging from
a status read before the create handler's write, used to remove the StorageHealthy the create handler had
just written (test_policy_gets_conditions_and_statistics_at_once failed that way under load), and could
remove a Ready=False or JobStatusesRecognized=False the same way. Conditions are set per type on the
latest object now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.config import kube_config

from e2e.operator_helpers import policy
from support.controlplane import ControlPlane
from support.operator_process import Kube as Kubectl
from tempsweep.controller import kube as kube_module
from tempsweep.controller import policy_status as ps
from tempsweep.controller.conditions import condition, read_conditions
from tempsweep.controller.kube import Written
from tempsweep.controller.runtime import PolicyNotReady
from tempsweep.controller.writer import POLICIES, ObjectRef, StatusWriter
from tempsweep.models.resources import PolicyStatus

pytestmark = pytest.mark.e2e

EARLIER = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 1, 1, 10, 0, 7, tzinfo=UTC)


@pytest.fixture
def api(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> kube_module.Kube:
    """The operator's own client, built from the test control plane's kubeconfig."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(Path(control_plane.kubeconfig)))
    return kube_module.Kube()


def created(kube: Kubectl, tmp_path: Path) -> tuple[dict[str, Any], ObjectRef]:
    """A new policy (no status yet) and the reference the operator's handlers would write it by."""
    kube.apply(policy("p", tmp_path))
    body = kube.get("cleanuppolicy", "p")
    assert body is not None
    return body, ObjectRef.of(POLICIES, body["metadata"])


def conditions(kube: Kubectl) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in kube.status("cleanuppolicy", "p").get("conditions") or []}


def test_a_tick_judged_from_an_older_status_keeps_the_create_handlers_conditions(
    kube: Kubectl, api: kube_module.Kube, tmp_path: Path
) -> None:
    stale, ref = created(kube, tmp_path)  # what the first tick was handed, before the create handler wrote
    writer = StatusWriter(api, ref)
    create = [
        condition("Ready", True, "Validated", "cleaning the volume", EARLIER),
        condition("StorageHealthy", True, "Warning", "usage 44.0%", EARLIER),
        condition("JobStatusesRecognized", False, ps.UNRECOGNIZED_REASON, "status 'paused' is in no list", EARLIER),
    ]
    assert writer.write(PolicyStatus(conditions=ps.decided([], create), observed_generation=1)) is Written.DONE

    before = read_conditions((stale.get("status") or {}).get("conditions"))
    tick = ps.decided(before, [condition("Ready", True, "Validated", "x", LATER)])
    assert writer.write(PolicyStatus(conditions=tick)) is Written.DONE

    written = conditions(kube)
    assert set(written) == {"Ready", "StorageHealthy", "JobStatusesRecognized"}
    assert written["StorageHealthy"]["message"] == "usage 44.0%"
    assert written["JobStatusesRecognized"]["status"] == "False"  # something wrong is never lost
    assert written["Ready"]["message"] == "x"  # the later decision of Ready is the one shown
    assert written["Ready"]["lastTransitionTime"] == "2026-01-01T10:00:00Z"  # still True since the first


def test_a_stale_writer_does_not_lose_a_ready_false_it_did_not_decide(
    kube: Kubectl, api: kube_module.Kube, tmp_path: Path
) -> None:
    stale, ref = created(kube, tmp_path)
    writer = StatusWriter(api, ref)
    problem = PolicyNotReady("StorageUnavailable", "the volume is gone", condition="StorageHealthy")
    assert writer.write(ps.not_ready([], problem, LATER, 1)) is Written.DONE

    # a writer judging from the older status decides only what it learned: a statistic's condition
    learned = [condition("MinFreeSpaceApplied", True, "Applied", "keeps 1 KiB free", EARLIER)]
    assert writer.write(PolicyStatus(conditions=ps.decided([], learned))) is Written.DONE

    written = conditions(kube)
    assert (written["Ready"]["status"], written["StorageHealthy"]["status"]) == ("False", "False")
    assert written["MinFreeSpaceApplied"]["status"] == "True"
    assert stale.get("status") is None


class Interleaved(kube_module.Kube):
    """The real client; right after the writer reads the policy, another writer's status lands first."""

    def __init__(self, other: StatusWriter, status: PolicyStatus) -> None:
        super().__init__()
        self.other, self.status, self.reads = other, status, 0

    def get_policy(self, namespace: str, name: str) -> dict[str, Any]:
        body = super().get_policy(namespace, name)
        self.reads += 1
        if self.reads == 1:
            assert self.other.write(self.status) is Written.DONE
        return body


def test_a_write_racing_another_between_read_and_patch_is_merged_again(
    kube: Kubectl, api: kube_module.Kube, tmp_path: Path
) -> None:
    _, ref = created(kube, tmp_path)
    other = [condition("StorageHealthy", False, "Critical", "usage 97.0%", EARLIER)]
    racing = Interleaved(StatusWriter(api, ref), PolicyStatus(conditions=other))

    ready = [condition("Ready", True, "Validated", "cleaning the volume", LATER)]
    assert StatusWriter(racing, ref).write(PolicyStatus(conditions=ready)) is Written.DONE

    assert racing.reads == 2  # the first patch was refused (409): read again, merged again
    written = conditions(kube)
    assert (written["Ready"]["status"], written["StorageHealthy"]["status"]) == ("True", "False")
