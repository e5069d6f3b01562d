"""The Helm chart and the kustomize manifests cannot drift apart.

1. The chart's files/ are exact copies of their sources (the CRDs generated into crds/, Kopf's peering
   CRDs, the alert rules and the dashboard): `make chart` makes them, `make crds` runs it.
2. `helm template` with values equivalent to an overlay renders the same objects as `kubectl kustomize`
   of it, after removing only Helm's bookkeeping (support.helm). Left out on the kustomize side, and only
   these: the Namespaces (Helm installs into namespaces you create, README) and the example CleanupPolicy
   of manifests/default (the chart ships no policy).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helm import CHART, REPO, comparable, kustomize, template

COPIES: dict[str, Path] = {
    "crds/tempsweep.io_cleanuppolicies.yaml": REPO / "crds" / "tempsweep.io_cleanuppolicies.yaml",
    "crds/tempsweep.io_cleanupruns.yaml": REPO / "crds" / "tempsweep.io_cleanupruns.yaml",
    "crds/kopf-peering-crds.yaml": REPO / "manifests" / "base" / "kopf-peering-crds.yaml",
    "monitoring/prometheusrule.yaml": REPO / "manifests" / "monitoring" / "prometheusrule.yaml",
    "monitoring/dashboard.json": REPO / "manifests" / "monitoring" / "dashboard.json",
}
NOT_IN_THE_CHART = {"Namespace", "CleanupPolicy"}

# manifests/default's patch, as values: the volume points at the PVC crawler-temp-files.
DEFAULT_VALUES: dict[str, Any] = {
    "volumes": [
        {
            "name": "temp-storage",
            "mountPath": "/var/lib/tempsweep/volumes/temp-storage",
            "persistentVolumeClaim": {"claimName": "crawler-temp-files"},
        }
    ]
}


def test_the_chart_files_are_exact_copies_of_their_sources() -> None:
    files = CHART / "files"
    present = {str(p.relative_to(files)) for p in files.rglob("*") if p.is_file()}

    assert present == set(COPIES), "every file under charts/tempsweep/files has a source here"
    for copy, source in COPIES.items():
        assert not (files / copy).is_symlink(), f"{copy} is a symlink: helm packages no symlinks reliably"
        assert (files / copy).read_bytes() == source.read_bytes(), f"{copy} differs from {source}: run `make chart`"


def with_components(*components: str) -> Any:
    """An overlay of manifests/base plus COMPONENTS (directories of manifests/), as README tells users to add them."""

    def overlay(directory: Path) -> Path:
        (directory / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(REPO / "manifests" / "base", directory)],  # kustomize wants relative
            "components": [os.path.relpath(REPO / "manifests" / name, directory) for name in components],
        }))
        return directory

    return overlay


def differences(expected: dict[Any, dict[str, Any]], got: dict[Any, dict[str, Any]]) -> str:
    report = []
    for key in sorted(expected.keys() - got.keys()):
        report.append(f"only in kustomize: {key}")
    for key in sorted(got.keys() - expected.keys()):
        report.append(f"only in the chart: {key}")
    for key in sorted(expected.keys() & got.keys()):
        if expected[key] != got[key]:
            diff = difflib.unified_diff(
                yaml.safe_dump(expected[key]).splitlines(), yaml.safe_dump(got[key]).splitlines(),
                "kustomize", "helm", lineterm="", n=2,
            )
            report.append(f"{key} differs:\n" + "\n".join(list(diff)[:80]))
    return "\n".join(report)


OVERLAYS = {
    "default": (lambda _: REPO / "manifests" / "default", DEFAULT_VALUES),
    "base-with-monitoring": (with_components("monitoring"), {"monitoring": {"enabled": True}}),
    "base-with-node-agent": (with_components("node-agent"), {"nodeAgent": {"enabled": True}}),
    "base-with-both": (
        with_components("monitoring", "node-agent"), {"monitoring": {"enabled": True}, "nodeAgent": {"enabled": True}}
    ),
}


@pytest.mark.parametrize(("overlay", "values"), OVERLAYS.values(), ids=OVERLAYS.keys())
def test_helm_template_renders_the_objects_kustomize_renders(
    overlay: Any, values: dict[str, Any], tmp_path: Path
) -> None:
    by_kustomize = kustomize(overlay(tmp_path))
    kept = [d for d in by_kustomize if d["kind"] not in NOT_IN_THE_CHART]
    by_helm = template(values, tmp_path / "values")

    assert {d["kind"] for d in by_kustomize} - {d["kind"] for d in kept} <= NOT_IN_THE_CHART
    report = differences(comparable(kept), comparable(by_helm))
    assert not report, report


def test_the_comparison_would_see_a_drift(tmp_path: Path) -> None:
    """The control: a value that changes one field of one object is reported as exactly that difference."""
    default = kustomize(REPO / "manifests" / "default")
    by_kustomize = comparable([d for d in default if d["kind"] not in NOT_IN_THE_CHART])
    by_helm = comparable(template({**DEFAULT_VALUES, "dryRun": False}, tmp_path))

    report = differences(by_kustomize, by_helm)

    assert "('Deployment', 'tempsweep-system', 'tempsweep-operator') differs" in report
    changed = [line.replace(" ", "") for line in report.splitlines() if line.startswith(("-  ", "+  "))]
    assert changed == ["-value:'true'", "+value:'false'"], report
    assert report.count("differs") == 1
