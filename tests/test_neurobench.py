"""NeuroBench's own harness on our networks (snn_motifs.adapters.neurobench_interop.NeuroBenchSNN):
Benchmark runs with Footprint, ConnectionSparsity, ActivationSparsity and SynapticOperations; its numbers
equal a hand count from the recorded spikes and dense matrices; and snn_motifs.metrics.measure gives the
same numbers as NeuroBench on a stock snnTorch MLP (NeuroBench's SNNTorchModel) and on SC-ML networks."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snn_motifs import SCMLClassifier, ScSrSNN, SpikingLayer, SpikingLinear
from snn_motifs.search.space import MixedMotifLayer

from .conftest import MIXED_TOPOLOGY

pytest.importorskip("neurobench")
snn = pytest.importorskip("snntorch")

from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount  # noqa: E402
from neurobench.metrics.workload import (  # noqa: E402
    ActivationSparsity,
    ActivationSparsityByLayer,
    ClassificationAccuracy,
    SynapticOperations,
)
from neurobench.models import SNNTorchModel  # noqa: E402
from snn_motifs.adapters.neurobench_interop import NeuroBenchSNN, RecurrentSynapses  # noqa: E402

STATIC = [Footprint, ConnectionSparsity, ParameterCount]
WORKLOAD = [ActivationSparsity, ActivationSparsityByLayer, SynapticOperations]
SAMPLES, STEPS, FEATURES, CLASSES = 10, 20, 16, 4


# -- models and data -------------------------------------------------------------------------------------
def _scml() -> SCMLClassifier:
    torch.manual_seed(0)
    return SCMLClassifier(FEATURES, 32, CLASSES, motif_size=4)


def _typed_scml() -> SCMLClassifier:
    """Excitatory, inhibitory and absent edges, spiking readout (an activation layer of its own)."""
    torch.manual_seed(1)
    return SCMLClassifier(FEATURES, 32, CLASSES, topology=MIXED_TOPOLOGY, readout="count", input_gain=2.0)


def _mixed() -> SCMLClassifier:
    """The HRMAS search network: a MixedMotifLayer hidden layer with random architecture logits (at
    neutral logits its excitatory and inhibitory parts cancel and the recurrence is all zeros)."""
    torch.manual_seed(2)
    layer = MixedMotifLayer(FEATURES, 32, (2, 4, 8))
    with torch.no_grad():
        for p in layer.arch_parameters():
            p.normal_(0.0, 2.0)
    return SCMLClassifier(FEATURES, 32, CLASSES, hidden_layer=layer)


def _scsr() -> ScSrSNN:
    """ScSr-SNN with self-recurrent layers and skip connections (the 0 -> 2 skip feeds the readout)."""
    torch.manual_seed(3)
    return ScSrSNN(FEATURES, [24, 24], CLASSES, skip=True, bip=True)


MODELS = {"scml": _scml, "typed_scml": _typed_scml, "mixed": _mixed, "scsr": _scsr}


def _data(kind: str = "spikes", seed: int = 0) -> torch.Tensor:
    """NeuroBench layout, batch-first ``[samples, T, F]``: binary spikes, analog values, or analog with
    spikes in the first step."""
    g = torch.Generator().manual_seed(seed)
    spikes = (torch.rand(SAMPLES, STEPS, FEATURES, generator=g) < 0.3).float()
    analog = torch.rand(SAMPLES, STEPS, FEATURES, generator=g)
    if kind == "spikes":
        return spikes
    if kind == "analog":
        return analog
    return torch.cat([spikes[:, :1], analog[:, 1:]], dim=1)


def _loader(x: torch.Tensor, batch_size: int) -> DataLoader:
    y = torch.arange(len(x)) % CLASSES
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def _benchmark(model, loader: DataLoader, workload=WORKLOAD) -> dict:
    return Benchmark(model, loader, [], [], [STATIC, workload]).run(quiet=True)


def _footprint(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


# -- a hand count, independent of NeuroBench and of the wrapper --------------------------------------------
def _is_binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1) | (t == -1)).all())


def _ops(inputs: torch.Tensor, weight: torch.Tensor) -> int:
    """Sum over the non-zero input values of the non-zero weights in that input's column."""
    fan_out = (weight != 0).sum(0).to(torch.int64)
    return int(((inputs != 0).to(torch.int64) * fan_out).sum())


