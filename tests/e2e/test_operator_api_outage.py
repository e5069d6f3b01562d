"""The operator through an API server outage of 90 s (issue 14, finding 1): timers come back, the probe never hangs.

Kopf gives up on a failed request after about 54 s of retries; an outage longer than that once stopped every
timer for good while `/healthz` hung. The test stops the real API server for 90 s with the operator running,
probes `/healthz` all along, and then checks that each policy's timer works again: the emergency check time
moves on, and statistics see a file created after the API server came back; a CleanupRun created afterwards
is executed (the watches came back too). The timer must never fail meanwhile: Kopf waits 60 s before trying a
failed timer again, and a timer whose failure Kopf cannot record stops for good (kopf #642).
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from e2e.operator_helpers import make_files, parse_time, policy, run, tree
from support.controlplane import Outage
from support.operator_process import Kube, OperatorProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

OUTAGE_SECONDS = 90
#: A probe request that has not answered after this long counts as hung (the promise is one second; the
#: measured latency is `make bench`'s business, this only tells an answer from a hang on a loaded machine).
HUNG_AFTER_SECONDS = 10


class ProbeWatcher:
    """Requests `/healthz` in a loop on a thread and keeps every answer: an HTTP status, or "hung"."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[int | str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ProbeWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=HUNG_AFTER_SECONDS + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=HUNG_AFTER_SECONDS) as response:
                    self.answers.append(response.status)
            except urllib.error.HTTPError as exc:
                self.answers.append(exc.code)
            except (TimeoutError, urllib.error.URLError) as exc:
                self.answers.append("hung" if "timed out" in str(exc) else f"error: {exc}")
            self._stop.wait(1.0)


def test_timers_resume_after_a_90_second_api_outage_and_the_probe_answers_throughout(
    kube: Kube, operator: OperatorProcess, operator_root: Path, outage: Outage
) -> None:
    volume = operator_root / "vol"
    make_files(volume, ["before.tmp"])
    kube.apply(policy("p", volume, schedule={"statsInterval": "1s", "emergencyCheckInterval": "1s"}))
    kube.wait_status("cleanuppolicy", "p", lambda s: s.get("tempFilesCount") == 1, "first statistics")

    with ProbeWatcher(operator.liveness_url) as watcher:
        with outage.down(seconds=OUTAGE_SECONDS):
            pass
        back = datetime.now(UTC)
        make_files(volume, ["after.tmp"])
        status = kube.wait_status(
            "cleanuppolicy",
            "p",
            lambda s: s.get("tempFilesCount") == 2 and parse_time(s["lastEmergencyCheckTime"]) >= back,
            "the timer to check and count again after the outage",
            timeout=60,
        )

    assert status["tempFilesCount"] == 2
    assert operator.alive(), operator.tail()
    assert "Timer 'policy_tick' failed" not in operator.log()  # no 60 s back-off, no timer given up on
    assert watcher.answers, "the probe was never asked"
    assert set(watcher.answers) == {200}, watcher.answers  # never hung, never failed: it recovers by itself
    assert operator.healthy()
    kube.apply(run("after", "p", "Orphaned", maxAgeHours=0.0001))
    assert kube.wait_run("after", timeout=120)["phase"] == "Succeeded"
    assert tree(volume) == set()
