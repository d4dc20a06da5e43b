"""Shared helpers for the tests."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from snn_motifs import SCML, MotifTopology, NeuronParameters
from snn_motifs.datasets import SplitData
from snn_motifs.search import HRMASConfig

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


def spike_task(n: int, seed: int, steps: int = 15, channels: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of Poisson-like spike trains with opposite rate ramps over the channels, sample-first
    ``[n, steps, channels]``, and their labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    rates = torch.where(
        y[:, None, None] == 0, torch.linspace(0.05, 0.6, channels), torch.linspace(0.6, 0.05, channels)
    )
    return (torch.rand(n, steps, channels, generator=g) < rates).float(), y


def tiny_search(**over) -> tuple[HRMASConfig, SplitData]:
    """A search of a few seconds on :func:`spike_task`: 8 neurons, options [2, 4], 2 + 1 search epochs, 3
    retraining epochs (``over`` changes any config key)."""
    x, y = spike_task(200, 0)
    xt, yt = spike_task(100, 1)
    small = dict(hidden=8, motif_sizes=[2, 4], epochs_size=2, epochs_types=1, epochs_retrain=3, batch_size=20)
    neuron = dict(input_gain=1.0, tau_mem=4.0, tau_syn=2.0, tau_cal=4.0)
    return HRMASConfig(**{**small, **neuron, **over}), SplitData(x, y, xt, yt, 2)


def strip_seconds(obj):
    """``obj`` without its wall-clock ``seconds`` entries, at any depth (to compare two runs' JSON)."""
    if isinstance(obj, dict):
        return {k: strip_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [strip_seconds(v) for v in obj]
    return obj
