"""Whole networks built from our layers, time-first ``[T, B, F] -> [T, B, classes]`` output spikes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import SpikingLayer, SpikingLinear
from .neuron import NeuronParameters
from .readout import make_readout
from .scml import SCML, SelfRecurrent
from .topology import MotifTopology

__all__ = ["SCMLClassifier", "ScSrSNN", "SCSR_VARIANTS", "build_scsr"]


class _Classifier(nn.Module):
    """Shared parts of the classifiers: the input gain buffer and the readout's name."""

    def _init_common(self, input_gain: float, readout: str, neuron: NeuronParameters | None) -> None:
        #: multiplies the input; a buffer so checkpoints keep it (:func:`~snn_motifs.training.fit`
        #: calibrates it from data)
        self.register_buffer("input_gain", torch.tensor(float(input_gain)))
        #: readout name (:data:`~snn_motifs.readout.READOUTS`); the training loop picks the loss from it
        self.readout = readout
        self.tau_syn = (neuron or NeuronParameters()).tau_syn


class SCMLClassifier(_Classifier):
    """Input -> one SC-ML hidden layer -> readout, the network of the HRMAS paper (sec 3.1.3).

    Args:
        in_features, hidden, classes: layer sizes.
        motif_size / topology: the SC-ML topology (see :class:`~snn_motifs.SCML`).
        backend, neuron, spike_fn: used by the hidden layer (and a spiking readout).
        input_gain: multiplies the input before the first layer; :func:`~snn_motifs.training.fit`
            calibrates it from the data by default, so it rarely needs setting by hand.
        readout: ``"mean"`` (default; non-spiking leaky-integrator output, cross-entropy on its
            time-mean membrane), ``"max"``, ``"last"``, or the papers' spiking output layer with the
            ``"count"`` or ``"kernel"`` loss (:mod:`snn_motifs.readout`).
        inhibitory_weight: see :class:`~snn_motifs.SCML` (None: inhibitory edges trained, kept negative).
        hidden_layer: use this recurrent layer instead of building an SC-ML (its sizes must match);
            the HRMAS search puts its mixed-op layer here (:func:`snn_motifs.search.space.search_network`).
        kernel: the hidden SC-ML's ``kernel`` (:class:`~snn_motifs.layers.SpikingLayer`: ``"auto"``,
            ``"step"``, ``"fused"`` or ``"compiled"``); ``compile=True`` is its deprecated spelling of
            ``"compiled"``.

    ``model(x)`` maps ``[T, B, in_features]`` to the readout's output ``[T, B, classes]`` (membranes or
    spikes).
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
        readout: str = "mean",
        inhibitory_weight: float | None = None,
        hidden_layer: SpikingLayer | None = None,
        kernel: str = "auto",
        compile: bool | None = None,
    ) -> None:
        super().__init__()
        common = dict(backend=backend, neuron=neuron, spike_fn=spike_fn)
        if hidden_layer is None:
            hidden_layer = SCML(
                in_features,
                hidden,
                motif_size,
                topology=topology,
                inhibitory_weight=inhibitory_weight,
                kernel=kernel,
                compile=compile,
                **common,
            )
        elif (hidden_layer.in_features, hidden_layer.n_neurons) != (in_features, hidden):
            raise ValueError(
                f"hidden_layer maps {hidden_layer.in_features} -> {hidden_layer.n_neurons} features, "
                f"but the classifier was given in_features={in_features}, hidden={hidden}"
            )
        self.hidden = hidden_layer
        self.output = make_readout(readout, hidden, classes, **common)
        self._init_common(input_gain, readout, neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.hidden.run(x * self.input_gain)
        out, _ = self.output.run(hidden)
        return out


class ScSrSNN(_Classifier):
    """The ScSr-SNN family (ScSr-SNN paper): stacked spiking layers, optionally self-recurrent (eq 8), with
    skip connections from layer ``l`` to ``l + 2`` (eq 19) and per-neuron leaks trained by back-propagation
    (BIP, eqs 20-21).

    Layers are numbered over the hidden layers and the output layer; a skip from hidden layer ``l`` feeds
    layer ``l + 2`` (another hidden layer or the output) through its own weight matrix, added to that
    layer's feed-forward current. With hidden sizes 400-400-400 the skips are h1 -> h3 and h2 -> output.

    Args:
        in_features, hidden, classes: sizes (``hidden`` a sequence, e.g. ``(400, 400, 400)``).
        self_recurrent: hidden layers are :class:`~snn_motifs.SelfRecurrent` (Sr); False gives a plain
            feed-forward SNN of the same size.
        skip: add the l -> l+2 skip connections (Sc).
        bip: train each hidden neuron's leak (``learn_leak=True``).
        backend, neuron, spike_fn: for every layer (the papers: TSSL-BP, ``spike_fn="tssl"``).
        input_gain: multiplies the input (calibrated from data by :func:`~snn_motifs.training.fit`).
        readout: as in :class:`SCMLClassifier` (default ``"mean"``); with a membrane readout the skip
            connection into the output layer feeds the readout's current.
    """

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...] | list[int],
        classes: int,
        *,
        self_recurrent: bool = True,
        skip: bool = False,
        bip: bool = False,
        backend="native",
        neuron: NeuronParameters | None = None,
        spike_fn: str | Callable | None = "tssl",
        input_gain: float = 1.0,
        readout: str = "mean",
    ) -> None:
        super().__init__()
        hidden = list(hidden)
        if not hidden or any(not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive ints, got {hidden!r}")
        self._init_common(input_gain, readout, neuron)
        common = dict(backend=backend, neuron=neuron, spike_fn=spike_fn)
        sizes = [in_features, *hidden]
        layers: list[SpikingLayer] = []
        for fan_in, n in zip(sizes[:-1], hidden, strict=True):
            cls = SelfRecurrent if self_recurrent else SpikingLinear
            layers.append(cls(fan_in, n, learn_leak=bip, **common))
        layers.append(make_readout(readout, hidden[-1], classes, **common))
        self.layers = nn.ModuleList(layers)
        out_sizes = [*hidden, classes]
        self.skips = nn.ModuleDict()
        if skip:
            for src in range(len(hidden)):
                dst = src + 2
                if dst < len(layers):
                    lin = nn.Linear(hidden[src], out_sizes[dst], bias=False)
                    nn.init.kaiming_normal_(lin.weight, mode="fan_in", nonlinearity="relu")
                    self.skips[f"{src}->{dst}"] = lin
        self.config = dict(hidden=hidden, self_recurrent=self_recurrent, skip=skip, bip=bip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes: list[torch.Tensor] = []
        h = x * self.input_gain
        for i, layer in enumerate(self.layers):
            key = f"{i - 2}->{i}"
            extra = self.skips[key](spikes[i - 2]) if key in self.skips else None
            h, _ = layer.run(h, extra_current=extra)
            spikes.append(h)
        return h


#: The ScSr-SNN-paper variants (Table 3) and the feed-forward baseline.
SCSR_VARIANTS = {
    "FF-SNN": dict(self_recurrent=False, skip=False, bip=False),
    "Sr-SNN": dict(self_recurrent=True, skip=False, bip=False),
    "SrSc-SNN": dict(self_recurrent=True, skip=True, bip=False),
    "SrSc-BIP": dict(self_recurrent=True, skip=True, bip=True),
}


def build_scsr(variant: str, in_features: int, hidden, classes: int, **kwargs) -> ScSrSNN:
    """Build one of :data:`SCSR_VARIANTS` (``"FF-SNN"``, ``"Sr-SNN"``, ``"SrSc-SNN"``, ``"SrSc-BIP"``)."""
    try:
        flags = SCSR_VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown ScSr-SNN variant {variant!r}; choose from {list(SCSR_VARIANTS)}") from None
    return ScSrSNN(in_features, hidden, classes, **flags, **kwargs)
