"""The options measured for TSSL-BP's recipe (README "Accuracy", benchmarks/bench_tssl.py): fit's rate
regulariser, weight clamp and parameter groups, and TSSL-BP's per-layer warm-up switch."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch

from snn_motifs import SCML, NeuronParameters
from snn_motifs.losses import RateRegularizer
from snn_motifs.models import SCMLClassifier
from snn_motifs.training import bind_spike_fns, clip_weights, fit
from snn_motifs.tssl import TSSLBP, tssl_delta

from .test_training import _data  # the same two-class rate task

NEURON = NeuronParameters(tau_mem=4, tau_syn=2)


def _model(spike_fn="tssl", **kw) -> SCMLClassifier:
    torch.manual_seed(0)
    return SCMLClassifier(8, 16, 2, 4, neuron=NEURON, spike_fn=spike_fn, **kw)


# -- rate regulariser ---------------------------------------------------------------------------------
def test_rate_regularizer_defaults_are_tssl_bps_setting():
    assert RateRegularizer() == RateRegularizer(weight=30.0, target=0.2, per="neuron")


def test_rate_regularizer_penalises_only_the_excess():
    spikes = torch.zeros(10, 4, 5)
    spikes[:5] = 1.0  # rate 0.5 everywhere
    assert float(RateRegularizer(10.0, 0.2)(spikes)) == pytest.approx(10 * 0.3**2)
    assert float(RateRegularizer(10.0, 0.6)(spikes)) == 0.0
    one_hot = torch.zeros(10, 4, 5)
    one_hot[..., 0] = 1.0  # layer rate 0.2, one neuron at 1.0
    assert float(RateRegularizer(1.0, 0.2, per="layer")(one_hot)) == 0.0
    assert float(RateRegularizer(1.0, 0.2, per="neuron")(one_hot)) == pytest.approx(0.8**2 / 5)


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"weight": -1.0}, "weight"),
        ({"weight": math.nan}, "weight"),
        ({"target": 1.5}, "target"),
        ({"target": -0.1}, "target"),
        ({"per": "batch"}, "per"),
    ],
)
def test_rate_regularizer_refuses_bad_values(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RateRegularizer(**kwargs)


@pytest.mark.parametrize("spike_fn", ["tssl", "atan"])
def test_rate_regularizer_lowers_the_hidden_rate(spike_fn):
    data = _data()
    rates = {}
    for name, reg in [("free", None), ("penalised", RateRegularizer(weight=50.0, target=0.05))]:
        model = _model(spike_fn)
        out = fit(model, data, 8, batch_size=16, target_rate=0.4, rate_regularizer=reg)
        rates[name] = out["history"][-1]["rates"]["hidden"]
        if reg is not None:
            assert out["history"][-1]["rate_penalty"] >= 0
    assert rates["penalised"] < 0.7 * rates["free"], rates


def test_fit_refuses_a_rate_regularizer_that_is_not_one():
    with pytest.raises(ValueError, match="rate_regularizer.*RateRegularizer"):
        fit(_model(), _data(), 1, rate_regularizer=0.1)


def test_rate_regularizer_leaves_the_layers_unpatched():
    model = _model()
    fit(model, _data(), 1, batch_size=16, rate_regularizer=RateRegularizer())
    assert "run" not in model.hidden.__dict__


# -- weight clamp ---------------------------------------------------------------------------------------
def test_weight_clip_holds_every_weight_in_the_bound():
    data = _data()
    free = _model()
    fit(free, data, 3, batch_size=16, lr=0.1)
    biggest = max(float(p.detach().abs().max()) for n, p in free.named_parameters() if n.endswith("weight"))
    bound = biggest / 4
    model = _model()
    fit(model, data, 3, batch_size=16, lr=0.1, weight_clip=bound)
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            assert float(p.detach().abs().max()) <= bound + 1e-7, name
    assert any(
        float(p.detach().abs().max()) > bound for n, p in free.named_parameters() if n.endswith("weight")
    )


def test_clip_weights_leaves_biases_alone():
    model = _model()
    with torch.no_grad():
        model.output.fc.bias.fill_(10.0)
        model.hidden.fc.weight.fill_(10.0)
    clip_weights(model, 4.0)
    assert float(model.hidden.fc.weight.detach().max()) == 4.0
    assert float(model.output.fc.bias.detach().max()) == 10.0


@pytest.mark.parametrize("bad", [0, -4.0, math.inf, math.nan, "4"])
def test_weight_clip_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="weight_clip"):
        fit(_model(), _data(), 1, weight_clip=bad)


# -- parameter groups ---------------------------------------------------------------------------------
def test_param_groups_set_a_learning_rate_per_group():
    model = _model()
    frozen = [model.hidden.intra_weight, model.hidden.lateral_weight]
    before = [p.detach().clone() for p in frozen]
    rest = [
        p for n, p in model.named_parameters() if n not in ("hidden.intra_weight", "hidden.lateral_weight")
    ]
    fit(
        model,
        _data(),
        1,
        batch_size=16,
        param_groups=[{"params": frozen, "lr": 0.0, "weight_decay": 0.0}, {"params": rest}],
    )
    assert all(torch.equal(p, b) for p, b in zip(frozen, before, strict=True))
    assert not torch.equal(model.hidden.fc.weight, _model().hidden.fc.weight)


def test_param_groups_must_cover_every_parameter_once():
    model = _model()
    with pytest.raises(ValueError, match="missing.*intra_weight"):
        fit(model, _data(), 1, param_groups=[{"params": [model.hidden.fc.weight]}])
    with pytest.raises(ValueError, match="repeated"):
        fit(
            model,
            _data(),
            1,
            param_groups=[{"params": list(model.parameters())}, {"params": [model.hidden.fc.weight]}],
        )
    with pytest.raises(ValueError, match="param_groups"):
        fit(model, _data(), 1, param_groups=[model.hidden.fc.weight])


# -- warm-up switch per layer -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,word", [({"warmup": "step"}, "warmup"), ({"warmup_rate": 1.5}, "warmup_rate")]
)
def test_tssl_warmup_refuses_bad_values(kwargs, word):
    with pytest.raises(ValueError, match=word):
        TSSLBP(**kwargs)


class _FakeLayer:
    compile = False

    def __init__(self, rate: float) -> None:
        self.last_rate = torch.tensor(rate)


@pytest.mark.parametrize("rate", [0.01, 0.2])
def test_layer_warmup_switches_the_whole_layer_on_its_rate(rate):
    g = torch.Generator().manual_seed(0)
    shape = (3, 7)
    mem = torch.rand(shape, generator=g) * 2
    u_prev = torch.rand(shape, generator=g)
    spikes = (mem > 1).double().float()
    psc = torch.rand(shape, generator=g)  # some neurons above, some below the per-neuron threshold
    g_s, theta = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    leak, tau_inv = torch.full((7,), 0.75), torch.full((7,), 0.25)
    args = (g_s, theta, mem, u_prev, spikes, psc, leak, tau_inv, 1.0)
    layer = _FakeLayer(rate)
    rule = TSSLBP(warmup="layer", warmup_rate=0.05).bind(layer)
    got, carry = tssl_delta(rule, *args)
    always = TSSLBP(warmup_threshold=math.inf) if rate < 0.05 else TSSLBP(warmup_threshold=0.0)
    want, want_carry = tssl_delta(always, *args)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(carry, want_carry)
    mixed, _ = tssl_delta(TSSLBP(), *args)
    assert not torch.equal(mixed, got)  # the per-neuron switch differs on this input


@pytest.mark.parametrize("kernel", ["fused", "step"])
@pytest.mark.parametrize("cold", [True, False])
def test_layer_warmup_through_an_scml_layer(kernel, cold):
    """In an SC-ML layer (fused kernel and step path) the layer rule's gradients equal those of the rule
    that always (cold layer) or never (warm layer) uses the warm-up surrogate."""
    x = torch.rand(15, 4, 6, generator=torch.Generator().manual_seed(1)) * 3
    rate_bar = 1.0 if cold else 0.0  # a layer below / above its warmup_rate
    grads = {}
    for name, rule in [
        ("layer", TSSLBP(warmup="layer", warmup_rate=rate_bar)),
        ("ref", TSSLBP(warmup_threshold=math.inf if cold else 0.0)),
    ]:
        torch.manual_seed(0)
        layer = SCML(6, 12, 4, neuron=NEURON, spike_fn=rule, kernel=kernel)
        if name == "layer":
            rule.bind(layer)
        spikes, _ = layer.run(x)
        rate = float(layer.last_rate)
        assert 0 < rate < 1
        (spikes * torch.linspace(-1, 1, 12)).sum().backward()
        grads[name] = [p.grad.clone() for p in layer.parameters()]
    for a, b in zip(grads["layer"], grads["ref"], strict=True):
        torch.testing.assert_close(a, b)


def test_layer_warmup_needs_its_layer():
    layer = SCML(6, 12, 4, neuron=NEURON, spike_fn=TSSLBP(warmup="layer"))
    spikes, _ = layer.run(torch.rand(10, 2, 6) * 3)
    with pytest.raises(RuntimeError, match="bind"):
        spikes.sum().backward()


def test_fit_binds_layer_rules_and_one_rule_serves_one_layer():
    rule = TSSLBP(warmup="layer")
    model = _model(rule, readout="count")  # the same rule object in the hidden and output layers
    with pytest.raises(ValueError, match="already bound"):
        bind_spike_fns(model)
    model = _model(TSSLBP(warmup="layer"))
    out = fit(model, _data(), 2, batch_size=16)
    assert model.hidden.neurons.spike_fn.layer_rate() == float(model.hidden.last_rate)
    assert out["test_acc"] > 0


def test_layer_rule_refuses_a_compiled_layer_and_survives_copies():
    class Compiled(_FakeLayer):
        kernel = "compiled"

    with pytest.raises(ValueError, match="not 'compiled'"):
        TSSLBP(warmup="layer").bind(Compiled(0.1))
    rule = TSSLBP(warmup="layer", warmup_rate=0.1).bind(_FakeLayer(0.3))
    for clone in (copy.deepcopy(rule), pickle.loads(pickle.dumps(rule))):
        assert clone.warmup == "layer" and clone.warmup_rate == 0.1
        with pytest.raises(RuntimeError, match="bind"):
            clone.layer_rate()
