"""The shipped Grafana dashboard's panels and PromQL, as Grafana would send it to Prometheus.

Shared by the dashboard's static tests (tests/monitoring) and the e2e test where a real Prometheus
answers every query (tests/e2e/test_operator_prometheus.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "manifests" / "monitoring" / "dashboard.json"
#: What Grafana substitutes before a query reaches Prometheus (all namespaces and policies selected).
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*", "$policy": ".*"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    """The panels that query (rows only group them)."""
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def queries(variables: dict[str, str] | None = None) -> list[str]:
    """Every panel target's expression with Grafana's variables substituted."""
    found = []
    for panel in panels():
        for target in panel["targets"]:
            query = target["expr"]
            for variable, value in (variables or GRAFANA_VARIABLES).items():
                query = query.replace(variable, value)
            found.append(query)
    return found
