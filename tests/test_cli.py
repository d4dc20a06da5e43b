"""The ``snn-motifs`` command line end to end (``cli.py``): search, train, evaluate and export-nir on
MNIST-1D, and a real SIGINT in the middle of an epoch followed by ``--resume``. Failures and their one-line
messages are in ``test_cli_errors.py``, the help texts in ``test_cli_help.py``."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from .conftest import strip_seconds

pytestmark = pytest.mark.slow


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
        assert strip_seconds(got) == strip_seconds(ref), name
