"""Hardware-cost metrics of a spiking network, with NeuroBench's definitions (Yik et al., *NeuroBench: a
framework for benchmarking neuromorphic computing algorithms and systems*, Nature Communications 2025).

What SC-ML exists for is cheap recurrence (the HRMAS paper, sec 2.2: O(N v) recurrent synapses instead of
O(N^2)); :func:`measure` counts it on one input batch:

* **footprint** -- bytes of every parameter and buffer (NeuroBench ``Footprint``);
* **connection sparsity** -- zero weights over all weights of the connection layers (every ``nn.Linear``
  / ``nn.Conv*`` and each recurrent layer's ``N x N`` matrix, its absent edges as zeros; NeuroBench
  ``ConnectionSparsity``);
* **activation sparsity** -- zero outputs over all outputs of the spiking layers, per layer and overall
  (NeuroBench ``ActivationSparsity``; the non-spiking leaky-integrator readout is not an activation);
* **synaptic operations** -- per call of a connection layer, one operation per (non-zero input value,
  non-zero synapse it feeds): an **accumulate (AC)** when every input value of that call is binary
  (0, 1 or -1: spikes), else a **multiply-accumulate (MAC)** (NeuroBench ``SynapticOperations``,
  ``Effective_ACs`` / ``Effective_MACs``; ``Dense`` counts every weight for every input). A recurrent
  layer's synapses are counted from the spikes that actually cross them: the spikes of steps
  ``0 .. T-2`` (and of the initial state), since the recurrence has a one-step delay (the HRMAS paper,
  eq 15). Motif weights count as the non-zeros they are (an edge of type "none" is no synapse; the
  HRMAS mixed op's edges all are);
* **energy** -- a labelled *estimate*, ``ACs * E_AC + MACs * E_MAC`` from stated per-operation constants
  (default: the 45 nm CMOS figures SNN papers use, 0.9 pJ per 32-bit float add and 4.6 pJ per
  multiply-add, Horowitz, ISSCC 2014). Change them with :class:`EnergyModel`.

All counts are per sample (divided by the batch size). ``measure`` runs under ``torch.no_grad()`` in
evaluation mode and leaves the model as it found it (state_dict and training modes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .layers import SpikingLayer, spiking_layers
from .neuron import LIFState
from .recurrence import recurrent_current_t

__all__ = ["EnergyModel", "measure", "recurrent_fan_out", "recurrent_synapses", "tap_spikes", "COST_KEYS"]

#: the numbers :func:`measure` adds to run results (``result.json``, ``summary.json``)
COST_KEYS = (
    "parameters",
    "footprint_bytes",
    "recurrent_synapses",
    "connection_sparsity",
    "ac_per_sample",
    "mac_per_sample",
    "synops_per_sample",
    "energy_pj_per_sample",
)

_CONNECTIONS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class EnergyModel:
    """Energy per synaptic operation, in picojoules, for the estimate ``ACs * ac_pj + MACs * mac_pj``.

    The defaults are the 45 nm CMOS figures for 32-bit floating point (add 0.9 pJ, multiply 3.7 pJ, so a
    multiply-accumulate 4.6 pJ; Horowitz, ISSCC 2014) that SNN papers use to compare with ANNs. They are
    an order-of-magnitude estimate, not a measurement of any chip.
    """

    ac_pj: float = 0.9
    mac_pj: float = 4.6
    source: str = "45 nm CMOS, 32-bit float (Horowitz, ISSCC 2014)"

    def __post_init__(self) -> None:
        for name in ("ac_pj", "mac_pj"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"EnergyModel.{name} must be a finite number of picojoules, got {value!r}")
            if value < 0:
                raise ValueError(f"EnergyModel.{name} must be >= 0 picojoules, got {value!r}")

    def energy_pj(self, ac: float, mac: float) -> float:
        return ac * self.ac_pj + mac * self.mac_pj


# -- the recurrence of our layers ------------------------------------------------------------------
def _binary_weights(layer: SpikingLayer) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    intra, lateral = layer.recurrent_weights()
    if intra is None:
        return None, None
    binary = (intra.detach() != 0).to(intra.dtype)
    return binary, None if lateral is None else (lateral.detach() != 0).to(intra.dtype)


def recurrent_fan_out(layer: SpikingLayer) -> torch.Tensor | None:
    """Non-zero outgoing recurrent synapses of each neuron, ``[N]`` (None without recurrence): the column
    counts of the binarised ``[N, N]`` recurrent matrix, computed in O(N v) as ``W_b^T 1``."""
    intra, lateral = _binary_weights(layer)
    if intra is None:
        return None
    ones = intra.new_ones(layer.n_neurons // layer.block_size, 1, layer.block_size)
    return recurrent_current_t(ones, intra, lateral).reshape(layer.n_neurons)


@torch.no_grad()
def recurrent_synapses(model: nn.Module) -> int:
    """Non-zero recurrent weights of every spiking layer in ``model`` (lateral edges that would leave the
    layer are not synapses)."""
    layers = [model] if isinstance(model, SpikingLayer) else spiking_layers(model).values()
    return sum(int(f.sum()) for layer in layers if (f := recurrent_fan_out(layer)) is not None)


def _stock_spiking(module: nn.Module) -> bool:
    """A simulator's own spiking neuron module (snnTorch's ``SpikingNeuron`` family), found without
    importing the simulator."""
    return any(
        c.__name__ == "SpikingNeuron" and c.__module__.startswith("snntorch") for c in type(module).__mro__
    )


# -- counting ---------------------------------------------------------------------------------------
def _is_binary(x: torch.Tensor) -> bool:
    """NeuroBench's test: every value is 0, 1 or -1."""
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


