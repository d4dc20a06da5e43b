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

With snnTorch's own names (``beta``, ``reset_mechanism``, ... :class:`~snn_motifs.neuron.LeakyParameters`)
the ``Leaky`` is built as the user asked (reset mechanism, reset delay, graded spikes) and runs the whole
neuron: the weighted input goes straight in, with no synaptic filter, and the adapter's ``beta`` and
``threshold`` (trained with ``learn_beta`` / ``learn_threshold``) are handed to it every step. Norse's LIF
equations are refused: snnTorch has no neuron with them.

State is passed explicitly every call; the ``Leaky`` is removed from snnTorch's class-level instance list
so that ``snntorch.utils.reset`` and ``Leaky.reset_hidden`` can neither see nor reset it.

The ``Leaky`` is a simulator object built entirely from this adapter's configuration, so it is never saved:

* its buffers (``threshold``, ``graded_spikes_factor``, ``reset_mechanism_val``, ``beta``) are
  non-persistent, so the ``state_dict`` holds only the base class's ``tau_mem`` and ``resistance``, the
  same keys as every other backend (a model saved with one backend loads strictly into another). The keys
  that earlier versions saved (``neuron.threshold``, ...) are accepted and ignored when loading, by every
  backend (:data:`snn_motifs.adapters.base.LEGACY_KEYS`).
* snnTorch keeps the last call's membrane, reset mask and (with a trained leak) ``beta`` on the module;
  after a step with gradients these are non-leaf tensors, which ``copy.deepcopy`` refuses and which a
  pickle would carry along. Copies and pickles therefore leave the ``Leaky`` out and build a fresh one
  from the configuration (:meth:`SnnTorchLIF.__getstate__`, :meth:`SnnTorchLIF.__setstate__`); the step
  itself is untouched.
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
    equations_supported = ("hrmas", "snntorch")
    equations_refused = {
        "norse": "snnTorch has no neuron with Norse's leak potential v_leak, reset potential v_reset and "
        "dt-scaled updates of a synaptic current that the input jumps"
    }

    def __init__(self, n_neurons: int, *args, **kwargs) -> None:
        require("snntorch", "snntorch", "the 'snntorch' backend")
        super().__init__(n_neurons, *args, **kwargs)
        self.neuron = self._build_leaky()

    def _build_leaky(self) -> torch.nn.Module:
        """snnTorch's ``Leaky`` for this adapter's configuration, on its device and dtype, outside
        snnTorch's global instance list, with non-persistent buffers."""
        snn = require("snntorch", "snntorch", "the 'snntorch' backend")
        if self.equations == "snntorch":
            p = self.params
            neuron = snn.Leaky(
                beta=self.beta.detach().clone(),
                threshold=self.threshold.detach().clone(),
                spike_grad=self.spike_fn,
                reset_mechanism=p.reset_mechanism,
                reset_delay=p.reset_delay,
                graded_spikes_factor=p.graded_spikes_factor,
            )
        else:
            neuron = snn.Leaky(
                beta=self.leak().detach().clone(),
                threshold=self.v_threshold,
                spike_grad=self.spike_fn,
                reset_mechanism="zero",
                reset_delay=False,
            )
        instances = snn.SpikingNeuron.instances
        if neuron in instances:  # explicit state only: out of snnTorch's global registry
            instances.remove(neuron)
        for name, buffer in list(neuron.named_buffers(recurse=False)):  # derived, not ours to save
            delattr(neuron, name)
            neuron.register_buffer(name, buffer, persistent=False)
        reference = self.membrane_decay()
        return neuron.to(device=reference.device, dtype=reference.dtype)

    def __getstate__(self) -> dict:
        """Everything but the ``Leaky``, whose last call left per-sequence (possibly non-leaf) tensors."""
        state = super().__getstate__()
        state["_modules"] = {k: m for k, m in state["_modules"].items() if k != "neuron"}
        return state

    def __setstate__(self, state: dict) -> None:
        """Restore a copy or pickle: a fresh ``Leaky`` from the configuration (see :meth:`__getstate__`)."""
        super().__setstate__(state)
        self.neuron = self._build_leaky()

    def _step(self, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        if self.equations == "snntorch":
            # views, not the Parameters themselves: assigning a Parameter would register it in the Leaky
            self.neuron.beta = self.beta.view_as(self.beta)
            self.neuron.threshold = self.threshold.view_as(self.threshold)
            spikes, mem = self.neuron(current, state.v)
            return spikes, LIFState(mem, state.i, spikes, spikes)  # no synaptic filter: the PSC is the spikes
        tau_inv = self.tau_inv()
        # eq 1's I[t] = i[t] + R c[t] (snn_motifs.neuron.synaptic_current) kept as separate multiply and add:
        # synaptic_current's addcmul rounds once (fused multiply-add), which would move this backend's
        # membranes and gradients in the last bit
        syn = state.i + self.effective_resistance() * current
        self.neuron.beta = 1.0 - tau_inv
        spikes, mem = self.neuron(tau_inv * syn, state.v)
        decay = self.syn_decay
        return spikes, LIFState(mem, synaptic_decay(syn, decay), psc_update(state.a, spikes, decay), spikes)
