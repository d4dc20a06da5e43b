"""Norse outside the ``norse`` backend: SpiKL-IP on stock Norse LIF cells (``LIFCell``, ``LIFBoxCell``) and
importing NIR graphs with ``norse.torch.from_nir``.

The core reaches these through :func:`snn_motifs.SpiKLIP.attach` (via :func:`.registry.spikl_ip_target`)
and :func:`snn_motifs.nir_export.import_norse`. Norse is imported only inside the importer (and
:class:`NorseLI`); the SpiKL-IP target reads attributes of a cell the user already built. Spike functions
as Norse ``method`` names (``register_norse_tssl``) are in :mod:`.norse_methods`.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from snn_motifs._optional import require
from snn_motifs.nir_graph import as_graph, graph_dt, li_nodes, refuse_li, skip_targets
from snn_motifs.spikl_ip import SpiKLIP, StockNeuronTarget

__all__ = ["NorseIPTarget", "NorseLI", "is_stock_lif", "spikl_ip_target", "import_norse"]


def is_stock_lif(module: nn.Module) -> bool:
    """True for Norse's ``LIFCell``-like modules (parameters ``p.tau_mem_inv`` and a step ``dt``)."""
    p = getattr(module, "p", None)
    return type(module).__module__.startswith("norse") and hasattr(p, "tau_mem_inv") and hasattr(module, "dt")


class NorseIPTarget(StockNeuronTarget):
    """Norse ``LIFCell``-like: ``v += dt tau_mem_inv (v_leak - v + i)``, i.e. tau = 1/(dt tau_mem_inv) steps;
    R scales the input current (starts at 1)."""

    def read_tau(self, n, like):
        inv = torch.as_tensor(self.module.p.tau_mem_inv, dtype=like.dtype, device=like.device)
        return (1.0 / (self.module.dt * inv)).expand(n).clone()

    def initial_r(self, tau):
        return torch.ones_like(tau)

    def input_gain(self):
        return self._r

    def write(self, resistance, tau):
        self._r, self._tau = resistance.clone(), tau.clone()
        self.module.p = self.module.p._replace(tau_mem_inv=1.0 / (self.module.dt * tau))

    def v_threshold(self):
        return float(torch.as_tensor(self.module.p.v_th).mean())


def spikl_ip_target(module: nn.Module, ip: SpiKLIP) -> NorseIPTarget | None:
    """SpiKL-IP's target for a stock Norse LIF cell, or None if ``module`` is not one we can adapt."""
    return NorseIPTarget(module, ip) if is_stock_lif(module) else None


class NorseLI(nn.Module):
    """A NIR ``LI`` node (leaky integrator, no spikes) as Norse's own ``LIBoxCell``.

    NIR's ``tau dv/dt = v_leak - v + r I`` under forward Euler at step ``dt``;
    ``norse.torch.LIBoxCell`` computes ``v += dt tau_mem_inv (v_leak - v + input)``, so with
    ``tau_mem_inv = 1/tau`` and the input scaled by ``r`` (as Norse's importer feeds its ``CubaLIF``) it is
    the NIR membrane, which for the graphs :func:`snn_motifs.to_nir` writes is
    :func:`snn_motifs.readout.leaky_integrate` (the HRMAS paper's eq 2 without threshold or reset).
    ``norse.torch.LICell`` adds a synaptic current ``i`` that carries over to the next step (decaying by
    ``1 - dt tau_syn_inv``); it matches only with ``tau_syn = dt``, and ``LIBoxCell`` is that integrator
    without the current (the cell Norse's own importer uses for ``CubaLIF``'s synapse).
    ``out, state = module(x_t, state)`` returns the membrane and the cell's ``LIBoxState``.

    Args:
        tau, r, v_leak: the node's parameters (seconds for ``tau``), scalars or one per neuron.
        dt: the step in seconds.
    """

    def __init__(self, tau, r, v_leak, dt: float) -> None:
        super().__init__()
        require("norse", "norse", "importing NIR into Norse")
        from norse.torch import LIBoxCell, LIBoxParameters

        def f32(a) -> torch.Tensor:  # float32, as Norse's importer builds its parameters
            return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=torch.float32)

        tau = f32(tau)
        if not (torch.isfinite(tau).all() and (tau > 0).all()):
            raise ValueError(f"LI tau must be finite and > 0 seconds, got {tau}")
        self.register_buffer("r", f32(r))
        self.cell = LIBoxCell(LIBoxParameters(tau_mem_inv=1.0 / tau, v_leak=f32(v_leak)), dt=dt)

    @classmethod
    def from_nir(cls, node, dt: float) -> NorseLI:
        """Build from a ``nir.LI`` node."""
        return cls(node.tau, node.r, node.v_leak, dt)

    def forward(self, x: torch.Tensor, state=None):
        """One step: input current ``[B, n]`` -> ``(membrane [B, n], LIBoxState)``."""
        return self.cell(self.r * x, state)


def _import_with_li(graph, dt: float) -> nn.Module:
    """``norse.torch.from_nir`` (``nirtorch.load`` with Norse's per-node mapping at ``dt``) with one mapping
    added: ``nir.LI`` -> :class:`NorseLI`."""
    import nir
    import nirtorch

    try:
        from norse.torch.utils.import_nir import _import_norse_module
    except ImportError:
        refuse_li(graph, "this Norse", "has no mapping for LI, and its node map cannot be extended")

    def model_map(node):
        if isinstance(node, nir.LI):
            return NorseLI.from_nir(node, dt)
        return _import_norse_module(node, dt=dt)

    return nirtorch.load(graph, model_map)


def import_norse(graph_or_path, dt: float | None = None) -> nn.Module:
    """Load a graph (or ``.nir`` file) with ``norse.torch.from_nir`` at the graph's ``dt``.

    Returns Norse's graph executor: ``out, state = module(x_t, state)``; see
    :func:`snn_motifs.nir_export.run_imported`. Graphs with skip connections are refused: Norse 1.1's
    loader runs them in a wrong order (:data:`snn_motifs.nir_export.IMPORTER_NOTES`); use
    :func:`snn_motifs.nir_export.import_snntorch` for ScSr-SNN with skips.

    Norse 1.1's importer has no mapping for ``nir.LI`` (the membrane readout of
    :class:`~snn_motifs.SCMLClassifier` and :class:`~snn_motifs.ScSrSNN`) and would pass the current
    through; for graphs with ``LI`` nodes this calls ``nirtorch.load`` as ``from_nir`` does, with
    :class:`NorseLI` (Norse's ``LIBoxCell``) added to Norse's mapping, and the network's output is then the
    readout's membrane at every step.
    """
    require("norse", "norse", "importing NIR into Norse")
    from norse.torch import from_nir

    graph = as_graph(graph_or_path)
    joins = skip_targets(graph)
    if joins:
        raise ValueError(
            f"node(s) {joins} sum two feed-forward inputs (skip connections); Norse 1.1's NIR loader "
            "executes such graphs in a non-topological order and computes something else. Import this "
            "graph with snn_motifs.nir_export.import_snntorch instead"
        )
    with warnings.catch_warnings():  # Norse calls nirtorch.load, which warns about its own deprecation
        warnings.filterwarnings("ignore", "nirtorch.load is being deprecated", DeprecationWarning)
        dt = graph_dt(graph, dt)
        if li_nodes(graph):
            return _import_with_li(graph, dt)
        return from_nir(graph, dt=dt)
