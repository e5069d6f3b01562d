"""Whole Kubernetes objects (apiVersion, kind, metadata, spec) and turning bad input into one clear line.

Both the CLI (YAML files) and the operator (objects from the API server) build specs through
``parse_policy`` / ``parse_run``, so a mistake reads the same everywhere:
``policy.yaml: spec.thresholds.warningPercent: Input should be greater than 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from tempsweep.models.policy import CleanupPolicySpec
from tempsweep.models.run import CleanupRunSpec

GROUP = "tempsweep.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class InputError(ValueError):
    """Bad input: the message names the file or object and the field."""


class ObjectMeta(BaseModel):
    """The metadata tempsweep reads; everything else Kubernetes puts there is kept out of the way."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None


TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")


class CleanupPolicy(BaseModel):
    """A whole policy object. Unknown top-level keys are refused: a ``dryRun: true`` indented one level
    too far out must not be dropped silently while the run deletes. ``status`` is accepted and ignored
    (the API server sends it; a manifest saved with ``kubectl get -o yaml`` carries it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_version: Literal["tempsweep.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["CleanupPolicy"]
    metadata: ObjectMeta
    spec: CleanupPolicySpec
    status: Any = Field(default=None, exclude=True)


class CleanupRun(BaseModel):
    """A whole run object; top-level keys as strict as a policy's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_version: Literal["tempsweep.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["CleanupRun"]
    metadata: ObjectMeta
    spec: CleanupRunSpec
    status: Any = Field(default=None, exclude=True)


def _spec_field_names(model: type[BaseModel] | None) -> set[str]:
    spec = model.model_fields.get("spec") if model is not None else None
    annotation = spec.annotation if spec is not None else None
    if not isinstance(annotation, type) or not issubclass(annotation, BaseModel):
        return set()
    return {info.alias or name for name, info in annotation.model_fields.items()}


def describe_validation_error(
    exc: ValidationError, *, source: str, model: type[BaseModel] | None = None
) -> str:
    """One line: the source, the field path in wire spelling, and what is wrong (plus a count if more)."""
    errors = exc.errors()
    first = errors[0]
    # a default checked with validate_default is reported under its Python name: spell it as on the wire
    path = ".".join(
        to_camel(part) if isinstance(part, str) and "_" in part else str(part)
        for part in first["loc"]
        if not str(part).startswith("function-after")
    )
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
        if len(first["loc"]) == 1:
            message += f" (the top level holds only {', '.join(TOP_LEVEL)}"
            if path in _spec_field_names(model):
                message += f"; did you mean spec.{path}?"
            message += ")"
    elif first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "literal_error" and path in {"apiVersion", "kind"}:
        message = f"got {first.get('input')!r}, {message[0].lower()}{message[1:]}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    where = f"{path}: " if path else ""
    return f"{source}: {where}{message}{more}"


def _parse(model: type[BaseModel], document: Any, source: str) -> Any:
    if not isinstance(document, Mapping):
        raise InputError(f"{source}: expected a Kubernetes object (a mapping with apiVersion, kind, spec)")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, source=source, model=model)) from None


def parse_policy(document: Any, *, source: str) -> CleanupPolicy:
    """A CleanupPolicy from a decoded YAML/JSON document; InputError names the field."""
    result: CleanupPolicy = _parse(CleanupPolicy, document, source)
    return result


def parse_run(document: Any, *, source: str) -> CleanupRun:
    """A CleanupRun from a decoded YAML/JSON document; InputError names the field."""
    result: CleanupRun = _parse(CleanupRun, document, source)
    return result
