"""HRMAS (snn_motifs.search): the mixed-op search space, the second-order architecture gradient,
discretisation, genotype JSON, checkpoints/resume, the ablations, ``search.run`` and the CLI."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch

from snn_motifs.datasets import SplitData
from snn_motifs.search import (
    Genotype,
    HRMASConfig,
    HRMASRun,
    Interrupted,
    MixedMotifLayer,
    arch_parameters,
    dense_rsnn,
    search_network,
    second_order_arch_grad,
    weight_parameters,
)
from snn_motifs.topology import ConnectionType, MotifTopology

from .conftest import tiny_search


def _naive_mixed(layer: MixedMotifLayer) -> torch.Tensor:
    """Eq 15 edge by edge: ``w^exc = |w|``, ``w^inh = -|w|`` (or the fixed weight), ``w^none = 0``."""
    inh = layer.inhibitory_weight

    def mixed(p, w):
        return p[1] * w + p[2] * (-w if inh is None else inh)

    n = layer.n_neurons
    out = torch.zeros(n, n, dtype=torch.float64)
    pv = layer.size_probabilities()
    for j, v in enumerate(layer.options):
        pi = torch.softmax(layer.arch[f"intra_{v}"], -1)
        pl = torch.softmax(layer.arch[f"lateral_{v}"], -1) if layer.lateral else None
        for i in range(n):
            k, p = divmod(i, v)
            for q in range(v):
                w = layer.weights_intra[j][k, p, q].abs()
                out[i, k * v + q] += pv[j] * mixed(pi[p, q], w)
            if pl is None:
                continue
            for row, r in ((0, i - v), (1, i + v)):
                if 0 <= r < n:
                    w = layer.weights_lateral[j][row, k, p].abs()
                    out[i, r] += pv[j] * mixed(pl[row, p], w)
    return out


@pytest.mark.parametrize(
    "options,n,lateral,inh",
    [
        ([2, 4, 8], 16, True, None),
        ([2, 4, 8], 16, True, -2.0),
        ([5, 10, 16, 25, 40], 400, True, None),
        ([2, 3], 12, True, None),
        ([2, 4], 8, False, -2.0),
    ],
)
def test_mixed_matrix_equals_naive_per_option_sum(options, n, lateral, inh):
    torch.manual_seed(0)
    layer = MixedMotifLayer(3, n, options, lateral=lateral, inhibitory_weight=inh).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    if n <= 40:
        torch.testing.assert_close(layer.recurrent_matrix(), _naive_mixed(layer), rtol=0, atol=1e-12)
    else:  # spot-check a large one on a few rows
        full = layer.recurrent_matrix()
        assert full.shape == (n, n) and torch.isfinite(full).all()
    intra, lat = layer.recurrent_weights()
    assert intra.numel() + lat.numel() == 3 * n * max(options)  # O(N max v), not O(N^2)


def test_mixed_layer_runs_fused_and_gradients_reach_alpha():
    torch.manual_seed(0)
    layer = MixedMotifLayer(4, 16, [2, 4, 8], spike_fn="tssl").double()
    x = (torch.rand(30, 3, 4, dtype=torch.float64) < 0.5).double() * 2
    s_fused, _ = layer.run(x)
    s_fused.sum().backward()
    g_fused = [p.grad.clone() for p in layer.arch_parameters()]
    layer.zero_grad()
    layer.fused = False
    s_step, _ = layer.run(x)
    s_step.sum().backward()
    assert torch.equal(s_fused, s_step)
    for a, b in zip(g_fused, [p.grad for p in layer.arch_parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    assert any(g.abs().sum() > 0 for g in g_fused)
    arch_ids = {id(p) for p in layer.arch_parameters()}
    assert all(id(p) not in arch_ids for p in layer.weight_parameters())
    assert len(layer.arch_parameters()) + len(layer.weight_parameters()) == len(list(layer.parameters()))


def test_mixed_op_starts_balanced_and_fan_in_scaled():
    """At a neutral alpha every mixed edge is exactly 0 (excitatory and inhibitory share |w|), so the
    searched layer fires at the rate its input sets; the paper's fixed -2 makes every edge negative."""
    layer = MixedMotifLayer(3, 32, [2, 4, 8, 16, 32])
    assert torch.count_nonzero(layer.recurrent_matrix()) == 0
    # v = 2: 2 intra + 2 lateral edges share 0.2
    assert float(layer.weights_intra[0][0, 0, 0].detach()) == pytest.approx(0.2 / 4)
    with torch.no_grad():
        layer.arch["intra_2"][..., 1] += 1.0  # tilt v = 2 towards excitatory
    assert (layer.recurrent_matrix() >= 0).all() and layer.recurrent_matrix().sum() > 0
    paper = MixedMotifLayer(3, 32, [2, 4, 8, 16, 32], inhibitory_weight=-2.0, weight_init=0.2)
    assert (paper.recurrent_matrix() < 0).sum() > 0 and paper.recurrent_matrix().max() < 0.2


