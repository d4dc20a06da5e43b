"""Run-folder files that survive crashes and refuse untrusted code.

Every artefact (JSON results, configs, checkpoints, trained models) is written through
:func:`atomic_write_bytes`: a temporary file in the same folder, flushed and ``fsync``-ed, then moved over
the target with ``os.replace``, so a reader sees the old file or the new one, never half of one. Readers
name the file and say how to recover when it cannot be parsed. Checkpoints are loaded with
``torch.load(..., weights_only=True)``: tensors, containers and plain values only, never pickled code.
Files are created with the mode ``open()`` would give them (``0o666`` less the umask), not ``0600``.

A run folder is held by one process at a time (:class:`RunFolderLock`, ``out/.lock``): a second run on the
same folder is refused before it touches anything (it would otherwise delete the first one's in-flight
temporary files as stale), and a lock left behind by a dead process is taken over.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import functools
import hashlib
import io
import json
import os
import pickle
import secrets
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # Windows: the pid-file lock below
    fcntl = None

import torch

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_path",
    "write_json",
    "read_json",
    "parse_json",
    "save_torch",
    "load_torch",
    "remove_stale_temps",
    "fingerprint",
    "folder_has_files",
    "FolderInUse",
    "RunFolderLock",
    "run_folder_scope",
    "hold_run_folder",
]

#: name pattern of the temporary files :func:`atomic_write_bytes` creates next to their target
TEMP_GLOB = ".*.tmp"


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, empty temporary file next to ``path`` (named ``.<name>.<random>.tmp``, :data:`TEMP_GLOB`),
    opened for writing. It is created with mode ``0o666`` less the umask, as ``open(path, "w")`` would
    create ``path`` itself (``tempfile.mkstemp`` forces ``0600``, which the rename would hand on)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path.parent))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None and exc.strerror:  # a full disk names the file being written
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """For writers that need a file name (HDF5, ...): yields a temporary path in the same folder, moved
    over ``path`` when the block succeeds and removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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


#: what :func:`read_json` advises for a run artefact (a file the library wrote and can write again)
REBUILD = "delete it to have it rebuilt (a search re-runs that seed with --resume), or restore it from a copy"


