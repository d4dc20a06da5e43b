"""Export SC-ML and ScSr-SNN networks to NIR, the Neuromorphic Intermediate Representation, and run
them back through snnTorch's or Norse's NIR importer.

NIR describes neurons in continuous time. Our neuron (the HRMAS paper, eqs 1-4, :mod:`snn_motifs.neuron`) is
a discrete-time model with ``dt = 1`` step, so the export picks a physical step ``dt`` (seconds) and
writes each layer as a ``CubaLIF`` node whose forward-Euler discretisation at that ``dt`` is our
neuron *exactly*::

    NIR CubaLIF (Euler, step dt)                          ours (eqs 1-4), per neuron i
    I[t] = (1 - dt/tau_syn) I[t-1] + dt/tau_syn w_in c'    I[t] = (1 - 1/tau_s) I[t-1] + R_i c[t]
    v[t] = (1 - dt/tau_mem) v[t-1] + dt/tau_mem r I[t]     u[t] = (1 - 1/tau_i) u[t-1] + I[t] / tau_i
    spike v > v_threshold, then v = v_reset = 0            spike u > V_th, then u = 0 (eq 3)

with ``tau_mem = tau_i dt``, ``tau_syn = tau_s dt``, ``r = tau_mem/dt``, ``w_in = tau_syn/dt`` and every
weight row feeding neuron ``i`` multiplied by ``R_i / tau_i`` (``c' = (R/tau) c``): the NIR current is
ours divided by ``tau_i / R_i`` and the membrane is ours unchanged. This is the parametrisation
snnTorch's own exporter writes (``r = tau_mem/dt``, ``w_in = tau_syn/dt``), so per-neuron time constants
and gains (BIP leaks, SpiKL-IP) export without any importer having to rescale thresholds.

Graph layout, for layer ``k`` (names sort in topological order, which nirtorch's loader needs after
``nir.read``, since HDF5 hands the nodes back alphabetically)::

    input -> layer0.fc -> layer0.lif ----------------> layer1.fc -> layer1.lif -> ... -> output
                            |    ^                                   ^
                            v    |                                   |
                          layer0.w_rec          layerK.in_skipJ (ScSr-SNN skip from layer J)

The recurrent edge ``lif -> w_rec -> lif`` carries ``W_rec s[t-1]`` (eq 15's one-step delay). By default
(``recurrent_subgraphs=True``) each recurrent layer is a nested ``NIRGraph`` ``layerK.rec``
(``input -> lif <-> w_rec``, ``lif -> output``), the layout snnTorch's exporter uses for ``RSynaptic``;
``recurrent_subgraphs=False`` writes the cycle flat, as drawn above.

A membrane readout (:class:`~snn_motifs.readout.LeakyIntegrator`, the default ``readout="mean"``) is written
as ``Affine -> LI`` with ``tau = tau_mem dt``, ``r = 1``, ``v_leak = 0``, whose forward-Euler step is
:func:`~snn_motifs.readout.leaky_integrate`; the graph's output is then the membrane, and
``metadata["readout"]`` says how it is reduced over time.

Importer findings (snnTorch 1.0.0, Norse 1.1.0, nirtorch 2.6, nir 1.0.8) are listed in
:data:`IMPORTER_NOTES` and in docs/nir.md; :func:`import_norse` and :func:`import_snntorch` apply the
needed settings (``dt``), map ``LI`` (which neither importer does) to the simulator's own leaky
integrator, and refuse the cases that are known to compute something else. Their code, like
everything that touches a simulator, lives in the adapters package (``snn_motifs.adapters.norse_interop``,
``snn_motifs.adapters.snntorch_interop``); this module itself never imports snnTorch or Norse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._io import atomic_path
from ._optional import require
from .layers import SpikingLayer
from .models import SCMLClassifier, ScSrSNN
from .nir_graph import DEFAULT_DT, check_dt, read_nir
from .readout import LeakyIntegrator

__all__ = [
    "DEFAULT_DT",
    "IMPORTER_NOTES",
    "to_nir",
    "export_nir",
    "read_nir",
    "import_norse",
    "import_snntorch",
    "run_imported",
]

#: What we found in the importers; see docs/nir.md.
IMPORTER_NOTES = {
    "norse": (
        "norse.torch.from_nir maps CubaLIF to an LIBoxCell synapse (input scaled by dt/tau_syn) feeding "
        "an LIFBoxCell, i.e. forward Euler: spikes match ours when it is given the export dt (its default "
        "is 1e-3). Its loader (the deprecated nirtorch.load GraphExecutor) orders nodes by a pre-order "
        "depth-first walk, which is not a topological order once a node has two feed-forward inputs: "
        "ScSr-SNN's l -> l+2 skips then read a stale input or crash, so graphs with skips cannot be "
        "imported into Norse. It builds nir.Linear as torch.nn.Linear(in=weight.shape[-2], "
        "out=weight.shape[-1]) and then overwrites the weight, so in_features/out_features are swapped "
        "for non-square matrices although the computation is right. Parameters are float32 tensors "
        "inside NamedTuples: .double() does not reach them. It has no mapping for nir.LI (our "
        "non-spiking readout) and passes the node's input through unchanged; import_norse adds one: "
        "Norse's LIBoxCell (dv = dt tau_mem_inv (v_leak - v + I), forward Euler without a synaptic "
        "current) fed r I, which reproduces snn_motifs.readout.leaky_integrate to float32 rounding "
        "(Norse's LICell adds a synaptic current carried to the next step; it matches only with "
        "tau_syn = dt)."
    ),
    "snntorch": (
        "snntorch.import_nir.import_from_nir hard-codes dt = 1e-4 and asserts r == tau_mem/dt. For a flat "
        "recurrent edge (LIF <-> Linear) it builds a subgraph whose input enters through W_rec (edge "
        "input -> w_rec), so the imported layer computes lif(W_rec (c[t] + s[t-1])) instead of "
        "lif(c[t] + W_rec s[t-1]); recurrent layers must therefore be exported as nested subgraphs "
        "(recurrent_subgraphs=True, the default), which it leaves to nirtorch. nirtorch 2.6 crashes "
        "(\"'GraphModule' object has no attribute 'items'\") when it meets a subgraph before the node "
        "feeding it, which happens after nir.read (alphabetical order) unless names sort topologically. "
        "Neurons are built with init_hidden=True (state inside the module; snntorch.utils.reset resets "
        "every instance in the process, so reset each neuron's reset_mem()), and it prints to stdout. "
        "It has no mapping for nir.LI (our non-spiking readout; nirtorch raises 'Unknown node type'); "
        "import_snntorch adds one: snn.Leaky(beta = 1 - dt/tau, reset_mechanism='none', threshold=inf), "
        "snnTorch's pure integration, fed r dt/tau I, which reproduces snn_motifs.readout.leaky_integrate "
        "to float32 rounding."
    ),
}


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


@dataclass
class _Stage:
    """One spiking layer of the exported chain, with the matrices feeding it (already folded)."""

    name: str
    layer: SpikingLayer | LeakyIntegrator
    source: str  # node whose output feeds ``fc`` ("input" or another stage's name)
    in_gain: float = 1.0
    skips: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # (source stage, W [N, N_src])


def _stages(model: nn.Module) -> list[_Stage]:
    """Flatten a supported model into the chain of layers NIR will see."""
    if isinstance(model, SpikingLayer):
        return [_Stage("layer0", model, "input")]
    if isinstance(model, SCMLClassifier):
        return [
            _Stage("layer0", model.hidden, "input", in_gain=float(model.input_gain)),
            _Stage("layer1", model.output, "layer0"),
        ]
    if isinstance(model, ScSrSNN):
        width = len(str(len(model.layers) - 1))
        names = [f"layer{k:0{width}d}" for k in range(len(model.layers))]
        stages = []
        for k, layer in enumerate(model.layers):
            stage = _Stage(
                names[k],
                layer,
                "input" if k == 0 else names[k - 1],
                in_gain=float(model.input_gain) if k == 0 else 1.0,
            )
            key = f"{k - 2}->{k}"
            if key in model.skips:
                stage.skips.append((names[k - 2], model.skips[key].weight))
            stages.append(stage)
        return stages
    layers_only = isinstance(model, nn.Sequential) and all(isinstance(m, SpikingLayer) for m in model)
    if layers_only and len(model) > 0:
        width = len(str(len(model) - 1))
        names = [f"layer{k:0{width}d}" for k in range(len(model))]
        return [_Stage(names[k], m, "input" if k == 0 else names[k - 1]) for k, m in enumerate(model)]
    raise TypeError(
        f"to_nir supports SCML, SelfRecurrent, SpikingLinear (any SpikingLayer), SCMLClassifier, ScSrSNN and "
        f"nn.Sequential of spiking layers; got {type(model).__name__}. For an HRMAS search result, export "
        f"the retrained network (classifier_from_genotype / HRMASRun.retrain)."
    )


def _recurrent_matrix(layer: SpikingLayer) -> torch.Tensor | None:
    intra, _ = layer.recurrent_weights()
    if intra is None:
        return None
    return layer.recurrent_matrix().detach()


def _fold_rows(w: torch.Tensor, scale: torch.Tensor, dtype) -> np.ndarray:
    """``diag(scale) @ w`` (or ``scale * w`` for a bias) computed in float64, stored as ``dtype``."""
    w = w.detach().to(torch.float64)
    return (w * (scale[:, None] if w.dim() == 2 else scale)).cpu().numpy().astype(dtype)


def _check_finite(name: str, array: np.ndarray) -> np.ndarray:
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN/Inf; export a trained model with finite parameters")
    return array


def to_nir(model: nn.Module, dt: float = DEFAULT_DT, *, recurrent_subgraphs: bool = True):
    """Describe ``model`` as a ``nir.NIRGraph`` (continuous-time ``CubaLIF`` + ``Linear``/``Affine`` nodes).

    Args:
        model: an :class:`~snn_motifs.SCML` / :class:`~snn_motifs.SelfRecurrent` /
            :class:`~snn_motifs.SpikingLinear` layer, an :class:`~snn_motifs.SCMLClassifier`, an
            :class:`~snn_motifs.ScSrSNN` (self-recurrence, skips and BIP leaks included) or an
            ``nn.Sequential`` of spiking layers; any backend. The current parameters are exported
            (SpiKL-IP-adapted time constants and gains included).
        dt: the physical length of one of our steps, in seconds. Importers must simulate with the same
            step: Norse's ``from_nir(..., dt=dt)``; snnTorch 1.0 only reads ``dt = 1e-4`` (the default).
        recurrent_subgraphs: write each recurrent layer as a nested ``NIRGraph`` (the default; snnTorch's
            layout for ``RSynaptic``, read correctly by both importers) instead of a flat
            ``lif <-> w_rec`` cycle at the top level (read correctly by Norse only).

    The graph's ``metadata`` records ``dt`` and the conventions, so :func:`import_norse` and
    :func:`import_snntorch` can configure the importers; with a membrane readout (a non-spiking
    :class:`~snn_motifs.readout.LeakyIntegrator`, written as ``Affine -> LI``) it also records the
    classifier's ``readout`` (``"mean"``, ``"max"`` or ``"last"``: how the output membranes, reduced over
    time, give the class). See the module docstring for the equations.
    """
    nir = require("nir", "nir", "NIR export")
    dt = check_dt(dt)
    stages = _stages(model)
    nodes: dict = {}
    edges: list[tuple[str, str]] = []
    n_in = stages[0].layer.in_features
    nodes["input"] = nir.Input(input_type=np.array([n_in]))
    spikes_of: dict[str, str] = {}  # stage name -> the node that emits its spikes (stages come in order)
    for stage in stages:
        layer, p = stage.layer, stage.name
        if isinstance(layer, LeakyIntegrator):
            spikes_of[p] = _leaky_integrator_nodes(nir, stage, spikes_of, nodes, edges, dt)
            continue
        neurons = layer.neurons
        if getattr(neurons, "reset_mechanism", "zero") != "zero":
            raise ValueError(
                f"{p}: NIR CubaLIF resets to v_reset; only the zero (hard) reset of eq 3 exports, got "
                f"reset_mechanism={neurons.reset_mechanism!r}"
            )
        n = layer.n_neurons
        tau = neurons.tau_mem.detach().clamp(min=1.0)  # the same clamp the neuron uses
        resistance = neurons.effective_resistance().detach()
        row_scale = (resistance / tau).to(torch.float64)  # R_i / tau_i folded into rows
        tau_np = _numpy(tau)
        tau_s = float(neurons.params.tau_syn)
        # weights keep the model's precision (float32 models -> float32 arrays, float64 -> float64)
        np_dtype = np.float64 if layer.fc.weight.dtype == torch.float64 else np.float32

        def folded(name: str, w: torch.Tensor, scale=row_scale, dtype=np_dtype) -> np.ndarray:
            return _check_finite(name, _fold_rows(w, scale, dtype))

        w_ff = folded(f"{p}.fc weight", layer.fc.weight * stage.in_gain)
        if layer.fc.bias is not None:
            nodes[f"{p}.fc"] = nir.Affine(weight=w_ff, bias=folded(f"{p}.fc bias", layer.fc.bias))
        else:
            nodes[f"{p}.fc"] = nir.Linear(weight=w_ff)
        edges.append((spikes_of.get(stage.source, "input"), f"{p}.fc"))
        sources = [f"{p}.fc"]
        for src, w_skip in stage.skips:
            key = f"{p}.in_skip{src.removeprefix('layer')}"
            nodes[key] = nir.Linear(weight=folded(f"{key} weight", w_skip))
            edges.append((spikes_of[src], key))
            sources.append(key)
        lif = nir.CubaLIF(
            tau_syn=np.full(n, tau_s * dt),
            tau_mem=_check_finite(f"{p} tau_mem", tau_np * dt),
            r=tau_np.copy(),  # = tau_mem / dt
            v_leak=np.zeros(n),
            v_threshold=np.full(n, float(neurons.v_threshold)),
            v_reset=np.zeros(n),
            w_in=np.full(n, tau_s),  # = tau_syn / dt
        )
        w_rec = _recurrent_matrix(layer)
        if w_rec is None:
            nodes[f"{p}.lif"] = lif
            out = f"{p}.lif"
        elif recurrent_subgraphs:
            w = nir.Linear(weight=folded(f"{p} recurrent weight", w_rec))
            nodes[f"{p}.rec"] = nir.NIRGraph(
                nodes={
                    "input": nir.Input(input_type=np.array([n])),
                    "lif": lif,
                    "w_rec": w,
                    "output": nir.Output(output_type=np.array([n])),
                },
                edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
            )
            out = f"{p}.rec"
        else:
            nodes[f"{p}.lif"] = lif
            nodes[f"{p}.w_rec"] = nir.Linear(weight=folded(f"{p} recurrent weight", w_rec))
            edges += [(f"{p}.lif", f"{p}.w_rec"), (f"{p}.w_rec", f"{p}.lif")]
            out = f"{p}.lif"
        edges += [(s, out) for s in sources]
        spikes_of[p] = out
    last = stages[-1].layer
    n_out = last.fc.out_features if isinstance(last, LeakyIntegrator) else last.n_neurons
    nodes["output"] = nir.Output(output_type=np.array([n_out]))
    edges.append((spikes_of[stages[-1].name], "output"))
    metadata = {
        "exporter": "snn_motifs",
        "dt": dt,
        "time_step": "one snn_motifs step = dt seconds; forward-Euler CubaLIF at dt reproduces eqs 1-4",
        "recurrent_delay_steps": 1,
        "model": type(model).__name__,
    }
    if isinstance(stages[-1].layer, LeakyIntegrator) and isinstance(getattr(model, "readout", None), str):
        # how the output membranes [T, B, C] become a class: training.make_predict(LossConfig(readout=...))
        metadata["readout"] = model.readout
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _leaky_integrator_nodes(nir, stage: _Stage, spikes_of: dict, nodes: dict, edges: list, dt: float) -> str:
    """A non-spiking readout as ``Affine -> LI``: NIR's ``tau dv/dt = v_leak - v + r I`` under forward
    Euler at ``dt`` with ``tau = tau_mem dt``, ``r = 1``, ``v_leak = 0`` is
    :func:`~snn_motifs.readout.leaky_integrate` exactly; the graph's output is then the membrane."""
    layer, p = stage.layer, stage.name
    dtype = np.float64 if layer.fc.weight.dtype == torch.float64 else np.float32
    weight = _check_finite(f"{p}.fc weight", _numpy(layer.fc.weight).astype(dtype))
    if layer.fc.bias is not None:
        nodes[f"{p}.fc"] = nir.Affine(weight=weight, bias=_numpy(layer.fc.bias).astype(dtype))
    else:
        nodes[f"{p}.fc"] = nir.Linear(weight=weight)
    edges.append((spikes_of.get(stage.source, "input"), f"{p}.fc"))
    n = layer.fc.out_features
    nodes[f"{p}.li"] = nir.LI(tau=np.full(n, layer.tau_mem * dt), r=np.ones(n), v_leak=np.zeros(n))
    edges.append((f"{p}.fc", f"{p}.li"))
    for src, w_skip in stage.skips:
        key = f"{p}.in_skip{src.removeprefix('layer')}"
        nodes[key] = nir.Linear(weight=_check_finite(f"{key} weight", _numpy(w_skip).astype(dtype)))
        edges += [(spikes_of[src], key), (key, f"{p}.li")]
    return f"{p}.li"