def test_fix_motif_size_and_discretise():
    layer = MixedMotifLayer(3, 16, [2, 4, 8])
    with torch.no_grad():
        layer.arch["size"].copy_(torch.tensor([0.0, 3.0, 1.0]))
        logits = torch.zeros(4, 4, 3)
        logits[..., 1] = 1.0  # excitatory everywhere ...
        logits[0, 1] = torch.tensor([0.0, 0.0, 5.0])  # ... but 1 -> 0 inhibitory
        logits[2, 3] = torch.tensor([5.0, 0.0, 0.0])  # ... and 3 -> 2 removed
        layer.arch["intra_4"].copy_(logits)
        layer.arch["lateral_4"][..., 1] = 1.0
        layer.arch["intra_8"][..., 1] = 1.0  # option 8 would connect 0 <- 5 if it still counted
    assert layer.fix_motif_size() == 4
    assert layer.size_probabilities().tolist() == [0.0, 1.0, 0.0]
    topo = layer.genotype_topology()
    assert topo.motif_size == 4
    assert topo.intra[0, 1] == ConnectionType.INHIBITORY and topo.intra[2, 3] == ConnectionType.NONE
    assert int((topo.intra == ConnectionType.EXCITATORY).sum()) == 14
    # with the size fixed only option 4 contributes to the mixed matrix
    dense = layer.recurrent_matrix()
    assert dense[0, 5] == 0 and dense[0, 4] != 0  # lateral edge of v=4 exists, v=8's does not


def test_bad_options_and_configs():
    with pytest.raises(ValueError, match="option 3 is invalid for N=16.*does not divide"):
        MixedMotifLayer(3, 16, [2, 3])
    with pytest.raises(ValueError, match="motif_sizes is empty"):
        MixedMotifLayer(3, 16, [])
    with pytest.raises(ValueError, match="lr must be a positive"):
        HRMASConfig(lr=0.0)
    with pytest.raises(ValueError, match="arch_lr must be a positive"):
        HRMASConfig(arch_lr=-1e-3)
    with pytest.raises(ValueError, match="motif_sizes is empty"):
        HRMASConfig(motif_sizes=[])
    with pytest.raises(ValueError, match="unknown config keys"):
        HRMASConfig.from_dict({"hiden": 3})


def test_genotype_json_round_trip_and_errors(tmp_path):
    topo = MotifTopology.random(4, torch.Generator().manual_seed(0))
    g = Genotype(topo, 32)
    path = tmp_path / "g.json"
    g.to_json(path)
    again = Genotype.from_json(path)
    assert again.topology == topo and again.n_neurons == 32
    assert Genotype.from_json(g.to_json()).topology == topo
    bad_shape = {"n_neurons": 8, "motif_size": 2, "intra": ["eee", "ee"], "lateral": ["ee", "ee"]}
    with pytest.raises(ValueError, match="shape"):
        Genotype.from_dict(bad_shape)
    with pytest.raises(ValueError, match="unknown connection type 'q'"):
        Genotype.from_dict({"n_neurons": 8, "motif_size": 2, "intra": ["eq", "ee"], "lateral": ["ee", "ee"]})
    with pytest.raises(ValueError, match="not a multiple"):
        Genotype.from_dict({"n_neurons": 7, "motif_size": 2, "intra": ["ee", "ee"], "lateral": ["ee", "ee"]})
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Genotype.from_json(tmp_path / "broken.json")


