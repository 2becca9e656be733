"""Kubernetes resource quantities: parsing for validation and comparison.

Only the two families Kubernetes accepts are valid: binary suffixes (Ki, Mi, …) and
decimal ones (m, k, M, …) or a plain/exponent number. Values are compared as exact
Decimals, so `1Gi` ≥ `1024Mi` and `0.5` == `500m` hold without float error.
"""

from __future__ import annotations

import re
from decimal import Decimal

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exponent>[eE][+-]?\d+)|(?P<decimal>[numkMGTPE]?))$"
)

QUANTITY_FORM = "a Kubernetes quantity such as 250m, 0.5, 128Mi or 1Gi"


def parse_quantity(text: str) -> Decimal:
    """Return the exact value of a Kubernetes quantity; ValueError names the accepted form."""
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not {QUANTITY_FORM}")
    number = Decimal(match["number"])
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["exponent"]:
        return number * Decimal(10) ** int(match["exponent"][1:])
    return number * _DECIMAL[match["decimal"] or ""]
