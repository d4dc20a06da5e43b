"""Our networks inside the NeuroBench harness (Yik et al., "The neurobench framework for benchmarking
neuromorphic computing algorithms and systems", Nature Communications 2025).

:class:`NeuroBenchSNN` wraps a model built from our layers (:class:`~snn_motifs.SCMLClassifier`, also
one whose hidden layer is the HRMAS :class:`~snn_motifs.search.space.MixedMotifLayer`,
:class:`~snn_motifs.ScSrSNN`, an ``nn.Sequential`` of :class:`~snn_motifs.SCML` /
:class:`~snn_motifs.SpikingLinear`, or any module that runs its spiking layers through ``layer.run`` or
their step API) as a ``neurobench.models.NeuroBenchModel``, so that
``neurobench.benchmarks.Benchmark`` with ``Footprint``, ``ConnectionSparsity``, ``ActivationSparsity``
(``ActivationSparsityByLayer``) and ``SynapticOperations`` measures it::

    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from snn_motifs.adapters.neurobench_interop import NeuroBenchSNN

    bench = Benchmark(NeuroBenchSNN(model), loader, [], [],
                      [[Footprint, ConnectionSparsity], [ActivationSparsity, SynapticOperations]])
    results = bench.run()                       # loader yields batch-first [B, T, F] inputs, [B] labels

NeuroBench sees a layer only through PyTorch hooks on modules it recognises: it counts synaptic operations
on ``nn.Linear`` / ``nn.Conv*`` / ``nn.RNN*`` modules it finds among the network's children, and
activations on the outputs of modules it is told are activation layers. Our layers run a whole sequence
inside one kernel (``layer.run``), so the recurrence and the spikes are invisible to hooks. The wrapper
makes them visible without changing the model:

* per recurrent layer a :class:`RecurrentSynapses` module, an ``nn.Linear`` whose ``weight`` is the dense
  ``[N, N]`` ``[post, pre]`` signed recurrent matrix (``layer.recurrent_matrix()``; zero where there is
  no synapse). While the wrapper runs the model it calls this module with the spikes that cross the
  recurrence: the recurrence is one step late, so the spikes of steps ``0 .. T-2`` (after the spikes of
  the initial state, when one is given); the last step's spikes cross nothing;
* per spiking layer a :class:`SpikeProbe` (identity) called with the layer's spikes ``[T, B, N]``; these
  are the activation layers (the non-spiking leaky-integrator readout has none). A model that steps a
  layer itself (``spikes, state = layer(x_t, state)``) feeds the probes once per step: the step's spikes,
  and ``state.z`` (the previous step's spikes) through the recurrence;
* the feed-forward ``fc`` of every layer, the readout's ``fc`` and the skip connections of ScSr-SNN are
  plain ``nn.Linear`` modules, called on the whole time-first sequence, so NeuroBench hooks them as they
  are.

``__net__()`` is a container holding the model and these probes. The probes own no parameters or buffers
(the recurrent matrix is a plain tensor attribute, refreshed from the layer whenever the container is
asked for or the model runs), so ``Footprint`` counts exactly the model's parameters and buffers, while
``ConnectionSparsity`` counts the recurrent matrices next to the model's ``nn.Linear`` weights.

During a call (in eval mode, under ``torch.no_grad()``) each spiking layer's ``run`` is replaced by an
instance attribute that calls the original and feeds the probes, and a forward hook watches its step API;
afterwards (also on errors) both are removed and the training modes restored, so the model is left as it
was. ``MembraneUpdates`` and ``NeuronOperations`` read snnTorch neuron state and count nothing here.

How NeuroBench 2.3 counts (its source): a connection layer's operations per call are its binarised
inputs through its binarised weights, bias dropped, so one operation per (non-zero input value, non-zero
weight it feeds); they are ACs when every input value of that call is 0, 1 or -1, else MACs (our
feed-forward layers are called once per batch on the whole sequence, snnTorch models once per step);
``Dense`` sets every weight and input to 1, absent synapses included; all three are divided by the number
of samples. ``ConnectionSparsity`` is zero weights over all weights of the leaf ``nn.Linear`` / ``nn.Conv*``
modules (and RNN weights), rounded to 4 decimals. ``ActivationSparsity`` is zero outputs over all outputs
of the activation layers, pooled (a batch-size weighted mean over batches). ``Footprint`` is the bytes of
every parameter and buffer of ``__net__()``, taken before the data run.

NeuroBench 2.3 declares ``torchaudio``, which its metrics never import (only the speech pre-processing
does) and which is not built for every torch (none for torch 2.13); install the harness with::

    pip install 'snn-motifs[neurobench]'          # what neurobench's metrics import: snntorch, tqdm, numpy
    pip install --no-deps neurobench==2.3.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from snn_motifs._optional import MissingDependencyError, require
from snn_motifs.layers import SpikingLayer
from snn_motifs.metrics import tap_spikes
from snn_motifs.training import LossConfig, make_predict, objective_of

require("snntorch", "neurobench", "the NeuroBench harness")
require("tqdm", "neurobench", "the NeuroBench harness")
try:
    from neurobench.models import NeuroBenchModel
except ImportError as _exc:  # pragma: no cover - exercised only without neurobench
    raise MissingDependencyError(
        f"the NeuroBench harness needs the package 'neurobench', which is not installed ({_exc}). "
        "Install it with: pip install 'snn-motifs[neurobench]' && pip install --no-deps neurobench==2.3.0 "
        "(neurobench declares torchaudio, which its metrics do not import)"
    ) from _exc

__all__ = ["NeuroBenchSNN", "RecurrentSynapses", "SpikeProbe"]

#: what ``NeuroBenchSNN(model, output=...)`` returns from a call
OUTPUTS = ("prediction", "raw")


class RecurrentSynapses(nn.Linear):
    """The recurrence of one layer as NeuroBench sees it: ``nn.Linear(N, N, bias=False)`` whose ``weight``
    is the dense ``[post, pre]`` signed recurrent matrix.

    The weight is a plain tensor attribute, not a parameter or buffer, so that it adds nothing to the
    footprint (the layer stores its recurrence in O(N v), not as this dense matrix).
    """

    def __init__(self, weight: torch.Tensor) -> None:
        nn.Module.__init__(self)  # nn.Linear's own __init__ would register a [N, N] parameter
        self.in_features = self.out_features = int(weight.shape[0])
        self.bias = None
        self.weight = weight

    def set_weight(self, weight: torch.Tensor) -> None:
        """Replace the matrix (``[N, N]``, detached)."""
        if weight.shape != (self.out_features, self.in_features):
            raise ValueError(f"recurrent matrix must be {[self.out_features] * 2}, got {list(weight.shape)}")
        self.__dict__["weight"] = weight


class SpikeProbe(nn.Module):
    """Identity module called with a layer's spike train, so that activation hooks record it."""

    def __init__(self, n_neurons: int) -> None:
        super().__init__()
        self.n_neurons = n_neurons

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return spikes

    def extra_repr(self) -> str:
        return f"n_neurons={self.n_neurons}"