def test_second_order_gradient_matches_finite_differences():
    """On a smooth tiny model the DARTS approximation (eqs 12-14) must match the finite-difference
    gradient of the unrolled objective L_valid(w - eta grad_w L_train(w, alpha), alpha)."""
    torch.manual_seed(0)
    xt, yt = torch.randn(12, 3, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
    xv, yv = torch.randn(12, 3, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
    w = [
        torch.randn(3, dtype=torch.float64, requires_grad=True),
        torch.randn(3, dtype=torch.float64, requires_grad=True),
    ]
    alpha = [torch.randn(2, dtype=torch.float64, requires_grad=True)]

    def model(x, w_, a_):
        p = torch.softmax(a_[0], 0)  # a mixed op of two candidate operations
        return p[0] * torch.tanh(x @ w_[0]) + p[1] * (x @ w_[1])

    def loss(x, y, w_, a_):
        return ((model(x, w_, a_) - y) ** 2).mean()

    eta = 0.05
    got = second_order_arch_grad(
        w, alpha, lambda: loss(xt, yt, w, alpha), lambda: loss(xv, yv, w, alpha), eta, eps_scale=1e-4
    )

    def unrolled(a_value):
        a_ = [a_value]
        w_ = [p.detach().clone().requires_grad_() for p in w]
        gs = torch.autograd.grad(loss(xt, yt, w_, a_), w_)
        return loss(xv, yv, [p - eta * g for p, g in zip(w_, gs, strict=True)], a_).item()

    fd = torch.zeros(2, dtype=torch.float64)
    for k in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[k] = 1e-6
        fd[k] = (unrolled(alpha[0].detach() + e) - unrolled(alpha[0].detach() - e)) / 2e-6
    torch.testing.assert_close(got[0], fd, rtol=1e-5, atol=1e-7)
    # and it differs from the first-order gradient (the correction term matters here)
    first = torch.autograd.grad(loss(xv, yv, w, alpha), alpha)[0]
    assert (first - fd).abs().max() > 1e-4


def _tiny(tmp_path, **over) -> tuple[HRMASConfig, SplitData]:
    return tiny_search(**over)


@pytest.mark.parametrize(
    "over",
    [{}, {"search": "random"}, {"ip": False}, {"motifs": False}, {"lateral": False}, {"second_order": True}],
    ids=["hrmas", "random", "no-ip", "no-motif", "no-lateral", "second-order"],
)
def test_every_ablation_runs_a_tiny_search(tmp_path, over):
    cfg, data = _tiny(tmp_path, **over)
    result = HRMASRun(cfg, data, tmp_path / "run", progress=False, log=lambda s: None).run()
    assert result["test_acc"] >= 0.8  # two classes; seeds 0-2 give 0.84-1.0 for every ablation
    genotype = Genotype.from_json(tmp_path / "run" / "genotype.json")
    if over.get("motifs") is False:
        assert genotype.topology.motif_size == 8  # the full N x N matrix
    else:
        assert genotype.topology.motif_size in (2, 4)
    if over.get("lateral") is False or over.get("motifs") is False:
        assert not genotype.topology.has_lateral
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["phase"] for h in history] == ["search_size"] * 2 + ["search_types"] + ["retrain"] * 3
    retrain = [h for h in history if h["phase"] == "retrain"]
    assert all(0 <= r["rates"]["hidden"] <= 1 and r["grad_norm"] > 0 for r in retrain)  # per epoch
    if over.get("search") != "random":
        assert "hidden" in history[0]["rates"]  # ... and of the search network's mixed layer
        searched = [h for h in history if h["phase"] != "retrain"]
        assert all(h["alpha_grad_norm"] > 0 and 1 / 3 <= h["type_prob"] <= 1 for h in searched)
        assert "decisive" in result["decision"]


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    cfg, data = _tiny(tmp_path)
    full = HRMASRun(cfg, data, tmp_path / "a", progress=False, log=lambda s: None)
    expect = full.run()

    run = HRMASRun(cfg, data, tmp_path / "b", progress=False, log=lambda s: None)
    calls = {"n": 0}
    original = HRMASRun._epoch

    def flaky(self, phase):
        calls["n"] += 1
        if calls["n"] == 3:  # Ctrl-C before the third epoch (the phase-2 search epoch) does any work
            raise KeyboardInterrupt
        return original(self, phase)

    monkeypatch.setattr(HRMASRun, "_epoch", flaky)
    with pytest.raises(Interrupted, match="resume"):
        run.run()
    monkeypatch.setattr(HRMASRun, "_epoch", original)
    assert (tmp_path / "b" / "checkpoint.pt").exists()
    resumed = HRMASRun(cfg, data, tmp_path / "b", progress=False, log=lambda s: None).run(resume=True)
    assert resumed == expect
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["final_model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["final_model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    cfg, data = _tiny(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ValueError, match="corrupt, truncated"):
        HRMASRun(cfg, data, out, progress=False).run(resume=True)
    HRMASRun(cfg, data, tmp_path / "ok", progress=False, log=lambda s: None).run()
    other = HRMASConfig(**{**cfg.__dict__, "lr": 0.02})
    with pytest.raises(ValueError, match=r"different config or data \(differs in \[.lr.\]\)"):
        HRMASRun(other, data, tmp_path / "ok", progress=False).run(resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        HRMASRun(cfg, data, tmp_path / "nothing", progress=False).run(resume=True)


def test_dense_baseline_is_fully_connected():
    cfg = HRMASConfig(hidden=12)
    model = dense_rsnn(5, 12, 3, cfg)
    matrix = model.hidden.recurrent_matrix()
    assert (matrix != 0).all() and matrix.std() < 1.0 and math.isclose(float(matrix.mean()), 0.0, abs_tol=0.2)


def test_search_network_parameter_split():
    net = search_network(HRMASConfig(hidden=8, motif_sizes=[2, 4]), 5, 3)
    arch = arch_parameters(net, trainable=True)
    assert len(arch) == 1 + 2 * 2 and all(p.requires_grad for p in arch)
    weights = weight_parameters(net)
    assert {id(p) for p in arch}.isdisjoint({id(p) for p in weights})
    assert len(arch) + len(weights) == len(list(net.parameters()))
    net.hidden.fix_motif_size(4)  # phase 2: the size logits leave the trainable set
    assert len(arch_parameters(net, trainable=True)) == 4 and len(arch_parameters(net)) == 5


def test_cli_default_search_and_guards(tmp_path, capsys):
    pytest.importorskip("mnist1d")
    from snn_motifs import cli

    out = tmp_path / "run"
    quick = [
        "--out",
        str(out),
        "--hidden",
        "32",
        "--epochs-size",
        "1",
        "--epochs-types",
        "1",
        "--epochs-retrain",
        "1",
        "--quiet",
        "--max-train",
        "300",
    ]
    with pytest.warns(RuntimeWarning, match="the search did not decide"):  # one search epoch per phase
        code = cli.main(["search", *quick, "--compare-ip"])
    captured = capsys.readouterr()
    text = captured.out
    assert code == 0, captured.err
    assert "found genotype" in text and "dense-recurrent baseline" in text
    summary = json.loads((out / "summary.json").read_text())
    result = json.loads((out / "seed0" / "result.json").read_text())
    assert summary["runs"] == [result] and summary["mean"] == summary["best"] == result["test_acc"]
    assert result["decision"]["decisive"] is False and "did not decide" in result["decision"]["message"]
    assert summary["config"]["hidden"] == 32 and summary["dense_baseline"]["seconds"] > 0
    assert (out / "seed0" / "motif.png").exists() and (out / "seed0" / "weights.png").exists()
    assert (out / "seed0" / "alpha.png").exists() and (out / "validation.png").exists()
    assert (out / "seed0" / "raster.png").exists()
    if importlib.util.find_spec("tensorboard") is not None:  # the CLI run leaves readable event files
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(out / "seed0" / "tensorboard"))
        events.Reload()
        assert events.Scalars("result/test_acc")[0].value == pytest.approx(result["test_acc"])
    assert (out / "no_ip" / "seed0" / "history.json").exists() and "without IP" in text
    assert cli.main(["search", "--out", str(out), "--hidden", "32"]) == 2
    assert "exists; pass --resume" in capsys.readouterr().err
    assert cli.main(["search", *quick, "--resume", "--no-plots"]) == 0
    trained = tmp_path / "trained"
    genotype = out / "seed0" / "genotype.json"
    assert (
        cli.main(["train", "--genotype", str(genotype), "--out", str(trained), "--epochs-retrain", "1"]) == 0
    )
    capsys.readouterr()
    # through a torch DataLoader: worker processes do not change the run
    loaded = {}
    for workers in ("0", "2"):
        folder = tmp_path / f"loader{workers}"
        args = ["train", "--genotype", str(genotype), "--out", str(folder), "--epochs-retrain", "1"]
        assert cli.main([*args, "--workers", workers]) == 0
        loaded[workers] = torch.load(folder / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(loaded["0"][k], loaded["2"][k]) for k in loaded["0"])
    capsys.readouterr()
    assert cli.main(["evaluate", "--run", str(trained)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_acc"] == json.loads((trained / "result.json").read_text())["test_acc"]
    # a search output evaluates (and exports) its retrained network from seedN/checkpoint.pt
    assert cli.main(["evaluate", "--run", str(out)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_acc"] == json.loads((out / "seed0" / "result.json").read_text())["test_acc"]
    (tmp_path / "empty").mkdir()
    assert cli.main(["evaluate", "--run", str(tmp_path / "empty")]) == 2
    assert "has no model.pt or checkpoint.pt" in capsys.readouterr().err
    _check_cli_export_nir(tmp_path, out / "seed0", trained, capsys)
    assert cli.main(["search", "--config", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "no config 'nope'" in capsys.readouterr().err


def _check_cli_export_nir(tmp_path, seed_dir, trained, capsys):
    """`snn-motifs export-nir` writes the trained classifier (SC-ML + leaky-integrator readout as LI);
    Norse's importer reproduces the SC-ML layer's spikes and the readout's membranes (float32 rounding)."""
    from snn_motifs import cli, search
    from snn_motifs.nir_export import import_norse, read_nir, run_imported, to_nir

    for run in (seed_dir, trained):
        target = tmp_path / f"{run.name}.nir"
        assert cli.main(["export-nir", "--run", str(run), "--out", str(target)]) == 0
        assert "wrote" in capsys.readouterr().out and target.is_file()
        assert type(read_nir(target).nodes["layer1.li"]).__name__ == "LI"
        model, _, cfg = search.load_trained(run)
        data = search.load_data(cfg)
        xs = data.x_test[:8].transpose(0, 1)  # [T, B, F]
        x = xs * model.input_gain
        with torch.no_grad():
            expected, _ = model.hidden.run(x)
            whole = model(xs)
        assert torch.equal(run_imported(import_norse(to_nir(model.hidden)), x), expected)
        torch.testing.assert_close(run_imported(import_norse(target), xs), whole, rtol=1e-5, atol=1e-5)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert cli.main(["export-nir", "--run", str(bad), "--out", str(tmp_path / "bad.nir")]) == 2
    assert "corrupt, truncated" in capsys.readouterr().err


class _Payload:
    """A pickle that runs code when unpickled: it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payloads_are_refused_not_run(tmp_path, capsys):
    """Every load path (search resume, evaluate/export of a trained model, plots) uses weights_only=True."""
    from snn_motifs import cli, plots

    marker = tmp_path / "pwned"
    cfg, data = _tiny(tmp_path)
    run_dir = tmp_path / "seed0"  # a search seed folder, as plot_run looks for
    run_dir.mkdir()
    torch.save({"config": {}, "state": _Payload(marker)}, run_dir / "checkpoint.pt")
    with pytest.raises(ValueError, match="would run code when loaded, so it was refused"):
        HRMASRun(cfg, data, run_dir, progress=False).run(resume=True)
    trained = tmp_path / "trained"
    trained.mkdir()
    torch.save({"genotype": {}, "config": {}, "model": _Payload(marker)}, trained / "model.pt")
    for command in (
        ["evaluate", "--run", str(trained)],
        ["export-nir", "--run", str(trained), "--out", "x.nir"],
    ):
        assert cli.main(command) == 2
        assert "would run code" in capsys.readouterr().err
    genotype = Genotype(MotifTopology.random(2, torch.Generator().manual_seed(0)), 8)
    genotype.to_json(run_dir / "genotype.json")
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="would run code"):
        plots.plot_run(tmp_path)
    assert not marker.exists()


def test_motif_figure_is_a_graph_when_small_and_a_map_when_large(tmp_path):
    pytest.importorskip("matplotlib")
    from snn_motifs.plots import NODE_LINK_MAX, plot_motif, plot_raster

    g = torch.Generator().manual_seed(0)
    sizes = {}
    for v in (4, 32):
        path = plot_motif(MotifTopology.random(v, g), tmp_path / f"motif{v}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[v] = path.stat().st_size
    assert 4 <= NODE_LINK_MAX < 32
    raster = plot_raster((torch.rand(40, 16, generator=g) < 0.2).float(), tmp_path / "raster.png")
    assert raster.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files behind


def _strip_seconds(obj):
    if isinstance(obj, dict):
        return {k: _strip_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_strip_seconds(v) for v in obj]
    return obj


@pytest.mark.parametrize("phase,epoch,forward", [("search", 1, 4), ("retrain", 1, 2)])
def test_sigint_mid_epoch_then_resume_equals_uninterrupted(tmp_path, phase, epoch, forward):
    """A real SIGINT delivered to a CLI process in the middle of an epoch (weights, optimisers and RNG
    half updated), then --resume: the same genotype, history and test accuracy as without the interrupt."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("mnist1d")
    from snn_motifs import cli

    config = tmp_path / "tiny.json"
    config.write_text(
        json.dumps(
            {
                "hidden": 16,
                "motif_sizes": [2, 4, 8],
                "epochs_size": 2,
                "epochs_types": 1,
                "epochs_retrain": 3,
                "tau_mem": 4.0,
                "tau_syn": 2.0,
                "tau_cal": 4.0,
                "loss": "max",
                "spike_fn": "atan",
            }
        )  # fmt: skip
    )
    args = ["search", "--config", str(config), "--max-train", "200", "--quiet", "--no-plots", "--no-baseline"]
    assert cli.main([*args, "--out", str(tmp_path / "ref")]) == 0
    driver = Path(__file__).with_name("sigint_driver.py")
    out = tmp_path / "cut"
    cmd = [sys.executable, str(driver), phase, str(epoch), str(forward), "--", *args, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr
    assert "continue with --resume" in proc.stderr and not (out / "seed0" / "result.json").exists()
    assert cli.main([*args, "--out", str(out), "--resume"]) == 0
    for name in ("result.json", "history.json", "genotype.json"):
        ref = json.loads((tmp_path / "ref" / "seed0" / name).read_text())
        got = json.loads((out / "seed0" / name).read_text())
        assert _strip_seconds(got) == _strip_seconds(ref), name


def test_resume_refuses_changed_config_or_data_without_touching_disk(tmp_path):
    from snn_motifs import search

    cfg, data = _tiny(tmp_path)
    out = tmp_path / "exp"
    quiet = dict(data=data, baseline=False, plots=False, progress=False, log=lambda s: None)
    first = search.run(cfg, out, **quiet)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    changed = HRMASConfig(**{**cfg.__dict__, "hidden": 16, "lr": 0.02})
    with pytest.raises(ValueError, match=r"different config \(differs in \['hidden', 'lr'\]\)"):
        search.run(changed, out, resume=True, **quiet)
    other_data = data._replace(x_train=data.x_train[:100], y_train=data.y_train[:100])
    with pytest.raises(ValueError, match="different data"):
        search.run(cfg, out, resume=True, **{**quiet, "data": other_data})
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing written
    # a truncated artefact is named with the way out; deleting it rebuilds it from the checkpoint
    result = out / "seed0" / "result.json"
    result.write_text(result.read_text()[:20])
    (out / "seed0" / ".history.json.1234.tmp").write_text("{")  # a writer killed mid-write
    with pytest.raises(ValueError, match=r"result .*result\.json is corrupt.*delete it"):
        search.run(cfg, out, resume=True, **quiet)
    result.unlink()
    again = search.run(cfg, out, resume=True, **quiet)
    assert again["runs"] == first["runs"] and json.loads(result.read_text()) == first["runs"][0]
    assert not list(out.rglob(".*.tmp"))


def test_tensorboard_scalars_of_a_search_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg, data = _tiny(tmp_path)
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


def test_compile_key_reaches_every_network_and_old_run_folders_still_resume():
    from snn_motifs.search.config import config_diff
    from snn_motifs.search.retrain import build_classifier

    cfg = HRMASConfig(hidden=8, motif_sizes=[2, 4], compile=True)
    assert search_network(cfg, 3, 2).hidden.compile
    genotype = Genotype(MotifTopology.random(2, torch.Generator().manual_seed(0)), 8)
    assert build_classifier(genotype, cfg, 3, 2).hidden.compile
    assert not build_classifier(genotype, HRMASConfig(hidden=8), 3, 2).hidden.compile
    current = vars(HRMASConfig(hidden=8))
    written_before_the_key = {k: v for k, v in current.items() if k != "compile"}
    assert config_diff(written_before_the_key, current) == []
    assert config_diff(written_before_the_key, vars(cfg)) == ["compile", "motif_sizes"]
