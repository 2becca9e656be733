"""Go durations (`time.ParseDuration`'s form), as goapp reads its timeouts from the environment."""

from __future__ import annotations

import re
from decimal import Decimal

_UNITS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),
    "μs": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
DURATION_FORM = "a Go duration such as 500ms, 10s or 1m30s"


def parse_duration(text: str) -> Decimal:
    """Seconds in a Go duration; ValueError names the accepted form. Like Go, "0" alone needs no unit."""
    body = text.strip()
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if body == "0":
        return Decimal(0)
    position, total = 0, Decimal(0)
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += Decimal(match[1]) * _UNITS[match[2]]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"{text!r} is not {DURATION_FORM}")
    return sign * total
