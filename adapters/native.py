"""``native`` backend: the papers' LIF neuron in plain torch (no optional dependency)."""

from __future__ import annotations

import torch

from snn_motifs.neuron import LIFState, lif_step

from .base import NeuronAdapter

__all__ = ["NativeLIF"]


class NativeLIF(NeuronAdapter):
    """Pure-torch LIF population (the HRMAS paper, eqs 1-4) via :func:`snn_motifs.neuron.lif_step`.

    Its numerics are the reference the ``snntorch`` and ``norse`` backends are tested against, and the
    fused sequence kernel (:mod:`snn_motifs.fused_kernel`) reproduces it.
    """

    backend = "native"
    supports_fused_kernel = True

    def forward_only_step(self, current: torch.Tensor, state: LIFState) -> None:
        """None: the forward pass is :func:`~snn_motifs.neuron.lif_step`, which the caller computes."""
        return None

    def _step(self, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        tau_inv = self.tau_inv()
        return lif_step(
            current,
            state,
            1.0 - tau_inv,
            tau_inv,
            self.gain(),
            self.v_threshold,
            self.syn_decay,
            self.spike_fn,
        )