@torch.no_grad()
def _trace(model: nn.Module, x: torch.Tensor) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list]:
    """Replay ``model`` on time-first ``x`` layer by layer with ``layer.run(..., record=True)``: every
    connection as ``(its input, its [out, in] weight)`` (the recurrence: spikes of steps 0..T-2 through
    the dense recurrent matrix) and every spiking layer's spike train."""
    connections, trains = [], []

    def run(layer: nn.Module, h: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        connections.append((h, layer.fc.weight))
        if not isinstance(layer, SpikingLayer):  # leaky-integrator readout
            return layer.run(h, extra_current=extra)[0]
        s = layer.run(h, record=True, extra_current=extra)[0]
        trains.append(s)
        if layer.recurrent_weights()[0] is not None:
            connections.append((s[:-1], layer.recurrent_matrix()))
        return s

    h = x * model.input_gain
    if isinstance(model, SCMLClassifier):
        run(model.output, run(model.hidden, h))
        return connections, trains
    outs: list[torch.Tensor] = []
    for i, layer in enumerate(model.layers):
        skip = model.skips[f"{i - 2}->{i}"] if f"{i - 2}->{i}" in model.skips else None
        extra = None
        if skip is not None:
            connections.append((outs[i - 2], skip.weight))
            extra = skip(outs[i - 2])
        h = run(layer, h, extra)
        outs.append(h)
    return connections, trains


def _hand_count(model: nn.Module, loader: DataLoader) -> dict:
    ac = mac = dense = spiking = seen = 0
    for xb, _ in loader:
        connections, trains = _trace(model, xb.transpose(0, 1))
        for inputs, weight in connections:
            ops = _ops(inputs, weight)
            ac, mac = (ac + ops, mac) if _is_binary(inputs) else (ac, mac + ops)
            dense += (
                inputs[..., 0].numel() * weight.numel()
            )  # NeuroBench's "Dense": every weight, every input
        spiking += sum(int(s.count_nonzero()) for s in trains)
        seen += sum(s.numel() for s in trains)
    zeros = total = 0
    for weight in [m.weight for m in model.modules() if isinstance(m, nn.Linear)] + [
        m.recurrent_matrix() for m in model.modules() if hasattr(m, "recurrent_matrix")
    ]:
        zeros += int((weight == 0).sum())
        total += weight.numel()
    samples = len(loader.dataset)
    return {
        "ac": ac / samples,
        "mac": mac / samples,
        "dense": dense / samples,
        "activation_sparsity": (seen - spiking) / seen,
        "connection_sparsity": zeros / total,
    }


# -- a. the harness runs on our networks -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["scml", "mixed"])
def test_benchmark_runs_on_sc_ml_networks(name):
    model = MODELS[name]()
    wrapper = NeuroBenchSNN(model)
    results = _benchmark(wrapper, _loader(_data(), 4), [*WORKLOAD, ClassificationAccuracy])
    ops = results["SynapticOperations"]
    assert results["Footprint"] == _footprint(model) > 0
    assert results["ParameterCount"] == sum(p.numel() for p in model.parameters())
    assert 0.0 < results["ConnectionSparsity"] < 1.0  # the recurrence's absent synapses are zeros
    assert 0.0 < results["ActivationSparsity"] < 1.0
    assert results["ActivationSparsityByLayer"].keys() == {"hidden"}
    assert 0.0 <= results["ClassificationAccuracy"] <= 1.0
    assert ops["Effective_MACs"] == 0 and 0 < ops["Effective_ACs"] < ops["Dense"]  # spikes in: ACs only
    assert all(math.isfinite(v) for v in ops.values())
    layers = wrapper.connection_layers()
    assert sum(isinstance(m, RecurrentSynapses) for m in layers) == 1
    assert sum(type(m) is nn.Linear for m in layers) == 2  # hidden.fc and the readout's fc


def test_connection_layers_and_activation_layers_of_scsr():
    model = _scsr()
    wrapper = NeuroBenchSNN(model)
    layers = wrapper.connection_layers()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4  # two feed-forward fc, the readout's fc, the 0 -> 2 skip
    assert all(any(m is lin for m in layers) for lin in linears)
    recurrent = [m for m in layers if isinstance(m, RecurrentSynapses)]
    assert len(recurrent) == 2
    for probe, layer in zip(recurrent, (model.layers[0], model.layers[1]), strict=True):
        assert torch.equal(probe.weight, layer.recurrent_matrix())  # diagonal: the self-recurrent weights
    assert [a["layer_name"] for a in wrapper.activation_layers()] == ["layers.0", "layers.1"]
    assert wrapper.recurrent_layer_names == ["layers.0", "layers.1"]


# -- b. NeuroBench through the wrapper equals a hand count ---------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("kind", ["spikes", "analog"])
def test_neurobench_counts_equal_a_hand_count(name, kind):
    model = MODELS[name]()
    loader = _loader(_data(kind), 4)  # batches of 4, 4, 2: per-sample averages over unequal batches
    expected = _hand_count(model, loader)
    results = _benchmark(NeuroBenchSNN(model), loader)
    ops = results["SynapticOperations"]
    assert ops["Effective_ACs"] == expected["ac"] > 0
    assert ops["Effective_MACs"] == expected["mac"]
    assert ops["Dense"] == expected["dense"]
    if kind == "analog" or name == "typed_scml":  # analog input, or spikes scaled by input_gain = 2
        assert ops["Effective_MACs"] > 0
    assert _close(results["ActivationSparsity"], expected["activation_sparsity"])
    assert results["ConnectionSparsity"] == round(expected["connection_sparsity"], 4)
    assert results["Footprint"] == _footprint(model)


def test_recurrent_count_is_the_delayed_spikes_through_the_matrix():
    """The recurrence alone: spikes of steps 0..T-2, each reaching its column's non-zero synapses."""
    model = _scml()
    x = _data()
    wrapper = NeuroBenchSNN(model)
    bench = Benchmark(
        wrapper, _loader(x, SAMPLES), [], [], [[], [SynapticOperations]]
    )  # hooks while it lives
    wrapper(x)
    hook = next(h for h in wrapper.connection_hooks if isinstance(h.layer, RecurrentSynapses))
    (crossing,) = hook.inputs[0]
    with torch.no_grad():
        s = model.hidden.run(x.transpose(0, 1) * model.input_gain, record=True)[0]
    assert torch.equal(crossing, s[:-1])
    matrix = model.hidden.recurrent_matrix()
    by_hand = sum(
        int(s[t, b, pre]) * int((matrix[:, pre] != 0).sum())
        for t in range(STEPS - 1)
        for b in range(SAMPLES)
        for pre in range(32)
    )
    assert by_hand == _ops(s[:-1], matrix) > 0
    del bench


def test_the_step_api_is_counted_too():
    """A model that steps its layer itself: the same counts as running the sequence."""
    torch.manual_seed(0)
    layer = SCMLClassifier(FEATURES, 32, CLASSES, motif_size=4).hidden

    class Stepped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, x):
            state, out = None, []
            for x_t in x.unbind(0):
                s, state = self.layer(x_t, state)
                out.append(s)
            return torch.stack(out)

    class Sequence(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, x):
            return self.layer.run(x)[0]

    loader = _loader(_data(), SAMPLES)
    stepped = _benchmark(NeuroBenchSNN(Stepped(), loss=None), loader)
    whole = _benchmark(NeuroBenchSNN(Sequence()), loader)
    assert stepped["SynapticOperations"] == whole["SynapticOperations"]
    assert stepped["SynapticOperations"]["Effective_ACs"] > 0
    assert _close(stepped["ActivationSparsity"], whole["ActivationSparsity"])


