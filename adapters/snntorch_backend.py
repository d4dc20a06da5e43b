"""``snntorch`` backend: the membrane, threshold and reset are snnTorch's own ``snn.Leaky``.

Mapping (the HRMAS paper eqs 1-4 -> snnTorch 1.0)::

    snn.Leaky(beta = 1 - 1/tau, threshold = V_th, spike_grad = spike_fn,
              reset_mechanism = "zero", reset_delay = False)
    mem[t] = beta * mem[t-1] + input,   input = (1/tau) * I[t]     (eq 2)

``reset_delay=False`` resets in the step that fires (eq 3); snnTorch's default resets one step late. The
synaptic current ``I[t]`` (eq 1) and the neuron's own PSC are filtered here in torch, as in the native
backend (decay and PSC through the same functions of :mod:`snn_motifs.neuron`): ``snn.Synaptic`` would
apply the ``R/tau`` gain before its filter, which differs from eq 2 as soon as SpiKL-IP changes ``R`` or
``tau`` between steps. beta is recomputed from :attr:`tau_mem` every
step, so in-place changes and trained leaks (BIP) reach snnTorch.

State is passed explicitly every call; the ``Leaky`` is removed from snnTorch's class-level instance list
so that ``snntorch.utils.reset`` and ``Leaky.reset_hidden`` can neither see nor reset it.
"""

from __future__ import annotations

import torch

from snn_motifs._optional import require
from snn_motifs.neuron import LIFState, psc_update, synaptic_decay

from .base import NeuronAdapter

__all__ = ["SnnTorchLIF"]


class SnnTorchLIF(NeuronAdapter):
    """LIF population whose membrane dynamics run in ``snntorch.Leaky`` (see the module docstring)."""

    backend = "snntorch"

    def __init__(self, n_neurons: int, *args, **kwargs) -> None:
        snn = require("snntorch", "snntorch", "the 'snntorch' backend")
        super().__init__(n_neurons, *args, **kwargs)
        self.neuron = snn.Leaky(
            beta=self.leak().detach().clone(),
            threshold=self.v_threshold,
            spike_grad=self.spike_fn,
            reset_mechanism="zero",
            reset_delay=False,
        )
        instances = snn.SpikingNeuron.instances
        if self.neuron in instances:  # explicit state only: out of snnTorch's global registry
            instances.remove(self.neuron)

    def _step(self, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        tau_inv = self.tau_inv()
        # eq 1's I[t] = i[t] + R c[t] (snn_motifs.neuron.synaptic_current) kept as separate multiply and add:
        # synaptic_current's addcmul rounds once (fused multiply-add), which would move this backend's
        # membranes and gradients in the last bit
        syn = state.i + self.gain() * current
        self.neuron.beta = 1.0 - tau_inv
        spikes, mem = self.neuron(tau_inv * syn, state.v)
        decay = self.syn_decay
        return spikes, LIFState(mem, synaptic_decay(syn, decay), psc_update(state.a, spikes, decay), spikes)
