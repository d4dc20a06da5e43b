"""Norse outside the ``norse`` backend: SpiKL-IP on stock Norse LIF cells (``LIFCell``, ``LIFBoxCell``) and
importing NIR graphs with ``norse.torch.from_nir``.

The core reaches these through :func:`snn_motifs.SpiKLIP.attach` (via :func:`.registry.spikl_ip_target`)
and :func:`snn_motifs.nir_export.import_norse`. Norse is imported only inside the importer; the SpiKL-IP
target reads attributes of a cell the user already built. Spike functions as Norse ``method`` names
(``register_norse_tssl``) are in :mod:`.norse_methods`.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from snn_motifs._optional import require
from snn_motifs.nir_export import _graph, _graph_dt, _refuse_li, _skip_targets
from snn_motifs.spikl_ip import SpiKLIP, StockNeuronTarget

__all__ = ["NorseIPTarget", "is_stock_lif", "spikl_ip_target", "import_norse"]


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


def import_norse(graph_or_path, dt: float | None = None) -> nn.Module:
    """Load a graph (or ``.nir`` file) with ``norse.torch.from_nir`` at the graph's ``dt``.

    Returns Norse's graph executor: ``out, state = module(x_t, state)``; see
    :func:`snn_motifs.nir_export.run_imported`. Graphs with skip connections are refused: Norse 1.1's
    loader runs them in a wrong order (:data:`snn_motifs.nir_export.IMPORTER_NOTES`); use
    :func:`snn_motifs.nir_export.import_snntorch` for ScSr-SNN with skips.
    """
    require("norse", "norse", "importing NIR into Norse")
    from norse.torch import from_nir

    graph = _graph(graph_or_path)
    _refuse_li(graph, "Norse 1.1", "has no mapping for LI and silently passes the current through")
    joins = _skip_targets(graph)
    if joins:
        raise ValueError(
            f"node(s) {joins} sum two feed-forward inputs (skip connections); Norse 1.1's NIR loader "
            "executes such graphs in a non-topological order and computes something else. Import this "
            "graph with snn_motifs.nir_export.import_snntorch instead"
        )
    with warnings.catch_warnings():  # Norse calls nirtorch.load, which warns about its own deprecation
        warnings.filterwarnings("ignore", "nirtorch.load is being deprecated", DeprecationWarning)
        return from_nir(graph, dt=_graph_dt(graph, dt))
