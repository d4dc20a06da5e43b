"""Whole networks built from our layers, time-first ``[T, B, F] -> [T, B, classes]`` output spikes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import SpikingLinear
from .neuron import NeuronParameters
from .scml import SCML
from .topology import MotifTopology

__all__ = ["SCMLClassifier"]


class SCMLClassifier(nn.Module):
    """Input -> one SC-ML hidden layer -> spiking output layer, the network of paper 000 (sec 3.1.3).

    Args:
        in_features, hidden, classes: layer sizes.
        motif_size / topology: the SC-ML topology (see :class:`~snn_motifs.SCML`).
        backend, neuron, spike_fn: used by both layers.
        input_gain: multiplies the input before the first layer (real-valued inputs such as Lyon
            cochleagrams are small).
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        classes: int,
        motif_size: int | None = None,
        *,
        topology: MotifTopology | None = None,
        backend="native",
        neuron: NeuronParameters | None = None,
        spike_fn: str | Callable | None = None,
        input_gain: float = 1.0,
    ) -> None:
        super().__init__()
        common = dict(backend=backend, neuron=neuron, spike_fn=spike_fn)
        self.input_gain = input_gain
        self.hidden = SCML(in_features, hidden, motif_size, topology=topology, **common)
        self.output = SpikingLinear(hidden, classes, **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.hidden.run(x * self.input_gain)
        out, _ = self.output.run(hidden)
        return out
