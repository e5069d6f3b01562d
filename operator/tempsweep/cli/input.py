"""Reading manifests from files: every problem becomes one line naming the file and the field."""

from __future__ import annotations

from typing import Any

from tempsweep.cli.strict_yaml import ManifestError, load_manifest
from tempsweep.models import CleanupPolicy, CleanupRun, InputError, parse_policy, parse_run
from tempsweep.models.paths import check_volume_path


def load_document(path: str) -> Any:
    """The single YAML document in ``path``, read strictly (``strict_yaml``): size, duplicates, aliases."""
    try:
        return load_manifest(path)
    except ManifestError as exc:
        raise InputError(f"{path}: {exc}") from None


def load_policy(path: str, override_path: str | None = None) -> CleanupPolicy:
    """The policy in ``path``, with ``--path`` replacing spec.storage.volume.path when given."""
    document = load_document(path)
    if override_path is not None:
        try:
            check_volume_path(override_path)
        except ValueError as exc:
            raise InputError(f"--path: {exc}") from None
        spec = document.get("spec") if isinstance(document, dict) else None
        if isinstance(spec, dict):
            storage = spec.get("storage")
            if not isinstance(storage, dict):
                storage = spec["storage"] = {}
            if storage.get("azureBlob") is not None:
                raise InputError("--path: the policy uses azureBlob storage; --path only applies to volumes")
            volume = storage.get("volume")
            storage["volume"] = {**(volume if isinstance(volume, dict) else {}), "path": override_path}
    return parse_policy(document, source=path)


def load_run(path: str) -> CleanupRun:
    return parse_run(load_document(path), source=path)
