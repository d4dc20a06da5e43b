"""The shared training loop and the SC-ML classifier learn a small synthetic task end to end."""

from __future__ import annotations

import pytest
import torch

from snn_motifs import NeuronParameters
from snn_motifs.datasets import SplitData
from snn_motifs.models import SCMLClassifier
from snn_motifs.training import LossConfig, evaluate, fit, make_loss


def _task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    rates = torch.where(y[:, None, None] == 0, torch.linspace(0.05, 0.6, 8), torch.linspace(0.6, 0.05, 8))
    x = (torch.rand(n, 20, 8, generator=g) < rates).float()
    return x, y


@pytest.mark.parametrize("spike_fn,loss", [("atan", "count"), ("tssl", "count"), ("atan", "kernel")])
def test_fit_learns_a_separable_task(spike_fn, loss):
    x, y = _task(96, 0)
    xt, yt = _task(64, 1)
    data = SplitData(x, y, xt, yt, 2)
    torch.manual_seed(0)
    model = SCMLClassifier(8, 16, 2, 4, neuron=NeuronParameters(tau_mem=4, tau_syn=2), spike_fn=spike_fn)
    before = evaluate(model, xt, yt, tau_syn=2)
    out = fit(model, data, epochs=15, lr=1e-2, batch_size=16, loss=LossConfig(kind=loss, tau_syn=2))
    assert out["test_acc"] >= 0.85 and out["test_acc"] >= before
    assert out["train_loss"][-1] < out["train_loss"][0]


def test_unknown_loss_kind():
    with pytest.raises(ValueError, match="unknown loss kind 'mse'"):
        make_loss(LossConfig(kind="mse"))
