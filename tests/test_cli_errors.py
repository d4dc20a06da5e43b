"""Issue 23, items 7 and 8: every CLI failure is one line on stderr and a non-zero exit status, with nothing
half-written; configs and genotypes are typed strictly and their sizes checked against memory before
anything is allocated.

Each test names the failure it guards against and what used to happen. Helpers: :func:`_cli` runs the CLI
in this process and returns its exit status and stderr; :func:`_tiny` builds the smallest search.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from snn_motifs import cli
from snn_motifs.datasets import SplitData
from snn_motifs.search import Genotype, HRMASConfig, search_network
from snn_motifs.search import config as config_module
from snn_motifs.topology import MotifTopology


def _cli(capsys, *args: str) -> tuple[int, str]:
    """Run ``snn-motifs ARGS`` in this process; returns the exit status and what it wrote to stderr."""
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def _one_line(code: int, err: str, expected: int = 2) -> str:
    """Assert a failure reported as ``snn-motifs: ...`` in one line, no traceback; returns the line."""
    assert code == expected, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def _task(n: int, seed: int, steps: int = 15, channels: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of spike trains with opposite rate ramps over the channels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    ramp = torch.linspace(0.05, 0.6, channels)
    rates = torch.where(y[:, None, None] == 0, ramp, ramp.flip(0))
    return (torch.rand(n, steps, channels, generator=g) < rates).float(), y


def _tiny(**over) -> tuple[HRMASConfig, SplitData]:
    """A search of a few seconds: 8 neurons, 2 + 1 search epochs, 3 retraining epochs."""
    x, y = _task(200, 0)
    xt, yt = _task(100, 1)
    small = dict(hidden=8, motif_sizes=[2, 4], epochs_size=2, epochs_types=1, epochs_retrain=3, batch_size=20)
    neuron = dict(input_gain=1.0, tau_mem=4.0, tau_syn=2.0, tau_cal=4.0)
    cfg = HRMASConfig(**{**small, **neuron, **over})
    return cfg, SplitData(x, y, xt, yt, 2)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# -- item 8: strict types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("ip", "false", 'ip must be true or false (a JSON boolean), got "false" (a string)'),
        ("compile", "yes", 'compile must be true or false (a JSON boolean), got "yes" (a string)'),
        ("second_order", 1, "second_order must be true or false (a JSON boolean), got 1 (an integer)"),
        ("batch_size", 2.5, "batch_size must be an integer, got 2.5 (a number)"),
        ("hidden", None, "hidden must be an integer, got null"),
        ("hidden", 0, "hidden must be an int >= 1, got 0"),
        ("hidden", True, "hidden must be an integer, got true (a boolean)"),
        ("epochs_retrain", -1, "epochs_retrain must be an int >= 0 (0: skip), got -1"),
        ("motif_sizes", [2, 4.0], "motif_sizes must be a list of integers, got [2, 4.0] (a list)"),
        ("motif_sizes", "2,4", 'motif_sizes must be a list of integers, got "2,4" (a string)'),
        ("lr", "0.01", 'lr must be a finite number, got "0.01" (a string)'),
        ("tau_mem", float("nan"), "tau_mem must be a finite number, got NaN (a number)"),
        ("input_gain", "auto", 'input_gain must be a finite number or null, got "auto" (a string)'),
        ("backend", 1, "backend must be a string, got 1 (an integer)"),
        ("ti46_root", 5, "ti46_root must be a string or null, got 5 (an integer)"),
    ],
)
def test_config_keys_are_typed_strictly(key, value, message):
    """``"ip": "false"`` used to run with IP on (a non-empty string is truthy), ``"compile": "yes"`` was
    accepted, ``batch_size: 2.5`` and ``hidden: null`` gave TypeError tracebacks, and ``hidden: 0`` was
    refused as "must be a non-negative int" (0 is non-negative). Now every key has one type and the
    message says which, and what it got, in JSON's words."""
    with pytest.raises(ValueError) as info:
        HRMASConfig.from_dict({key: value})
    assert str(info.value) == message


def test_a_float_key_accepts_an_int_and_valid_configs_are_unchanged():
    """Strictness refuses nothing that was right: ints for floats, null for optional keys, every packaged
    config."""
    cfg = HRMASConfig.from_dict({"tau_mem": 4, "lr": 1, "input_gain": None, "motif_sizes": [2, 4]})
    assert (cfg.tau_mem, cfg.lr, cfg.input_gain, cfg.motif_sizes) == (4, 1, None, [2, 4])
    for name in config_module.config_names():
        config_module.load_config(name)


def test_a_wrongly_typed_config_file_is_one_cli_line_naming_the_file(tmp_path, capsys):
    config = tmp_path / "typo.json"
    config.write_text(json.dumps({"hidden": 16, "ip": "false"}))
    line = _one_line(*_cli(capsys, "search", "--config", config, "--out", tmp_path / "run"))
    expected = 'ip must be true or false (a JSON boolean), got "false" (a string)'
    assert line == f"snn-motifs: error: config file {config}: {expected}"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("what", ["config", "genotype"])
def test_json_nested_100000_deep_is_refused_in_one_line(tmp_path, capsys, what):
    """``json.loads`` raises RecursionError on deeply nested input: it used to escape as a traceback."""
    deep = tmp_path / f"{what}.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    if what == "config":
        code, err = _cli(capsys, "search", "--config", deep, "--out", tmp_path / "run")
    else:
        code, err = _cli(capsys, "train", "--genotype", deep, "--out", tmp_path / "run")
    line = _one_line(code, err)
    assert f"{what} file {deep} is nested too deeply to parse" in line
    assert not (tmp_path / "run").exists()