def export_nir(model: nn.Module, path: str | os.PathLike, dt: float = DEFAULT_DT, **kwargs):
    """:func:`to_nir` then ``nir.write(path, graph)``; returns the graph."""
    nir = require("nir", "nir", "NIR export")
    graph = to_nir(model, dt, **kwargs)
    with atomic_path(path) as tmp:  # a crash never leaves half an HDF5 file behind
        nir.write(os.fspath(tmp), graph)
    return graph


def import_norse(graph_or_path, dt: float | None = None) -> nn.Module:
    """Load a graph (or ``.nir`` file) with ``norse.torch.from_nir`` at the graph's ``dt``.

    Returns Norse's graph executor: ``out, state = module(x_t, state)``; see :func:`run_imported`.
    Graphs with skip connections are refused: Norse 1.1's loader runs them in a wrong order
    (:data:`IMPORTER_NOTES`); use :func:`import_snntorch` for ScSr-SNN with skips. ``LI`` nodes (the
    membrane readout) become Norse's ``LIBoxCell``, which Norse's loader lacks a mapping for; the output
    is then the readout's membrane at every step. Implemented in :mod:`snn_motifs.adapters.norse_interop`.
    """
    from snn_motifs.adapters.norse_interop import import_norse as _import_norse

    return _import_norse(graph_or_path, dt)


