"""Shared helpers for the tests."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from snn_motifs import SCML, MotifTopology, NeuronParameters

HAS_SNNTORCH = importlib.util.find_spec("snntorch") is not None
HAS_NORSE = importlib.util.find_spec("norse") is not None

needs_snntorch = pytest.mark.skipif(not HAS_SNNTORCH, reason="snntorch not installed")
needs_norse = pytest.mark.skipif(not HAS_NORSE, reason="norse not installed")

ALL_BACKENDS = [
    "native",
    pytest.param("snntorch", marks=needs_snntorch),
    pytest.param("norse", marks=needs_norse),
]

#: a topology with all three types inside the motif and mixed lateral edges
MIXED_TOPOLOGY = MotifTopology(
    4,
    [["e", "i", "n", "e"], ["e", "e", "i", "n"], ["n", "e", "e", "i"], ["i", "n", "e", "e"]],
    [["e", "n", "i", "e"], ["n", "e", "e", "i"]],
)


def build_layer(
    backend: str = "native",
    seed: int = 0,
    in_features: int = 12,
    n_neurons: int = 32,
    topology: MotifTopology = MIXED_TOPOLOGY,
    dtype: torch.dtype = torch.float32,
    **kwargs,
) -> SCML:
    """The same SC-ML layer (same seed -> same weights) on any backend."""
    torch.manual_seed(seed)
    kwargs.setdefault("neuron", NeuronParameters(tau_mem=8.0, tau_syn=4.0, v_threshold=1.0))
    layer = SCML(in_features, n_neurons, topology=topology, backend=backend, **kwargs)
    return layer.to(dtype)


def drive(seed: int = 1, steps: int = 120, batch: int = 4, features: int = 12, dtype=torch.float32):
    """Poisson-like input spikes, time-first."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, features, generator=g) < 0.3).to(dtype)
