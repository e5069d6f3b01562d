"""Every part of a spec refuses fields it does not know, at every depth, and so does the whole object.

The models are walked from the two specs, so a nested model added later without ``WireModel`` (or with
``extra`` loosened) fails here, not in a user's cluster by silently ignoring a misspelt field.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from sweep_helpers import policy_document, run_document
from tempsweep.models import CleanupPolicySpec, CleanupRunSpec, InputError, parse_policy, parse_run
from tempsweep.models.base import WireModel


def _nested_models(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        for candidate in _types_in(field.annotation):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                yield from _nested_models(candidate, seen)


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for argument in typing.get_args(annotation):
            yield from _types_in(argument)


SPEC_MODELS = sorted(
    {*_nested_models(CleanupPolicySpec, set()), *_nested_models(CleanupRunSpec, set())}, key=lambda m: m.__name__
)


def test_the_walk_finds_the_nested_models() -> None:
    names = {model.__name__ for model in SPEC_MODELS}
    assert {"CleanupPolicySpec", "CleanupRunSpec", "ThresholdsSpec", "DatabaseSpec", "PolicyRef"} <= names
    assert len(names) >= 10


@pytest.mark.parametrize("model", SPEC_MODELS, ids=lambda m: m.__name__)
def test_every_spec_model_forbids_unknown_fields(model: type[BaseModel]) -> None:
    assert issubclass(model, WireModel)
    assert model.model_config.get("extra") == "forbid"


#: Mappings whose keys are data, not field names, each checked key by key (tests/nodes/test_node_models.py).
CHECKED_MAPPINGS = {"VolumeStorage.node_selector"}  # node labels: every key and value must be a label's


@pytest.mark.parametrize("model", SPEC_MODELS, ids=lambda m: m.__name__)
def test_no_spec_field_is_a_free_form_mapping(model: type[BaseModel]) -> None:
    """A dict-typed field would take any key unchecked (the same hole as extra='allow')."""
    for name, field in model.model_fields.items():
        if f"{model.__name__}.{name}" in CHECKED_MAPPINGS:
            continue
        for candidate in _types_in(field.annotation):
            assert typing.get_origin(candidate) is not dict and candidate is not dict, f"{model.__name__}.{name}"


@pytest.mark.parametrize(
    ("document", "parse", "expected"),
    [
        ({**policy_document("/srv/tmp"), "dryRun": True}, parse_policy, "p.yaml: dryRun: unknown field"),
        ({**run_document("Emergency"), "dryRun": True}, parse_run, "p.yaml: dryRun: unknown field"),
        ({**run_document("Emergency"), "Spec": {}}, parse_run, "p.yaml: Spec: unknown field"),
        (policy_document("/srv/tmp", storage={"volume": {"x": 1}}), parse_policy, "spec.storage.volume.x: unknown"),
    ],
    ids=["policy-top-level", "run-top-level", "run-capitalised", "policy-deep"],
)
def test_the_operators_parse_refuses_unknown_keys_too(document: dict[str, Any], parse: Any, expected: str) -> None:
    """The operator parses API objects with the same functions: an unknown top-level key is refused."""
    with pytest.raises(InputError) as raised:
        parse(document, source="p.yaml")
    assert expected in str(raised.value)


def test_status_and_unknown_metadata_are_accepted() -> None:
    """What the API server adds (status; uid, labels, managedFields... in metadata) is not the user's typo."""
    document = {**run_document("Emergency"), "status": {"phase": "Running"}}
    document["metadata"] = {**document["metadata"], "uid": "1", "labels": {"a": "b"}, "managedFields": []}
    assert parse_run(document, source="p.yaml").spec.type.value == "Emergency"
