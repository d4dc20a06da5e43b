"""NIR export (snn_motifs.nir_export): exactness against an independent NIR simulator, the nir.write /
nir.read round trip, re-import by Norse and snnTorch with matching spikes, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snn_motifs import SCML, SCMLClassifier, SpikingLinear, build_scsr
from snn_motifs import nir_export as ne
from snn_motifs._optional import MissingDependencyError
from snn_motifs.nir_graph import graph_dt

from .conftest import HAS_NORSE, HAS_SNNTORCH, MIXED_TOPOLOGY, build_layer, drive, needs_norse, needs_snntorch

nir = pytest.importorskip("nir")


# -- an independent reference: forward-Euler simulation of a NIR graph, written from the NIR equations ----
def _flatten(graph, prefix: str = ""):
    """Inline nested NIRGraphs: names become 'outer/inner'; a subgraph's Input/Output pass values on."""
    nodes, edges = {}, []
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node, f"{prefix}{name}/")
            nodes.update(sub_nodes)
            edges += sub_edges
        else:
            nodes[prefix + name] = node

    def port(name: str, side: str) -> str:
        inner = (
            next(
                (
                    k
                    for k, n in graph.nodes[name].nodes.items()
                    if isinstance(n, nir.Input if side == "in" else nir.Output)
                ),
                None,
            )
            if isinstance(graph.nodes[name], nir.NIRGraph)
            else None
        )
        return f"{prefix}{name}/{inner}" if inner else prefix + name

    edges += [(port(a, "out"), port(b, "in")) for a, b in graph.edges]
    return nodes, edges


def _reaches(start: str, goal: str, edges) -> bool:
    seen, todo = set(), [start]
    while todo:
        n = todo.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            todo += [b for a, b in edges if a == n]
    return False


def simulate_nir(graph, x: np.ndarray, dt: float):
    """Run ``graph`` on ``x`` ``[T, B, F]`` in float64. An edge into a neuron from a node that the neuron
    itself reaches (a recurrent edge) carries the previous step's value. Returns output spikes [T, B, N]
    and the membrane of every CubaLIF ``{name: [T, B, n]}``."""
    nodes, edges = _flatten(graph)
    delayed = {(a, b) for a, b in edges if isinstance(nodes[b], nir.CubaLIF) and _reaches(b, a, edges)}
    order, done = [], set()
    while len(order) < len(nodes):  # topological order of the delay-free edges
        for name in nodes:
            deps = [a for a, b in edges if b == name and (a, b) not in delayed]
            if name not in done and all(d in done for d in deps):
                order.append(name)
                done.add(name)
    top_in = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Input))
    top_out = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Output))
    steps, batch = x.shape[:2]
    prev: dict[str, np.ndarray] = {}
    state = {k: [0.0, 0.0] for k, n in nodes.items() if isinstance(n, nir.CubaLIF)}
    outs, mems = [], {k: [] for k in state}
    for t in range(steps):
        val: dict[str, np.ndarray] = {}
        for name in order:
            node = nodes[name]
            srcs = [(a, (a, b) in delayed) for a, b in edges if b == name]
            if name == top_in:
                inp = x[t]
            else:
                parts = [prev.get(a, 0.0) if late else val[a] for a, late in srcs]
                inp = sum(parts[1:], parts[0])
            if isinstance(node, (nir.Input, nir.Output)):
                val[name] = inp
            elif isinstance(node, nir.Affine):
                val[name] = inp @ node.weight.T.astype(np.float64) + node.bias
            elif isinstance(node, nir.Linear):
                val[name] = inp @ node.weight.T.astype(np.float64)
            elif isinstance(node, nir.CubaLIF):
                i_syn, v = state[name]
                i_syn = i_syn + dt / node.tau_syn * (-i_syn + node.w_in * inp)
                v = v + dt / node.tau_mem * (node.v_leak - v + node.r * i_syn)
                z = (v > node.v_threshold).astype(np.float64)
                v = np.where(z > 0, node.v_reset, v)
                state[name] = [i_syn, v]
                mems[name].append(np.broadcast_to(v, (batch, v.shape[-1])))
                val[name] = z
            else:
                raise AssertionError(f"unexpected node {type(node).__name__}")
        prev = val
        outs.append(val[top_out])
    return np.stack(outs), {k: np.stack(m) for k, m in mems.items()}


