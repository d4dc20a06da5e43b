"""Run-folder files that survive crashes and refuse untrusted code.

Every artefact (JSON results, configs, checkpoints, trained models) is written through
:func:`atomic_write_bytes`: a temporary file in the same folder, flushed and ``fsync``-ed, then moved over
the target with ``os.replace``, so a reader sees the old file or the new one, never half of one. Readers
name the file and say how to recover when it cannot be parsed. Checkpoints are loaded with
``torch.load(..., weights_only=True)``: tensors, containers and plain values only, never pickled code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_path",
    "write_json",
    "read_json",
    "save_torch",
    "load_torch",
    "remove_stale_temps",
    "fingerprint",
]

#: name pattern of the temporary files :func:`atomic_write_bytes` creates next to their target
TEMP_GLOB = ".*.tmp"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """For writers that need a file name (HDF5, ...): yields a temporary path in the same folder, moved
    over ``path`` when the block succeeds and removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder`` and its subfolders; returns them."""
    stale = [p for p in Path(folder).rglob(TEMP_GLOB) if p.is_file()] if Path(folder).is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def fingerprint(*tensors: torch.Tensor) -> str:
    """A short SHA-256 of the tensors' shapes, dtypes and bytes (identifies a data set on resume)."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2))


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Parse a JSON artefact; a missing or corrupt file raises ``ValueError`` naming it and the remedy."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{what} {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); delete it to have it "
            "rebuilt (a search re-runs that seed with --resume), or restore it from a copy"
        ) from exc


def save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_torch(path: str | os.PathLike, map_location: str | torch.device | None = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: a file that would need to run code to load is refused.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming the file) for a corrupt,
    truncated or unsafe one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        unsafe = isinstance(exc, pickle.UnpicklingError) and "unsupported global" in str(exc).lower()
        reason = (
            "it holds Python objects that would run code when loaded, so it was refused (only tensors, "
            "containers and plain values are loaded); do not use files from untrusted sources"
            if unsafe
            else f"it is corrupt, truncated or not a torch file ({type(exc).__name__})"
        )
        remedy = "delete it (or the run folder) to start afresh"
        raise ValueError(f"cannot load {path}: {reason}; {remedy}") from exc
