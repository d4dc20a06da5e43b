"""snnTorch outside the ``snntorch`` backend: SpiKL-IP on stock ``snn.Leaky`` / ``snn.Synaptic`` neurons and
importing NIR graphs with snnTorch's importer.

The core reaches these through :func:`snn_motifs.SpiKLIP.attach` (via :func:`.registry.spikl_ip_target`)
and :func:`snn_motifs.nir_export.import_snntorch`. snnTorch is imported only inside the importer (and
:class:`SnnTorchLI`); the SpiKL-IP target reads attributes of a neuron the user already built.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np
import torch
from torch import nn

from snn_motifs._optional import require
from snn_motifs.nir_graph import (
    DEFAULT_DT,
    as_graph,
    graph_dt,
    has_flat_recurrence,
    li_nodes,
    refuse_li,
)
from snn_motifs.spikl_ip import SpiKLIP, StockNeuronTarget

__all__ = ["SnnTorchIPTarget", "SnnTorchLI", "is_stock_lif", "spikl_ip_target", "import_snntorch"]


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


class SnnTorchLI(nn.Module):
    """A NIR ``LI`` node (leaky integrator, no spikes) as snnTorch's own neuron.

    NIR's ``tau dv/dt = v_leak - v + r I`` under forward Euler at step ``dt`` is
    ``v[t] = (1 - dt/tau) v[t-1] + (r dt/tau) I[t]`` (``v_leak = 0``). snnTorch's ``snn.Leaky`` computes
    ``mem = beta mem + input``; with ``reset_mechanism="none"`` (snnTorch's pure integration) it never
    resets, so ``beta = 1 - dt/tau`` and the input scaled by ``r dt/tau`` give the NIR membrane, which for
    the graphs :func:`snn_motifs.to_nir` writes is :func:`snn_motifs.readout.leaky_integrate` (the HRMAS
    paper's eq 2 without threshold or reset). The threshold is ``+inf``, so the neuron never fires; the
    module returns the membrane. Like the neurons of snnTorch's importer it is ``init_hidden=True``
    (state inside the ``Leaky``; :func:`snn_motifs.nir_export.run_imported` resets it).

    Args:
        tau, r: the node's ``tau`` (seconds) and ``r``, scalars or one per neuron.
        dt: the step in seconds.
    """

    def __init__(self, tau, r, dt: float) -> None:
        super().__init__()
        snn = require("snntorch", "snntorch", "importing NIR into snnTorch")
        tau = torch.as_tensor(np.asarray(tau, dtype=np.float64))
        r = torch.as_tensor(np.asarray(r, dtype=np.float64))
        if not (torch.isfinite(tau).all() and (tau >= dt).all()):
            raise ValueError(f"LI tau must be finite and >= dt = {dt} s (at least one step), got {tau}")
        #: ``r dt / tau``: the input gain of one Euler step (float32, as snnTorch's importer builds)
        self.register_buffer("scale", (r * dt / tau).to(torch.float32))
        beta = (1.0 - dt / tau).to(torch.float32)
        self.leaky = snn.Leaky(
            beta=beta,
            threshold=float("inf"),
            reset_mechanism="none",
            init_hidden=True,
            output=True,
            reset_delay=False,
        )

    @classmethod
    def from_nir(cls, node, dt: float) -> SnnTorchLI:
        """Build from a ``nir.LI`` node; ``v_leak`` must be 0 (snnTorch's neurons have no leak potential,
        and its importer asserts the same for ``LIF``)."""
        if not np.allclose(node.v_leak, 0.0):
            raise ValueError("snnTorch's neurons have no leak potential: LI nodes need v_leak = 0")
        return cls(node.tau, node.r, dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One step: input current ``[B, n]`` -> membrane ``[B, n]``."""
        _, mem = self.leaky(self.scale * x)
        return mem

    def reset_mem(self) -> None:
        """Zero the membrane (the ``Leaky``'s own ``reset_mem``)."""
        self.leaky.reset_mem()


def _import_with_li(graph, dt: float) -> nn.Module:
    """snnTorch 1.0's ``import_from_nir`` (wrap recurrent cycles, then ``nirtorch.nir_to_torch`` with its node
    map) with one mapping added: ``nir.LI`` -> :class:`SnnTorchLI`."""
    import nir
    import nirtorch
    from snntorch import import_nir as snn_nir

    convert = getattr(snn_nir, "_nir_to_snntorch_module", None)
    wrap = getattr(snn_nir, "_replace_rnn_subgraph_with_nirgraph", None)
    if convert is None or wrap is None or not hasattr(nirtorch, "nir_to_torch"):
        refuse_li(graph, "this snnTorch", "has no mapping for LI, and its node map cannot be extended")

    def snntorch_node(node):
        return convert(node, init_hidden=True)

    kinds = (nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.AvgPool2d, nir.IF, nir.LIF, nir.CubaLIF)
    node_map = {kind: snntorch_node for kind in kinds}
    node_map[nir.LI] = lambda node: SnnTorchLI.from_nir(node, dt)
    return nirtorch.nir_to_torch(wrap(graph), node_map)


def import_snntorch(graph_or_path) -> nn.Module:
    """Load a graph (or ``.nir`` file) with ``snntorch.import_nir.import_from_nir``.

    snnTorch 1.0 reads every graph at ``dt = 1e-4`` and mis-wires flat recurrent edges (see
    :data:`snn_motifs.nir_export.IMPORTER_NOTES`), so this refuses graphs exported with another ``dt``
    or with ``recurrent_subgraphs=False`` and a recurrent layer instead of returning a network that
    computes something else. Its stdout chatter is captured.

    snnTorch 1.0's importer has no mapping for ``nir.LI`` (the membrane readout of
    :class:`~snn_motifs.SCMLClassifier` and :class:`~snn_motifs.ScSrSNN`); for graphs with ``LI`` nodes this
    runs the same two steps as ``import_from_nir`` with :class:`SnnTorchLI` (a non-firing ``snn.Leaky``)
    added to its node map, and the network's output is then the readout's membrane at every step.
    """
    require("snntorch", "snntorch", "importing NIR into snnTorch")
    require("nirtorch", "nir", "importing NIR into snnTorch")
    from snntorch.import_nir import import_from_nir

    graph = as_graph(graph_or_path)
    dt = graph_dt(graph, None) if "dt" in (getattr(graph, "metadata", None) or {}) else DEFAULT_DT
    if not math.isclose(dt, DEFAULT_DT, rel_tol=1e-9):
        raise ValueError(
            f"snnTorch's NIR importer simulates at dt = {DEFAULT_DT} s whatever the graph says, but this "
            f"graph was exported with dt = {dt}; re-export with to_nir(model, dt={DEFAULT_DT})"
        )
    if has_flat_recurrence(graph):
        raise ValueError(
            "snnTorch's NIR importer routes the input of a flat recurrent edge through W_rec (it computes "
            "lif(W_rec (c + s[t-1])) instead of lif(c + W_rec s[t-1])); export with "
            "to_nir(model, recurrent_subgraphs=True) for snnTorch"
        )
    with contextlib.redirect_stdout(io.StringIO()):
        if li_nodes(graph):
            return _import_with_li(copy.deepcopy(graph), dt)
        return import_from_nir(copy.deepcopy(graph))
