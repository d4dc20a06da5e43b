"""The papers' leaky integrate-and-fire neuron (the HRMAS paper, eqs 1-4), as a functional core.

Discrete time, dt = 1 step. Per neuron ``i`` and step ``t``::

    I_i[t]  = i_i[t] + R_i c_i[t]                         synaptic current (eq 1, by linearity)
    u-_i[t] = (1 - 1/tau_i) u_i[t-1] + (1/tau_i) I_i[t]   membrane (eq 2)
    s_i[t]  = H(u-_i[t] - V_th)                           spike (eq 4)
    u_i[t]  = u-_i[t] (1 - s_i[t])                        hard reset to 0 (eq 3)
    i_i[t+1] = (1 - 1/tau_s) I_i[t]                       synaptic decay (eq 1)
    a_i[t]  = (1 - 1/tau_s) a_i[t-1] + s_i[t]             the neuron's own PSC (eq 1)

Each line is one function here (:func:`synaptic_current`, :func:`membrane_update`, :func:`synaptic_decay`,
:func:`psc_update`), used by :func:`lif_step`, TSSL-BP's neuron step, the fused kernel, the snnTorch and
Norse adapters (for the parts they compute in torch) and the losses, so the filter is written once.

``c[t]`` is the weighted presynaptic input of the step (``W x[t]`` plus the recurrent term). Eq 1 filters
each presynaptic spike train into a PSC and eq 2 weights the PSCs; because the filter is linear and every
synapse shares ``tau_s``, filtering the weighted sum once per postsynaptic neuron is the same thing and
costs O(N) instead of O(fan-in). The resistance ``R`` is applied where the current is injected, the
membrane time constant at the step (Norse's convention); while ``R`` is constant this is exactly eq 2's
``(R/tau) sum_j w_ij a_j[t]``. Recurrent input enters as ``W_rec s[t-1]``, which the filter turns into
``W_rec a[t-1]``: the one-step delay of eq 15.

Two other neurons are available for users who speak snnTorch's or Norse's names (:mod:`snn_motifs.aliases`),
each the simulator's own equations, op for op, so that the same currents give the same spikes:

* :class:`LeakyParameters`, :func:`leaky_step`: snnTorch 1.0's ``snn.Leaky`` (first-order leaky
  integrate-and-fire, no synaptic filter): ``u[t] = clamp(beta, 0, 1) u[t-1] + c[t] - reset``, reset by
  subtraction (default), to zero or none, one step late by default (``reset_delay=True``).
* :class:`NorseLIFParameters`, :func:`norse_lif_step`: Norse 1.1's LIF (``LIFCell``, and
  ``LIFRecurrentCell`` in the forward pass): the input jumps the synaptic current,
  ``v += dt tau_mem_inv (v_leak - v + i)``, ``i -= dt tau_syn_inv i``, reset to ``v_reset``.

:class:`NeuronParameters` (the papers' neuron) stays the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch

__all__ = [
    "NeuronParameters",
    "LeakyParameters",
    "NorseLIFParameters",
    "NeuronModel",
    "RESET_MECHANISMS",
    "leaky_step",
    "norse_lif_step",
    "LIFState",
    "lif_step",
    "zero_state",
    "synaptic_current",
    "membrane_update",
    "synaptic_decay",
    "psc_update",
]


class LIFState(NamedTuple):
    """Explicit state of a population of LIF neurons, each tensor ``[B, N]``.

    Attributes:
        v: membrane potential after the reset of the last step (``u[t]`` in eq 3).
        i: synaptic current carried into the next step, already decayed (``i[t+1]`` above).
        a: the neuron's own post-synaptic current trace (eq 1), used by recurrence, losses and TSSL-BP.
        z: the spikes of the last step (``s[t]``), which the recurrent connections read one step later.
    """

    v: torch.Tensor
    i: torch.Tensor
    a: torch.Tensor
    z: torch.Tensor


def zero_state(
    batch_size: int,
    n: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> LIFState:
    """All-zero state for ``batch_size`` samples of ``n`` neurons."""
    zeros = torch.zeros(batch_size, n, device=device, dtype=dtype or torch.get_default_dtype())
    return LIFState(zeros, zeros.clone(), zeros.clone(), zeros.clone())


@dataclass(frozen=True)
class NeuronParameters:
    """Constants of the LIF neuron of the HRMAS paper (eqs 1-4) and Table 1.

    Args:
        tau_mem: membrane time constant in steps (tau in eq 2); Table 1 uses 16 or 64. Must be >= 1 so that
            the leak ``1 - 1/tau_mem`` lies in [0, 1). Per-neuron values live in the adapter as a tensor.
        tau_syn: synaptic time constant in steps (tau_s in eq 1); Table 1 uses 8. Must be >= 1.
        resistance: membrane resistance R (eq 2), the input gain. Must be > 0.
        v_threshold: firing threshold V_th (eq 4). Must be > 0 (the reset potential is 0).
    """

    #: which neuron equations these parameters select (adapters dispatch on it)
    equations: ClassVar[str] = "hrmas"

    tau_mem: float = 16.0
    tau_syn: float = 8.0
    resistance: float = 1.0
    v_threshold: float = 1.0

    def __post_init__(self) -> None:
        for name, lower, strict in (
            ("tau_mem", 1.0, False),
            ("tau_syn", 1.0, False),
            ("resistance", 0.0, True),
            ("v_threshold", 0.0, True),
        ):
            value = float(getattr(self, name))
            bad = not math.isfinite(value) or (value <= lower if strict else value < lower)
            if bad:
                bound = f"> {lower:g}" if strict else f">= {lower:g} step(s)"
                raise ValueError(
                    f"NeuronParameters.{name} must be finite and {bound}, got {value!r}. "
                    f"Time constants are in simulation steps (dt = 1), e.g. tau_mem=16, tau_syn=8."
                )

    @property
    def syn_decay(self) -> float:
        """``1 - 1/tau_syn``, the per-step decay of the PSC (eq 1)."""
        return 1.0 - 1.0 / self.tau_syn


def synaptic_current(
    i: torch.Tensor, resistance: torch.Tensor, current: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``I[t] = i[t] + R c[t]``: the carried synaptic current plus this step's weighted input (eq 1)."""
    return torch.addcmul(i, resistance, current, out=out)


