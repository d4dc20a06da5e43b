"""``norse`` backend: each step is Norse's own ``lif_feed_forward_step`` (the function ``LIFCell`` runs).

Mapping (the HRMAS paper eqs 1-4 -> Norse 1.1, dt = 1)::

    LIFParameters(tau_syn_inv = 1/tau_s, tau_mem_inv = 1/tau, v_leak = 0, v_th = V_th, v_reset = 0)
    i_new = i + R c[t]                 Norse adds the input before the membrane update: no delay (eq 1)
    v     = v + (1/tau)(0 - v + i_new) = (1 - 1/tau) v + (1/tau) I[t]          (eq 2)
    z     = threshold(v - V_th);  v = (1 - z) v + z * 0                        (eqs 3-4)
    i     = i_new - (1/tau_s) i_new    carried, decayed current (our LIFState.i convention is Norse's)

With Norse's own names (``p=LIFParameters(...)``, ``tau_mem_inv``, ``dt``,
:class:`~snn_motifs.neuron.NorseLIFParameters`) the step is Norse's with those parameters and that ``dt``,
and the weighted input goes into Norse's synaptic current unscaled. snnTorch's Leaky equations are refused:
Norse has no neuron with them.

``LIFParameters`` is a NamedTuple whose tensors are not module parameters and do not follow ``.to()``; this
adapter owns ``tau_mem`` and ``resistance`` as buffers/parameters (base class) and builds the NamedTuple
from them at every step. The spike function reaches Norse through :mod:`.norse_methods`: it is registered
under a method name (``"snn_motifs:<repr>"``) when the adapter is built.

The adapter holds no reference to Norse itself (a module object cannot be pickled or deep-copied): Norse's
LIF module is looked up at call time, so a model on this backend can be copied and saved whole like any
other. Its ``state_dict`` holds only the base class's ``tau_mem`` and ``resistance``, the same keys as every
other backend.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

import torch

from snn_motifs._optional import require
from snn_motifs.neuron import LIFState, psc_update

from .base import NeuronAdapter
from .norse_methods import ensure_registered

__all__ = ["NorseLIF"]

_LIF_MODULE = "norse.torch.functional.lif"


def _norse_lif() -> ModuleType:
    """Norse's LIF module (``sys.modules`` after the first import; a clear error if Norse is missing)."""
    module = sys.modules.get(_LIF_MODULE)
    return module if module is not None else require(_LIF_MODULE, "norse", "the 'norse' backend")


def _method_name(spike_fn: Callable) -> str:
    """The Norse ``method`` name the spike function is registered under: its repr, or its identity for an
    anonymous callable whose repr is only an address."""
    name = f"snn_motifs:{spike_fn!r}"
    if " at 0x" in name:
        name = f"snn_motifs:{type(spike_fn).__name__}@{id(spike_fn):x}"
    return name


class NorseLIF(NeuronAdapter):
    """LIF population whose steps run in ``norse.torch.functional.lif.lif_feed_forward_step``."""

    backend = "norse"
    equations_supported = ("hrmas", "norse")
    equations_refused = {
        "snntorch": "Norse has no neuron with snnTorch's Leaky update u <- beta u + I (no synaptic current), "
        "reset by subtraction or a reset one step late"
    }

    def __init__(self, n_neurons: int, *args, **kwargs) -> None:
        _norse_lif()  # fail here, naming the extra, when Norse is not installed
        super().__init__(n_neurons, *args, **kwargs)
        self.method = _method_name(self.spike_fn)
        ensure_registered(self.method, self.spike_fn)
        # constants of every step, made once (they follow .to() as buffers)
        self.register_buffer("_zero", torch.zeros(()), persistent=False)
        if self.equations == "hrmas":
            self.register_buffer("_tau_syn_inv", torch.tensor(1.0 / self.params.tau_syn), persistent=False)
            self.register_buffer("_v_th", torch.tensor(self.v_threshold), persistent=False)

    def __setstate__(self, state: dict) -> None:
        """A copy (``copy.deepcopy``, unpickling) has its own spike function object: name it anew, since a
        name made from an anonymous callable's identity would clash with the original's registration."""
        super().__setstate__(state)
        self.method = _method_name(self.spike_fn)

    def _parameters_now(self, lif: ModuleType):
        ensure_registered(self.method, self.spike_fn)  # survives a user's unregister_method()
        zero = self._zero
        if self.equations == "norse":  # Norse's own parameters, as given
            return lif.LIFParameters(
                tau_syn_inv=self.tau_syn_inv,
                tau_mem_inv=self.tau_mem_inv,
                v_leak=self.v_leak,
                v_th=self.v_th,
                v_reset=self.v_reset,
                method=self.method,
                alpha=zero,
            )
        return lif.LIFParameters(
            tau_syn_inv=self._tau_syn_inv,
            tau_mem_inv=self.tau_inv(),
            v_leak=zero,
            v_th=self._v_th,
            v_reset=zero,
            method=self.method,
            alpha=zero,
        )

    def _step(self, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        lif = _norse_lif()
        p = self._parameters_now(lif)
        ff_state = lif.LIFFeedForwardState(v=state.v, i=state.i)
        if self.equations == "norse":
            spikes, new = lif.lif_feed_forward_step(current, ff_state, p, dt=self.params.dt)
            return spikes, LIFState(new.v, new.i, spikes + self.psc_decay() * state.a, spikes)
        spikes, new = lif.lif_feed_forward_step(self.effective_resistance() * current, ff_state, p, dt=1.0)
        return spikes, LIFState(new.v, new.i, psc_update(state.a, spikes, self.syn_decay), spikes)
