"""``native`` backend: the neurons in plain torch (no optional dependency).

It runs all three neurons the layers offer: the papers' (the HRMAS paper, eqs 1-4, via
:func:`~snn_motifs.neuron.lif_step`), snnTorch 1.0's ``Leaky`` (:func:`~snn_motifs.neuron.leaky_step`) and
Norse 1.1's LIF (:func:`~snn_motifs.neuron.norse_lif_step`), each op for op as its simulator computes it.
"""

from __future__ import annotations

import torch

from snn_motifs.neuron import LIFState, leaky_step, lif_step, norse_lif_step

from .base import NeuronAdapter

__all__ = ["NativeLIF"]


class NativeLIF(NeuronAdapter):
    """Pure-torch LIF population.

    With the papers' neuron its numerics are the reference the ``snntorch`` and ``norse`` backends are
    tested against, and the fused sequence kernel (:mod:`snn_motifs.fused_kernel`) reproduces it. With
    snnTorch's or Norse's equations it is tested against ``snn.Leaky`` and Norse's ``LIFCell`` /
    ``LIFRecurrentCell`` spike for spike.
    """

    backend = "native"
    supports_fused_kernel = True
    equations_supported = ("hrmas", "snntorch", "norse")

    def forward_only_step(self, current: torch.Tensor, state: LIFState) -> None:
        """None: the forward pass is :func:`~snn_motifs.neuron.lif_step`, which the caller computes."""
        return None

    def _step(self, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        if self.equations == "snntorch":
            spikes, mem = leaky_step(
                current,
                state.v,
                self.beta,
                self.threshold,
                self.spike_fn,
                self.reset_mechanism,
                self.reset_delay,
                self.graded_spikes_factor,
            )
            return spikes, LIFState(mem, state.i, spikes, spikes)  # no synaptic filter: the PSC is the spikes
        if self.equations == "norse":
            p = self.params
            spikes, v, i = norse_lif_step(
                current,
                state.v,
                state.i,
                self.tau_mem_inv,
                self.tau_syn_inv,
                self.v_leak,
                self.v_th,
                self.v_reset,
                p.dt,
                self.spike_fn,
            )
            return spikes, LIFState(v, i, spikes + self.psc_decay() * state.a, spikes)
        tau_inv = self.tau_inv()
        return lif_step(
            current,
            state,
            1.0 - tau_inv,
            tau_inv,
            self.effective_resistance(),
            self.v_threshold,
            self.syn_decay,
            self.spike_fn,
        )
