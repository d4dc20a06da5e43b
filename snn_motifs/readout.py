"""Readouts: how a spiking network's last hidden layer becomes class scores.

Two families, both time-first ``[T, B, N] -> [T, B, C]`` with the sequence API of our layers
(``out, state = readout.run(h)``):

* the papers' **spiking output layer** (the HRMAS paper sec 3.1.3; Zhang & Li, "Skip-Connected Self-Recurrent
  Spiking Neural Networks with Joint Intrinsic Parameter and Synaptic Weight Training", sec 4): a
  :class:`~snn_motifs.SpikingLinear` layer trained with the count or kernel loss of
  :mod:`snn_motifs.losses`;
* a **non-spiking leaky integrator** (:class:`LeakyIntegrator`): the output neurons integrate their input
  with the membrane equation of the HRMAS paper eq 2 but never fire or reset, and the membrane, reduced over
  time (mean, max or last step), is the logit vector of a cross-entropy loss. This is the readout of most
  current surrogate-gradient work (e.g. snnTorch's and Norse's tutorials) and the one that trains best here.

:data:`READOUTS` names every choice; :func:`make_readout` builds the layer for a name. The matching loss and
prediction rule come from :class:`~snn_motifs.training.LossConfig` with the same ``readout``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import SpikingLinear, add_extra_current
from .neuron import NeuronParameters

__all__ = ["LeakyIntegrator", "leaky_integrate", "make_readout", "READOUTS", "MEMBRANE_READOUTS"]

#: readouts whose output is a membrane (cross-entropy on the membrane reduced over time)
MEMBRANE_READOUTS = ("mean", "max", "last")
#: readouts whose output is spikes (the papers' losses)
SPIKING_READOUTS = ("count", "kernel")
READOUTS = MEMBRANE_READOUTS + SPIKING_READOUTS


def leaky_integrate(current: torch.Tensor, tau_mem: float, v0: torch.Tensor | None = None) -> torch.Tensor:
    """Membrane of non-spiking neurons (the HRMAS paper eq 2 without threshold or reset).

    ``u[t] = (1 - 1/tau) u[t-1] + (1/tau) c[t]`` along dim 0 of ``current`` ``[T, ...]``; returns ``u``
    with the same shape. ``v0`` is ``u[-1]`` (default 0).
    """
    if not tau_mem >= 1:
        raise ValueError(f"tau_mem must be >= 1 step, got {tau_mem!r}")
    decay, gain = 1.0 - 1.0 / tau_mem, 1.0 / tau_mem
    u = torch.zeros_like(current[0]) if v0 is None else v0
    out = []
    for c_t in current.unbind(0):  # one backward node, not a [T, ...] gradient per indexed step
        u = torch.add(gain * c_t, u, alpha=decay)
        out.append(u)
    return torch.stack(out)


class LeakyIntegrator(nn.Module):
    """Non-spiking leaky-integrator output layer: ``nn.Linear`` followed by :func:`leaky_integrate`.

    Args:
        in_features: size of the spiking input.
        classes: number of output neurons.
        tau_mem: membrane time constant in steps (default 16, Table 1's tau_m).
        bias: output bias (default True: one logit offset per class).
        batch_first: :meth:`run` takes and returns ``[B, T, ...]``.

    ``mem, v_last = readout.run(spikes)`` with spikes ``[T, B, in_features]``; one step:
    ``mem, v = readout(s_t, v)``.
    """

    def __init__(
        self,
        in_features: int,
        classes: int,
        tau_mem: float = 16.0,
        *,
        bias: bool = True,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        if not tau_mem >= 1:
            raise ValueError(f"tau_mem must be >= 1 step, got {tau_mem!r}")
        self.tau_mem = float(tau_mem)
        self.batch_first = batch_first
        self.fc = nn.Linear(in_features, classes, bias=bias)
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_in", nonlinearity="relu")
        if bias:
            nn.init.zeros_(self.fc.bias)

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    def forward(self, x: torch.Tensor, v: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: input ``[B, F]`` -> membrane ``[B, C]`` (returned twice, as output and state)."""
        mem = leaky_integrate(self.fc(x).unsqueeze(0), self.tau_mem, v)[0]
        return mem, mem

    def run(
        self,
        x: torch.Tensor,
        v: torch.Tensor | None = None,
        *,
        batch_first: bool | None = None,
        extra_current: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole sequence ``[T, B, F]`` -> membranes ``[T, B, C]`` and the last membrane.

        ``extra_current`` ``[T, B, C]`` (same layout as ``x``) is added to the input current, e.g. a skip
        connection (ScSr-SNN, the ScSr-SNN paper eq 19)."""
        batch_first = self.batch_first if batch_first is None else batch_first
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.in_features:
            shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"readout input must be [T, B, {self.in_features}] (time-first), got {shape}")
        if batch_first:
            x = x.transpose(0, 1)
            extra_current = None if extra_current is None else extra_current.transpose(0, 1)
        mem = leaky_integrate(add_extra_current(self.fc(x), extra_current), self.tau_mem, v)
        return (mem.transpose(0, 1) if batch_first else mem), mem[-1]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, classes={self.fc.out_features}, tau_mem={self.tau_mem:g}"


def make_readout(
    kind: str,
    in_features: int,
    classes: int,
    *,
    neuron: NeuronParameters | None = None,
    backend="native",
    spike_fn: str | Callable | None = None,
) -> nn.Module:
    """The output layer for readout ``kind`` (one of :data:`READOUTS`).

    Membrane readouts (``"mean"``, ``"max"``, ``"last"``) give a :class:`LeakyIntegrator` with the
    neuron's ``tau_mem``; spiking readouts (``"count"``, ``"kernel"``) give the papers'
    :class:`~snn_motifs.SpikingLinear` output layer with the network's backend and spike function.
    """
    neuron = neuron or NeuronParameters()
    if kind in MEMBRANE_READOUTS:
        return LeakyIntegrator(in_features, classes, tau_mem=neuron.tau_mem)
    if kind in SPIKING_READOUTS:
        return SpikingLinear(in_features, classes, backend=backend, neuron=neuron, spike_fn=spike_fn)
    raise ValueError(
        f"unknown readout {kind!r}; choose from {list(READOUTS)} (membrane readouts with cross-entropy: "
        f"{list(MEMBRANE_READOUTS)}; the papers' spiking output: {list(SPIKING_READOUTS)})"
    )
