"""A tqdm progress bar when tqdm is installed and wanted, a silent stand-in otherwise."""

from __future__ import annotations

__all__ = ["progress_bar"]


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, s: str) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int, enabled: bool = True, desc: str = "", unit: str = "epoch"):
    """``tqdm(total=..., desc=..., unit=...)``, or an object with the same three methods doing nothing."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit)
