"""snn_motifs.metrics.measure: NeuroBench's cost definitions on every model family, checked against counts
written out by hand from the recorded spikes and the dense weight matrices (the equality with NeuroBench
itself is in test_neurobench.py)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from snn_motifs import SCML, MotifTopology, SCMLClassifier, SelfRecurrent, SpikingLinear, build_scsr
from snn_motifs.metrics import EnergyModel, measure, recurrent_synapses
from snn_motifs.search import HRMASConfig
from snn_motifs.search.baselines import dense_rsnn, ff_snn
from snn_motifs.search.space import MixedMotifLayer

T, B, F, N, C = 12, 5, 6, 16, 3


def _x(seed: int = 0, spikes: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(T, B, F, generator=g) * 3
    return (x > 1.5).float() if spikes else x * (x > 0.8)  # some exact zeros in the analog input


def _hand_count(layer_spikes: torch.Tensor, dense: torch.Tensor) -> float:
    """ACs of a recurrence: each spike of steps 0..T-2 reaches the non-zero entries of its column."""
    fan_out = (dense != 0).sum(0).double()
    return float((layer_spikes[:-1] != 0).double().matmul(fan_out).sum()) / layer_spikes.shape[1]


def _linear_ops(x: torch.Tensor, weight: torch.Tensor) -> float:
    return float((x != 0).double().matmul((weight != 0).double().sum(0)).sum()) / x.shape[1]


@pytest.mark.parametrize("topology", ["free", "random"])
def test_scml_classifier_counts_equal_a_hand_count(topology):
    torch.manual_seed(0)
    topo = MotifTopology.random(4, torch.Generator().manual_seed(3)) if topology == "random" else None
    model = SCMLClassifier(F, N, C, None if topo else 4, topology=topo, input_gain=4.0)
    x = _x()
    cost = measure(model, x)
    with torch.no_grad():
        spikes, _, rec = model.hidden.run(x * model.input_gain, record=True)
    dense = model.hidden.recurrent_matrix()
    recurrent = _hand_count(spikes, dense)
    readout = _linear_ops(spikes, model.output.fc.weight)
    assert cost["ops_per_layer"]["hidden.recurrent"] == {"ac": pytest.approx(recurrent, abs=0), "mac": 0}
    assert cost["mac_per_sample"] == _linear_ops(x, model.hidden.fc.weight)  # analog input: MACs
    assert cost["ac_per_sample"] == recurrent + readout  # spikes: ACs
    assert cost["synops_per_sample"] == cost["ac_per_sample"] + cost["mac_per_sample"]
    assert cost["recurrent_synapses"] == int((dense != 0).sum())
    assert cost["activation_sparsity"]["layers"] == {"hidden": 1 - int(spikes.sum()) / spikes.numel()}
    assert cost["firing_rate"] == int(spikes.sum()) / spikes.numel()
    weights = [model.hidden.fc.weight, dense, model.output.fc.weight]
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert cost["connection_sparsity"] == zeros / sum(w.numel() for w in weights)
    assert cost["parameters"] == sum(p.numel() for p in model.parameters())
    assert cost["energy_pj_per_sample"] == pytest.approx(
        0.9 * cost["ac_per_sample"] + 4.6 * cost["mac_per_sample"]
    )
    assert cost["energy_model"]["estimate"] is True
    if topology == "random":  # "none" edges are no synapses
        assert cost["recurrent_synapses"] < N * 4 + 2 * (N - 4)


def test_spike_input_counts_as_accumulates():
    torch.manual_seed(0)
    model = SCMLClassifier(F, N, C, 4)  # input gain 1: binary input stays binary
    cost = measure(model, _x(spikes=True))
    assert cost["mac_per_sample"] == 0 and cost["ac_per_sample"] > 0


def test_every_model_family_is_measured():
    torch.manual_seed(0)
    cfg = HRMASConfig(hidden=N)
    mixed = MixedMotifLayer(F, N, (2, 4, 8))
    with torch.no_grad():
        for p in mixed.arch_parameters():
            p.normal_()  # a non-neutral alpha: the mixed edges are non-zero
    models = {
        "scml": SCML(F, N, 4),
        "self-recurrent": SelfRecurrent(F, N),
        "spiking linear": SpikingLinear(F, N),
        "mixed (search network)": SCMLClassifier(F, N, C, hidden_layer=mixed, input_gain=4.0),
        "scsr": build_scsr("SrSc-BIP", F, (N, N, N), C, input_gain=4.0),
        "dense rsnn": dense_rsnn(F, N, C, cfg),
        "ff-snn": ff_snn(F, N, C, cfg),
        "stack": nn.Sequential(SCML(F, N, 4), SpikingLinear(N, C)),
    }
    synapses = {}
    for name, model in models.items():
        cost = measure(model, _x())
        assert cost["synops_per_sample"] > 0, name
        synapses[name] = cost["recurrent_synapses"]
    assert synapses["dense rsnn"] == N * N
    assert synapses["self-recurrent"] == N
    assert synapses["spiking linear"] == synapses["ff-snn"] == 0
    assert synapses["scml"] == N * 4 + 2 * (N - 4)  # O(N v): intra v per neuron + two lateral edges
    assert synapses["mixed (search network)"] == int((mixed.recurrent_matrix() != 0).sum())
    assert synapses["scsr"] == 3 * N


def test_recurrence_counted_from_the_spikes_that_cross_it_in_the_step_api():
    """A user model that steps our layer itself counts the same operations as the sequence API."""

    class Stepper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = SCML(F, N, 4)

        def forward(self, x):
            state, out = None, []
            for x_t in x.unbind(0):
                spk, state = self.layer(x_t, state)
                out.append(spk)
            return torch.stack(out)

    torch.manual_seed(0)
    stepper = Stepper()
    x = _x()
    by_step, by_run = measure(stepper, x), measure(stepper.layer, x)
    for key in ("ac_per_sample", "mac_per_sample", "firing_rate", "recurrent_synapses"):
        assert by_step[key] == by_run[key], key
    assert by_step["activation_sparsity"]["layers"] == {"layer": by_run["activation_sparsity"]["overall"]}


def test_batches_and_batch_first_give_the_same_counts():
    torch.manual_seed(0)
    model = SCMLClassifier(F, N, C, 4, input_gain=4.0)
    x = _x()
    whole = measure(model, x)
    chunked = measure(model, x.transpose(0, 1).contiguous(), batch_first=True, batch_size=2)
    for key in ("ac_per_sample", "mac_per_sample", "synops_per_sample", "energy_pj_per_sample"):
        assert chunked[key] == pytest.approx(whole[key], rel=1e-12), key


@pytest.mark.parametrize("training", [True, False])
def test_measure_leaves_the_model_unchanged(training):
    torch.manual_seed(0)
    model = build_scsr("SrSc-BIP", F, (N, N), C, input_gain=4.0).train(training)
    before = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    measure(model, _x())
    assert [m.training for m in model.modules()] == modes
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not hasattr(model.layers[0], "__dict__") or "run" not in model.layers[0].__dict__  # unpatched


def test_energy_constants_are_settable_and_checked():
    torch.manual_seed(0)
    model = SCMLClassifier(F, N, C, 4, input_gain=4.0)
    cost = measure(model, _x(), energy=EnergyModel(ac_pj=1.0, mac_pj=2.0, source="my chip"))
    assert cost["energy_pj_per_sample"] == cost["ac_per_sample"] + 2 * cost["mac_per_sample"]
    assert cost["energy_model"]["source"] == "my chip"
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="ac_pj"):
            EnergyModel(ac_pj=bad)


def test_sc_ml_recurrence_is_o_n_v_and_the_dense_one_o_n_squared():
    n = 256
    assert recurrent_synapses(SCML(F, n, 8)) == n * 8 + 2 * (n - 8)
    dense = dense_rsnn(F, n, C, HRMASConfig(hidden=n))
    assert recurrent_synapses(dense) == n * n


@pytest.mark.parametrize(
    ("model", "x", "error", "match"),
    [
        (nn.Linear(F, C), _x(), ValueError, "no spiking layer"),
        (SCMLClassifier(F, N, C, 4), torch.rand(T, F), ValueError, r"\[T, B, F\]"),
        (SCMLClassifier(F, N, C, 4), torch.rand(T, B, F).bool(), TypeError, "floating-point"),
        (SCMLClassifier(F, N, C, 4), torch.full((T, B, F), float("nan")), ValueError, "NaN"),
        ("not a model", _x(), TypeError, "nn.Module"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(model, x, error, match):
    with pytest.raises(error, match=match):
        measure(model, x)


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        measure(SCML(F, N, 4), _x(), batch_size=0)