def test_a_malformed_config_gets_advice_for_a_file_you_wrote(tmp_path, capsys):
    """A user's config with a syntax error used to get the advice meant for run artefacts ("delete it to
    have it rebuilt (a search re-runs that seed with --resume)"); now: where the error is, fix the file."""
    config = tmp_path / "mine.json"
    config.write_text('{"hidden": 16,}')
    line = _one_line(*_cli(capsys, "search", "--config", config, "--out", tmp_path / "run"))
    assert f"config file {config} is not valid JSON (Expecting property name" in line
    assert line.endswith("fix the file") and "rebuilt" not in line and "--resume" not in line


@pytest.mark.parametrize(
    "change,message",
    [
        ({"n_neurons": True}, "genotype n_neurons must be an integer >= 1, got True"),
        ({"n_neurons": 8.0}, "genotype n_neurons must be an integer >= 1, got 8.0"),
        ({"n_neurons": "8"}, "genotype n_neurons must be an integer >= 1, got '8'"),
        ({"n_neurons": 0}, "genotype n_neurons must be an integer >= 1, got 0"),
        ({"motif_size": 2.0}, "genotype motif_size must be an integer >= 1, got 2.0"),
        (
            {"intra": "eeee"},
            "genotype intra must be a list of rows (strings of letters n/e/i/f, or lists), got str",
        ),
        ({"lateral": [1, 2]}, "genotype lateral must be a list of rows"),
        ({"intra": [["e", True], ["e", "e"]]}, "intra topology: unknown connection type True"),
        ({"weights": [1]}, "unknown genotype keys ['weights']"),
    ],
)
def test_genotype_files_are_typed_strictly(change, message):
    """A genotype with ``n_neurons: true`` or ``8.0`` used to load (bool is an int; 8.0 failed later), a
    string of rows was read letter by letter; now each is refused naming the key."""
    good = {"n_neurons": 8, "motif_size": 2, "intra": ["ee", "ei"], "lateral": ["en", "ne"]}
    Genotype.from_dict(good)
    with pytest.raises(ValueError) as info:
        Genotype.from_dict({**good, **change})
    assert message in str(info.value)


# -- item 8: sizes against memory ----------------------------------------------------------------------------


def _ram(monkeypatch, gigabytes: float) -> None:
    """Make ``os.sysconf`` report a machine with this much RAM."""
    real = os.sysconf

    def sysconf(name):
        if name == "SC_PHYS_PAGES":
            return int(gigabytes * 1e9) // 4096
        if name == "SC_PAGE_SIZE":
            return 4096
        return real(name)

    monkeypatch.setattr(os, "sysconf", sysconf)


def test_sizes_beyond_the_machines_memory_are_refused_before_anything_is_allocated(tmp_path, monkeypatch):
    """``hidden`` (or a genotype's ``n_neurons``) of 10**9 used to try to allocate ~64 GB. Now the memory a
    network needs is estimated first and compared with the machine's RAM (``os.sysconf``): refused with
    both numbers in GB, nothing written."""
    from snn_motifs import search

    cfg, data = _tiny(hidden=16384, motif_sizes=[4], epochs_size=1, epochs_types=0, epochs_retrain=0)
    quiet = dict(data=data, baseline=False, plots=False, progress=False, log=lambda s: None)
    _ram(monkeypatch, 0.04)  # the network needs ~0.13 GB
    message = (
        r"needs at least 0\.1\d GB to train .* more than the 0\.04 GB RAM of this machine; choose a smaller"
    )
    with pytest.raises(ValueError, match=rf"^hidden=16384 {message} hidden or batch_size$"):
        search.run(cfg, tmp_path / "run", **quiet)
    assert not (tmp_path / "run").exists()
    genotype = Genotype(MotifTopology.uniform(4), 16384)
    with pytest.raises(ValueError, match=rf"^n_neurons=16384 {message} n_neurons or batch_size$"):
        search.train_genotype(genotype, cfg, data, tmp_path / "trained")
    assert not (tmp_path / "trained").exists()
    monkeypatch.undo()
    huge = HRMASConfig(**{**cfg.__dict__, "hidden": 10**9, "motif_sizes": [2]})
    with pytest.raises(ValueError, match=r"^hidden=1000000000 needs at least [\d,.]+ GB to train"):
        search.run(huge, tmp_path / "run", **quiet)
    genotype = Genotype(MotifTopology.uniform(2), 10**9)
    with pytest.raises(ValueError, match=r"^n_neurons=1000000000 needs at least [\d,.]+ GB"):
        search.train_genotype(genotype, cfg, data, tmp_path / "trained")
    assert not (tmp_path / "run").exists() and not (tmp_path / "trained").exists()


def test_the_memory_estimate_is_a_lower_bound_of_the_networks_weights():
    """The estimate counts at least the search network's parameters (weights, gradient, two Adam moments)."""
    cfg = HRMASConfig(hidden=64, motif_sizes=[2, 4, 8])
    net = search_network(cfg, 16, 10)
    params = sum(p.numel() for p in net.parameters()) * 4
    assert config_module.memory_estimate(cfg, 16, 40, 10) >= 4 * params
