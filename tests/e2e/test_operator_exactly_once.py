"""Two operators without peering watch the same namespace (issue 14, finding 6): every run is executed once.

Before claims, both executed every run (each deleting part of the files, the status showing whichever wrote
last). Now each run is claimed with a resourceVersion precondition before it executes: one operator wins the
claim, the other leaves the run alone, and the figures of each run are the files of its chunk, counted once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.operator_helpers import make_many, policy, run
from support.operator_process import Kube, StartOperator, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

RUNS = 12
FILES_PER_CHUNK = 2_000


def test_two_unpeered_operators_execute_each_run_exactly_once(
    kube: Kube, start_operator: StartOperator, operator_root: Path
) -> None:
    volume = operator_root / "vol"
    for chunk in range(RUNS):
        make_many(volume / f"c{chunk}", f"job_7_chunk_{chunk}_", FILES_PER_CHUNK)
    first = start_operator(kube.namespace, POD_ID="operator-a")
    second = start_operator(kube.namespace, POD_ID="operator-b")
    kube.apply(policy("p", volume))
    kube.wait_status("cleanuppolicy", "p", lambda s: s.get("observedGeneration"), "validation")

    for chunk in range(RUNS):
        kube.apply(run(f"chunk-{chunk}", "p", "ChunkCompletion", jobId="7", chunkId=str(chunk)))
    results = {f"chunk-{chunk}": kube.wait_run(f"chunk-{chunk}", timeout=300) for chunk in range(RUNS)}

    for name, status in results.items():
        assert status["phase"] == "Succeeded", (name, status)
        assert status["filesDeleted"] == FILES_PER_CHUNK, (name, status)  # one pass did it all: counted once
        assert status["claim"]["holder"] in ("operator-a", "operator-b")
        finished = wait_for(
            f"{name}'s event",
            lambda name=name: [e for e in kube.events(name) if e["reason"] == "CleanupFinished"],
        )
        assert len(finished) == 1 and finished[0].get("count", 1) == 1, finished  # executed once
    assert not any(volume.rglob("*.tmp"))
    assert first.alive() and second.alive()