def _per_neuron(layer, seed: int = 0):
    """Give a layer distinct per-neuron tau and R (as BIP / SpiKL-IP would) and a lively recurrence."""
    g = torch.Generator().manual_seed(seed)
    neurons = layer.neurons
    with torch.no_grad():
        neurons.tau_mem.copy_(4 + 26 * torch.rand(neurons.tau_mem.shape, generator=g, dtype=torch.float64))
        neurons.resistance.copy_(
            0.5 + 1.5 * torch.rand(neurons.resistance.shape, generator=g, dtype=torch.float64)
        )
        layer.fc.weight.mul_(2.0)
    return layer


def _lively_scsr(variant: str, hidden=(16, 16, 16), seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    model = build_scsr(variant, 10, hidden, 5, spike_fn="atan", input_gain=4.0, readout="count", **kwargs)
    with torch.no_grad():
        for layer in model.layers:
            layer.fc.weight.mul_(2.0)
            if isinstance(layer.neurons.tau_mem, torch.nn.Parameter):  # BIP: distinct trained leaks
                layer.neurons.tau_mem.uniform_(5.0, 25.0)
        for skip in model.skips.values():
            skip.weight.mul_(2.0)
    return model


# -- exactness ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("subgraphs", [True, False])
def test_export_is_exact_under_euler_with_per_neuron_tau_and_r(subgraphs):
    layer = _per_neuron(
        build_layer(dtype=torch.float64, learn_leak=True, learn_gain=True, topology=MIXED_TOPOLOGY)
    )
    x = drive(dtype=torch.float64)
    with torch.no_grad():
        spikes, _, rec = layer.run(x, record=True)
    assert 0.02 < spikes.mean() < 0.5, "the comparison needs a network that spikes"
    graph = ne.to_nir(layer, dt=1e-3, recurrent_subgraphs=subgraphs)
    out, mems = simulate_nir(graph, x.numpy(), dt=1e-3)
    np.testing.assert_array_equal(out, spikes.numpy())
    (mem,) = mems.values()
    np.testing.assert_allclose(mem, rec.mem.numpy(), rtol=0, atol=1e-10)


def test_export_of_scsr_with_skips_and_bip_is_exact():
    model = _lively_scsr("SrSc-BIP").double()
    x = drive(features=10, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
    assert expected.mean() > 0.02
    out, mems = simulate_nir(ne.to_nir(model), x.numpy(), dt=ne.DEFAULT_DT)
    np.testing.assert_array_equal(out, expected.numpy())
    assert len(mems) == 4  # three self-recurrent layers and the output layer


def test_graph_structure_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = SCMLClassifier(12, 32, 5, topology=MIXED_TOPOLOGY, input_gain=3.0, readout="count")
    graph = ne.export_nir(model, tmp_path / "m.nir")
    assert list(graph.nodes) == ["input", "layer0.fc", "layer0.rec", "layer1.fc", "layer1.lif", "output"]
    rec = graph.nodes["layer0.rec"]
    assert isinstance(rec, nir.NIRGraph) and ("w_rec", "lif") in rec.edges and ("lif", "w_rec") in rec.edges
    w_rec = rec.nodes["w_rec"].weight
    # the SC-ML structure survives: R/tau-scaled copy of the dense recurrent matrix, zero outside the band
    np.testing.assert_allclose(w_rec, model.hidden.recurrent_matrix().numpy() / 16.0, rtol=1e-6)
    np.testing.assert_allclose(
        graph.nodes["layer0.fc"].weight, model.hidden.fc.weight.detach() * 3.0 / 16.0, rtol=1e-6
    )
    lif = rec.nodes["lif"]
    np.testing.assert_allclose(lif.tau_mem, 16 * ne.DEFAULT_DT)
    np.testing.assert_allclose(lif.r, lif.tau_mem / ne.DEFAULT_DT)
    np.testing.assert_allclose(lif.w_in, lif.tau_syn / ne.DEFAULT_DT)

    back = ne.read_nir(tmp_path / "m.nir")
    assert float(np.asarray(back.metadata["dt"])) == ne.DEFAULT_DT
    assert set(back.nodes) == set(graph.nodes) and sorted(back.edges) == sorted(graph.edges)
    for key in ("layer0.fc", "layer1.fc"):
        np.testing.assert_array_equal(back.nodes[key].weight, graph.nodes[key].weight)
    np.testing.assert_array_equal(back.nodes["layer0.rec"].nodes["w_rec"].weight, w_rec)
    for field in ("tau_mem", "tau_syn", "r", "w_in", "v_threshold", "v_reset", "v_leak"):
        np.testing.assert_array_equal(
            getattr(back.nodes["layer1.lif"], field), getattr(graph.nodes["layer1.lif"], field)
        )


@pytest.mark.parametrize("backend", ["snntorch", "norse"])
def test_backend_does_not_change_the_export(backend):
    pytest.importorskip(backend)
    native = ne.to_nir(build_layer("native"))
    other = ne.to_nir(build_layer(backend))
    for key in ("layer0.fc",):
        np.testing.assert_array_equal(native.nodes[key].weight, other.nodes[key].weight)
    a, b = native.nodes["layer0.rec"], other.nodes["layer0.rec"]
    np.testing.assert_array_equal(a.nodes["w_rec"].weight, b.nodes["w_rec"].weight)
    np.testing.assert_array_equal(a.nodes["lif"].tau_mem, b.nodes["lif"].tau_mem)


# -- re-import by the simulators ----------------------------------------------------------------------------
def _scml_classifier(seed: int = 0):
    torch.manual_seed(seed)
    model = SCMLClassifier(12, 32, 5, topology=MIXED_TOPOLOGY, input_gain=2.0, readout="count")
    with torch.no_grad():
        model.hidden.intra_weight.uniform_(0.0, 0.6)
        model.output.fc.weight.mul_(2.0)
    return model


@needs_norse
@pytest.mark.parametrize("subgraphs", [True, False])
def test_norse_reimport_matches_spikes(tmp_path, subgraphs):
    model = _scml_classifier()
    x = drive()
    with torch.no_grad():
        hidden, _ = model.hidden.run(x * model.input_gain)
        expected = model(x)
    assert hidden.mean() > 0.05 and expected.mean() > 0.02
    ne.export_nir(model, tmp_path / "m.nir", recurrent_subgraphs=subgraphs)
    out = ne.run_imported(ne.import_norse(tmp_path / "m.nir"), x)
    assert torch.equal(out, expected)
    # the hidden SC-ML layer alone, its spikes in batch-first layout
    ne.export_nir(model.hidden, tmp_path / "h.nir", dt=1e-3, recurrent_subgraphs=subgraphs)
    xb = (x * model.input_gain).transpose(0, 1)
    out = ne.run_imported(ne.import_norse(tmp_path / "h.nir"), xb, batch_first=True)
    assert torch.equal(out, hidden.transpose(0, 1))


@needs_snntorch
def test_snntorch_reimport_matches_spikes(tmp_path):
    model = _scml_classifier(seed=1)
    x = drive()
    with torch.no_grad():
        expected = model(x)
    assert expected.mean() > 0.02
    ne.export_nir(model, tmp_path / "m.nir")
    imported = ne.import_snntorch(tmp_path / "m.nir")
    assert torch.equal(ne.run_imported(imported, x), expected)
    # a second sequence starts from a fresh state (init_hidden neurons are reset per module)
    assert torch.equal(ne.run_imported(imported, x), expected)


@needs_snntorch
@pytest.mark.parametrize("variant", ["Sr-SNN", "SrSc-SNN", "SrSc-BIP", "FF-SNN"])
def test_snntorch_reimport_of_scsr(variant):
    model = _lively_scsr(variant)
    x = drive(features=10, steps=80)
    with torch.no_grad():
        expected = model(x)
    assert expected.mean() > 0.02
    out = ne.run_imported(ne.import_snntorch(ne.to_nir(model)), x)
    assert torch.equal(out, expected)


@needs_norse
def test_norse_reimport_of_sr_snn_without_skips():
    model = _lively_scsr("Sr-SNN")
    x = drive(features=10, steps=80)
    with torch.no_grad():
        expected = model(x)
    assert torch.equal(ne.run_imported(ne.import_norse(ne.to_nir(model)), x), expected)


# -- refusals and bad input ----------------------------------------------------------------------------------
@needs_norse
def test_norse_refuses_skip_connections():
    with pytest.raises(ValueError, match="skip connections.*import_snntorch"):
        ne.import_norse(ne.to_nir(_lively_scsr("SrSc-SNN")))


@needs_snntorch
def test_snntorch_refuses_flat_recurrence_and_other_dt():
    layer = build_layer()
    with pytest.raises(ValueError, match="routes the input of a flat recurrent edge through W_rec"):
        ne.import_snntorch(ne.to_nir(layer, recurrent_subgraphs=False))
    with pytest.raises(ValueError, match=r"dt = 0.0001 s .* re-export"):
        ne.import_snntorch(ne.to_nir(layer, dt=1e-3))


@needs_snntorch
def test_snntorch_importer_really_miswires_flat_recurrence():
    """What the refusal protects against: snnTorch 1.0's importer on a flat cycle computes other spikes."""
    import contextlib
    import copy
    import io

    from snntorch.import_nir import import_from_nir

    model = _scml_classifier()
    x = drive()
    with torch.no_grad():
        expected = model(x)
    graph = ne.to_nir(model, recurrent_subgraphs=False)
    with contextlib.redirect_stdout(io.StringIO()):
        imported = import_from_nir(copy.deepcopy(graph))
    same = torch.equal(ne.run_imported(imported, x), expected)
    if snntorch_version() > (1, 0):  # a later snnTorch may fix its importer: then the refusal can go
        if same:
            pytest.skip("this snnTorch wires flat recurrent edges correctly; drop import_snntorch's refusal")
    else:
        assert not same, "snnTorch 1.0's importer was expected to miswire a flat recurrent edge"


def snntorch_version() -> tuple[int, int]:
    import snntorch

    major, minor = snntorch.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def test_bad_inputs(tmp_path):
    layer = build_layer()
    with pytest.raises(TypeError, match="to_nir supports SCML"):
        ne.to_nir(torch.nn.Linear(3, 4))
    for dt in (0.0, -1e-4, float("nan")):
        with pytest.raises(ValueError, match="dt must be finite and > 0"):
            ne.to_nir(layer, dt=dt)
    with torch.no_grad():
        broken = build_layer()
        broken.fc.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"layer0.fc weight contains NaN/Inf"):
        ne.to_nir(broken)
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        ne.read_nir(tmp_path / "missing.nir")
    corrupt = tmp_path / "corrupt.nir"
    corrupt.write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(ValueError, match="not a readable NIR"):
        ne.read_nir(corrupt)
    no_dt = ne.to_nir(layer)
    no_dt.metadata = {}
    with pytest.raises(ValueError, match="does not record its time step"):
        graph_dt(no_dt, None)
    with pytest.raises(ValueError, match="3-d tensor"):
        ne.run_imported(torch.nn.Identity(), torch.zeros(4, 3))


def test_sequential_and_feed_forward_layers_export():
    torch.manual_seed(0)
    net = torch.nn.Sequential(SCML(6, 8, 4), SpikingLinear(8, 3, bias=True))
    with torch.no_grad():
        net[1].fc.bias.uniform_(0.0, 0.5)
    graph = ne.to_nir(net)
    assert list(graph.nodes) == ["input", "layer0.fc", "layer0.rec", "layer1.fc", "layer1.lif", "output"]
    assert isinstance(graph.nodes["layer1.fc"], nir.Affine)  # a bias makes the input node affine
    x = drive(features=6, dtype=torch.float32) * 3
    with torch.no_grad():
        expected = net[1].run(net[0].run(x)[0])[0]
    assert expected.mean() > 0.02
    out, _ = simulate_nir(graph, x.double().numpy(), ne.DEFAULT_DT)
    np.testing.assert_array_equal(out, expected.numpy())


def test_missing_nir_names_the_extra(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args):
        if name == "nir":
            raise ImportError("No module named 'nir'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(MissingDependencyError, match=r"pip install 'snn-motifs\[nir\]'"):
        ne.to_nir(build_layer())


# -- the membrane readout (LI): the default SCMLClassifier, re-imported with the simulators' own modules ----
#: Both importers compute in float32 (snnTorch builds float32 tensors and its spikes are float32; Norse keeps
#: float32 parameters in NamedTuples), and they sum and scale in another order than leaky_integrate: the
#: membranes agree to a few float32 ulps (measured <= 4e-7 for |membrane| ~ 1), stated here with margin.
MEMBRANE_TOL = dict(rtol=1e-5, atol=1e-5)


def _record_spikes(module: torch.nn.Module, kind: str) -> list[torch.Tensor]:
    """Forward hooks on the imported network's spiking modules of class ``kind``: each step's spikes."""
    steps: list[torch.Tensor] = []
    found = [m for m in module.modules() if type(m).__name__ == kind]
    assert len(found) == 1, f"expected one {kind} in the imported network, found {len(found)}"
    found[0].register_forward_hook(
        lambda m, args, out: steps.append(out[0] if isinstance(out, tuple) else out)
    )
    return steps


#: (importer, the class of its hidden recurrent layer's neuron, the module our LI becomes)
_IMPORTERS = [
    pytest.param("snntorch", "Synaptic", "SnnTorchLI", marks=needs_snntorch, id="snntorch"),
    pytest.param("norse", "CubaLIF", "NorseLI", marks=needs_norse, id="norse"),
]


_AVAILABLE = [
    (name, spiking, li)
    for name, spiking, li, ok in (
        ("snntorch", "Synaptic", "SnnTorchLI", HAS_SNNTORCH),
        ("norse", "CubaLIF", "NorseLI", HAS_NORSE),
    )
    if ok
]


def _import(importer: str, path):
    return ne.import_snntorch(path) if importer == "snntorch" else ne.import_norse(path)


def _check_reimport(model, path, x: torch.Tensor, importer: str, spiking: str, li: str) -> float:
    """Re-import ``path`` (the export of ``model``) and compare with ``model`` on ``x`` [T, B, F]: hidden
    spikes identical, output membranes within :data:`MEMBRANE_TOL`, predictions (the model's readout rule,
    read from the graph's metadata) identical. Returns the largest membrane difference."""
    from snn_motifs.training import LossConfig, make_predict

    with torch.no_grad():
        hidden, _ = model.hidden.run(x * model.input_gain)
        expected = model(x)
    assert hidden.mean() > 0.02, "the comparison needs a hidden layer that spikes"
    imported = _import(importer, path)
    assert any(type(m).__name__ == li for m in imported.modules())
    steps = _record_spikes(imported, spiking)
    for _ in range(2):  # a second sequence starts from a fresh state
        steps.clear()
        membranes = ne.run_imported(imported, x)
        assert torch.equal(torch.stack(steps), hidden)
        assert membranes.shape == expected.shape and membranes.dtype == torch.float32
        torch.testing.assert_close(membranes, expected, **MEMBRANE_TOL)
    graph = ne.read_nir(path)
    assert graph.metadata["readout"] == model.readout
    predict = make_predict(LossConfig(readout=graph.metadata["readout"]))
    assert torch.equal(predict(membranes), predict(expected))
    return float((membranes - expected).abs().max())


@pytest.mark.parametrize("importer, spiking, li", _IMPORTERS)
@pytest.mark.parametrize("readout, tau", [("mean", 16.0), ("max", 5.0), ("last", 7.3)])
def test_default_classifier_with_membrane_readout_reimports(tmp_path, importer, spiking, li, readout, tau):
    from snn_motifs.neuron import NeuronParameters

    torch.manual_seed(0)
    model = SCMLClassifier(
        12,
        32,
        5,
        topology=MIXED_TOPOLOGY,
        input_gain=3.0,
        readout=readout,
        neuron=NeuronParameters(tau_mem=tau),
    )
    with torch.no_grad():
        model.hidden.intra_weight.uniform_(0.0, 0.6)
        model.output.fc.bias.uniform_(-0.2, 0.2)
    graph = ne.export_nir(model, tmp_path / "m.nir")
    assert type(graph.nodes["layer1.li"]).__name__ == "LI" and ("layer1.li", "output") in graph.edges
    _check_reimport(model, tmp_path / "m.nir", drive(steps=60, batch=6), importer, spiking, li)


@pytest.mark.slow
def test_cli_export_of_a_search_run_reimports(tmp_path, capsys):
    """The main job's flow in small: a search (one epoch per phase) with the default readout "mean" and with
    "max", ``snn-motifs export-nir --run <seed folder>``, re-import, the same hidden spikes, membranes and
    predictions on its test set, in snnTorch and in Norse."""
    import warnings

    from snn_motifs import cli, search
    from snn_motifs.datasets import SplitData

    def data(n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 3, (n,), generator=g)
        base = torch.linspace(0.05, 0.6, 8)
        rates = torch.stack([base, base.flip(0), base.roll(4)])[y][:, None, :]
        return (torch.rand(n, 20, 8, generator=g) < rates).float(), y

    split = SplitData(*data(120, 0), *data(40, 1), 3)
    for loss in ("mean", "max"):
        cfg = search.HRMASConfig(
            hidden=16, motif_sizes=[2, 4], epochs_size=1, epochs_types=1, epochs_retrain=1, batch_size=20,
            tau_mem=5.0, tau_syn=2.0, tau_cal=4.0, loss=loss,
        )  # fmt: skip
        out = tmp_path / loss
        with warnings.catch_warnings():  # one epoch per phase: "the search did not decide"
            warnings.simplefilter("ignore", RuntimeWarning)
            search.run(cfg, out, data=split, baseline=False, plots=False, progress=False, log=lambda s: None)
        target = tmp_path / f"{loss}.nir"
        assert cli.main(["export-nir", "--run", str(out / "seed0"), "--out", str(target)]) == 0
        assert "wrote" in capsys.readouterr().out
        model, _, _ = search.load_trained(out / "seed0")
        assert model.readout == loss
        if not _AVAILABLE:
            pytest.skip("neither snnTorch nor Norse is installed")
        for importer, spiking, li in _AVAILABLE:
            _check_reimport(model, target, split.x_test.transpose(0, 1), importer, spiking, li)


@pytest.mark.parametrize(
    "importer, variant, readout",
    [
        pytest.param("snntorch", "SrSc-BIP", "max", marks=needs_snntorch),  # a skip also feeds the LI
        pytest.param("norse", "Sr-SNN", "last", marks=needs_norse),  # Norse refuses skips
    ],
)
def test_scsr_with_membrane_readout_reimports(importer, variant, readout):
    from snn_motifs.training import LossConfig, make_predict

    torch.manual_seed(0)
    model = build_scsr(variant, 10, (16, 16, 16), 5, spike_fn="atan", input_gain=4.0, readout=readout)
    with torch.no_grad():
        for layer in model.layers:
            layer.fc.weight.mul_(2.0)
        for skip in model.skips.values():
            skip.weight.mul_(2.0)
    x = drive(features=10, steps=80)
    with torch.no_grad():
        expected = model(x)
    graph = ne.to_nir(model)
    assert type(graph.nodes["layer3.li"]).__name__ == "LI" and graph.metadata["readout"] == readout
    membranes = ne.run_imported(_import(importer, graph), x)
    torch.testing.assert_close(membranes, expected, **MEMBRANE_TOL)
    predict = make_predict(LossConfig(readout=readout))
    assert torch.equal(predict(membranes), predict(expected))


@pytest.mark.parametrize(
    "importer", [pytest.param("snntorch", marks=needs_snntorch), pytest.param("norse", marks=needs_norse)]
)
def test_li_modules_are_the_euler_step_of_nir_li(importer):
    """The LI mapping alone: per-neuron tau (1 step included), r != 1 and, for Norse, v_leak, against
    NIR's forward-Euler LI; with r = 1, v_leak = 0 against our leaky_integrate."""
    from snn_motifs.readout import leaky_integrate

    dt = 1e-4
    taus = np.array([1.0, 2.5, 5.0, 16.0, 37.3])
    r = np.array([1.0, 0.5, 2.0, 1.0, 3.0])
    v_leak = np.zeros(5) if importer == "snntorch" else np.array([0.0, 0.1, -0.2, 0.0, 0.3])
    node = nir.LI(tau=taus * dt, r=r, v_leak=v_leak)
    if importer == "snntorch":
        from snn_motifs.adapters.snntorch_interop import SnnTorchLI

        module = SnnTorchLI.from_nir(node, dt)
        with pytest.raises(ValueError, match="no leak potential"):
            SnnTorchLI.from_nir(nir.LI(tau=taus * dt, r=r, v_leak=np.full(5, 0.1)), dt)
    else:
        from snn_motifs.adapters.norse_interop import NorseLI

        module = NorseLI.from_nir(node, dt)
    current = torch.randn(50, 3, 5, generator=torch.Generator().manual_seed(0))

    def run(module) -> torch.Tensor:  # snnTorch's modules keep their state (init_hidden), Norse's return it
        if importer == "snntorch":
            module.reset_mem()
            return torch.stack([module(c) for c in current])
        return ne.run_imported(module, current)

    got = run(module)
    v, want = np.broadcast_to(v_leak, (3, 5)).copy(), []  # Norse starts at v_leak; snnTorch at 0 = v_leak
    for c in current.double().numpy():
        v = v + dt / node.tau * (node.v_leak - v + node.r * c)
        want.append(v)
    torch.testing.assert_close(got, torch.as_tensor(np.stack(want), dtype=torch.float32), **MEMBRANE_TOL)
    # r = 1, v_leak = 0 (what to_nir writes): our readout's integration, column by column
    plain = nir.LI(tau=taus * dt, r=np.ones(5), v_leak=np.zeros(5))
    got = run((SnnTorchLI if importer == "snntorch" else NorseLI).from_nir(plain, dt))
    for i, tau in enumerate(taus):
        torch.testing.assert_close(got[..., i], leaky_integrate(current[..., i], float(tau)), **MEMBRANE_TOL)