def _connection_ops(module: nn.Module, inp: torch.Tensor) -> tuple[int, int]:
    """``(effective, dense)`` operations of one call: binarised inputs through binarised weights."""
    weight = (module.weight.detach() != 0).to(torch.float64)
    nonzero = (inp.detach() != 0).to(torch.float64)
    ones = torch.ones_like(nonzero)
    if isinstance(module, nn.Linear):
        col = weight.sum(0)  # non-zero synapses fed by each input feature
        return int(nonzero.matmul(col).sum()), int(ones.matmul(torch.ones_like(col) * weight.shape[0]).sum())

    def conv(x: torch.Tensor, w: torch.Tensor) -> int:
        return int(module._conv_forward(x, w, None).sum())

    return conv(nonzero, weight), conv(ones, torch.ones_like(weight))


class _Counter:
    """Accumulates operations and activations while hooks are installed."""

    def __init__(self) -> None:
        self.ac = self.mac = self.dense = 0
        self.ops: dict[str, dict[str, int]] = {}
        self.active: dict[str, list[int]] = {}

    def add_ops(self, name: str, effective: int, dense: int, binary: bool) -> None:
        kind = "ac" if binary else "mac"
        entry = self.ops.setdefault(name, {"ac": 0, "mac": 0})
        entry[kind] += effective
        if binary:
            self.ac += effective
        else:
            self.mac += effective
        self.dense += dense

    def add_activity(self, name: str, spikes: torch.Tensor) -> None:
        entry = self.active.setdefault(name, [0, 0])
        entry[0] += int(torch.count_nonzero(spikes))
        entry[1] += spikes.numel()


def _recurrent_ops(counter: _Counter, name: str, fan_out: torch.Tensor, crossing: torch.Tensor) -> None:
    """Spikes that cross the recurrent synapses, each reaching ``fan_out`` neurons."""
    spikes = crossing.reshape(-1, crossing.shape[-1])
    if spikes.numel() == 0:
        return
    effective = int((spikes != 0).to(torch.float64).matmul(fan_out.to(torch.float64)).sum())
    dense = fan_out.numel() ** 2 * spikes.shape[0]  # every entry of the N x N matrix, every crossing row
    counter.add_ops(f"{name}.recurrent", effective, dense, _is_binary(spikes))


SpikeTap = Callable[[str, torch.Tensor, torch.Tensor], None]


def _tapped_run(name: str, layer: SpikingLayer, run: Callable, tap: SpikeTap) -> Callable:
    def tapped(x, state=None, *args, **kwargs):
        out = run(x, state, *args, **kwargs)
        batch_first = kwargs.get("batch_first")
        spikes = out[0].detach()
        if layer.batch_first if batch_first is None else batch_first:
            spikes = spikes.transpose(0, 1)
        crossing = spikes[:-1]  # s[t] reaches the neurons at t + 1: the last step's spikes cross nothing
        if isinstance(state, LIFState):  # the initial state's spikes cross at step 0
            crossing = torch.cat([state.z.detach().unsqueeze(0).to(spikes), crossing])
        tap(name, spikes, crossing)
        return out

    return tapped


