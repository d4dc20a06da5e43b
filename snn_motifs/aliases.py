"""snnTorch's and Norse's names, accepted by every layer: speaking a simulator's names gives its neuron.

Our defaults stay ours: without these names a layer runs the papers' neuron (the HRMAS paper eqs 1-4,
:class:`~snn_motifs.neuron.NeuronParameters`: synaptic filter, ``u = (1 - 1/tau) u + (R/tau) I``, hard reset
to 0 in the step that fires). snnTorch's names build snnTorch 1.0's ``snn.Leaky`` equations
(:class:`~snn_motifs.neuron.LeakyParameters`), Norse's names build Norse 1.1's LIF equations
(:class:`~snn_motifs.neuron.NorseLIFParameters`), each with the simulator's defaults for what is not given.

===============================  =======================  ===============================================
name (who uses it)               maps to                  selects
===============================  =======================  ===============================================
``beta`` (snnTorch)              ``LeakyParameters``      snnTorch's Leaky: no synaptic filter,
                                                          ``u = clamp(beta, 0, 1) u + I - reset``, reset
                                                          "subtract", one step late (snnTorch's defaults)
``threshold`` (snnTorch)         ``LeakyParameters``      snnTorch's Leaky (needs ``beta``, as snn.Leaky)
``reset_mechanism``,             ``LeakyParameters``      snnTorch's Leaky: ``"subtract"`` (default),
``reset_delay`` (snnTorch)                                ``"zero"``, ``"none"``; delay True by default
``learn_beta``,                  ``LeakyParameters``      snnTorch's Leaky; ``layer.beta`` /
``learn_threshold`` (snnTorch)                            ``layer.threshold`` become ``nn.Parameter``
``graded_spikes_factor``         ``LeakyParameters``      snnTorch's Leaky, spikes scaled by the factor
``p=LIFParameters(...)``         ``NorseLIFParameters``   Norse's LIF: the input jumps ``i``,
(Norse)                          (``.from_norse``)        ``v += dt tau_mem_inv (v_leak - v + i)``,
                                                          ``i -= dt tau_syn_inv i``, reset to ``v_reset``,
                                                          ``v`` starts at ``v_leak``; ``p.method``: spikes
``tau_mem_inv``,                 ``NorseLIFParameters``   Norse's LIF (Norse's defaults for the rest,
``tau_syn_inv``, ``dt`` (Norse)                           ``dt = 1e-3``, spike function ``"super"``)
``spike_grad`` (snnTorch),       ``spike_fn``             nothing: the spike function ``f(u - V_th)`` of
``method`` (Norse)                                        any neuron (``"super"``: Norse's SuperSpike,
                                                          ``"triangular"``: ``"triangle"``)
``input_size``,                  ``in_features``,         nothing: the sizes (as ``LIFRecurrentCell``)
``hidden_size`` (Norse)          ``n_neurons``
``output=True`` (snnTorch)       ``return_mem`` default   nothing: the step also returns the membrane
``init_hidden=True`` (snnTorch)  refused                  the state is explicit (:data:`INIT_HIDDEN_REFUSED`)
``mem = lif.init_leaky()``,      ``layer.init_leaky()``,  nothing: the state that starts a sequence (an
``lif.reset_mem()`` (snnTorch)   ``layer.reset_mem()``    empty membrane for snnTorch's Leaky, else None)
``spk, mem = lif(x, mem)``       ``layer(x, mem)``        nothing: a membrane tensor in, one out
(snnTorch)                                                (snnTorch's Leaky); a LIFState in, one out
``layer(x)``, x ``[T, B, F]``    ``layer.run(x)``         nothing: the whole sequence, as Norse's
(Norse's ``LIFRecurrent``)                                ``LIFRecurrent`` (``SequentialState`` works)
===============================  =======================  ===============================================

Names of one simulator's neuron and ``neuron=`` or the other simulator's neuron names are refused together
(they would select two neurons), and so are two names for the spike function. snnTorch's ``inhibition``,
``state_quant``, ``surrogate_disable`` and ``learn_graded_spikes_factor`` are refused when set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .neuron import LeakyParameters, NeuronModel, NorseLIFParameters

__all__ = [
    "apply_aliases",
    "layer_sizes",
    "LayerOptions",
    "beta_to_tau",
    "SNNTORCH_NEURON_NAMES",
    "NORSE_NEURON_NAMES",
    "INIT_HIDDEN_REFUSED",
]

#: snnTorch's names that define its Leaky neuron (any of them selects :class:`LeakyParameters`)
SNNTORCH_NEURON_NAMES = (
    "beta",
    "threshold",
    "reset_mechanism",
    "reset_delay",
    "learn_beta",
    "learn_threshold",
    "graded_spikes_factor",
)
#: Norse's names that define its LIF neuron (any of them selects :class:`NorseLIFParameters`)
NORSE_NEURON_NAMES = ("p", "tau_mem_inv", "tau_syn_inv", "dt")

#: why ``init_hidden=True`` is refused
INIT_HIDDEN_REFUSED = (
    "init_hidden=True is refused: state is explicit in snn_motifs, pass it and get it back "
    "(spk, mem = layer(x, mem)); hidden state kept inside a module is shared by every sequence the module "
    "sees and breaks copying, DDP and torch.compile"
)

#: snnTorch options without a counterpart, refused when set (name -> why)
_SNNTORCH_REFUSED = {
    "inhibition": "snnTorch's winner-take-all inhibition (unstable, snnTorch warns) is not implemented",
    "state_quant": "membrane quantisation is not implemented",
    "surrogate_disable": "give a spike function without a surrogate instead",
    "learn_graded_spikes_factor": "the graded spikes factor is a fixed number here",
}
_API_NAMES = ("spike_grad", "method", "output", "init_hidden", *_SNNTORCH_REFUSED)
_KNOWN = (*SNNTORCH_NEURON_NAMES, *NORSE_NEURON_NAMES, *_API_NAMES)
#: Norse methods reproduced exactly (Norse 1.1's SuperSpike ignores alpha)
_NORSE_METHODS = ("super", "superspike")


@dataclass(frozen=True)
class LayerOptions:
    """What the ecosystems' names resolve to: the neuron (None: the papers' default), the spike function
    and whether the step returns the membrane by default (snnTorch's ``output``)."""

    neuron: NeuronModel | None
    spike_fn: str | Callable | None
    output: bool = False


def beta_to_tau(beta: float) -> float:
    """snnTorch's ``beta`` (membrane decay per step) as the papers' ``tau_mem``: ``1 / (1 - beta)``."""
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and 0.0 <= beta < 1.0):
        raise ValueError(f"beta must be a number in [0, 1) (the membrane decay per step), got {beta!r}")
    return 1.0 / (1.0 - float(beta))


