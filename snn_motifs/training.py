"""A small, explicit training loop for spiking classifiers (time-first data, the papers' losses).

Kept deliberately plain: one epoch is ``for x, y in batches: loss(model(x), y).backward(); step``. The
benchmarks, the ScSr-SNN builder and the HRMAS search share it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .datasets import batches
from .losses import count_loss, kernel_loss, predict

__all__ = ["LossConfig", "make_loss", "train_epoch", "evaluate", "fit"]


@dataclass
class LossConfig:
    """Which output loss to use (paper 000 eq 29 ``"kernel"`` or the count loss) and its constants."""

    kind: str = "count"
    tau_syn: float = 8.0
    desired_rate: float = 0.5  # count loss: the label neuron should fire on this fraction of steps
    undesired_rate: float = 0.05  # ... and the others at most on this fraction


def make_loss(cfg: LossConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(spikes [T, B, C], labels [B]) -> scalar`` (mean over the batch)."""
    if cfg.kind == "kernel":
        return lambda s, y: kernel_loss(s, y, cfg.tau_syn, reduction="mean")
    if cfg.kind == "count":

        def loss(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            steps = s.shape[0]
            return count_loss(s, y, cfg.desired_rate * steps, cfg.undesired_rate * steps, reduction="mean")

        return loss
    raise ValueError(f"unknown loss kind {cfg.kind!r}; use 'kernel' or 'count'")


def train_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator | None = None,
    clip_grad: float | None = 1.0,
    device: torch.device | str = "cpu",
) -> float:
    """One shuffled pass; returns the mean loss. ``model(x [T, B, C]) -> output spikes [T, B, classes]``."""
    model.train()
    total, count = 0.0, 0
    for xb, yb in batches(x, y, batch_size, shuffle=True, generator=generator):
        xb, yb = xb.to(device), yb.to(device)
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        total += loss.item() * len(yb)
        count += len(yb)
    return total / max(count, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 256,
    tau_syn: float = 8.0,
    device: torch.device | str = "cpu",
) -> float:
    """Accuracy of :func:`~snn_motifs.losses.predict` (argmax of the summed output PSC)."""
    model.eval()
    correct = 0
    for xb, yb in batches(x, y, batch_size):
        correct += int((predict(model(xb.to(device)), tau_syn).cpu() == yb).sum())
    return correct / max(len(y), 1)


def fit(
    model: nn.Module,
    data,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 50,
    loss: LossConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train with Adam on ``data`` (a :class:`~snn_motifs.datasets.SplitData`), then test once.

    Returns ``{"test_acc", "train_loss", "seconds"}``.
    """
    loss_cfg = loss or LossConfig()
    loss_fn = make_loss(loss_cfg)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        history.append(
            train_epoch(model, data.x_train, data.y_train, loss_fn, opt, batch_size, gen, device=device)
        )
        if log:
            log(f"epoch {epoch + 1}/{epochs} loss {history[-1]:.4f}")
    seconds = time.perf_counter() - start
    acc = evaluate(model, data.x_test, data.y_test, tau_syn=loss_cfg.tau_syn, device=device)
    return {"test_acc": acc, "train_loss": history, "seconds": seconds}
