"""What a search does when: the incremental phases of the HRMAS paper (sec 2.3, Figure 4) and one
iteration of Algorithm 1 with its IP window.

Phases, each a number of epochs from the config::

    search_size   motif size and types searched together               (epochs_size)
    search_types  the motif size fixed to its argmax, types keep going (epochs_types)
    retrain       the discretised SC-ML, fresh weights, full training set (epochs_retrain)
    done          tested once

One search iteration (:func:`search_epoch` runs an epoch of them) alternates (a) an architecture step on
a search-validation batch (:class:`~snn_motifs.search.architect.Architect`), (b) a weight step on a
search-training batch, and (c) SpiKL-IP over the IP window, ``ip_batches`` training batches run without
gradients while the plasticity hook is active (:class:`IPWindow`): the "self-repair" after each change.
Under ``torchrun`` steps (a) and (b) are data parallel (each rank a slice of every batch, gradients
averaged); every rank runs the same IP window batches, so the neurons' ``R`` and ``tau`` stay identical.
The search splits the training set in half into search-train and search-validation (:func:`split_search`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..datasets import SplitData, batches
from ..layers import use_kernel
from ..spikl_ip import SpiKLIP
from ..training import (
    average_gradients,
    average_scalar,
    check_gradient,
    check_loss,
    check_parameters,
    evaluate,
    firing_rates,
    local_batches,
)
from .architect import Architect
from .config import HRMASConfig
from .space import weight_parameters

__all__ = [
    "PHASES",
    "phase_epochs",
    "epochs_before",
    "split_search",
    "IPWindow",
    "search_epoch",
    "epoch_line",
]

PHASES = ("search_size", "search_types", "retrain", "done")


def phase_epochs(cfg: HRMASConfig) -> dict[str, int]:
    """Epochs of each phase (``done`` has none)."""
    return {"search_size": cfg.epochs_size, "search_types": cfg.epochs_types, "retrain": cfg.epochs_retrain}


def epochs_before(cfg: HRMASConfig, phase: str, epoch: int) -> int:
    """Epochs finished when ``phase`` is at ``epoch`` (for progress bars)."""
    lengths = phase_epochs(cfg)
    return sum(lengths[p] for p in PHASES[: PHASES.index(phase)]) + epoch


def split_search(data: SplitData, seed: int) -> tuple[SplitData, SplitData]:
    """The paper's protocol: the training set halves into search-train and search-validation.

    Returns ``(train, valid)``; each holds its half as ``x_train``/``y_train`` (``train``'s test part is the
    other half, ``valid``'s is the real test set, touched only after retraining).
    """
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))
    half = len(order) // 2
    a, b = order[:half], order[half:]
    train = SplitData(data.x_train[a], data.y_train[a], data.x_train[b], data.y_train[b], data.n_classes)
    return train, SplitData(data.x_train[b], data.y_train[b], data.x_test, data.y_test, data.n_classes)


class IPWindow:
    """SpiKL-IP (the HRMAS paper eqs 24-26) attached to ``layer``, active only inside :meth:`run`."""

    def __init__(self, cfg: HRMASConfig, layer: nn.Module) -> None:
        self.ip = SpiKLIP(mu=cfg.mu, lr=cfg.ip_lr, tau_cal=cfg.tau_cal, window_only=True)
        self.handle = self.ip.attach(layer)
        self.n_batches, self.batch_size = cfg.ip_batches, cfg.batch_size

    @torch.no_grad()
    def run(self, model: nn.Module, data: SplitData, gen: torch.Generator, device) -> None:
        """Forward ``n_batches`` shuffled training batches with the plasticity on, on the step path (the
        only one that calls the plasticity's step hooks), whatever kernel the layers run otherwise."""
        with use_kernel(model, "step"), self.ip.window():
            for k, (x, _) in enumerate(
                batches(data.x_train, data.y_train, self.batch_size, shuffle=True, generator=gen)
            ):
                if k >= self.n_batches:
                    break
                model(x.to(device))

    def state_dict(self) -> dict:
        """The rate traces and initial values the hook keeps between windows."""
        return {"phi": self.handle.target.phi, "initial": self.handle.target.initial}

    def load_state_dict(self, state: dict) -> None:
        self.handle.target.phi = state["phi"]
        self.handle.target.initial = state["initial"]


def _mean(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


def search_epoch(
    model: nn.Module,
    architect: Architect,
    w_opt: torch.optim.Optimizer,
    loss_fn: Callable,
    search_train: SplitData,
    search_valid: SplitData,
    cfg: HRMASConfig,
    gen: torch.Generator,
    ip: IPWindow | None = None,
    device: torch.device | str = "cpu",
    update_arch: bool = True,
) -> dict:
    """One epoch of Algorithm 1 over paired search-train / search-validation batches; returns its record:
    mean losses, search-validation accuracy, mean alpha-gradient norm, the motif-size probabilities, the
    mean largest type probability, the current argmax genotype, the firing rates and the expected cost of
    the architecture (``expected_cost``, ``cost_ratio``: :meth:`Architect.cost_record`).
    ``update_arch=False`` skips step (a) (the warm-up of the weights)."""
    model.train()
    w_losses, v_losses, a_norms = [], [], []
    train = local_batches(search_train.x_train, search_train.y_train, cfg.batch_size, gen)
    valid = local_batches(search_valid.x_train, search_valid.y_train, cfg.batch_size, gen)
    for (xt, yt), (xv, yv) in zip(train, valid, strict=False):
        xt, yt, xv, yv = xt.to(device), yt.to(device), xv.to(device), yv.to(device)
        if update_arch:  # (a)
            v_losses.append(architect.step((xt, yt), (xv, yv)))
            a_norms.append(architect.last_grad_norm)
        loss = loss_fn(model(xt), yt)  # (b)
        w_losses.append(loss.item())
        check_loss(w_losses[-1], model, w_opt, xt, len(w_losses))  # NaN/Inf: stop before it spreads
        w_opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(weight_parameters(model))  # data parallel under torchrun
        norm = nn.utils.clip_grad_norm_(weight_parameters(model), 1.0)
        check_gradient(norm, model, w_opt, len(w_losses))
        w_opt.step()
        if ip is not None:  # (c)
            ip.run(model, search_train, gen, device)
    check_parameters(model, w_opt)
    acc = evaluate(model, search_valid.x_train, search_valid.y_train, tau_syn=cfg.tau_syn, device=device)
    hidden = model.hidden
    return {
        "train_loss": average_scalar(_mean(w_losses)),
        "valid_loss": average_scalar(_mean(v_losses)),
        "valid_acc": acc,
        "alpha_grad_norm": _mean(a_norms),
        "size_probs": hidden.size_probabilities().tolist(),
        "type_prob": hidden.type_confidence(),
        "genotype": hidden.genotype_topology().to_dict(),
        "rates": firing_rates(model),
        "cost": cfg.cost,
        **architect.cost_record(),
    }


def epoch_line(record: dict) -> str:
    """One line summing up an epoch's record (the progress bar's postfix)."""
    parts = [f"{k}={record[k]:.3f}" for k in ("train_loss", "valid_loss", "valid_acc") if k in record]
    if "size_probs" in record:
        parts.append(f"p(v)={max(record['size_probs']):.2f} p(type)={record['type_prob']:.2f}")
    if "genotype" in record:
        parts.append(f"v={record['genotype']['motif_size']}")
    if "cost_ratio" in record:
        parts.append(f"cost={record['cost_ratio']:.2f}")
    if record.get("rates"):
        parts.append(f"rate={next(iter(record['rates'].values())):.3f}")
    return " ".join(parts)
