"""Small argument checks shared by the modules (each error names the value and what is expected)."""

from __future__ import annotations


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1 (bools rejected), else raise ``ValueError`` naming it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value
