"""Spike functions by name: the one place where ``spike_fn="atan"``, ``"tssl"``, ... become objects.

Layers, adapters and configs (the ``spike_fn`` field of the JSON configs and of the HRMAS config) hand a
name, a callable or None to :func:`resolve_spike_fn`; :func:`register_spike_fn` adds names.

Built-in names:

* ``"atan"`` (the default), ``"fast_sigmoid"``, ``"sigmoid"``, ``"triangle"``: surrogates
  (:mod:`snn_motifs.surrogate`);
* ``"tssl"``: TSSL-BP (Zhang & Li 2020), the faithful rule with the stable default bound
  (:class:`~snn_motifs.tssl.TSSLBP`); ``"tssl_authors"``: the authors' constants
  (:meth:`~snn_motifs.tssl.TSSLBP.authors`); ``"tssl_stateless"``: the stateless approximation
  (:class:`~snn_motifs.tssl.TSSLStateless`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .surrogate import ATan, FastSigmoid, Sigmoid, Triangle
from .tssl import TSSLBP, TSSLStateless

__all__ = ["SPIKE_FUNCTIONS", "register_spike_fn", "available_spike_fns", "resolve_spike_fn"]

SpikeFn = Callable[[torch.Tensor], torch.Tensor]

#: slope of Norse's SuperSpike: Norse 1.1's backward is ``1 / (|x| + 1)^2`` whatever ``alpha`` it is given
NORSE_SUPERSPIKE_SLOPE = 1.0

#: name -> factory: called without arguments, it returns a fresh spike function ``f(u - V_th) -> spikes``
SPIKE_FUNCTIONS: dict[str, Callable[[], SpikeFn]] = {
    "atan": ATan,
    "fast_sigmoid": FastSigmoid,
    "sigmoid": Sigmoid,
    "triangle": Triangle,
    "tssl_stateless": TSSLStateless,
    "tssl": TSSLBP,
    "tssl_authors": TSSLBP.authors,
    # the same functions under snnTorch's and Norse's names
    "triangular": Triangle,  # snntorch.surrogate.triangular
    "super": lambda: FastSigmoid(NORSE_SUPERSPIKE_SLOPE),  # Norse method="super" (SuperSpike)
    "superspike": lambda: FastSigmoid(NORSE_SUPERSPIKE_SLOPE),
}


def register_spike_fn(name: str, factory: Callable[[], SpikeFn], *, replace: bool = False) -> None:
    """Make ``spike_fn=name`` (layers, adapters, configs) build ``factory()``.

    ``factory`` takes no arguments and returns a spike function ``f(u - V_th) -> spikes``; an instance of
    a :class:`~snn_motifs.surrogate.SurrogateSpike` subclass also lets layers use the fused kernel.
    Registering a name that is already bound to another factory raises ``ValueError`` unless
    ``replace=True``; registering the same factory again is a no-op.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"spike function name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(
            f"factory must be callable (no arguments -> spike function), got {type(factory).__name__}"
        )
    old = SPIKE_FUNCTIONS.get(name)
    if old is not None and old != factory and not replace:
        raise ValueError(
            f"spike function {name!r} is already registered to {old!r}; pass replace=True to rebind it"
        )
    SPIKE_FUNCTIONS[name] = factory


def available_spike_fns() -> list[str]:
    """All registered spike-function names, sorted."""
    return sorted(SPIKE_FUNCTIONS)


def resolve_spike_fn(spike_fn: str | SpikeFn | None) -> SpikeFn:
    """Turn ``None`` (default :class:`~snn_motifs.surrogate.ATan`), a registered name or a callable into a
    spike function.

    ``"tssl"`` gives the TSSL-BP rule (:class:`~snn_motifs.tssl.TSSLBP`, stable default bound) and
    ``"tssl_authors"`` the authors' constants (:meth:`~snn_motifs.tssl.TSSLBP.authors`).
    """
    if spike_fn is None:
        return ATan()
    if isinstance(spike_fn, str):
        factory = SPIKE_FUNCTIONS.get(spike_fn)
        if factory is None:
            raise ValueError(
                f"unknown spike function {spike_fn!r}; available: {available_spike_fns()}, "
                "or pass a callable f(u - V_th) -> spikes (e.g. snntorch.surrogate.atan())"
            )
        return factory()
    if not callable(spike_fn):
        raise TypeError(f"spike_fn must be a name, a callable or None, got {type(spike_fn).__name__}")
    return spike_fn
