"""``tempsweep operator``: start Kopf with tempsweep's handlers."""

from __future__ import annotations

import logging
import sys

from tempsweep.models import SettingsError, load_settings


def run_operator(*, namespaces: list[str], liveness: str | None, peering: str | None) -> int:
    """Run until stopped. Standalone unless a peering object is named (for more than one replica)."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tempsweep: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import kopf

    from tempsweep.controller import handlers

    handlers.configure(settings)
    kopf.run(
        standalone=peering is None,
        peering_name=peering,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness or None,
    )
    return 0
