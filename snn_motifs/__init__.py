"""snn_motifs: recurrent spiking motifs (SC-ML, HRMAS) and their training tools for snnTorch and Norse.

Public API (paper concept -> name):

* SC-ML layer (paper 000, sec 2.2): :class:`SCML`; its topology :class:`MotifTopology`,
  :class:`ConnectionType`.
* Self-recurrent layer of ScSr-SNN (paper 003, eq 8): :class:`SelfRecurrent`.
* Feed-forward spiking layer (output layers, baselines): :class:`SpikingLinear`.
* LIF neuron (paper 000, eqs 1-4): :class:`NeuronParameters`, :class:`LIFState`, :func:`lif_step`.
* Neuron backends: :func:`get_adapter`, :func:`available_backends`; adapters in ``snn_motifs.adapters``.
* Surrogate spike functions: :mod:`snn_motifs.surrogate`.
"""

from . import surrogate
from ._optional import MissingDependencyError
from .backends import available_backends, get_adapter
from .layers import Record, SpikingLayer, SpikingLinear
from .neuron import LIFState, NeuronParameters, lif_step
from .scml import SCML, SelfRecurrent
from .topology import ConnectionType, MotifTopology

__version__ = "0.1.0"

__all__ = [
    "SCML",
    "SelfRecurrent",
    "SpikingLayer",
    "SpikingLinear",
    "Record",
    "MotifTopology",
    "ConnectionType",
    "NeuronParameters",
    "LIFState",
    "lif_step",
    "get_adapter",
    "available_backends",
    "MissingDependencyError",
    "surrogate",
]