@contextmanager
def tap_spikes(layers: dict[str, SpikingLayer], tap: SpikeTap) -> Iterator[None]:
    """While inside, every call of each layer's sequence API (``run``) and step API (``layer(x_t, state)``)
    calls ``tap(name, spikes, crossing)``: its output spikes, time-first ``[T, B, N]`` (``T = 1`` for a
    step), and the spikes that cross its recurrence in that call (the one-step delay of the HRMAS paper's
    eq 15: the initial state's and steps ``0 .. T-2``; for a step, the previous step's), detached. ``run``
    becomes an instance attribute and a forward hook is registered; both are undone on exit, also on
    errors. Used by :func:`measure` and by NeuroBench's wrapper (``adapters/neurobench_interop.py``)."""
    handles, saved = [], []

    def on_step(name: str):
        def hook(_layer, args, kwargs, output) -> None:
            state = args[1] if len(args) > 1 else kwargs.get("state")
            spikes = output[0].detach().unsqueeze(0)
            crossing = state.z.detach().unsqueeze(0) if isinstance(state, LIFState) else spikes[:0]
            tap(name, spikes, crossing)

        return hook

    try:
        for name, layer in layers.items():
            handles.append(layer.register_forward_hook(on_step(name), with_kwargs=True))
            saved.append((layer, layer.__dict__.get("run")))
            layer.run = _tapped_run(name, layer, layer.run, tap)  # an instance attribute, removed below
        yield
    finally:
        for handle in handles:
            handle.remove()
        for layer, own in reversed(saved):
            if own is None:
                del layer.__dict__["run"]
            else:
                layer.__dict__["run"] = own


@contextmanager
def _hooks(model: nn.Module, counter: _Counter) -> Iterator[None]:
    """Count every connection-layer call and every spiking layer's output while inside."""
    handles = []
    names = {m: n or "model" for n, m in model.named_modules()}

    def on_connection(module, args, _output):
        effective, dense = _connection_ops(module, args[0])
        counter.add_ops(names[module], effective, dense, _is_binary(args[0]))

    def on_stock(module, _args, output):
        counter.add_activity(names[module], output[0] if isinstance(output, tuple) else output)

    for module in model.modules():
        if isinstance(module, _CONNECTIONS):
            handles.append(module.register_forward_hook(on_connection))
        elif _stock_spiking(module):
            handles.append(module.register_forward_hook(on_stock))

    layers = spiking_layers(model)
    fan_outs = {name: recurrent_fan_out(layer) for name, layer in layers.items()}

    def on_spikes(name: str, spikes: torch.Tensor, crossing: torch.Tensor) -> None:
        counter.add_activity(name, spikes)
        if fan_outs[name] is not None:
            _recurrent_ops(counter, name, fan_outs[name], crossing)

    try:
        with tap_spikes(layers, on_spikes):
            yield
    finally:
        for handle in handles:
            handle.remove()


