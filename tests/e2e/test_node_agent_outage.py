"""A node agent cut off from the API server mid-run (issue 16, adversarial review item 1): it fails closed.

An agent that cannot renew its claim on a run's node part cannot know whether another agent of the same
node has taken the part over; it must stop deleting before its claim could lapse and write nothing more
of it, or its late writes would overwrite the new holder's. The agents here use a 10 s run lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from e2e.operator_helpers import count_files, make_files, make_many, run, tree
from e2e.test_node_agents import OLD, SLOW, entries, node_policy
from support.controlplane import Outage
from support.node_agents import AgentProcess
from support.operator_process import Kube, OperatorProcess
from support.probing import wait_for

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 20  # twice the agents' run lease
GAVE_UP = "stopped, writing nothing more to the run"


def test_an_agent_without_the_api_stops_deleting_and_the_part_is_finished_by_a_fresh_claim(
    kube: Kube,
    operator: OperatorProcess,
    namespace: str,
    register_nodes: Callable[..., dict[str, str]],
    start_agent: Callable[..., AgentProcess],
    disk: Callable[[str], Path],
    outage: Outage,
) -> None:
    a = register_nodes(a={"disk": "fast"})["a"]
    total = 30_000
    make_many(disk(a) / "chunk", "job_9_chunk_3_", total)
    make_files(disk(a), ["job_9_chunk_4_keep.tmp", "stray.tmp"], age_hours=OLD)
    agent = start_agent(a)
    kube.apply(node_policy("p", namespace, **SLOW))
    kube.wait_status("cleanuppolicy", "p", lambda s: len(s.get("nodes") or []) == 1, "the node's entry")
    kube.apply(run("long", "p", "ChunkCompletion", jobId="9", chunkId="3"))
    kube.wait_status(
        "cleanuprun", "long", lambda s: entries(s).get(a, {}).get("filesDeleted", 0) > 0, "node a deleting"
    )

    outage.stop()
    stopped_at = time.monotonic()
    try:
        wait_for(lambda: f"the agent to give its claim up; its log:\n{agent.log()[-3000:]}",
                 lambda: GAVE_UP in agent.log(), timeout=OUTAGE_SECONDS)
        left = count_files(disk(a) / "chunk")
        assert 0 < left < total, f"the run was not interrupted mid-way ({left} of {total} files left): make it longer"
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))  # the outage's length: an input
        assert count_files(disk(a) / "chunk") == left, "the agent went on deleting without a renewed claim"
    finally:
        outage.start()
    assert "no renewal of the claim confirmed by the API server" in agent.log()

    result = kube.wait_run("long", timeout=180)  # a fresh claim (conditional on the run as read) finishes it
    assert result["phase"] == "Succeeded", result
    part = entries(result)[a]
    assert part["phase"] == "Succeeded", part
    assert 0 < part["filesDeleted"] <= total  # files deleted after the last report reached the server are not counted
    assert count_files(disk(a) / "chunk") == 0
    assert tree(disk(a)) == {"job_9_chunk_4_keep.tmp", "stray.tmp"}
    assert agent.starts == 1
