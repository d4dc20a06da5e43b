"""One HRMAS run (``search/runner.py``, ``HRMASRun``) on a search of a few seconds: every ablation, resume
after an interrupt equals the uninterrupted run, corrupt or mismatched checkpoints are refused, and no load
path runs a pickle's code."""

from __future__ import annotations

import json

import pytest
import torch

from snn_motifs.search import Genotype, HRMASConfig, HRMASRun, Interrupted
from snn_motifs.topology import MotifTopology

from .conftest import tiny_search


@pytest.mark.parametrize(
    "over",
    [{}, {"search": "random"}, {"ip": False}, {"motifs": False}, {"lateral": False}, {"second_order": True}],
    ids=["hrmas", "random", "no-ip", "no-motif", "no-lateral", "second-order"],
)
def test_every_ablation_runs_a_tiny_search(tmp_path, over):
    cfg, data = tiny_search(**over)
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
    cfg, data = tiny_search()
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
    cfg, data = tiny_search()
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


class _Payload:
    """A pickle that runs code when unpickled: it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payloads_are_refused_not_run(tmp_path, capsys):
    """Every load path (search resume, evaluate/export of a trained model, plots) uses weights_only=True."""
    from snn_motifs import cli
    from snn_motifs.search import figures

    marker = tmp_path / "pwned"
    cfg, data = tiny_search()
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
        figures.plot_run(tmp_path)
    assert not marker.exists()