# -- the wrapper itself --------------------------------------------------------------------------------------
def test_wrapper_predicts_like_the_model_and_leaves_it_unchanged():
    model = _typed_scml()
    model.train()
    before = copy.deepcopy(model.state_dict())
    x = _data()
    wrapper = NeuroBenchSNN(model, output="raw")
    bench = Benchmark(wrapper, _loader(x, 5), [], [], [STATIC, WORKLOAD])
    bench.run(quiet=True)
    raw = wrapper(x)
    with torch.no_grad():
        reference = model(x.transpose(0, 1))
    assert torch.equal(raw, reference.transpose(0, 1))
    from snn_motifs.training import make_predict, objective_of

    assert torch.equal(NeuroBenchSNN(model)(x), make_predict(objective_of(model))(reference))
    assert all(m.training for m in model.modules())
    assert all("run" not in m.__dict__ for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items())
    assert wrapper.__net__().model is model


def test_sequential_stack_and_single_layer():
    torch.manual_seed(0)
    stack = nn.Sequential(
        MixedMotifLayer(FEATURES, 16, (2, 4)), SpikingLinear(16, 8), SpikingLinear(8, CLASSES)
    )
    loader = _loader(_data(), SAMPLES)
    results = _benchmark(NeuroBenchSNN(stack), loader)
    assert results["ActivationSparsityByLayer"].keys() == {"0", "1", "2"}
    assert results["SynapticOperations"]["Effective_ACs"] > 0
    single = _benchmark(NeuroBenchSNN(copy.deepcopy(stack[0])), loader)
    assert single["ActivationSparsityByLayer"].keys() == {"model"}


def test_wrapper_refuses_models_without_our_layers():
    with pytest.raises(TypeError, match="SNNTorchModel"):
        NeuroBenchSNN(nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True)))
    with pytest.raises(ValueError, match="output must be one of"):
        NeuroBenchSNN(_scml(), output="logits")
    with pytest.raises(ValueError, match="batch-first"):
        NeuroBenchSNN(_scml())(torch.zeros(3, 4))


