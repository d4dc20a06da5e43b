"""Registering extra spike-function ``method`` names in Norse.

Norse 1.1 has no registry of spike functions: ``norse.torch.functional.threshold.threshold(x, method,
alpha)`` is an if/elif chain, and every neuron module did ``from ...threshold import threshold``, so
patching the defining module alone changes nothing. :func:`register_method` therefore rebinds the name
``threshold`` in *every* loaded ``norse`` module that holds Norse's original function, to a dispatcher that
serves registered names and hands every other name to the original. It is explicit, idempotent (registering
the same callable under the same name again is a no-op) and reversible: when the last name is unregistered,
every rebound module gets Norse's original object back.

Registered functions are called as ``fn(x)`` with ``x = v - v_th`` (alpha is ignored; put parameters in
the callable). :func:`register_norse_tssl` (also ``snn_motifs.register_norse_tssl``) registers TSSL-BP's
stateless approximation as ``method="tssl"``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import threading
from collections.abc import Callable

from snn_motifs._optional import require
from snn_motifs.tssl import TSSLStateless

__all__ = [
    "register_method",
    "ensure_registered",
    "unregister_method",
    "registered_methods",
    "is_installed",
    "register_norse_tssl",
    "unregister_norse_tssl",
]

_REGISTRY: dict[str, Callable] = {}
_PATCHED: list[tuple[object, str]] = []
_ORIGINAL: Callable | None = None
_LOCK = threading.RLock()


def _dispatch(x, method: str, alpha):
    fn = _REGISTRY.get(method)
    if fn is not None:
        return fn(x)
    assert _ORIGINAL is not None
    return _ORIGINAL(x, method, alpha)


_dispatch.__name__ = "threshold"
_dispatch.__doc__ = "Norse's threshold(x, method, alpha), extended by snn_motifs.register_method."


def _load_all_norse_modules() -> None:
    pkg = require("norse.torch", "norse", "Norse method registration")
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if ".test" in info.name or info.name.endswith("_test"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional Norse submodule whose own extras are missing
            continue


def _install() -> None:
    global _ORIGINAL
    if _PATCHED:
        return
    threshold_mod = require("norse.torch.functional.threshold", "norse", "Norse method registration")
    _ORIGINAL = threshold_mod.threshold
    _load_all_norse_modules()
    for name, module in list(sys.modules.items()):
        if not name.startswith("norse") or module is None:
            continue
        if getattr(module, "threshold", None) is _ORIGINAL:
            module.threshold = _dispatch
            _PATCHED.append((module, "threshold"))


def _uninstall() -> None:
    global _ORIGINAL
    for module, attr in _PATCHED:
        setattr(module, attr, _ORIGINAL)
    _PATCHED.clear()
    _ORIGINAL = None


def register_method(name: str, fn: Callable) -> None:
    """Make Norse neurons accept ``method=name`` and spike through ``fn(v - v_th)``.

    Raises ``ValueError`` if ``name`` is one of Norse's own methods or already bound to another callable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"method name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    builtin = {"heaviside", "super", "triangle", "tanh", "tent", "circ", "heavi_erfc", "logistic"}
    if name in builtin:
        raise ValueError(f"{name!r} is one of Norse's built-in methods; choose another name")
    with _LOCK:
        old = _REGISTRY.get(name)
        if old is not None and old is not fn and old != fn:
            raise ValueError(f"Norse method {name!r} is already registered to {old!r}; unregister it first")
        _install()
        _REGISTRY[name] = fn


def ensure_registered(name: str, fn: Callable) -> None:
    """Register ``fn`` under ``name`` unless that exact binding is already in place (cheap per step)."""
    if _REGISTRY.get(name) is not fn:
        register_method(name, fn)


def unregister_method(name: str) -> None:
    """Remove ``name``; after the last one, Norse's original ``threshold`` is restored everywhere."""
    with _LOCK:
        _REGISTRY.pop(name, None)
        if not _REGISTRY:
            _uninstall()


def registered_methods() -> dict[str, Callable]:
    """A copy of the names registered so far."""
    return dict(_REGISTRY)


def is_installed() -> bool:
    """True while the dispatcher is bound into Norse's modules."""
    return bool(_PATCHED)


def register_norse_tssl(method: str = "tssl", **kwargs) -> TSSLStateless:
    """Make Norse's own neurons (``LIFCell``, ``LIFBoxCell``, ...) accept ``method="tssl"``.

    Norse passes only ``v - v_th`` to its threshold function, so this is TSSL-BP's stateless approximation
    (:class:`~snn_motifs.tssl.TSSLStateless`, keyword arguments as there). Explicit, idempotent and
    reversible with :func:`unregister_norse_tssl`. Returns the registered spike function.
    """
    fn = TSSLStateless(**kwargs)
    register_method(method, fn)
    return fn


def unregister_norse_tssl(method: str = "tssl") -> None:
    """Undo :func:`register_norse_tssl`; Norse is restored exactly once nothing else is registered."""
    unregister_method(method)
