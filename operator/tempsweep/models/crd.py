"""CustomResourceDefinitions generated from the pydantic models (pure: returns dicts).

The models' JSON Schema is turned into a Kubernetes structural schema: ``$ref`` inlined,
``Optional[X]`` as plain ``X``, int-or-string quantities marked ``x-kubernetes-int-or-string``,
field descriptions kept so ``kubectl explain`` is useful, and cross-field rules added as CEL
``x-kubernetes-validations`` so the API server rejects what the models would reject.
``tempsweep crds`` writes the result to ``crds/``; a test fails when the files drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from tempsweep.models.documents import GROUP, VERSION
from tempsweep.models.idchars import MAX_ID_LENGTH
from tempsweep.models.policy import CleanupPolicySpec
from tempsweep.models.resources import INLINE_KEY, CleanupRunStatus, PolicyStatus
from tempsweep.models.run import CleanupRunSpec

_DROP = {"title", "additionalProperties", "$defs"}

#: Cross-field rules, keyed by schema definition name, mirroring the models' validators.
CEL_RULES: dict[str, list[dict[str, str]]] = {
    "StorageSpec": [
        {
            "rule": "has(self.volume) != has(self.azureBlob)",
            "message": "set exactly one storage backend: volume or azureBlob",
        },
    ],
    "ThresholdsSpec": [
        {
            "rule": "!has(self.warningPercent) || !has(self.emergencyPercent) || "
            "self.warningPercent < self.emergencyPercent",
            "message": "warningPercent must be below emergencyPercent",
        },
    ],
    "VolumeStorage": [
        {
            "rule": "!has(self.path) || (self.path.startsWith('/') && !self.path.matches('(^|/)[.][.](/|$)'))",
            "message": "path must be absolute and must not contain '..'",
        },
        {
            "rule": "!has(self.nodeSelector) || (has(self.scope) && self.scope == 'Node')",
            "message": "nodeSelector only applies to scope Node",
        },
    ],
    "AzureBlobStorage": [
        {
            "rule": "(has(self.connectionString) ? 1 : 0) + (has(self.connectionStringSecretRef) ? 1 : 0) + "
            "(has(self.accountUrl) ? 1 : 0) == 1",
            "message": "set exactly one of connectionString, connectionStringSecretRef and accountUrl",
        },
    ],
    "CleanupRunSpec": [
        {
            "rule": "self.type != 'ChunkCompletion' || (has(self.jobId) && has(self.chunkId))",
            "message": "ChunkCompletion needs jobId and chunkId",
        },
        {
            "rule": "self.type == 'ChunkCompletion' || (!has(self.chunkId) && !has(self.completedFiles))",
            "message": "chunkId and completedFiles only apply to ChunkCompletion",
        },
        {
            "rule": "self.type in ['ChunkCompletion', 'CrashRecovery'] || !has(self.jobId)",
            "message": "jobId only applies to ChunkCompletion and CrashRecovery",
        },
        {
            "rule": "self.type == 'Orphaned' || !has(self.maxAgeHours)",
            "message": "maxAgeHours only applies to Orphaned",
        },
    ],
}

#: printable ASCII without space, '/', '[', '\\', ']' and '^' (``idchars.UNIVERSE``): the widest an id may be;
#: the policy's naming.idCharacters narrows it when the run starts
_ID_RULES: dict[str, Any] = {"minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": "^[!-.0-Z_-~]+$"}

#: Rules on single values (cheap for the API server's CEL cost budget), keyed by property name.
PROPERTY_RULES: dict[str, dict[str, Any]] = {
    "jobId": _ID_RULES,
    "chunkId": _ID_RULES,
    "completedFiles": {
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": "^[^/\\x00]+$",
            "x-kubernetes-validations": [
                {
                    "rule": "self != '.' && self != '..'",
                    "message": "completedFiles entries must be plain file names (no '/', '.', '..' or empty names)",
                },
            ],
        }
    },
}


def _convert(node: dict[str, Any], defs: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    if "$ref" in node:
        ref = node["$ref"].rsplit("/", 1)[-1]
        merged = _convert(defs[ref], defs, ref)
        return {**merged, **_annotations(node)}
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        types = sorted(option.get("type", "") for option in options)
        if types == ["integer", "string"]:
            return {"x-kubernetes-int-or-string": True, **_annotations(node)}
        if types == ["integer", "number"]:
            return {"type": "number", **_annotations(node)}
        if len(options) == 1:
            return {**_convert(options[0], defs), **_annotations(node)}
        raise ValueError(f"cannot express anyOf {types} in a structural schema")
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or (key == "default" and value is None):
            continue
        if key == "properties":
            result["properties"] = _properties(value, defs)
        elif key == "items":
            result["items"] = _convert(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            result[bound] = value
            result[key] = True
        else:
            result[key] = value
    if isinstance(node.get("additionalProperties"), dict):
        result["additionalProperties"] = _convert(node["additionalProperties"], defs)
    if "enum" in result and "type" not in result:
        result["type"] = "string"
    if name in CEL_RULES:
        result["x-kubernetes-validations"] = CEL_RULES[name]
    return result


def _properties(properties: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Converted properties; an INLINE property's own properties are merged in flat (see resources.py)."""
    converted: dict[str, Any] = {}
    inlined: dict[str, Any] = {}
    for prop, schema in properties.items():
        if schema.get(INLINE_KEY):
            plain = {key: value for key, value in schema.items() if key != INLINE_KEY}
            inlined.update(_convert(plain, defs).get("properties", {}))
        else:
            converted[prop] = {**_convert(schema, defs), **PROPERTY_RULES.get(prop, {})}
    return {**converted, **{prop: schema for prop, schema in inlined.items() if prop not in converted}}


