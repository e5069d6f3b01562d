"""Shared test set-up: the real components (PostgreSQL, Azurite, the control plane) come as plugins."""

pytest_plugins = [
    "support.components",
    "support.postgres_server",
    "support.azurite_server",
    "support.controlplane",
    "support.operator_process",
    "support.prometheus_server",
    "support.node_agents",
]
