"""Import optional dependencies with an error that says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require", "MissingDependencyError"]


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names the pip extra that brings it."""


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependencyError` naming the pip extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        what = feature or "this feature"
        raise MissingDependencyError(
            f"{what} needs the optional package '{top}', which is not installed ({exc}). "
            f"Install it with: pip install 'snn-motifs[{extra}]'"
        ) from exc