def parse_json(text: str, what: str = "JSON") -> Any:
    """``json.loads`` whose every failure is a one-line ``ValueError`` naming ``what``: invalid JSON (with
    the line and column) and JSON nested too deeply to parse (Python's ``RecursionError``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to parse (thousands of brackets)") from None


def read_json(path: str | os.PathLike, what: str = "file", remedy: str = REBUILD) -> Any:
    """Parse a JSON file; a missing file raises ``FileNotFoundError``, an unreadable, binary, invalid or
    too deeply nested one a one-line ``ValueError`` naming it and ``remedy`` (default: for a run
    artefact, delete it to have it rebuilt)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except RecursionError:
        raise ValueError(f"{what} {path} is nested too deeply to parse; {remedy}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        if remedy is REBUILD:  # a run artefact: damaged after the library wrote it
            reason = f"is corrupt or unreadable ({type(exc).__name__}: {exc})"
        elif isinstance(exc, json.JSONDecodeError):
            reason = f"is not valid JSON ({exc})"
        elif isinstance(exc, UnicodeDecodeError):
            reason = f"is not UTF-8 text (a binary file? byte {exc.start}: {exc.reason})"
        else:
            reason = f"cannot be read ({exc.strerror or exc})"
        raise ValueError(f"{what} {path} {reason}; {remedy}") from exc


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


# -- one process per run folder ---------------------------------------------------------------------------

#: the lock file of a run folder: the holder's pid, host, start time and command line, as JSON
LOCK_FILE = ".lock"


def folder_has_files(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds anything besides a run-folder lock (a missing folder holds nothing)."""
    folder = Path(folder)
    return folder.is_dir() and any(p.name != LOCK_FILE for p in folder.iterdir())


class FolderInUse(ValueError):
    """Another live process holds the run folder (a ``ValueError``: the CLI prints it as one line)."""


def _holder_info() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv)[:300],
    }


def _parse_holder(raw: bytes) -> dict:
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else {}


def _alive(info: dict) -> bool:
    """Whether the holder a lock file names may still run: it does (same host), or it cannot be told
    (another host); a pid that no longer exists on this host is a stale lock."""
    if info.get("host") != socket.gethostname():
        return True
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class RunFolderLock:
    """An advisory lock on a run folder: ``folder/.lock`` holds the holder's pid, host and start time.

    ``fcntl.flock`` on that file where the OS has it (POSIX): the kernel releases it when the holder dies,
    even by ``kill -9``, so a lock file left behind is simply taken over; where ``flock`` is missing
    (Windows) or refused by the file system, the file is created exclusively and a file naming a process
    that no longer exists on this host is taken over. A second holder gets :class:`FolderInUse`, one line
    naming the holder. Use as a context manager, or :meth:`acquire` / :meth:`release`; the lock file is
    removed on release, and so is the folder when acquiring created it and nothing else was written.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None
        self._pidfile = False
        self._created_folder = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunFolderLock:
        """Take the lock or raise :class:`FolderInUse`."""
        if self.held:
            raise RuntimeError(f"{self.path} is already held by this lock object")
        self._created_folder = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = self._flock() if fcntl is not None else None
            if fd is None:  # no flock here: the pid-file lock
                self._pidfile = True
                fd = self._create_pidfile()
            self._fd = fd
        except BaseException:
            self._remove_created_folder()
            raise
        return self

    def release(self) -> None:
        """Remove the lock file and let go (a no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if not self._pidfile or _parse_holder(self.path.read_bytes()).get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)  # while still locked: a waiting opener re-checks the inode
        except OSError:
            pass
        finally:
            if fd >= 0:
                os.close(fd)
            self._remove_created_folder()

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- the two mechanisms -----------------------------------------------------------------------------
    def _in_use(self, info: dict) -> FolderInUse:
        if not info:
            who = "another process (it is starting, or its lock file is unreadable)"
        else:
            host = info.get("host")
            where = "" if host == socket.gethostname() else f" on host {host}"
            own = " (this process)" if not where and info["pid"] == os.getpid() else ""
            who = f"process {info['pid']}{where}{own} (started {info.get('started', '?')})"
        return FolderInUse(
            f"run folder {self.folder} is in use by {who}; wait for it or choose another --out"
            + (f" (or delete {self.path} if that process is gone)" if self._pidfile else "")
        )

    def _flock(self) -> int | None:
        """The file descriptor holding the flock, or None where the file system refuses flock."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        while True:
            fd = os.open(self.path, flags, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _parse_holder(os.pread(fd, 4096, 0))
                os.close(fd)
                raise self._in_use(info) from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    return None
                raise
            try:  # the holder may have released and removed the file between our open and flock
                mine, now = os.fstat(fd), os.stat(self.path)
                same = (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)  # a stale file of a dead holder is overwritten
                os.pwrite(fd, json.dumps(_holder_info()).encode(), 0)
                return fd
            os.close(fd)

    def _create_pidfile(self) -> int:
        """Create the lock file exclusively, with its content in place (written to a temp file, then
        hard-linked: ``link`` fails if the name exists); take over one whose holder is gone (best effort:
        two processes taking over the same stale file at once can both succeed)."""
        for _ in range(10):
            fd, tmp = _create_temp(self.path)
            try:
                os.write(fd, json.dumps(_holder_info()).encode())
                os.close(fd)
                try:
                    os.link(tmp, self.path)
                    return -1  # nothing to keep open: the file itself is the lock
                except FileExistsError:
                    pass
            finally:
                tmp.unlink(missing_ok=True)
            try:
                info = _parse_holder(self.path.read_bytes())
            except FileNotFoundError:
                continue
            if info and _alive(info):
                raise self._in_use(info)
            self.path.unlink(missing_ok=True)  # stale: its process is gone
        raise self._in_use({})

    def _remove_created_folder(self) -> None:
        if self._created_folder:
            self._created_folder = False
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty


_SCOPE: contextvars.ContextVar[contextlib.ExitStack | None] = contextvars.ContextVar(
    "snn_motifs_run_folder_scope", default=None
)
_F = TypeVar("_F", bound=Callable[..., Any])


def run_folder_scope(fn: _F) -> _F:
    """Decorator: every run folder :func:`hold_run_folder` locks while ``fn`` runs is released when ``fn``
    returns or raises (for functions that only learn their folder part-way through)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with contextlib.ExitStack() as stack:
            token = _SCOPE.set(stack)
            try:
                return fn(*args, **kwargs)
            finally:
                _SCOPE.reset(token)

    return wrapper  # type: ignore[return-value]


def hold_run_folder(folder: str | os.PathLike) -> RunFolderLock:
    """Lock ``folder`` (:class:`RunFolderLock`) until the enclosing :func:`run_folder_scope` function
    returns; raises :class:`FolderInUse` when another process holds it."""
    stack = _SCOPE.get()
    if stack is None:
        raise RuntimeError("hold_run_folder() needs a caller decorated with @run_folder_scope")
    return stack.enter_context(RunFolderLock(folder))
