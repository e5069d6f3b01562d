"""The operator's metrics kept per policy and rendered when they change, so a scrape only concatenates.

prometheus-client renders about 10 µs per sample here; 100 policies with every series they can have
(7 800 samples) took 80 ms of CPU per scrape, and more under load. So each policy gets its own ``Metrics``
(its own registry), rendered by prometheus-client's ``generate_latest`` right after the operator
observes something about that policy -- in the worker thread that computed the figures, where one
policy's 80 samples cost about a millisecond. What changes at every pass without news -- the pass
timestamps -- and the operator-wide metrics (run-duration and timer-lag histograms, the process and
Python collectors) live in ``operator`` and are rendered per scrape (a few hundred samples), so an idle
policy is not rendered again at all. A scrape merges the cached texts family by family: the text format wants each
family's ``# HELP``/``# TYPE`` once, followed by all its samples.

The figures are the same as one registry would give (a test compares them); the text is the Prometheus
text format 0.0.4, which Prometheus accepts whatever it asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import generate_latest

from tempsweep.telemetry.metrics import Metrics
from tempsweep.telemetry.observe import forget_policy

#: One rendered registry: family name -> (its HELP and TYPE lines, its sample lines), in rendering order.
Families = dict[str, tuple[str, str]]


def split_families(text: str) -> Families:
    """A ``generate_latest`` text cut into its families (each starts with its ``# HELP`` line)."""
    families: Families = {}
    name, header, samples = "", list[str](), list[str]()
    for line in text.splitlines(keepends=True):
        if line.startswith("# HELP "):
            if name:
                families[name] = ("".join(header), "".join(samples))
            name, header, samples = line.split(" ", 3)[2], [line], []
        elif line.startswith("# "):
            header.append(line)
        else:
            samples.append(line)
    if name:
        families[name] = ("".join(header), "".join(samples))
    return families


def merge_families(rendered: list[Families]) -> str:
    """One exposition: every family once (first-seen order), with the samples of every rendering."""
    headers: dict[str, str] = {}
    samples: dict[str, list[str]] = {}
    for families in rendered:
        for name, (header, lines) in families.items():
            headers.setdefault(name, header)
            samples.setdefault(name, []).append(lines)
    return "".join(headers[name] + "".join(samples[name]) for name in headers)


class Exposition:
    """Per-policy ``Metrics`` with their rendered text, plus the operator's own ``Metrics``."""

    def __init__(self, *, runtime_collectors: bool = True) -> None:
        self.operator = Metrics(runtime_collectors=runtime_collectors)
        self._policies: dict[tuple[str, str], tuple[Metrics, Families]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def updating(self, namespace: str, policy: str) -> Iterator[Metrics]:
        """The policy's metrics to observe into; its text is rendered again when the block ends."""
        key = (namespace, policy)
        with self._guard:
            metrics = self._policies.setdefault(key, (Metrics(), {}))[0]
        try:
            yield metrics
        finally:
            families = split_families(generate_latest(metrics.registry).decode())
            with self._guard:
                if self._policies.get(key, (None,))[0] is metrics:  # not forgotten meanwhile
                    self._policies[key] = (metrics, families)

    def forget(self, namespace: str, policy: str) -> None:
        """Drop every series of a policy (its own, and those it has in ``operator``)."""
        with self._guard:
            self._policies.pop((namespace, policy), None)
        forget_policy(self.operator, namespace, policy)

    def policies(self) -> int:
        with self._guard:
            return len(self._policies)

    def render(self) -> bytes:
        """The whole scrape: the policies' cached texts and the operator's metrics, merged by family."""
        with self._guard:
            rendered = [families for _, families in self._policies.values()]
        operator = split_families(generate_latest(self.operator.registry).decode())
        return merge_families([*rendered, operator]).encode()
