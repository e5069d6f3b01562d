"""The Helm chart (charts/tempsweep) through the real helm binary, and its comparison with manifests/.

    helm(*args)                   the helm built by `make helm` (tests/helm/build.sh); missing: skip locally,
                                  fail in CI
    template(values, ...)         `helm template` of the chart as a list of objects
    kustomize(directory)          `kubectl kustomize DIRECTORY` with the built kubectl (no cluster needed)
    comparable(objects)           objects keyed by (kind, namespace, name), Helm's bookkeeping removed

What "the same objects" means: equal after removing exactly Helm's own labels (instance, managed-by,
version, helm.sh/chart: wherever labels or label selectors appear) and the helm.sh/resource-policy
annotation that keeps the CRDs on uninstall. Nothing else is ignored.
"""

from __future__ import annotations

import copy
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from support.components import missing_component

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tempsweep"
BIN_DIR = Path(os.environ.get("TEMPSWEEP_BIN_DIR", REPO / ".local" / "bin"))
RELEASE = "tempsweep"
NAMESPACE = "tempsweep-system"

HELM_LABELS = frozenset({
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
})
HELM_ANNOTATIONS = frozenset({"helm.sh/resource-policy"})


def _binary(name: str, how: str) -> Path:
    path = BIN_DIR / name
    if not os.access(path, os.X_OK):
        missing_component(f"{name} ({path})", how)
    return path


def helm(
    *args: str, check: bool = True, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the built helm with ARGS; CHECK: fail with its output on a non-zero exit."""
    command = [str(_binary("helm", "run `make helm` (bash tests/helm/build.sh)")), *args]
    # HELM_*_HOME under a private directory: no user configuration or repositories leak in.
    home = BIN_DIR.parent / "helm-home"
    base = {**os.environ, **(env or {})}
    environment = {
        **base,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, env=environment)
    if check and result.returncode != 0:
        raise AssertionError(
            f"helm failed (exit {result.returncode}): {shlex.join(command)}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def values_args(values: dict[str, Any] | None, directory: Path) -> list[str]:
    """`--values FILE` for VALUES written to a file in DIRECTORY (none for None)."""
    if values is None:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"values-{len(list(directory.glob('values-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["--values", str(path)]


def template(
    values: dict[str, Any] | None,
    directory: Path,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    """`helm template RELEASE charts/tempsweep -n NAMESPACE` with VALUES, as a list of objects."""
    result = helm("template", release, str(CHART), "--namespace", namespace, *values_args(values, directory))
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def refused(values: dict[str, Any], directory: Path) -> str:
    """`helm template` with VALUES must fail; its error output."""
    result = helm("template", RELEASE, str(CHART), "-n", NAMESPACE, *values_args(values, directory), check=False)
    assert result.returncode != 0, f"helm template accepted {values}:\n{result.stdout[:2000]}"
    return result.stderr


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIRECTORY` with the kubectl `make controlplane` built (no API server involved)."""
    kubectl = _binary("kubectl", "run `make controlplane` (bash tests/controlplane/build.sh)")
    result = subprocess.run([str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {directory}: {result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _strip(mapping: dict[str, Any], key: str, remove: frozenset[str]) -> None:
    """Remove the keys REMOVE from the map MAPPING[KEY], and that map itself when it is left empty."""
    inner = mapping.get(key)
    if isinstance(inner, dict):
        for name in remove & inner.keys():
            del inner[name]
        if not inner:
            del mapping[key]


def _without_helm(node: Any) -> None:
    """Remove Helm's labels from every labels/matchLabels/selector map, and its annotations, in place."""
    if isinstance(node, dict):
        for key in ("labels", "matchLabels"):
            _strip(node, key, HELM_LABELS)
        if node.get("selector") and all(isinstance(v, str) for v in node["selector"].values()):
            _strip(node, "selector", HELM_LABELS)  # a Service's selector
        _strip(node, "annotations", HELM_ANNOTATIONS)
        for value in node.values():
            _without_helm(value)
    elif isinstance(node, list):
        for value in node:
            _without_helm(value)


def key(document: dict[str, Any]) -> tuple[str, str, str]:
    metadata = document["metadata"]
    return document["kind"], metadata.get("namespace", ""), metadata["name"]


def comparable(documents: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """DOCUMENTS keyed by (kind, namespace, name), without Helm's bookkeeping; duplicates fail."""
    result: dict[tuple[str, str, str], dict[str, Any]] = {}
    for document in documents:
        clean = copy.deepcopy(document)
        _without_helm(clean)
        assert key(clean) not in result, f"{key(clean)} twice"
        result[key(clean)] = clean
    return result
