"""fit / evaluate take loaders in either layout: a stock ``DataLoader`` over ``[n, T, F]`` samples gives
batch-first ``[B, T, F]`` batches, :mod:`snn_motifs.loaders` time-first ``[T, B, F]`` ones. The layout is
inferred from the label count when only one of axes 0 and 1 matches it, checked when ``batch_first`` is
given, and the errors name the shapes and the argument to pass."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from snn_motifs import NeuronParameters, SCMLClassifier
from snn_motifs.datasets import SplitData
from snn_motifs.loaders import SequenceDataset, sequence_loader
from snn_motifs.training import TimeFirstLoader, evaluate, fit

from .test_training import _data, _task

NEURON = NeuronParameters(tau_mem=4, tau_syn=2)


def _model() -> SCMLClassifier:
    torch.manual_seed(0)
    return SCMLClassifier(8, 16, 2, 4, neuron=NEURON)


def _stock(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> DataLoader:
    """What a user writes: a stock DataLoader over sample-first tensors, batch-first batches."""
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def _ours(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> DataLoader:
    return sequence_loader(SequenceDataset(x, y), batch_size)


@pytest.mark.slow
def test_stock_batch_first_loader_trains_as_the_time_first_one():
    """The issue: fit(model, (DataLoader(TensorDataset(x, y)), ...)) failed with 'labels must be [B] = [T]'.
    Now a stock batch-first loader and our time-first loader over the same samples, in the same order,
    train the same network to the same losses and accuracy (inferred and explicit layout)."""
    data = _data()  # x [96, 20, 8]: T = 20, batches of 16
    first = _stock(data.x_train, data.y_train, 16)
    assert next(iter(first))[0].shape == (16, 20, 8)  # batch-first, as tonic and TensorDataset give
    runs = {
        "stock, inferred": fit(_model(), (first, _stock(data.x_test, data.y_test, 16)), epochs=3),
        "stock, batch_first=True": fit(
            _model(), (first, _stock(data.x_test, data.y_test, 16)), epochs=3, batch_first=True
        ),
        "ours, inferred": fit(
            _model(), (_ours(data.x_train, data.y_train, 16), _ours(data.x_test, data.y_test, 16)), epochs=3
        ),
        "ours, batch_first=False": fit(
            _model(),
            (_ours(data.x_train, data.y_train, 16), _ours(data.x_test, data.y_test, 16)),
            epochs=3,
            batch_first=False,
        ),
    }
    ref = runs["ours, batch_first=False"]
    for name, run in runs.items():
        assert run["train_loss"] == pytest.approx(ref["train_loss"], rel=1e-6), name
        assert run["test_acc"] == ref["test_acc"], name
        assert run["input_gain"] == pytest.approx(ref["input_gain"]), name
    assert ref["train_loss"][-1] < ref["train_loss"][0] and ref["test_acc"] > 0.6


def test_evaluate_takes_either_layout_and_keeps_the_first_batch_decision():
    """52 test samples in batches of 32: the last batch is [20, 20, 8] (T = B = 20), ambiguous alone, and
    read in the layout the first batch showed."""
    x, y = _task(52, 3)
    model = _model()
    expect = evaluate(model, x, y)
    for loader in (_stock(x, y, 32), _ours(x, y, 32)):
        assert [tuple(b[0].shape) for b in loader][-1] == (20, 20, 8)
        assert evaluate(model, loader, None) == expect
    assert evaluate(model, _stock(x, y, 32), None, batch_first=True) == expect
    assert evaluate(model, _ours(x, y, 32), None, batch_first=False) == expect


def test_wrong_or_ambiguous_layout_is_named():
    data = _data()
    x, y = data.x_train, data.y_train  # T = 20
    model = _model()
    stock = (_stock(x, y, 16), _stock(data.x_test, data.y_test, 16))
    with pytest.raises(ValueError) as err:
        fit(model, stock, epochs=1, batch_first=False)
    assert str(err.value) == (
        "the training loader gives x of shape [16, 20, 8] and 16 labels: that is batch-first [B, T, F], "
        "not time-first [T, B, F] as batch_first=False says; pass batch_first=True"
    )
    with pytest.raises(ValueError, match=r"that is time-first \[T, B, F\].*pass batch_first=False"):
        evaluate(model, _ours(x, y, 16), None, batch_first=True)
    # T == B: nothing to infer from, so the argument is required, and then honoured
    for loader, layout in ((_stock(x, y, 20), True), (_ours(x, y, 20), False)):
        assert next(iter(loader))[0].shape == (20, 20, 8)
        with pytest.raises(ValueError) as err:
            evaluate(model, loader, None)
        assert str(err.value) == (
            "the loader gives x of shape [20, 20, 8] and 20 labels: the layout is ambiguous (time-first "
            "[T, B, F] or batch-first [B, T, F], T = B = 20); pass batch_first=True (a stock DataLoader "
            "over [n, T, F] samples) or batch_first=False (snn_motifs.loaders)"
        )
        assert evaluate(model, loader, None, batch_first=layout) == evaluate(model, x, y)
    with pytest.raises(ValueError, match="the test loader gives x of shape .* ambiguous"):
        fit(model, (_stock(x, y, 16), _stock(data.x_test, data.y_test, 20)), epochs=1, calibrate=False)
    # neither axis is the batch; labels that are not [B]
    with pytest.raises(ValueError, match=r"\[5, 6, 8\] and 4 labels: neither axis 0 nor axis 1"):
        evaluate(model, [(torch.zeros(5, 6, 8), torch.zeros(4, dtype=torch.long))], None)
    assert len(TimeFirstLoader(_stock(x, y, 16))) == 6
    with pytest.raises(ValueError, match=r"labels of shape \[4, 1\]: need \[B\] class indices"):
        evaluate(model, [(torch.zeros(5, 4, 8), torch.zeros(4, 1, dtype=torch.long))], None)
    with pytest.raises(ValueError, match="batch_first must be None, True or False"):
        evaluate(model, _ours(x, y, 16), None, batch_first="yes")


def test_tensors_must_be_sample_first():
    data = _data()
    model = _model()
    with pytest.raises(ValueError, match=r"\[20, 64, 8\] and 64 labels: that is time-first \[T, n, F\]"):
        evaluate(model, data.x_test.transpose(0, 1), data.y_test)
    bad = SplitData(data.x_train.transpose(0, 1), data.y_train, data.x_test, data.y_test, 2)
    with pytest.raises(ValueError, match=r"x_train has shape \[20, 96, 8\].*pass x_train.transpose\(0, 1\)"):
        fit(model, bad, epochs=1)
    with pytest.raises(ValueError, match="batch_first applies to loaders"):
        fit(model, data, epochs=1, batch_first=True)
