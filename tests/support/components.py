"""How tests treat a missing real component.

Locally a missing component skips its tests with a message saying how to get it; in CI (``CI=true``)
a missing component fails, because a green run that silently skipped PostgreSQL would prove nothing.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_component(what: str, how: str) -> None:
    """Skip (locally) or fail (in CI) because a real component is not available."""
    message = f"{what} is not available: {how}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