def _annotations(node: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {
        key: node[key] for key in ("description", "default") if key in node and node[key] is not None
    }
    # list markers such as x-kubernetes-list-type: map (server-side apply merges such lists by key)
    kept.update({key: value for key, value in node.items() if key.startswith("x-kubernetes-")})
    return kept


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema as a Kubernetes structural schema."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    converted = _convert(schema, schema.get("$defs", {}), model.__name__)
    # a copy that shares no list or dict between two places (YAML would write anchors for shared ones)
    copied: dict[str, Any] = json.loads(json.dumps(converted))
    return copied


@dataclass(frozen=True)
class _Resource:
    """One custom resource: its names, its models and how ``kubectl get`` shows it."""

    kind: str
    plural: str
    short_names: list[str]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: list[dict[str, Any]]


def _crd(resource: _Resource) -> dict[str, Any]:
    kind, plural, description = resource.kind, resource.plural, resource.description
    spec_schema = structural_schema(resource.spec)
    status_schema = structural_schema(resource.status)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": resource.short_names,
                "categories": ["tempsweep"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": resource.columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def _column(name: str, path: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "jsonPath": path, **extra}


def custom_resource_definitions() -> dict[str, dict[str, Any]]:
    """File name -> CRD, for both resources."""
    age = _column("Age", ".metadata.creationTimestamp", "date")
    return {
        f"{GROUP}_cleanuppolicies.yaml": _crd(
            _Resource(
                kind="CleanupPolicy",
                plural="cleanuppolicies",
                short_names=["ctp", "cleanpol"],
                spec=CleanupPolicySpec,
                status=PolicyStatus,
                description="Which temp storage to keep from overflowing, how its files are named, where job "
                "status lives, and the thresholds, schedules and limits of its cleanups.",
                columns=[
                    _column("Health", ".status.health"),
                    _column("Usage", ".status.usagePercent", "number", format="float"),
                    _column("Files", ".status.tempFilesCount", "integer"),
                    _column("Orphaned", ".status.orphanedFilesCount", "integer"),
                    _column("Full In", ".status.prediction.fullIn"),
                    _column("Last Cleanup", ".status.lastCleanupTime", "date"),
                    age,
                ],
            )
        ),
        f"{GROUP}_cleanupruns.yaml": _crd(
            _Resource(
                kind="CleanupRun",
                plural="cleanupruns",
                short_names=["ctr", "cleanrun"],
                spec=CleanupRunSpec,
                status=CleanupRunStatus,
                description="One manual cleanup of a policy's storage: ChunkCompletion, CrashRecovery, Emergency, "
                "Orphaned, Scheduled or Predictive. Its status records what it did.",
                columns=[
                    _column("Policy", ".spec.policyRef.name"),
                    _column("Type", ".spec.type"),
                    _column("Phase", ".status.phase"),
                    _column("Deleted", ".status.filesDeleted", "integer"),
                    _column("Freed", ".status.bytesFreed", "integer"),
                    age,
                    _column("Reason", ".status.reason", priority=1),  # -o wide: e.g. BlastRadiusExceeded
                    _column("Queue", ".status.queuePosition", "integer", priority=1),  # -o wide: place while Pending
                ],
            )
        ),
    }
