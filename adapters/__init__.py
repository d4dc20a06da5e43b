"""Neuron backends for snn_motifs (installed as ``snn_motifs.adapters``).

``base.NeuronAdapter`` is the contract; ``native`` (pure torch), ``snntorch_backend`` (snnTorch's
``Leaky``) and ``norse_backend`` (Norse's LIF step) implement it. The snnTorch and Norse modules import
their simulator only when used; pick a backend by name with :func:`snn_motifs.get_adapter`.
"""

from .base import NeuronAdapter, StepHook
from .native import NativeLIF

__all__ = ["NeuronAdapter", "StepHook", "NativeLIF"]
