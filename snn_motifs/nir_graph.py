"""Reading NIR graphs: the checks the exporter and both importers share (a NIR file read with an error
naming it, the graph's time step, the shapes the simulators' loaders cannot run). Imports neither
snnTorch nor Norse; :mod:`snn_motifs.nir_export` writes graphs, the adapters' ``*_interop`` modules
load them into a simulator.
"""

from __future__ import annotations

import math
import os

import numpy as np

from ._optional import require

__all__ = [
    "DEFAULT_DT",
    "check_dt",
    "read_nir",
    "as_graph",
    "graph_dt",
    "has_flat_recurrence",
    "skip_targets",
    "li_nodes",
    "refuse_li",
]

#: Step length written into the graph. snnTorch 1.0's importer hard-codes ``dt = 1e-4``, so this default
#: is the only value both importers can read back.
DEFAULT_DT = 1e-4


def check_dt(dt: float) -> float:
    """``dt`` as a float of seconds, or a clear error when it is not a finite positive number."""
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise TypeError(f"dt must be a number of seconds, got {dt!r}") from None
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be finite and > 0 seconds, got {dt!r} (default {DEFAULT_DT})")
    return dt


def read_nir(path: str | os.PathLike):
    """``nir.read`` with an error that names the file when it is missing or not a NIR file."""
    nir = require("nir", "nir", "NIR import")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no NIR file at {path!r}; write one with snn_motifs.export_nir(model, path)")
    try:
        return nir.read(path)
    except Exception as exc:  # h5py raises OSError, nir KeyError/ValueError on partial files
        raise ValueError(f"{path!r} is not a readable NIR (HDF5) file: {exc}") from exc


def as_graph(graph_or_path):
    """A graph given as a graph or as the path of a ``.nir`` file."""
    if isinstance(graph_or_path, (str, os.PathLike)):
        return read_nir(graph_or_path)
    return graph_or_path


def graph_dt(graph, dt: float | None) -> float:
    """``dt`` if given, else the step the graph records in ``metadata["dt"]``."""
    if dt is not None:
        return check_dt(dt)
    meta = getattr(graph, "metadata", None) or {}
    if "dt" not in meta:
        raise ValueError(
            "this NIR graph does not record its time step (metadata['dt']); pass dt=... explicitly "
            f"(snn_motifs writes {DEFAULT_DT} by default)"
        )
    return check_dt(float(np.asarray(meta["dt"])))


def has_flat_recurrence(graph) -> bool:
    """Whether a recurrent ``a <-> b`` edge pair sits in the top-level graph (not in a subgraph)."""
    edges = set(map(tuple, graph.edges))
    return any((b, a) in edges for a, b in edges if a != b)


def skip_targets(graph) -> list[str]:
    """Nodes fed by two or more feed-forward edges (a recurrent ``a <-> b`` pair does not count)."""
    edges = set(map(tuple, graph.edges))
    fan_in: dict[str, int] = {}
    for a, b in edges:
        if (b, a) not in edges:
            fan_in[b] = fan_in.get(b, 0) + 1
    return sorted(k for k, n in fan_in.items() if n > 1)


def li_nodes(graph) -> list[str]:
    """Names of the ``LI`` nodes (non-spiking leaky integrators), nested ones as 'outer/inner'."""
    found = []
    for name, node in graph.nodes.items():
        if type(node).__name__ == "LI":
            found.append(name)
        elif hasattr(node, "nodes") and hasattr(node, "edges"):  # a nested NIRGraph
            found += [f"{name}/{inner}" for inner in li_nodes(node)]
    return sorted(found)


def refuse_li(graph, importer: str, behaviour: str) -> None:
    """Refuse graphs with an ``LI`` node (a non-spiking readout), for importers that cannot map it."""
    li = li_nodes(graph)
    if li:
        raise ValueError(
            f"node(s) {li} are leaky integrators (a non-spiking readout); {importer}'s NIR loader "
            f"{behaviour}. Import the spiking part only (export model.hidden), or build the model with "
            "readout='count' for a fully spiking graph"
        )
