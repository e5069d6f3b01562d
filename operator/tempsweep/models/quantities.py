"""Kubernetes-style quantities (``50Gi``) and durations (``5m``), parsed without any I/O.

Policies are written by people who know Kubernetes; they write ``capacity: 50Gi`` and
``statsInterval: 30s``. These parsers accept exactly those forms and say what is wrong otherwise.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTPE]i|[kMGTPE])?\s*$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_quantity(value: int | float | str) -> int:
    """Bytes for a quantity such as ``1Gi``, ``500M``, ``1048576``; raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 50Gi or a number of bytes, not a boolean")
    if isinstance(value, int | float):
        number = Decimal(str(value))
        suffix = None
    else:
        match = _QUANTITY.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a size: use bytes or a quantity such as 512Mi, 50Gi, 1T")
        try:
            number = Decimal(match.group(1))
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
            raise ValueError(f"{value!r} is not a size") from exc
        suffix = match.group(2)
    multiplier = _BINARY.get(suffix or "") or _DECIMAL.get(suffix or "") or 1
    result = number * multiplier
    if result < 0:
        raise ValueError("a size cannot be negative")
    return int(result)


def parse_duration(value: str | int | float) -> float:
    """Seconds for a duration such as ``30s``, ``5m``, ``1h30m``; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s or 5m, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value.strip())
        if not value.strip() or not match:
            raise ValueError(f"{value!r} is not a duration: use forms such as 30s, 5m, 1h, 1h30m")
        hours, minutes, secs = (int(part) if part else 0 for part in match.groups())
        seconds = float(hours * 3600 + minutes * 60 + secs)
    if seconds <= 0:
        raise ValueError("a duration must be longer than zero")
    return seconds


def format_bytes(size: int) -> str:
    """A human size (``1.5Gi``) for messages and events."""
    value = float(size)
    for unit in ("", "Ki", "Mi", "Gi", "Ti"):
        if abs(value) < 1024 or unit == "Ti":
            return f"{value:.0f}{unit}B" if unit == "" else f"{value:.1f}{unit}B"
        value /= 1024
    return f"{value:.1f}PiB"  # pragma: no cover
