"""The base every wire object shares: camelCase on the wire, unknown fields rejected.

Kubernetes objects are camelCase; Python code is snake_case. One alias generator keeps both
honest, and ``extra="forbid"`` makes a typo (``maxAgeHour``) an error instead of a silently
ignored field that leaves a default in force.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AllowInfNan, BaseModel, ConfigDict, Strict
from pydantic.alias_generators import to_camel

#: A number as a manifest may give it: no string coercion, and never NaN or infinite (YAML's .nan / .inf
#: and 1e400 are floats to PyYAML, but JSON, and so the API server, has no such numbers).
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]


class WireModel(BaseModel):
    """A part of a Kubernetes object: camelCase aliases, strict about unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, object]:
        """The object as it appears in YAML/JSON: camelCase keys, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