def import_snntorch(graph_or_path) -> nn.Module:
    """Load a graph (or ``.nir`` file) with ``snntorch.import_nir.import_from_nir``.

    snnTorch 1.0 reads every graph at ``dt = 1e-4`` and mis-wires flat recurrent edges (see
    :data:`IMPORTER_NOTES`), so this refuses graphs exported with another ``dt`` or with
    ``recurrent_subgraphs=False`` and a recurrent layer instead of returning a network that computes
    something else. Its stdout chatter is captured. ``LI`` nodes (the membrane readout) become a
    non-firing ``snn.Leaky`` (:class:`snn_motifs.adapters.snntorch_interop.SnnTorchLI`), which snnTorch's
    loader lacks a mapping for; the output is then the readout's membrane at every step. Implemented in
    :mod:`snn_motifs.adapters.snntorch_interop`.
    """
    from snn_motifs.adapters.snntorch_interop import import_snntorch as _import_snntorch

    return _import_snntorch(graph_or_path)


def run_imported(module: nn.Module, x: torch.Tensor, *, batch_first: bool = False) -> torch.Tensor:
    """Step an imported NIR module over a whole sequence and stack its outputs.

    ``x`` is ``[T, B, F]`` (``[B, T, F]`` with ``batch_first``); returns ``[T, B, N]`` (same layout as
    ``x``). Works for both importers' executors (``out, state = module(x_t, state)``); snnTorch's
    ``init_hidden`` neurons of *this* module are reset first (``reset_mem``; not
    ``snntorch.utils.reset``, which resets every instance in the process).
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a 3-d tensor [T, B, F] (or [B, T, F] with batch_first), got {shape}")
    if batch_first:
        x = x.transpose(0, 1)
    for m in module.modules():  # snnTorch's init_hidden neurons: reset this network's state only
        if getattr(m, "init_hidden", False) and hasattr(m, "reset_mem"):
            m.reset_mem()
    state = None
    outputs: list[torch.Tensor] = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            result = module(x[t], state)
            if isinstance(result, tuple):
                out, state = result
            else:
                out = result
            outputs.append(out)
    out = torch.stack(outputs)
    return out.transpose(0, 1) if batch_first else out