def membrane_update(
    syn: torch.Tensor,
    v_prev: torch.Tensor,
    leak: torch.Tensor,
    tau_inv: torch.Tensor,
    out: torch.Tensor | None = None,
    scratch: torch.Tensor | None = None,
) -> torch.Tensor:
    """``u-[t] = (1 - 1/tau) u[t-1] + (1/tau) I[t]`` (eq 2), the membrane before the reset.

    ``out`` receives the result and ``scratch`` the intermediate ``I[t]/tau`` (the fused kernel's buffers).
    """
    return torch.addcmul(torch.mul(tau_inv, syn, out=scratch), leak, v_prev, out=out)


def synaptic_decay(syn: torch.Tensor, syn_decay: float) -> torch.Tensor:
    """``i[t+1] = (1 - 1/tau_s) I[t]``: the synaptic current carried into the next step (eq 1)."""
    return syn_decay * syn


def psc_update(
    a_prev: torch.Tensor, spikes: torch.Tensor, syn_decay: float, out: torch.Tensor | None = None
) -> torch.Tensor:
    """The neuron's own PSC, eq 1: ``a[t] = (1 - 1/tau_s) a[t-1] + s[t]`` (``out``: result buffer)."""
    return torch.add(spikes, a_prev, alpha=syn_decay, out=out)


def lif_step(
    current: torch.Tensor,
    state: LIFState,
    leak: torch.Tensor,
    tau_inv: torch.Tensor,
    resistance: torch.Tensor,
    v_threshold: float,
    syn_decay: float,
    spike_fn,
) -> tuple[torch.Tensor, LIFState]:
    """One step of eqs 1-4 in plain torch (the ``native`` backend's neuron).

    Args:
        current: weighted presynaptic input of this step ``c[t]``, ``[B, N]``.
        state: :class:`LIFState` of the previous step.
        leak: ``1 - 1/tau`` per neuron, ``[N]``.
        tau_inv: ``1/tau`` per neuron, ``[N]``.
        resistance: ``R`` per neuron, ``[N]``.
        v_threshold: ``V_th``.
        syn_decay: ``1 - 1/tau_s``.
        spike_fn: Heaviside with a surrogate gradient, called on ``u- - V_th`` (snnTorch's convention).
    """
    syn = synaptic_current(state.i, resistance, current)
    mem = membrane_update(syn, state.v, leak, tau_inv)
    spikes = spike_fn(mem - v_threshold)
    mem = mem - spikes * mem
    psc = psc_update(state.a, spikes, syn_decay)
    return spikes, LIFState(mem, synaptic_decay(syn, syn_decay), psc, spikes)


