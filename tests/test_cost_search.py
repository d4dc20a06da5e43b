"""Cost-aware HRMAS (snn_motifs.search.cost): the expected cost under alpha is the measured cost of the
discretised network, it is differentiable in sizes and types, the architect trades it in first- and
second-order steps, runs record it, and lambda = 10 on the main job chooses a smaller motif."""

from __future__ import annotations

import json

import pytest
import torch

from snn_motifs import SCML
from snn_motifs.metrics import recurrent_fan_out, recurrent_synapses
from snn_motifs.search import HRMASConfig, HRMASRun, MixedMotifLayer, load_config, search_network
from snn_motifs.search.architect import Architect
from snn_motifs.search.cost import cost_penalty, expected_cost, full_cost

from .conftest import tiny_search

F, N = 5, 24
OPTIONS = (2, 4, 8)


def _layer(seed: int = 0) -> MixedMotifLayer:
    torch.manual_seed(seed)
    layer = MixedMotifLayer(F, N, OPTIONS)
    with torch.no_grad():
        for p in layer.arch_parameters():
            p.normal_()
    layer.run(torch.rand(10, 4, F) * 4)  # measures the crossing spikes "synops" weights edges with
    return layer


def _decided(layer: MixedMotifLayer) -> None:
    """Make alpha one-hot in effect (logits far apart): the expectation becomes the discretised cost."""
    with torch.no_grad():
        for p in layer.arch_parameters():
            p.copy_(torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]) * 60.0)


def _discretised(layer: MixedMotifLayer) -> SCML:
    return SCML(F, N, topology=layer.genotype_topology())


def test_expected_synapses_of_a_decided_alpha_are_the_discretised_networks_synapses():
    layer = _layer()
    _decided(layer)
    got = float(expected_cost(layer, "synapses").detach())
    assert got == pytest.approx(recurrent_synapses(_discretised(layer)), abs=1e-9)


def test_expected_synops_of_a_decided_alpha_are_the_crossing_spikes_times_fan_out():
    layer = _layer()
    _decided(layer)
    fan_out = recurrent_fan_out(_discretised(layer)).double()
    want = float(layer.last_crossing_spikes.double() @ fan_out)
    assert float(expected_cost(layer, "synops").detach()) == pytest.approx(want, rel=1e-9)


def test_full_cost_is_the_largest_option_with_every_edge():
    layer = _layer()
    v = max(OPTIONS)
    assert float(full_cost(layer, "synapses")) == recurrent_synapses(SCML(F, N, v)) == N * v + 2 * (N - v)
    every = recurrent_fan_out(SCML(F, N, v)).double()
    assert float(full_cost(layer, "synops")) == pytest.approx(
        float(layer.last_crossing_spikes.double() @ every)
    )


@pytest.mark.parametrize("cost", ["synops", "synapses"])
def test_expected_cost_is_differentiable_in_sizes_and_types_and_prefers_small_and_absent(cost):
    layer = _layer()
    value = expected_cost(layer, cost)
    grads = torch.autograd.grad(value, layer.arch_parameters())
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    size_grad = grads[0]  # d cost / d alpha^v: the larger the option, the more it costs
    probs = layer.size_probabilities().detach()
    assert (size_grad / probs).diff().gt(0).all()
    intra_grad = dict(zip(layer.arch.keys(), grads, strict=True))["intra_4"]
    assert (intra_grad[..., 0] < 0).all()  # raising p_none lowers the cost
    # "none" everywhere costs nothing
    with torch.no_grad():
        for name, p in layer.arch.items():
            if name != "size":
                p.copy_(torch.tensor([60.0, 0.0, 0.0]).expand_as(p))
    assert float(expected_cost(layer, cost).detach()) == pytest.approx(0.0, abs=1e-12)


def test_a_fixed_size_counts_only_that_option():
    layer = _layer()
    layer.fix_motif_size(4)
    probs = layer.size_probabilities()
    assert probs.tolist() == [0.0, 1.0, 0.0]
    assert float(expected_cost(layer, "synapses").detach()) <= N * 4 + 2 * (N - 4)


