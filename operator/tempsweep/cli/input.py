"""Reading manifests from files: every problem becomes one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tempsweep.models import CleanupPolicy, CleanupRun, InputError, parse_policy, parse_run
from tempsweep.models.policy import check_volume_path


def load_document(path: str) -> Any:
    """The single YAML document in ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{path}: not valid YAML{where}: {problem}") from None
    if len(documents) != 1:
        raise InputError(f"{path}: expected exactly one YAML document, found {len(documents)}")
    return documents[0]


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
