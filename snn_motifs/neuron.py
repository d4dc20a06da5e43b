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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

__all__ = [
    "NeuronParameters",
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
