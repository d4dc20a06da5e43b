"""The expected hardware cost of the HRMAS search space under ``alpha``: the term a cost-aware search adds to
the architecture loss.

The HRMAS paper's architecture step minimises the validation loss alone (eq 12), so the richest option wins
(the largest motif size; DARTS' known bias towards parameter-rich operations). Cost-aware architecture
search adds a differentiable cost of the architecture to that objective (e.g. the spike-aware fitness of
AutoSNN, Na et al. ICML 2022, and SynOps-aware supernet training). Here the architecture loss becomes::

    L_valid(w, alpha) + lambda * E_alpha[cost] / cost(largest option, every edge present)

with ``E_alpha[cost]`` linear in the relaxed architecture: a motif-size option ``v`` counts with
``softmax(alpha^v)_v`` (one-hot once the size is fixed) and each of its edges with ``1 - p_none``, the
probability that discretisation keeps it (``softmax(alpha^c)``; an edge of type "none" costs nothing, so
the type logits feel the cost too). Two costs (the ``cost`` config key):

* ``"synapses"`` -- expected non-zero recurrent synapses (the static cost, NeuroBench's connection count);
* ``"synops"`` -- expected recurrent synaptic operations per sample (NeuroBench's ACs of the recurrence):
  each neuron's outgoing synapses weighted by the spikes it sent across them in the last forward pass
  (measured on the search network, steps ``0 .. T-2``, detached), so the edges of busy neurons cost more.

The feed-forward and readout operations do not depend on ``alpha`` and are left out. The normaliser is the
same count for the largest option with every edge present, so ``lambda`` is comparable across data sets
and costs: ``lambda = 1`` trades one nat of validation loss against the whole recurrence of the largest
option.
"""

from __future__ import annotations

import torch

from .config import COSTS
from .space import TYPE_ORDER, MixedMotifLayer

__all__ = ["COSTS", "expected_cost", "full_cost", "cost_penalty"]

_NONE = TYPE_ORDER.index(next(t for t in TYPE_ORDER if t.name == "NONE"))


def _traffic(layer: MixedMotifLayer, cost: str, v: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per motif position ``p`` of option ``v``: the presynaptic weight of all neurons at ``p``, of those
    with a right neighbour (``j < M-1``) and of those with a left one (``j >= 1``). Weight 1 per neuron
    for ``"synapses"``, the neuron's crossing spikes per sample for ``"synops"``."""
    m = layer.n_neurons // v
    if cost == "synapses":
        counts = layer.arch["size"].new_ones(m, v)
    else:
        spikes = layer.last_crossing_spikes
        if spikes is None:
            raise RuntimeError("cost 'synops' needs the spikes of a forward pass of the search network first")
        counts = spikes.detach().to(layer.arch["size"].dtype).view(m, v)
    return counts.sum(0), counts[:-1].sum(0), counts[1:].sum(0)


def _option_cost(layer: MixedMotifLayer, cost: str, v: int, keep: bool) -> torch.Tensor:
    """Cost of option ``v``: expected under its type logits, or with every edge present (``keep``)."""
    every, has_right, has_left = _traffic(layer, cost, v)
    if keep:
        intra = torch.ones_like(every) * v
        lateral = (has_right + has_left).sum() if layer.lateral else every.new_zeros(())
        return (every * intra).sum() + lateral
    present = 1.0 - torch.softmax(layer.arch[f"intra_{v}"], dim=-1)[..., _NONE]  # [post, pre]
    total = (every * present.sum(0)).sum()
    if layer.lateral:
        lat = 1.0 - torch.softmax(layer.arch[f"lateral_{v}"], dim=-1)[..., _NONE]  # [2, v]
        # row 0: the edge (k-1, p) -> (k, p), sent by neurons with a right neighbour; row 1 the converse
        total = total + (lat[0] * has_right).sum() + (lat[1] * has_left).sum()
    return total


def expected_cost(layer: MixedMotifLayer, cost: str) -> torch.Tensor:
    """``E_alpha[cost]`` of the mixed layer, differentiable in every unfrozen architecture logit."""
    _check(cost)
    probs = layer.size_probabilities()
    terms = [
        probs[j] * _option_cost(layer, cost, v, keep=False)
        for j, v in enumerate(layer.options)
        if layer.fixed_size is None or v == layer.fixed_size
    ]
    return torch.stack(terms).sum()


def full_cost(layer: MixedMotifLayer, cost: str) -> torch.Tensor:
    """The normaliser: the largest option with every edge present (detached)."""
    _check(cost)
    return _option_cost(layer, cost, max(layer.options), keep=True).detach()


def cost_penalty(model: torch.nn.Module, cost: str, weight: float) -> torch.Tensor | None:
    """``weight * E_alpha[cost] / full cost`` summed over the mixed layers of ``model`` (None if ``weight``
    is 0 or there is nothing to search)."""
    layers = [m for m in model.modules() if isinstance(m, MixedMotifLayer)]
    if weight == 0 or not layers:
        return None
    terms = []
    for layer in layers:
        full = full_cost(layer, cost)
        if float(full) > 0:  # a silent layer sends no spikes: its synops cannot be traded
            terms.append(expected_cost(layer, cost) / full)
    return weight * torch.stack(terms).sum() if terms else None


def _check(cost: str) -> None:
    if cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}; choose from {list(COSTS)}")