# -- c. snn_motifs.metrics.measure equals NeuroBench ---------------------------------------------------------
def _stock_mlp() -> nn.Sequential:
    torch.manual_seed(4)
    net = nn.Sequential(
        nn.Linear(FEATURES, 32),
        snn.Leaky(beta=0.9, init_hidden=True),
        nn.Linear(32, CLASSES),
        snn.Leaky(beta=0.9, init_hidden=True, output=True),
    )
    with torch.no_grad():
        net[0].weight[:, :3] = 0  # some absent synapses
    return net


def _assert_measure_equals_neurobench(cost: dict, results: dict) -> None:
    ops = results["SynapticOperations"]
    assert cost["ac_per_sample"] == ops["Effective_ACs"]
    assert cost["mac_per_sample"] == ops["Effective_MACs"]
    assert cost["synops_per_sample"] == ops["Effective_ACs"] + ops["Effective_MACs"]
    assert _close(cost["activation_sparsity"]["overall"], results["ActivationSparsity"])
    by_layer = results["ActivationSparsityByLayer"]
    assert cost["activation_sparsity"]["layers"].keys() == by_layer.keys()
    assert all(_close(cost["activation_sparsity"]["layers"][k], v) for k, v in by_layer.items())
    assert round(cost["connection_sparsity"], 4) == results["ConnectionSparsity"]  # NeuroBench rounds
    assert cost["parameters"] == results["ParameterCount"]


@pytest.mark.parametrize("kind", ["spikes", "analog", "mixed"])
def test_measure_equals_neurobench_on_a_stock_snntorch_mlp(kind):
    """NeuroBench's SNNTorchModel steps the net: each step's input is tested for being binary on its own
    ("mixed": the spikes of step 0 count as ACs, the analog steps as MACs)."""
    measure = pytest.importorskip("snn_motifs.metrics").measure
    x = _data(kind)
    net = _stock_mlp()
    results = _benchmark(SNNTorchModel(copy.deepcopy(net)), _loader(x, SAMPLES))
    cost = measure(net, x.transpose(0, 1))
    _assert_measure_equals_neurobench(cost, results)
    weights = [net[0].weight, net[2].weight]
    exact = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert cost["connection_sparsity"] == exact
    if kind == "mixed":
        assert 0 < cost["ac_per_sample"] and 0 < cost["mac_per_sample"]


@pytest.mark.parametrize("name", ["stock_mlp", "scml_snntorch_backend"])
def test_measure_footprint_equals_neurobench_on_fresh_snntorch_neurons(name):
    measure = pytest.importorskip("snn_motifs.metrics").measure
    x = _data()
    if name == "stock_mlp":
        net = _stock_mlp()
        wrapped = SNNTorchModel(copy.deepcopy(net))
    else:
        torch.manual_seed(0)
        net = SCMLClassifier(FEATURES, 32, CLASSES, motif_size=4, backend="snntorch")
        wrapped = NeuroBenchSNN(copy.deepcopy(net))
    results = _benchmark(wrapped, _loader(x, SAMPLES))
    assert measure(net, x.transpose(0, 1))["footprint_bytes"] == results["Footprint"]


def test_measure_equals_neurobench_on_a_sequential_stack():
    measure = pytest.importorskip("snn_motifs.metrics").measure
    torch.manual_seed(0)
    stack = nn.Sequential(MixedMotifLayer(FEATURES, 16, (2, 4)), SpikingLinear(16, CLASSES))
    x = _data()
    results = _benchmark(NeuroBenchSNN(stack), _loader(x, SAMPLES))
    _assert_measure_equals_neurobench(measure(stack, x.transpose(0, 1)), results)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("kind", ["spikes", "analog", "mixed"])
def test_measure_equals_neurobench_through_the_wrapper(name, kind):
    """One batch: the feed-forward layers see the whole sequence in one call, in both."""
    measure = pytest.importorskip("snn_motifs.metrics").measure
    model = MODELS[name]()
    x = _data(kind)
    results = _benchmark(NeuroBenchSNN(model), _loader(x, SAMPLES))
    cost = measure(model, x.transpose(0, 1))
    _assert_measure_equals_neurobench(cost, results)
    assert cost["footprint_bytes"] == results["Footprint"]
    expected = _hand_count(model, _loader(x, SAMPLES))
    assert cost["connection_sparsity"] == expected["connection_sparsity"]
    recurrent = [m.recurrent_matrix() for m in model.modules() if hasattr(m, "recurrent_matrix")]
    assert cost["recurrent_synapses"] == sum(int((w != 0).sum()) for w in recurrent)


def test_measure_dense_equals_neurobench():
    measure = pytest.importorskip("snn_motifs.metrics").measure
    model = _scml()
    x = _data()
    results = _benchmark(NeuroBenchSNN(model), _loader(x, SAMPLES))
    cost = measure(model, x.transpose(0, 1))
    assert cost["dense_synops_per_sample"] == results["SynapticOperations"]["Dense"]
