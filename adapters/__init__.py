"""Neuron backends for snn_motifs (installed as ``snn_motifs.adapters``).

``base.NeuronAdapter`` is the contract; ``native`` (pure torch), ``snntorch_backend`` (snnTorch's
``Leaky``) and ``norse_backend`` (Norse's LIF step) implement it, and ``registry`` finds them by name
(:func:`get_adapter`, also ``snn_motifs.get_adapter``). Everything that knows a simulator lives in this
package: besides the backends, ``snntorch_interop`` / ``norse_interop`` (SpiKL-IP on stock neurons, NIR
import) and ``norse_methods`` (spike functions as Norse ``method`` names). These modules import their
simulator only when used; the core (``snn_motifs`` outside this package) never imports one.
"""

from .base import NeuronAdapter, StepHook
from .native import NativeLIF
from .registry import BACKENDS, available_backends, get_adapter, register_backend

__all__ = [
    "NeuronAdapter",
    "StepHook",
    "NativeLIF",
    "BACKENDS",
    "available_backends",
    "get_adapter",
    "register_backend",
]