def layer_sizes(in_features: int | None, n_neurons: int | None, names: dict) -> tuple[int, int]:
    """``(in_features, n_neurons)`` from ours or Norse's ``input_size`` / ``hidden_size``, which are
    removed from ``names``; both spellings of one size are refused."""
    sizes = []
    for ours, value, norse in (
        ("in_features", in_features, "input_size"),
        ("n_neurons", n_neurons, "hidden_size"),
    ):
        alias = names.pop(norse, None)
        if value is not None and alias is not None:
            raise ValueError(f"{ours} and {norse} (Norse's name) both set the same size; give one")
        value = value if value is not None else alias
        if value is None:
            raise TypeError(f"missing the layer size {ours} (Norse: {norse})")
        sizes.append(value)
    return sizes[0], sizes[1]


def _spike_fn(spike_fn: str | Callable | None, names: dict) -> tuple[str, str | Callable] | None:
    given = {
        k: v for k, v in (("spike_fn", spike_fn), *((k, names.get(k)) for k in ("spike_grad", "method")))
    }
    given = {k: v for k, v in given.items() if v is not None}
    if len(given) > 1:
        raise ValueError(
            f"{' and '.join(given)} all set the spike function; give one of them (spike_grad and method "
            "are snnTorch's and Norse's names for spike_fn)"
        )
    return next(iter(given.items()), None)


def apply_aliases(
    neuron: NeuronModel | None, spike_fn: str | Callable | None = None, **names: object
) -> LayerOptions:
    """Resolve snnTorch's and Norse's names (the table above) next to ours, ``neuron`` and ``spike_fn``.

    Unknown names raise ``TypeError``; names that select two neurons, or set one thing twice, raise
    ``ValueError`` naming them.
    """
    unknown = sorted(set(names) - set(_KNOWN))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {unknown}; snnTorch's and Norse's names accepted: {list(_KNOWN)}"
        )
    if names.get("init_hidden"):
        raise ValueError(INIT_HIDDEN_REFUSED)
    for name, why in _SNNTORCH_REFUSED.items():
        if names.get(name):
            raise ValueError(f"{name} (snnTorch) is not supported: {why}")
    spike = _spike_fn(spike_fn, names)
    snntorch = {k: names[k] for k in SNNTORCH_NEURON_NAMES if names.get(k) is not None}
    norse = {k: names[k] for k in NORSE_NEURON_NAMES if names.get(k) is not None}
    if snntorch and norse:
        raise ValueError(
            f"{sorted(snntorch)} are snnTorch's names (its Leaky neuron) and {sorted(norse)} Norse's (its "
            "LIF neuron): they select two different neurons; give one simulator's names"
        )
    chosen = snntorch or norse
    if chosen and neuron is not None:
        raise ValueError(
            f"neuron= and {sorted(chosen)} both set the neuron; give neuron= (any of NeuronParameters, "
            "LeakyParameters, NorseLIFParameters) or the simulator's names"
        )
    if snntorch:
        if "beta" not in snntorch:
            raise ValueError(
                f"{sorted(snntorch)} are snnTorch's names and select snnTorch's Leaky, which needs beta "
                "(snn.Leaky(beta, threshold=...)); give beta, or for this library's neuron "
                "neuron=NeuronParameters(v_threshold=...)"
            )
        neuron = LeakyParameters(**snntorch)
    elif norse:
        p, dt = norse.pop("p", None), norse.pop("dt", None)
        if p is None:
            neuron = NorseLIFParameters(**norse, **({} if dt is None else {"dt": dt}))
            method = "super"  # Norse's default method
        else:
            if norse:
                raise ValueError(f"p (Norse's LIFParameters) already holds {sorted(norse)}; set them in p")
            neuron, method = NorseLIFParameters.from_norse(p, dt)
            if method not in _NORSE_METHODS and (spike is None or spike[1] != method):
                raise ValueError(
                    f"p.method={method!r}: of Norse's methods only its default 'super' (SuperSpike) is "
                    "reproduced; give the spike function as spike_fn= (a name or a callable f(v - v_th))"
                    + ("" if spike is None else f", not both p.method and {spike[0]}")
                )
        if spike is None:
            spike = ("method", method)
    return LayerOptions(neuron, None if spike is None else spike[1], bool(names.get("output", False)))
