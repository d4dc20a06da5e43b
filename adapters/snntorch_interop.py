"""snnTorch outside the ``snntorch`` backend: SpiKL-IP on stock ``snn.Leaky`` / ``snn.Synaptic`` neurons and
importing NIR graphs with snnTorch's importer.

The core reaches these through :func:`snn_motifs.SpiKLIP.attach` (via :func:`.registry.spikl_ip_target`)
and :func:`snn_motifs.nir_export.import_snntorch`. snnTorch is imported only inside the importer; the
SpiKL-IP target reads attributes of a neuron the user already built.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math

import torch
from torch import nn

from snn_motifs._optional import require
from snn_motifs.nir_export import DEFAULT_DT, _graph, _graph_dt, _has_flat_recurrence, _refuse_li
from snn_motifs.spikl_ip import SpiKLIP, StockNeuronTarget

__all__ = ["SnnTorchIPTarget", "is_stock_lif", "spikl_ip_target", "import_snntorch"]


def is_stock_lif(module: nn.Module) -> bool:
    """True for snnTorch's ``Leaky`` and ``Synaptic`` neurons."""
    return type(module).__module__.startswith("snntorch") and type(module).__name__ in ("Leaky", "Synaptic")


class SnnTorchIPTarget(StockNeuronTarget):
    """``snn.Leaky`` / ``snn.Synaptic``: ``mem = beta mem + input``. With ``beta = 1 - 1/tau`` and the input
    scaled by ``R/tau`` this is eq 2; R starts at tau (gain 1)."""

    def read_tau(self, n, like):
        beta = self.module.beta.detach().to(like.dtype).clamp(0, 1 - 1e-6)
        return (1.0 / (1.0 - beta)).expand(n).to(like.device)

    def initial_r(self, tau):
        return tau.clone()

    def input_gain(self):
        return self._r / self._tau

    def write(self, resistance, tau):
        self._r, self._tau = resistance.clone(), tau.clone()
        beta = 1.0 - 1.0 / tau
        if isinstance(self.module.beta, nn.Parameter):
            self.module.beta.data = beta.to(self.module.beta.dtype)
        else:
            self.module.beta = beta

    def v_threshold(self):
        return float(torch.as_tensor(self.module.threshold).mean())


def spikl_ip_target(module: nn.Module, ip: SpiKLIP) -> SnnTorchIPTarget | None:
    """SpiKL-IP's target for a stock snnTorch neuron, or None if ``module`` is not one we can adapt."""
    if not is_stock_lif(module):
        return None
    if getattr(module, "init_hidden", False):
        raise ValueError("SpiKLIP needs explicit state: build the snnTorch neuron with init_hidden=False")
    return SnnTorchIPTarget(module, ip)


def import_snntorch(graph_or_path) -> nn.Module:
    """Load a graph (or ``.nir`` file) with ``snntorch.import_nir.import_from_nir``.

    snnTorch 1.0 reads every graph at ``dt = 1e-4`` and mis-wires flat recurrent edges (see
    :data:`snn_motifs.nir_export.IMPORTER_NOTES`), so this refuses graphs exported with another ``dt``
    or with ``recurrent_subgraphs=False`` and a recurrent layer instead of returning a network that
    computes something else. Its stdout chatter is captured.
    """
    require("snntorch", "snntorch", "importing NIR into snnTorch")
    require("nirtorch", "nir", "importing NIR into snnTorch")
    from snntorch.import_nir import import_from_nir

    graph = _graph(graph_or_path)
    _refuse_li(graph, "snnTorch 1.0", "has no mapping for LI (it raises 'Unknown node type')")
    dt = _graph_dt(graph, None) if "dt" in (getattr(graph, "metadata", None) or {}) else DEFAULT_DT
    if not math.isclose(dt, DEFAULT_DT, rel_tol=1e-9):
        raise ValueError(
            f"snnTorch's NIR importer simulates at dt = {DEFAULT_DT} s whatever the graph says, but this "
            f"graph was exported with dt = {dt}; re-export with to_nir(model, dt={DEFAULT_DT})"
        )
    if _has_flat_recurrence(graph):
        raise ValueError(
            "snnTorch's NIR importer routes the input of a flat recurrent edge through W_rec (it computes "
            "lif(W_rec (c + s[t-1])) instead of lif(c + W_rec s[t-1])); export with "
            "to_nir(model, recurrent_subgraphs=True) for snnTorch"
        )
    with contextlib.redirect_stdout(io.StringIO()):
        return import_from_nir(copy.deepcopy(graph))