# -- the public entry point -------------------------------------------------------------------------
def _check(model: object, x: object, batch_first: bool) -> torch.Tensor:
    if not isinstance(model, nn.Module):
        raise TypeError(f"measure() needs a torch.nn.Module, got {type(model).__name__}")
    if not spiking_layers(model) and not any(_stock_spiking(m) for m in model.modules()):
        raise ValueError(
            f"{type(model).__name__} has no spiking layer: measure() counts spikes and synaptic "
            "operations of models built from snn_motifs layers (SCML, SelfRecurrent, SpikingLinear, "
            "MixedMotifLayer) or snnTorch neurons"
        )
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        what = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a floating-point tensor [T, B, F], got {what}; convert it with x.float()")
    layout = "[B, T, F] (batch_first=True)" if batch_first else "[T, B, F] (time-first)"
    if x.dim() != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must have shape {layout} with T, B >= 1, got {list(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"x contains {int((~torch.isfinite(x)).sum())} NaN/Inf value(s); clean the input")
    return x.transpose(0, 1) if batch_first else x


def _forward(model: nn.Module, x: torch.Tensor) -> None:
    """Our models take the whole sequence (an ``nn.Sequential`` of our layers is chained through their
    ``run``); a stock stepwise network (e.g. an ``nn.Sequential`` of
    ``nn.Linear`` and snnTorch ``Leaky(init_hidden=True)``) is reset and stepped through time."""
    if isinstance(model, SpikingLayer):
        model.run(x)
    elif isinstance(model, nn.Sequential) and spiking_layers(model):
        for layer in model:  # a stack of our layers: each runs the whole sequence
            x = layer.run(x)[0] if hasattr(layer, "run") else layer(x)
    elif spiking_layers(model):
        model(x)
    else:
        _reset_stock(model)
        for x_t in x.unbind(0):
            model(x_t)
        _reset_stock(model)


def _reset_stock(model: nn.Module) -> None:
    for m in model.modules():
        if _stock_spiking(m) and hasattr(m, "reset_mem"):
            m.reset_mem()


def _static(model: nn.Module) -> dict:
    """The numbers that do not depend on the input: parameters, footprint (every parameter and buffer, as
    NeuroBench's ``Footprint``), recurrent synapses and connection sparsity."""
    zeros = total = 0
    for module in model.modules():
        if isinstance(module, _CONNECTIONS):
            zeros += int((module.weight == 0).sum())
            total += module.weight.numel()
    for layer in spiking_layers(model).values():
        fan_out = recurrent_fan_out(layer)
        if fan_out is not None:
            total += layer.n_neurons**2
            zeros += layer.n_neurons**2 - int(fan_out.sum())
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "footprint_bytes": sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers())),
        "recurrent_synapses": recurrent_synapses(model),
        "connection_sparsity": zeros / total if total else 0.0,
    }


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def measure(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_first: bool = False,
    energy: EnergyModel | None = None,
    batch_size: int | None = None,
) -> dict:
    """Cost of ``model`` on the input batch ``x`` ``[T, B, F]`` (``[B, T, F]`` with ``batch_first``), with
    NeuroBench's definitions (module docstring).

    Returns a JSON-ready dict: ``parameters``, ``footprint_bytes``, ``recurrent_synapses``,
    ``connection_sparsity``, ``activation_sparsity`` (``{"overall": ..., "layers": {name: ...}}``),
    ``firing_rate`` (1 - overall activation sparsity), ``ac_per_sample``, ``mac_per_sample``,
    ``synops_per_sample`` (ACs + MACs), ``dense_synops_per_sample``, ``energy_pj_per_sample`` (an
    estimate from ``energy``, default :class:`EnergyModel`), ``energy_model``, ``ops_per_layer``
    (``{connection: {"ac", "mac"}}`` per sample), ``samples`` and ``time_steps``.

    ``batch_size`` runs a large ``x`` (e.g. a whole test set, sample-first with ``batch_first=True``) in
    chunks of that many samples; the counts are the same as one pass over all of them.

    Example::

        from snn_motifs import SCMLClassifier
        from snn_motifs.metrics import measure
        cost = measure(SCMLClassifier(40, 128, 10, motif_size=8), torch.rand(40, 16, 40))
        cost["synops_per_sample"], cost["energy_pj_per_sample"]
    """
    x = _check(model, x, batch_first)
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int or None (one pass), got {batch_size!r}")
    energy = EnergyModel() if energy is None else energy
    if not isinstance(energy, EnergyModel):
        raise TypeError(f"energy must be an EnergyModel, got {type(energy).__name__}")
    static = _static(model)  # before running: a stock neuron may allocate state buffers on its first step
    modes = {m: m.training for m in model.modules()}
    before = _snapshot(model)
    counter = _Counter()
    try:
        model.eval()
        with _hooks(model, counter):
            for chunk in x.split(batch_size or x.shape[1], dim=1):
                _forward(model, chunk)
    finally:
        for m, mode in modes.items():
            m.training = mode
        after = model.state_dict()
        if any(not torch.equal(after[k], v) for k, v in before.items()):
            model.load_state_dict(before)  # e.g. a stock neuron's membrane kept as a persistent buffer
    batch = x.shape[1]
    active = sum(a for a, _ in counter.active.values())
    seen = sum(n for _, n in counter.active.values())
    ac, mac = counter.ac / batch, counter.mac / batch
    return {
        **static,
        "activation_sparsity": {
            "overall": (seen - active) / seen if seen else 0.0,
            "layers": {name: (n - a) / n if n else 0.0 for name, (a, n) in counter.active.items()},
        },
        "firing_rate": active / seen if seen else 0.0,
        "ac_per_sample": ac,
        "mac_per_sample": mac,
        "synops_per_sample": ac + mac,
        "dense_synops_per_sample": counter.dense / batch,
        "energy_pj_per_sample": energy.energy_pj(ac, mac),
        "energy_model": {**asdict(energy), "estimate": True},
        "ops_per_layer": {name: {k: v / batch for k, v in ops.items()} for name, ops in counter.ops.items()},
        "samples": batch,
        "time_steps": x.shape[0],
    }
