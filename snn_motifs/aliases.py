"""snnTorch's and Norse's names for the same things, accepted by every layer.

Documented aliases, not a second API: each maps onto our parameter of the same meaning and is refused
when it contradicts an explicit one.

* ``beta`` (snnTorch) -> ``NeuronParameters.tau_mem``: membrane decay per step, ``beta = 1 - 1/tau``.
* ``threshold`` (snnTorch) -> ``NeuronParameters.v_threshold``: the firing threshold.
* ``spike_grad`` (snnTorch) -> ``spike_fn``: the surrogate gradient ``f(u - V_th)``.
* ``method`` (Norse) -> ``spike_fn`` by name; ``"super"``/``"superspike"`` is what Norse 1.1's SuperSpike
  computes, ``1 / (|x| + 1)^2`` (it ignores ``alpha``): :class:`~snn_motifs.surrogate.FastSigmoid` of
  slope 1; ``"triangular"`` is snnTorch's name for ``"triangle"``.
* ``mem = lif.init_leaky()`` (snnTorch) -> ``layer.init_leaky()``: None, a state the first step fills
  with zeros (or ``init_state(batch_size)``).
* ``spk, mem = lif(x, mem)`` (snnTorch) -> ``spk, mem, state = layer(x, state, return_mem=True)``.

snnTorch's ``reset_mem()`` has no counterpart: our state is explicit, so a new sequence starts from
``state=None`` (or ``init_state``), and no module holds hidden state between calls.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from .neuron import NeuronParameters

__all__ = ["apply_aliases", "beta_to_tau", "tau_to_beta"]


def beta_to_tau(beta: float) -> float:
    """snnTorch's ``beta`` (membrane decay per step) as our ``tau_mem``: ``1 / (1 - beta)``."""
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and 0.0 <= beta < 1.0):
        raise ValueError(f"beta must be a number in [0, 1) (the membrane decay per step), got {beta!r}")
    return 1.0 / (1.0 - float(beta))


def tau_to_beta(tau_mem: float) -> float:
    """Our ``tau_mem`` as snnTorch's ``beta``: ``1 - 1/tau``."""
    return 1.0 - 1.0 / float(tau_mem)


def apply_aliases(
    neuron: NeuronParameters | None,
    spike_fn: str | Callable | None,
    *,
    beta: float | None = None,
    threshold: float | None = None,
    spike_grad: str | Callable | None = None,
    method: str | None = None,
) -> tuple[NeuronParameters | None, str | Callable | None]:
    """Fold the ecosystems' names into ``(neuron, spike_fn)``; conflicting double settings are refused."""
    given = {k: v for k, v in (("spike_fn", spike_fn), ("spike_grad", spike_grad), ("method", method)) if v}
    if len(given) > 1:
        raise ValueError(
            f"{' and '.join(given)} all set the spike function; give one of them (spike_grad and method "
            "are snnTorch's and Norse's names for spike_fn)"
        )
    spike_fn = next(iter(given.values()), None)
    changes = {}
    if beta is not None:
        changes["tau_mem"] = beta_to_tau(beta)
    if threshold is not None:
        changes["v_threshold"] = float(threshold)
    if not changes:
        return neuron, spike_fn
    base = neuron if neuron is not None else NeuronParameters()
    return dataclasses.replace(base, **changes), spike_fn
