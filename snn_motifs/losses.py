"""The papers' output losses (the HRMAS paper eqs 29-30, and the TSSL-BP authors' variants), time-first
``[T, B, C]`` like ``snntorch.functional``.

* :func:`kernel_loss` (eq 29): ``L = sum_t sum_o 1/2 (psc(d_o)[t] - psc(s_o)[t])^2`` with the desired
  spike train ``d`` firing at every step for the label's neuron and silent for the others (sec 3.1.2).
  The authors compute it as the PSC of the difference of the spike trains, which is the same (the filter
  is linear).
* :func:`count_loss`: one-sided spike-count error. With ``delta_o = (count_o - target_o) / T``, the label's
  neuron is penalised only for firing fewer than ``desired_count`` spikes, the others only for firing
  more than ``undesired_count``; ``L = 1/2 sum_t sum_o delta_o^2 = T/2 sum_o delta_o^2``.
* :func:`predict`: the class whose output PSC summed over time is largest.
* :func:`membrane_loss` / :func:`decode_membrane`: cross-entropy on the membrane of a non-spiking readout
  (:class:`~snn_motifs.readout.LeakyIntegrator`) reduced over time by its mean, max or last value.
* :class:`RateRegularizer`: a penalty on hidden firing rates above a target, added to any of these losses
  by :func:`~snn_motifs.training.fit` (``rate_regularizer=``).

PSC convention: eq 1 (:func:`psc`) times ``psc_gain``; the default gain ``1/tau_s`` reproduces the
authors' scaling so that loss values and learning rates are comparable with theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .neuron import psc_update

__all__ = [
    "psc",
    "kernel_loss",
    "count_loss",
    "predict",
    "decode_membrane",
    "membrane_loss",
    "DECODERS",
    "RateRegularizer",
]


def _check_outputs(spikes: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    if not isinstance(spikes, torch.Tensor) or spikes.dim() != 3:
        shape = list(spikes.shape) if isinstance(spikes, torch.Tensor) else type(spikes).__name__
        raise ValueError(f"outputs must be a time-first tensor [T, B, C], got {shape}")
    if not spikes.is_floating_point():
        raise TypeError(f"outputs must be floating point, got {spikes.dtype}")
    if labels is None:
        return
    if labels.dim() != 1 or labels.shape[0] != spikes.shape[1]:
        raise ValueError(
            f"labels must be [B] = [{spikes.shape[1]}] class indices, got shape {list(labels.shape)}"
        )
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
    n_classes = spikes.shape[2]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes}), got range [{int(labels.min())}, {int(labels.max())}]"
        )


def psc(spikes: torch.Tensor, tau_syn: float, gain: float = 1.0) -> torch.Tensor:
    """Post-synaptic current of eq 1 along the time axis (dim 0): ``a[t] = (1 - 1/tau_s) a[t-1] + s[t]``,
    times ``gain``. Differentiable."""
    if not tau_syn >= 1:
        raise ValueError(f"tau_syn must be >= 1 step, got {tau_syn!r}")
    decay = 1.0 - 1.0 / tau_syn
    out = []
    a = torch.zeros_like(spikes[0])
    for s_t in spikes.unbind(0):  # one backward node, not a [T, ...] gradient per indexed step
        a = psc_update(a, s_t, decay)
        out.append(a)
    return torch.stack(out) * gain


def _desired_trains(
    outputs: torch.Tensor, labels: torch.Tensor, desired: torch.Tensor | None
) -> torch.Tensor:
    steps = outputs.shape[0]
    if desired is None:
        desired = torch.ones(steps, dtype=outputs.dtype, device=outputs.device)
    elif desired.shape != (steps,):
        raise ValueError(f"desired spike train must have shape [T] = [{steps}], got {list(desired.shape)}")
    onehot = torch.nn.functional.one_hot(labels.long(), outputs.shape[2]).to(outputs.dtype)
    return desired.to(outputs).view(steps, 1, 1) * onehot.unsqueeze(0)


def kernel_loss(
    spikes: torch.Tensor,
    labels: torch.Tensor,
    tau_syn: float = 8.0,
    desired: torch.Tensor | None = None,
    psc_gain: float | None = None,
    reduction: str = "sum",
) -> torch.Tensor:
    """PSC ("kernel") loss of eq 29.

    Args:
        spikes: output spikes ``[T, B, C]``.
        labels: class indices ``[B]``.
        tau_syn: synaptic time constant of the PSC (eq 1).
        desired: the label neuron's desired spike train ``[T]`` (default: a spike at every step, sec
            3.1.2); the other neurons' is silence.
        psc_gain: PSC scale; default ``1/tau_syn`` (the authors' convention).
        reduction: ``"sum"`` (eq 29) or ``"mean"`` (divided by the batch size).
    """
    _check_outputs(spikes, labels)
    gain = 1.0 / tau_syn if psc_gain is None else psc_gain
    diff = psc(spikes - _desired_trains(spikes, labels, desired), tau_syn, gain)
    loss = 0.5 * diff.pow(2).sum()
    return _reduce(loss, spikes.shape[1], reduction)


def count_loss(
    spikes: torch.Tensor,
    labels: torch.Tensor,
    desired_count: float,
    undesired_count: float = 0.0,
    reduction: str = "sum",
) -> torch.Tensor:
    """One-sided spike-count loss (the TSSL-BP authors' ``spike_count``).

    Args:
        spikes: output spikes (or PSCs) ``[T, B, C]``; counts are sums over ``T``.
        labels: class indices ``[B]``.
        desired_count: spikes the label's neuron should fire at least.
        undesired_count: spikes the other neurons may fire at most.
    """
    _check_outputs(spikes, labels)
    if not 0 <= undesired_count <= desired_count:
        raise ValueError(
            f"need 0 <= undesired_count <= desired_count, got {undesired_count} and {desired_count}"
        )
    steps = spikes.shape[0]
    counts = spikes.sum(0)
    is_label = torch.nn.functional.one_hot(labels.long(), spikes.shape[2]).bool()
    target = torch.where(is_label, float(desired_count), float(undesired_count)).to(counts)
    delta = (counts - target) / steps
    active = torch.where(is_label, delta < 0, delta > 0)  # one-sided
    loss = 0.5 * steps * (delta * active).pow(2).sum()
    return _reduce(loss, spikes.shape[1], reduction)


def predict(spikes: torch.Tensor, tau_syn: float = 8.0) -> torch.Tensor:
    """Predicted class ``[B]``: argmax over ``C`` of the output PSC summed over time."""
    _check_outputs(spikes)
    return psc(spikes.detach(), tau_syn).sum(0).argmax(-1)


#: how a membrane readout ``[T, B, C]`` becomes logits ``[B, C]``
DECODERS = ("mean", "max", "last")


def decode_membrane(mem: torch.Tensor, decode: str = "mean") -> torch.Tensor:
    """Logits ``[B, C]`` from readout membranes ``[T, B, C]``: their ``"mean"``, ``"max"`` or ``"last"``
    value over time."""
    _check_outputs(mem)
    if decode == "mean":
        return mem.mean(0)
    if decode == "max":
        return mem.amax(0)
    if decode == "last":
        return mem[-1]
    raise ValueError(f"decode must be one of {list(DECODERS)}, got {decode!r}")


def membrane_loss(
    mem: torch.Tensor, labels: torch.Tensor, decode: str = "mean", reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy of :func:`decode_membrane` logits against ``labels`` (``reduction`` as in
    :func:`kernel_loss`: ``"mean"`` over the batch or ``"sum"``)."""
    _check_outputs(mem, labels)
    loss = torch.nn.functional.cross_entropy(decode_membrane(mem, decode), labels.long(), reduction="sum")
    return _reduce(loss, mem.shape[1], reduction)


def _reduce(loss: torch.Tensor, batch: int, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return loss
    if reduction == "mean":
        return loss / batch
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


@dataclass(frozen=True)
class RateRegularizer:
    """Penalty on firing rates above a target: ``weight * relu(rate - target)^2`` per spiking layer.

    ``per="neuron"`` (default): ``rate`` is each neuron's mean over time and batch, the squared excess
    averaged over the neurons (a neuron is penalised for its own excess, whatever the others do);
    ``per="layer"``: the layer's mean over time, batch and neurons. Only the excess is penalised, so a
    layer at or below ``target`` trains as without it. Used by :func:`~snn_motifs.training.fit`
    (``rate_regularizer=RateRegularizer()``), which sums it over the model's spiking layers (output layer
    included) and adds it to the loss of every batch.

    The defaults (weight 30, target 0.2, per neuron) are TSSL-BP's setting: TSSL-BP drives SC-ML's hidden
    rate to 0.4-0.5 where the arc-tangent surrogate settles near 0.3, and with this penalty (rate 0.18) it
    reaches the surrogate's accuracy on TI46-Alpha (docs/results.md "Accuracy", ``benchmarks/bench_tssl.py``).
    """

    weight: float = 30.0
    target: float = 0.2
    per: str = "neuron"

    def __post_init__(self) -> None:
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(
                f"RateRegularizer weight must be a finite number >= 0, got {self.weight!r}; "
                "use e.g. weight=30 (0 switches the penalty off)"
            )
        if not (isinstance(self.target, (int, float)) and 0 <= self.target < 1):
            raise ValueError(
                f"RateRegularizer target must be a firing rate in [0, 1) (spikes per neuron and step), "
                f"got {self.target!r}; use e.g. target=0.2"
            )
        if self.per not in ("layer", "neuron"):
            raise ValueError(f"RateRegularizer per must be 'neuron' or 'layer', got {self.per!r}")

    def __call__(self, spikes: torch.Tensor) -> torch.Tensor:
        """The penalty of one layer's spikes (any layout whose last axis is the neurons)."""
        if self.per == "layer":
            rate = spikes.mean()
            return self.weight * torch.relu(rate - self.target).square()
        rates = spikes.reshape(-1, spikes.shape[-1]).mean(0)
        return self.weight * torch.relu(rates - self.target).square().mean()
