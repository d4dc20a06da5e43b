"""The architect: the optimiser of the architecture logits ``alpha`` (the HRMAS paper, Algorithm 1 step
(a), eqs 12-14).

``alpha <- alpha - eta1 grad_alpha L_valid(w', alpha)`` on a validation batch, first order (``w' = w``)
or second order: ``w' = w - eta2 grad_w L_train(w, alpha)`` and the Hessian-vector product by finite
differences around ``w+- = w +- eps grad_w' L_valid(w', alpha)`` (:func:`second_order_arch_grad`). It
only reads the search space through :func:`~snn_motifs.search.space.arch_parameters` and
:func:`~snn_motifs.search.space.weight_parameters`, as DARTS' ``architect`` is kept apart from its
``model_search``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..training import average_gradients, average_scalar
from .cost import cost_penalty, expected_cost, full_cost
from .space import MixedMotifLayer, arch_parameters, weight_parameters

__all__ = ["Architect", "second_order_arch_grad"]

Batch = tuple[torch.Tensor, torch.Tensor]


def _or_zeros(grads, like: list[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if g is None else g for p, g in zip(like, grads, strict=True)]


def second_order_arch_grad(
    weights: list[torch.Tensor],
    arch: list[torch.Tensor],
    train_loss: Callable[[], torch.Tensor],
    valid_loss: Callable[[], torch.Tensor],
    eta: float,
    eps_scale: float = 0.01,
) -> list[torch.Tensor]:
    """Second-order DARTS gradient for ``alpha`` (the HRMAS paper eqs 12-14).

    ``grad_alpha L_valid(w', alpha) - eta * [grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)]
    / (2 eps)`` with ``w' = w - eta grad_w L_train(w, alpha)``, ``w+- = w +- eps g``,
    ``g = grad_w' L_valid(w', alpha)`` and ``eps = eps_scale / |g|``. ``weights`` are restored on return.
    The loss callables must read the current values of ``weights`` and ``arch``.
    """
    backup = [w.detach().clone() for w in weights]
    g_train = torch.autograd.grad(train_loss(), weights, allow_unused=True)
    try:
        with torch.no_grad():
            for w, g in zip(weights, g_train, strict=True):
                if g is not None:
                    w.sub_(eta * g)
        grads = torch.autograd.grad(valid_loss(), [*arch, *weights], allow_unused=True)
        g_alpha = _or_zeros(grads[: len(arch)], arch)
        g_w = _or_zeros(grads[len(arch) :], weights)
        norm = torch.sqrt(sum((g * g).sum() for g in g_w))
        eps = eps_scale / float(norm) if float(norm) > 0 else 0.0

        def alpha_grad_at(sign: float) -> list[torch.Tensor]:
            with torch.no_grad():
                for w, b, g in zip(weights, backup, g_w, strict=True):
                    w.copy_(b + sign * eps * g)
            return _or_zeros(torch.autograd.grad(train_loss(), arch, allow_unused=True), arch)

        if eps > 0:
            plus, minus = alpha_grad_at(+1.0), alpha_grad_at(-1.0)
            g_alpha = [ga - eta * (p - m) / (2 * eps) for ga, p, m in zip(g_alpha, plus, minus, strict=True)]
    finally:
        with torch.no_grad():
            for w, b in zip(weights, backup, strict=True):
                w.copy_(b)
    return g_alpha


class Architect:
    """Adam on every architecture logit of ``model``; :meth:`step` is Algorithm 1 step (a).

    Args:
        model: a network holding mixed layers (:func:`~snn_motifs.search.space.search_network`).
        loss_fn: ``loss(outputs, labels)``.
        lr: the architecture learning rate ``eta1``.
        second_order: use eqs 12-14 with ``eta2 = weight_lr`` (else first order, ``w' = w``).
        weight_lr: the weights' learning rate, the virtual step of the second-order gradient.
        cost, cost_weight: a cost-aware search adds ``cost_weight * E_alpha[cost] / full cost`` to the
            validation loss (:func:`~snn_motifs.search.cost.cost_penalty`; ``cost_weight=0``: the HRMAS
            paper's objective).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable,
        lr: float,
        second_order: bool = False,
        weight_lr: float = 0.0,
        cost: str = "synops",
        cost_weight: float = 0.0,
    ) -> None:
        self.model, self.loss_fn = model, loss_fn
        self.cost, self.cost_weight = cost, float(cost_weight)
        self.second_order, self.weight_lr = second_order, weight_lr
        self.optimizer = torch.optim.Adam(arch_parameters(model), lr=lr)
        #: norm of the last alpha gradient (logged per epoch)
        self.last_grad_norm = float("nan")

    def step(self, train_batch: Batch, valid_batch: Batch) -> float:
        """Update ``alpha`` on ``valid_batch``; returns the validation loss before the update (NaN when
        nothing is left to search)."""
        model, loss_fn = self.model, self.loss_fn
        arch = arch_parameters(model, trainable=True)
        if not arch:
            return float("nan")
        (xt, yt), (xv, yv) = train_batch, valid_batch
        self.optimizer.zero_grad(set_to_none=True)
        if self.second_order:
            grads = second_order_arch_grad(
                weight_parameters(model),
                arch,
                lambda: loss_fn(model(xt), yt),
                lambda: self._objective(model(xv), yv),
                self.weight_lr,
            )
            with torch.no_grad():
                value = float(loss_fn(model(xv), yv))
        else:
            out = model(xv)
            loss = loss_fn(out, yv)
            grads = _or_zeros(
                torch.autograd.grad(self._objective(out, yv, loss), arch, allow_unused=True), arch
            )
            value = loss.item()
        value = average_scalar(value)
        for a, g in zip(arch, grads, strict=True):
            a.grad = g
        average_gradients(arch)  # every rank holds the same alpha under torchrun
        self.last_grad_norm = float(torch.sqrt(sum((g.detach() ** 2).sum() for g in grads)))
        self.optimizer.step()
        return value

    def _objective(self, out: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor | None = None):
        """The architecture loss: the validation loss plus the cost penalty (after the forward pass that
        measured the spikes the ``"synops"`` cost weights its synapses with)."""
        loss = self.loss_fn(out, labels) if loss is None else loss
        penalty = cost_penalty(self.model, self.cost, self.cost_weight)
        return loss if penalty is None else loss + penalty

    def cost_record(self) -> dict:
        """``expected_cost`` (``E_alpha[cost]`` now: synops per sample or synapses of the recurrence) and
        ``cost_ratio`` (over the largest option with every edge present), for the history; empty when the
        model holds no mixed layer or no spikes were measured yet."""
        layers = [m for m in self.model.modules() if isinstance(m, MixedMotifLayer)]
        if not layers or (self.cost == "synops" and layers[0].last_crossing_spikes is None):
            return {}
        with torch.no_grad():
            expected = sum(float(expected_cost(layer, self.cost)) for layer in layers)
            full = sum(float(full_cost(layer, self.cost)) for layer in layers)
        return {"expected_cost": expected, "cost_ratio": expected / full if full > 0 else float("nan")}

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)
