"""The API calls of node scope, over the operator's ``Kube`` clients: node labels, listing, server-side apply.

Server-side apply is what lets many writers share one status: each node's agent applies only its own
entry of a map-list keyed by node (``status.nodes``) under its own field manager
(``tempsweep-agent/NODE``), and the API server merges the entries; an apply never removes what another
manager owns. An apply must carry the whole entry every time: a field its manager applied before and
leaves out now is removed.
"""

from __future__ import annotations

from typing import Any

from tempsweep.controller.kube import REQUEST_TIMEOUT, Kube, NotFound, Written, _describe, _write_failure
from tempsweep.models import API_VERSION, GROUP, VERSION
from tempsweep.models.node_scope import label_selector

APPLY = "application/apply-patch+yaml"  # JSON is YAML: the client sends the dict as JSON
KINDS = {"cleanuppolicies": "CleanupPolicy", "cleanupruns": "CleanupRun"}


def agent_manager(node: str) -> str:
    """The field manager of one node's agent (at most 128 characters, as the API requires)."""
    return f"tempsweep-agent/{node}"[:128]


def node_labels(kube: Kube, name: str) -> dict[str, str]:
    """The labels of one Node; NotFound when there is no such node."""
    from kubernetes.client.exceptions import ApiException

    try:
        node = kube._api("core").read_node(name, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise NotFound(f"node {name!r} not found") from None
        raise
    return dict(node.metadata.labels or {})


def selected_nodes(kube: Kube, selector: dict[str, str] | None) -> list[str]:
    """Names of the Nodes the selector matches (every node without one), sorted."""
    listing = kube._api("core").list_node(label_selector=label_selector(selector), _request_timeout=REQUEST_TIMEOUT)
    return sorted(str(item.metadata.name) for item in listing.items)


def apply_status(
    kube: Kube, plural: str, meta: dict[str, Any], status: dict[str, Any], *, manager: str, resource_version: str = ""
) -> Written:
    """Server-side apply ``status`` (a partial status: the manager's own fields) to the object named by
    ``meta``. With ``resource_version`` the apply is conditional (CONFLICT when someone wrote since).
    Never raises; a failure is returned like ``Kube.patch_status``'s."""
    import logging

    metadata: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    body = {"apiVersion": API_VERSION, "kind": KINDS[plural], "metadata": metadata, "status": status}
    try:
        kube._api("custom").patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            str(meta.get("namespace")),
            plural,
            str(meta.get("name")),
            body,
            field_manager=manager,
            force=True,
            _content_type=APPLY,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except Exception as exc:
        outcome = _write_failure(exc)
        if outcome in (Written.FAILED, Written.REFUSED):
            logging.getLogger(__name__).warning(
                "apply of %s %s/%s status failed: %s", plural, meta.get("namespace"), meta.get("name"), _describe(exc)
            )
        return outcome
    return Written.DONE


def remove_entries(kube: Kube, plural: str, meta: dict[str, Any], status: dict[str, Any], nodes: set[str]) -> Written:
    """Remove the entries of ``nodes`` from ``status.nodes`` with one JSON patch that first tests each entry is
    still where it was read (a list changed since is refused, 422, and left for the next try)."""
    ops: list[dict[str, Any]] = []
    for index, entry in reversed(list(enumerate(status.get("nodes") or []))):
        if isinstance(entry, dict) and entry.get("node") in nodes:
            ops.append({"op": "test", "path": f"/status/nodes/{index}/node", "value": entry["node"]})
            ops.append({"op": "remove", "path": f"/status/nodes/{index}"})
    if not ops:
        return Written.DONE
    try:
        kube._api("custom").patch_namespaced_custom_object_status(
            GROUP, VERSION, str(meta.get("namespace")), plural, str(meta.get("name")), ops,
            _content_type="application/json-patch+json", _request_timeout=REQUEST_TIMEOUT,
        )
    except Exception as exc:
        return _write_failure(exc)
    return Written.DONE
