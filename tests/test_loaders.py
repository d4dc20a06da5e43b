"""torch.utils.data datasets and time-first loaders; fit fed by DataLoaders."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from snn_motifs import NeuronParameters, SCMLClassifier
from snn_motifs.loaders import (
    SequenceDataset,
    sequence_dataset,
    sequence_loader,
    split_loaders,
    time_first_collate,
)
from snn_motifs.training import fit

from .test_losses_datasets import _fake_ti46
from .test_training import _data


def test_collate_pads_and_stacks_time_first():
    batch = [(torch.ones(3, 2), 1), (2 * torch.ones(5, 2), 0)]
    x, y = time_first_collate(batch)
    assert x.shape == (5, 2, 2) and y.tolist() == [1, 0]
    assert torch.equal(x[:3, 0], torch.ones(3, 2)) and torch.equal(x[3:, 0], torch.zeros(2, 2))
    assert torch.equal(x[:, 1], 2 * torch.ones(5, 2))
    with pytest.raises(ValueError, match="differ in their channel shape"):
        time_first_collate([(torch.ones(3, 2), 0), (torch.ones(3, 4), 1)])


@pytest.mark.slow
def test_fit_takes_dataloaders_and_learns():
    """The same task through (train_loader, test_loader), with a sampler-driven shuffle and workers."""
    data = _data()
    train, test = split_loaders(data, batch_size=16, seed=0)
    assert isinstance(train, DataLoader) and next(iter(train))[0].shape == (20, 16, 8)
    torch.manual_seed(0)
    model = SCMLClassifier(8, 16, 2, 4, neuron=NeuronParameters(tau_mem=4, tau_syn=2))
    out = fit(model, (train, test), epochs=15)
    assert out["test_acc"] >= 0.85 and out["train_loss"][-1] < out["train_loss"][0]
    assert len(out["history"]) == 15 and out["history"][0]["lr"] == pytest.approx(1e-2)
    # a loader with worker processes gives the same batches
    workers = sequence_loader(SequenceDataset.from_split(data, False), 16, num_workers=2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(workers, test, strict=False))


@pytest.mark.slow
def test_named_datasets(tmp_path):
    root = _fake_ti46(tmp_path)
    train = sequence_dataset("ti46_alpha", root=root)
    test = sequence_dataset("ti46_alpha", train=False, root=root, split="loso", test_speaker="m1")
    x, y = train[0]
    assert x.shape == (11, 78) and isinstance(y, int) and len(train) == 36 and len(test) == 24
    assert train.n_classes == 26  # the TI46 letters, whatever the file holds
    with pytest.raises(ValueError, match="unknown data set 'mnist2d'.*mnist1d"):
        sequence_dataset("mnist2d")
    with pytest.raises(ValueError, match="ti46_dat needs root"):
        sequence_dataset("ti46_dat")
    pytest.importorskip("mnist1d")
    mnist = sequence_dataset("mnist1d")
    assert len(mnist) == 4000 and mnist[0][0].shape == (40, 16)
    assert len(sequence_dataset("mnist1d", train=False)) == 1000