# -- snnTorch's Leaky and Norse's LIF ---------------------------------------------------------------------

#: snnTorch's reset mechanisms: ``"subtract"`` (u -= V_th), ``"zero"`` (u = 0), ``"none"``
RESET_MECHANISMS = ("subtract", "zero", "none")

PerNeuron = float | tuple[float, ...]


def _per_neuron(name: str, value: object) -> PerNeuron:
    """A float, or a tuple of floats for a per-neuron value given as a sequence or an ``[N]`` tensor (so
    that the frozen parameters stay hashable and comparable)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    if isinstance(value, (list, tuple)):
        values = tuple(float(v) for v in value)
        if not values:
            raise ValueError(f"{name} must be a number or one value per neuron, got an empty sequence")
        return values[0] if len(values) == 1 else values
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or an [N] tensor, got {type(value).__name__}")
    return float(value)


def _scalar(name: str, value: object) -> float:
    value = _per_neuron(name, value)
    if isinstance(value, tuple):
        raise ValueError(f"{name} must be one number for the whole layer, got {len(value)} values")
    return value


def _check(name: str, value: PerNeuron, ok, what: str) -> None:
    for v in value if isinstance(value, tuple) else (value,):
        if not (math.isfinite(v) and ok(v)):
            raise ValueError(f"{name} must be {what}, got {v!r}")


@dataclass(frozen=True)
class LeakyParameters:
    """snnTorch 1.0's ``snn.Leaky`` neuron, selected by snnTorch's names (``beta``, ``threshold``, ...).

    Per neuron and step, with ``c[t]`` the weighted input (there is no synaptic filter: the current goes
    straight into the membrane) and ``r[t] = H(u[t-1] - V_th)`` the detached reset signal of the last step::

        subtract:  u[t] = clamp(beta, 0, 1) u[t-1] + c[t] - r[t] V_th
        zero:      u[t] = clamp(beta, 0, 1) (1 - r[t]) u[t-1] + c[t]
        none:      u[t] = clamp(beta, 0, 1) u[t-1] + c[t]
        s[t] = H(u[t] - V_th) * graded_spikes_factor

    With ``reset_delay=True`` (snnTorch's default) the membrane is returned before its reset, which the
    next step applies; with ``reset_delay=False`` the step also resets by ``s[t]/gsf - r[t]`` (subtracting
    ``V_th`` or zeroing), as ``snn.Leaky`` does.

    Args:
        beta: membrane decay per step, in [0, 1]; one number or one per neuron (an ``[N]`` tensor).
        threshold: firing threshold, > 0.
        reset_mechanism: ``"subtract"`` (default), ``"zero"`` or ``"none"``.
        reset_delay: reset one step late (snnTorch's default) or in the step that fires.
        graded_spikes_factor: spikes are scaled by this value (non-zero).
        learn_beta / learn_threshold: train ``beta`` / ``threshold`` (``nn.Parameter`` in the adapter).
    """

    equations: ClassVar[str] = "snntorch"

    beta: PerNeuron
    threshold: float = 1.0
    reset_mechanism: str = "subtract"
    reset_delay: bool = True
    graded_spikes_factor: float = 1.0
    learn_beta: bool = False
    learn_threshold: bool = False

    def __post_init__(self) -> None:
        beta = _per_neuron("beta", self.beta)
        _check("beta", beta, lambda b: 0.0 <= b <= 1.0, "in [0, 1] (the membrane decay per step)")
        object.__setattr__(self, "beta", beta)
        threshold = _scalar("threshold", self.threshold)
        _check("threshold", threshold, lambda v: v > 0, "a number > 0")
        object.__setattr__(self, "threshold", threshold)
        if self.reset_mechanism not in RESET_MECHANISMS:
            raise ValueError(
                f"reset_mechanism must be one of {list(RESET_MECHANISMS)} (snnTorch's), "
                f"got {self.reset_mechanism!r}"
            )
        gsf = _scalar("graded_spikes_factor", self.graded_spikes_factor)
        _check("graded_spikes_factor", gsf, lambda v: v != 0, "a non-zero number")
        object.__setattr__(self, "graded_spikes_factor", gsf)
        for name in ("reset_delay", "learn_beta", "learn_threshold"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class NorseLIFParameters:
    """Norse 1.1's LIF neuron (``LIFParameters`` plus the step ``dt``), selected by Norse's names (``p``,
    ``tau_mem_inv``, ``tau_syn_inv``, ``dt``). Defaults are Norse's.

    Per neuron and step, with ``c[t]`` the weighted input (Norse's ``lif_feed_forward_step``, which
    ``LIFRecurrentCell``'s ``lif_step`` equals in the forward pass)::

        i     = i + c[t]                                    the input jumps the synaptic current
        v     = v + dt tau_mem_inv ((v_leak - v) + i)
        i     = i - dt tau_syn_inv i
        z     = H(v - v_th);  v = (1 - z) v + z v_reset

    The membrane starts at ``v_leak``.

    Args:
        tau_syn_inv, tau_mem_inv: inverse time constants in 1/s (> 0); one number or one per neuron.
        v_leak, v_th, v_reset: leak, threshold and reset potentials.
        dt: integration step in s (> 0).
    """

    equations: ClassVar[str] = "norse"

    tau_syn_inv: PerNeuron = 1.0 / 5e-3
    tau_mem_inv: PerNeuron = 1.0 / 1e-2
    v_leak: float = 0.0
    v_th: float = 1.0
    v_reset: float = 0.0
    dt: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("tau_syn_inv", "tau_mem_inv"):
            value = _per_neuron(name, getattr(self, name))
            _check(name, value, lambda v: v > 0, "> 0 (an inverse time constant in 1/s)")
            object.__setattr__(self, name, value)
        for name in ("v_leak", "v_th", "v_reset", "dt"):
            value = _scalar(name, getattr(self, name))
            if name == "dt":
                _check(name, value, lambda v: v > 0, "> 0 (the integration step in s)")
            else:
                _check(name, value, lambda v: True, "a finite number")
            object.__setattr__(self, name, value)

    @classmethod
    def from_norse(cls, p: object, dt: float | None = None) -> tuple[NorseLIFParameters, str]:
        """From Norse's ``LIFParameters`` (read by field name, Norse is not imported): the parameters and
        ``p.method``, the spike function's name."""
        fields = ("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset", "method")
        missing = [f for f in fields if not hasattr(p, f)]
        if missing:
            raise TypeError(
                f"p must be Norse's LIFParameters (fields {list(fields)}), got {type(p).__name__} "
                f"without {missing}"
            )
        values = {f: getattr(p, f) for f in fields[:-1]}
        return cls(**values, dt=1e-3 if dt is None else dt), str(p.method)


#: the parameters of any of the neurons: the papers' (default), snnTorch's Leaky, Norse's LIF
NeuronModel = NeuronParameters | LeakyParameters | NorseLIFParameters


def leaky_step(
    current: torch.Tensor,
    mem: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    spike_fn,
    reset_mechanism: str = "subtract",
    reset_delay: bool = True,
    graded_spikes_factor: torch.Tensor | float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of snnTorch 1.0's ``snn.Leaky.forward`` (see :class:`LeakyParameters`), op for op in the
    same order, so that spikes, membranes and gradients equal snnTorch's bit for bit.

    Returns ``(spikes, mem)``; ``mem`` is before the reset when ``reset_delay`` is True.
    """
    reset = spike_fn(mem - threshold).clone().detach()  # Leaky.mem_reset: the last step's spike, detached
    if reset_mechanism == "subtract":
        mem = beta.clamp(0, 1) * mem + current - reset * threshold
    elif reset_mechanism == "zero":
        mem = beta.clamp(0, 1) * ((1 - reset) * mem) + current
    else:
        mem = beta.clamp(0, 1) * mem + current
    spikes = spike_fn(mem - threshold) * graded_spikes_factor
    if not reset_delay:
        do_reset = spikes / graded_spikes_factor - reset  # snnTorch's "avoid double reset"
        if reset_mechanism == "subtract":
            mem = mem - do_reset * threshold
        elif reset_mechanism == "zero":
            mem = mem - do_reset * mem
    return spikes, mem


def norse_lif_step(
    current: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    tau_mem_inv: torch.Tensor,
    tau_syn_inv: torch.Tensor,
    v_leak: torch.Tensor,
    v_th: torch.Tensor,
    v_reset: torch.Tensor,
    dt: float,
    spike_fn,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of Norse 1.1's ``lif_feed_forward_step`` (see :class:`NorseLIFParameters`), op for op in
    the same order. Returns ``(spikes, v, i)``."""
    i_new = i + current
    v_decayed = v + dt * tau_mem_inv * ((v_leak - v) + i_new)
    i_decayed = i_new + -dt * tau_syn_inv * i_new
    spikes = spike_fn(v_decayed - v_th)
    return spikes, (1 - spikes) * v_decayed + spikes * v_reset, i_decayed
