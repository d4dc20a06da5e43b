"""snn_motifs: recurrent spiking motifs (SC-ML, HRMAS) and their training tools for snnTorch and Norse.

Papers: "the HRMAS paper" is Zhang, Geng & Li, *Composing Recurrent Spiking Neural Networks using
Locally-Recurrent Motifs and Risk-Mitigating Architectural Optimization* (SC-ML, HRMAS, SpiKL-IP in HRMAS);
"the ScSr-SNN paper" is Zhang & Li, *Skip-Connected Self-Recurrent Spiking Neural Networks with Joint
Intrinsic Parameter and Synaptic Weight Training* (ScSr-SNN, BIP). See the README's references.

Public API (paper concept -> name):

* SC-ML layer (the HRMAS paper, sec 2.2): :class:`SCML`; its topology :class:`MotifTopology`,
  :class:`ConnectionType`.
* Self-recurrent layer of ScSr-SNN (the ScSr-SNN paper, eq 8): :class:`SelfRecurrent`.
* Feed-forward spiking layer (output layers, baselines): :class:`SpikingLinear`.
* LIF neuron (the HRMAS paper, eqs 1-4): :class:`NeuronParameters`, :class:`LIFState`, :func:`lif_step`;
  snnTorch's ``Leaky`` and Norse's LIF equations when a user speaks their names: :class:`LeakyParameters`,
  :class:`NorseLIFParameters` (:data:`NeuronModel` is any of the three).
* Hardware cost with NeuroBench's definitions: :func:`snn_motifs.metrics.measure`.
* Neuron backends: :func:`get_adapter`, :func:`available_backends`; adapters in ``snn_motifs.adapters``.
* SpiKL-IP intrinsic plasticity, eqs 24-26: :class:`SpiKLIP` (a hook for our layers and stock neurons).
* BIP, the ScSr-SNN paper eqs 20-21: ``learn_leak=True`` on any layer or adapter trains each neuron's leak.
* ScSr-SNN family (the ScSr-SNN paper): :class:`ScSrSNN`, :func:`build_scsr`; SC-ML classifier
  :class:`SCMLClassifier`.
* HRMAS (the HRMAS paper sec 2.3): the package :mod:`snn_motifs.search` (``search.run(config)``); search
  space :class:`MixedMotifLayer` (eqs 11, 15), one seed :class:`HRMASRun` (Algorithm 1), result
  :class:`Genotype`; CLI ``snn-motifs``.
* Output losses, eqs 29-30: :mod:`snn_motifs.losses` (``kernel_loss``, ``count_loss``, ``predict``,
  ``membrane_loss``); readouts (the papers' spiking output layer or a non-spiking leaky integrator):
  :mod:`snn_motifs.readout`, :class:`LeakyIntegrator`.
* The training recipe (AdamW, cosine schedule, clipping, calibrated input gain, per-epoch firing rates):
  :func:`snn_motifs.training.fit`.
* Surrogate spike functions: :mod:`snn_motifs.surrogate`; every spike function by name:
  :func:`resolve_spike_fn`, :func:`register_spike_fn` (:mod:`snn_motifs.spike_fns`).
* NIR export (SC-ML, ScSr-SNN -> ``CubaLIF`` + recurrent edge) and re-import by snnTorch / Norse:
  :func:`to_nir`, :func:`export_nir`, :mod:`snn_motifs.nir_export`.
* TSSL-BP (Zhang & Li 2020; the HRMAS paper eq 22, the ScSr-SNN paper eqs 13-19): :class:`TSSLBP`
  (faithful, our layers), :func:`tssl_bp` (snnTorch ``spike_grad``), :func:`register_norse_tssl`
  (Norse ``method``).
"""

from . import datasets, event_datasets, losses, metrics, nir_export, readout, search, surrogate, training
from ._optional import MissingDependencyError
from .adapters import available_backends, get_adapter
from .adapters.norse_methods import register_norse_tssl, unregister_norse_tssl
from .layers import Record, SpikingLayer, SpikingLinear
from .models import SCMLClassifier, ScSrSNN, build_scsr
from .neuron import LeakyParameters, LIFState, NeuronModel, NeuronParameters, NorseLIFParameters, lif_step
from .nir_export import export_nir, to_nir
from .readout import LeakyIntegrator
from .scml import SCML, SelfRecurrent
from .search import Genotype, HRMASConfig, HRMASRun, MixedMotifLayer
from .spike_fns import register_spike_fn, resolve_spike_fn
from .spikl_ip import IPHandle, SpiKLIP
from .topology import ConnectionType, MotifTopology
from .tssl import TSSLBP, tssl_bp

__version__ = "0.1.0"

__all__ = [
    "SCML",
    "SelfRecurrent",
    "SpikingLayer",
    "SpikingLinear",
    "LeakyIntegrator",
    "MixedMotifLayer",
    "HRMASConfig",
    "HRMASRun",
    "Genotype",
    "SCMLClassifier",
    "ScSrSNN",
    "build_scsr",
    "Record",
    "MotifTopology",
    "ConnectionType",
    "NeuronParameters",
    "LeakyParameters",
    "NorseLIFParameters",
    "NeuronModel",
    "LIFState",
    "lif_step",
    "get_adapter",
    "available_backends",
    "MissingDependencyError",
    "surrogate",
    "losses",
    "readout",
    "training",
    "metrics",
    "datasets",
    "search",
    "event_datasets",
    "nir_export",
    "to_nir",
    "export_nir",
    "TSSLBP",
    "SpiKLIP",
    "IPHandle",
    "tssl_bp",
    "resolve_spike_fn",
    "register_spike_fn",
    "register_norse_tssl",
    "unregister_norse_tssl",
]
