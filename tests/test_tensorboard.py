"""TensorBoard event files of a search (``_tensorboard.py``): the scalars read back with the numbers of
``history.json`` and ``result.json``."""

from __future__ import annotations

import json

import pytest

from snn_motifs.search import HRMASRun

from .conftest import tiny_search


def test_tensorboard_scalars_of_a_search_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg, data = tiny_search()
    result = HRMASRun(cfg, data, tmp_path / "run", progress=False, log=lambda s: None).run()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {
        "search_size/valid_acc",
        "search_size/size_probs/v=2",
        "search_types/type_prob",
        "search_size/alpha_grad_norm",
        "retrain/train_loss",
        "retrain/rates/hidden",
        "neurons/hidden/tau_mem/mean",
        "neurons/hidden/resistance/std",
        "result/test_acc",
    }
    assert expected <= tags, expected - tags
    assert [e.step for e in events.Scalars("retrain/train_loss")] == [4, 5, 6]
    assert events.Scalars("result/test_acc")[0].value == pytest.approx(result["test_acc"])
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    probs = [e.value for e in events.Scalars("search_size/size_probs/v=4")]
    assert probs == pytest.approx([h["size_probs"][1] for h in history if h["phase"] == "search_size"])
