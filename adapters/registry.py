"""Choosing a neuron backend by name: ``"native"``, ``"snntorch"`` or ``"norse"``.

The registry maps each name to the adapter module and class that implement it. Modules are imported
only when their backend is asked for, so the simulators stay optional; :func:`register_backend` adds a
backend (any :class:`~snn_motifs.adapters.base.NeuronAdapter` subclass).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from snn_motifs.neuron import NeuronParameters

from .base import NeuronAdapter

__all__ = [
    "BACKENDS",
    "INTEROP",
    "available_backends",
    "get_adapter",
    "register_backend",
    "spikl_ip_target",
]

#: name -> (module, class, pip extra)
BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "native": ("snn_motifs.adapters.native", "NativeLIF", None),
    "snntorch": ("snn_motifs.adapters.snntorch_backend", "SnnTorchLIF", "snntorch"),
    "norse": ("snn_motifs.adapters.norse_backend", "NorseLIF", "norse"),
}


def register_backend(name: str, module: str, cls: str, extra: str | None = None) -> None:
    """Make ``backend=name`` build ``module.cls`` (a :class:`NeuronAdapter` subclass)."""
    BACKENDS[name] = (module, cls, extra)


def available_backends() -> list[str]:
    """All registered backend names (whether or not their optional package is installed)."""
    return sorted(BACKENDS)


def get_adapter(
    backend,
    n_neurons: int,
    params: NeuronParameters | None = None,
    spike_fn: str | Callable | None = None,
    learn_leak: bool = False,
    learn_gain: bool = False,
):
    """Build the adapter for ``backend`` (a name, or an adapter instance which is checked and returned).

    Raises ``ValueError`` for an unknown name (listing the known ones) and
    :class:`~snn_motifs._optional.MissingDependencyError` (an ``ImportError``) naming the pip extra when
    the backend's simulator is not installed.
    """
    if isinstance(backend, NeuronAdapter):
        if backend.n_neurons != n_neurons:
            raise ValueError(
                f"adapter {type(backend).__name__} has {backend.n_neurons} neurons, layer needs {n_neurons}"
            )
        return backend
    if not isinstance(backend, str):
        raise TypeError(
            f"backend must be a name {available_backends()} or a NeuronAdapter, got {type(backend).__name__}"
        )
    key = backend.strip().lower()
    if key not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available backends: {available_backends()}")
    module, cls, _extra = BACKENDS[key]
    adapter_cls = getattr(importlib.import_module(module), cls)
    return adapter_cls(
        n_neurons, params=params, spike_fn=spike_fn, learn_leak=learn_leak, learn_gain=learn_gain
    )


#: simulator package (the top-level module of a neuron's class) -> adapters module with that simulator's
#: interop, which provides ``spikl_ip_target(module, ip)`` for SpiKL-IP on the simulator's stock neurons
INTEROP: dict[str, str] = {
    "snntorch": "snn_motifs.adapters.snntorch_interop",
    "norse": "snn_motifs.adapters.norse_interop",
}


def spikl_ip_target(neuron, ip):
    """SpiKL-IP's target for a simulator's stock neuron (:meth:`snn_motifs.SpiKLIP.attach`), or None when
    no interop module claims the neuron. Only the interop module of the neuron's own simulator is imported,
    and it does not import the simulator (the neuron exists, so the user already has)."""
    name = INTEROP.get(type(neuron).__module__.split(".")[0])
    if name is None:
        return None
    return importlib.import_module(name).spikl_ip_target(neuron, ip)