@pytest.mark.parametrize("second_order", [False, True])
def test_the_architect_trades_cost_first_and_second_order(second_order):
    """With a validation loss that carries no signal, only the cost moves alpha: towards the smallest
    size and the "none" type; with lambda = 0 nothing moves."""

    def no_signal(out, labels):
        return out.sum() * 0.0

    x, y = torch.rand(10, 6, F) * 4, torch.zeros(6, dtype=torch.long)
    for lam in (0.0, 5.0):
        torch.manual_seed(0)
        cfg = HRMASConfig(hidden=N, motif_sizes=list(OPTIONS), input_gain=4.0, cost_weight=lam)
        model = search_network(cfg, F, 2)
        before = [p.detach().clone() for p in model.hidden.arch_parameters()]
        arch = Architect(model, no_signal, 0.1, second_order, 0.01, "synops", lam)
        for _ in range(5):
            arch.step((x, y), (x, y))
        after = model.hidden.arch_parameters()
        if lam == 0:
            assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
            continue
        probs = model.hidden.size_probabilities()
        assert probs[0] > 1 / 3 > probs[-1]
        p_none = torch.softmax(model.hidden.arch["intra_8"], -1)[..., 0]
        assert (p_none > 1 / 3).all()


def test_cost_weight_zero_adds_nothing():
    layer = _layer()
    assert cost_penalty(layer, "synops", 0.0) is None


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("cost", "energy", "cost must be one of"),
        ("cost_weight", -1.0, "cost_weight must be a finite number >= 0"),
        ("cost_weight", float("nan"), "cost_weight"),
        ("cost_weight", float("inf"), "cost_weight"),
        ("cost_weight", True, "cost_weight"),
        ("cost_weight", "10", "cost_weight"),
    ],
)
def test_bad_cost_settings_are_refused(key, value, match):
    with pytest.raises(ValueError, match=match):
        HRMASConfig(**{key: value})


@pytest.mark.slow
def test_a_run_records_the_expected_cost_and_the_measured_cost(tmp_path):
    from snn_motifs.search import run

    cfg, data = tiny_search(epochs_retrain=2, cost_weight=1.0)
    summary = run(cfg, tmp_path / "out", data=data, plots=False, progress=False, log=print)
    history = json.loads((tmp_path / "out" / "seed0" / "history.json").read_text())
    searched = [h for h in history if h["phase"].startswith("search")]
    assert all(
        h["cost"] == "synops" and 0 <= h["cost_ratio"] <= 1 and h["expected_cost"] >= 0 for h in searched
    )
    result = json.loads((tmp_path / "out" / "seed0" / "result.json").read_text())
    assert result["cost_weight"] == 1.0 and result["cost"]["synops_per_sample"] > 0
    assert summary["cost"]["synops_per_sample"] == result["cost"]["synops_per_sample"]
    dense = json.loads((tmp_path / "out" / "dense_baseline.json").read_text())
    assert dense["cost"]["recurrent_synapses"] == 8 * 8
    assert summary["dense_baseline"]["cost"] == dense["cost"]


@pytest.mark.slow
def test_lambda_10_on_the_main_job_chooses_a_smaller_motif(tmp_path):
    """The main job's search phases (mnist1d_default, full data) with cost_weight = 10."""
    pytest.importorskip("mnist1d")
    from snn_motifs.search import load_data

    cfg = load_config("mnist1d_default")
    cfg = HRMASConfig(**{**cfg.__dict__, "cost_weight": 10.0, "epochs_retrain": 1})
    torch.set_num_threads(1)
    result = HRMASRun(
        cfg, load_data(cfg), tmp_path, progress=False, log=lambda s: None, tensorboard=False
    ).run()
    assert result["genotype"]["motif_size"] < max(cfg.motif_sizes)