class _Instrumented(nn.Module):
    """``__net__()``: the model and the probes (a forward that is the model's)."""

    def __init__(self, model: nn.Module, recurrent: list[RecurrentSynapses], spikes: list[SpikeProbe]):
        super().__init__()
        self.model = model
        self.recurrent = nn.ModuleList(recurrent)
        self.spikes = nn.ModuleList(spikes)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)


def _has_recurrence(layer: SpikingLayer) -> bool:
    return layer.recurrent_weights()[0] is not None


def _runs_layers_in_order(model: nn.Module) -> bool:
    """An ``nn.Sequential`` of layers with the sequence API (spiking layers, readouts): chained by ``run``."""
    return isinstance(model, nn.Sequential) and len(model) > 0 and all(hasattr(m, "run") for m in model)


class NeuroBenchSNN(NeuroBenchModel):
    """A model built from our layers as a NeuroBench model (see the module docstring for what it exposes).

    Args:
        model: the network; it must hold at least one :class:`~snn_motifs.layers.SpikingLayer`. It is run
            as ``model(x)`` on time-first ``x`` ``[T, B, F]`` (a single layer and an ``nn.Sequential`` of
            layers with the sequence API through ``run``) and must return ``[T, B, C]``.
        output: ``"prediction"`` (default): a call returns the predicted classes ``[B]`` with the rule of
            the model's readout (:func:`snn_motifs.training.make_predict`), what NeuroBench's
            ``ClassificationAccuracy`` compares with the labels; ``"raw"``: the model's output
            batch-first, ``[B, T, C]``.
        loss: the :class:`~snn_motifs.training.LossConfig` whose prediction rule to use (default: the
            model's own readout, :func:`snn_motifs.training.objective_of`).

    A call takes NeuroBench's batch-first data ``[B, T, F]`` and runs under ``torch.no_grad()`` in eval
    mode (the model's mode is restored afterwards).

    Attributes:
        model: the wrapped network.
        spiking_layer_names: the spiking layers by their module name in ``model``; the activation layers
            carry these names (``ActivationSparsityByLayer``).
        recurrent_layer_names: the layers with a recurrence, in the order of ``__net__().recurrent``.
    """

    def __init__(self, model: nn.Module, output: str = "prediction", loss: LossConfig | None = None) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {list(OUTPUTS)}, got {output!r}")
        layers = {name or "model": m for name, m in model.named_modules() if isinstance(m, SpikingLayer)}
        if not layers:
            raise TypeError(
                f"{type(model).__name__} holds none of snn_motifs' spiking layers; wrap a stock snnTorch "
                "network with neurobench.models.SNNTorchModel instead"
            )
        self.model = model
        self.output = output
        self._predict: Callable[[torch.Tensor], torch.Tensor] = make_predict(objective_of(model, loss))
        self.spiking_layer_names = list(layers)
        self.recurrent_layer_names = [name for name, layer in layers.items() if _has_recurrence(layer)]
        for name in self.recurrent_layer_names:
            if not hasattr(layers[name], "recurrent_matrix"):
                raise TypeError(
                    f"layer {name!r} ({type(layers[name]).__name__}) has a recurrence but no "
                    "recurrent_matrix() to expose it to NeuroBench"
                )
        self._layers = layers
        recurrent = [RecurrentSynapses(self._dense(layers[name])) for name in self.recurrent_layer_names]
        spikes = [SpikeProbe(layer.n_neurons) for layer in layers.values()]
        self._net = _Instrumented(model, recurrent, spikes)

    # -- NeuroBenchModel ------------------------------------------------------------------------------
    def __net__(self) -> nn.Module:
        """The model and the probes; the recurrent matrices are refreshed from the layers first."""
        self.refresh()
        return self._net

    def activation_layers(self) -> list[dict[str, Any]]:
        """One :class:`SpikeProbe` per spiking layer, named after the layer."""
        return [
            {"layer_name": name, "layer": probe}
            for name, probe in zip(self.spiking_layer_names, self._net.spikes, strict=True)
        ]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Run the model on batch-first ``batch`` ``[B, T, F]``; the predictions ``[B]`` (or, with
        ``output="raw"``, the outputs ``[B, T, C]``)."""
        if not isinstance(batch, torch.Tensor) or batch.dim() != 3:
            shape = list(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise ValueError(f"NeuroBench data must be batch-first [B, T, F], got {shape}")
        self.refresh()
        x = batch.transpose(0, 1)
        with self._instrumented(), torch.no_grad():
            if isinstance(self.model, SpikingLayer):
                out = self.model.run(x)[0]
            elif _runs_layers_in_order(self.model):
                out = x
                for layer in self.model:
                    out = layer.run(out)[0]
            else:
                out = self.model(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 3:
            raise ValueError(f"the model must return [T, B, C] outputs, got {getattr(out, 'shape', out)!r}")
        return self._predict(out) if self.output == "prediction" else out.transpose(0, 1)

    # -- probes ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Copy every layer's current recurrent matrix into its :class:`RecurrentSynapses`."""
        for name, probe in zip(self.recurrent_layer_names, self._net.recurrent, strict=True):
            probe.set_weight(self._dense(self._layers[name]))

    @staticmethod
    def _dense(layer: SpikingLayer) -> torch.Tensor:
        return layer.recurrent_matrix().detach().clone()

    @contextmanager
    def _instrumented(self) -> Iterator[None]:
        """Eval mode, and every spiking layer's spikes (sequence and step API) fed to its probes through
        :func:`snn_motifs.metrics.tap_spikes`; all undone on exit."""
        spikes = dict(zip(self._layers, self._net.spikes, strict=True))
        recurrent = dict(zip(self.recurrent_layer_names, self._net.recurrent, strict=True))

        def tap(name: str, out: torch.Tensor, crossing: torch.Tensor) -> None:
            spikes[name](out)
            if name in recurrent and crossing.numel():
                recurrent[name](crossing)

        training = [(m, m.training) for m in self.model.modules()]
        try:
            self.model.eval()
            with tap_spikes(self._layers, tap):
                yield
        finally:
            for module, mode in training:
                module.training = mode
