"""Small argument checks shared by the modules (each error names the value and what is expected)."""

from __future__ import annotations

import math


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1 (bools rejected), else raise ``ValueError`` naming it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_positive(name: str, value: object, what: str = "") -> float:
    """Return ``value`` as a float if it is finite and > 0, else raise ``ValueError`` naming it (``what``
    names the owner, e.g. ``"SpiKLIP"``)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what + ' ' if what else ''}{name} must be a number > 0, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{what + ' ' if what else ''}{name} must be finite and > 0, got {value!r}")
    return number
