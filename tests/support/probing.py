"""Two small helpers every test of a local process needs: a free loopback port, and polling until ready.

Kept in one place so that all fixtures (PostgreSQL, Azurite, the control plane, the operator) time out
and report the same way.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str | Callable[[], str], probe: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.2
) -> T:
    """Poll PROBE until it returns something truthy and return that; fail naming WHAT after TIMEOUT s.

    WHAT may be a function, called only on failure (e.g. to add the tail of a log).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout:g} s waiting for {described} (last value: {value!r})", pytrace=False)
        time.sleep(interval)
