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
from snn_motifs.search import Genotype, HRMASConfig, search_network
from snn_motifs.search import config as config_module
from snn_motifs.topology import MotifTopology

from .conftest import spike_task, strip_seconds, tiny_search

_task, _tiny, _no_seconds = spike_task, tiny_search, strip_seconds

_REAL_FSYNC = os.fsync


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


# -- item 7: every CLI failure is one line, a non-zero exit status, nothing half-written ---------------------

QUICK = ("--quiet", "--no-plots", "--no-baseline")


@pytest.fixture
def tiny_cli(tmp_path, monkeypatch):
    """A config file of the tiny search, and ``experiment.load_data`` returning its data (the CLI then runs
    the tiny search in seconds); yields the ``--config`` arguments."""
    from snn_motifs.search import experiment

    cfg, data = _tiny()
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(cfg.__dict__))
    monkeypatch.setattr(experiment, "load_data", lambda cfg, max_train=None: data)
    return ["--config", str(config)]


def _search(capsys, config: list[str], out: Path, *extra: str) -> tuple[int, str]:
    return _cli(capsys, "search", *config, "--out", out, *QUICK, *extra)


@pytest.mark.parametrize(
    "case,message",
    [
        ("out-is-a-file", "output folder {out} is a file; choose a folder with --out"),
        ("out-under-a-file", "output folder {out} lies under {file}, which is a file; choose a folder"),
        ("device-bogus", "device 'bogus' is not a device name; use 'cpu', 'cuda' or 'cuda:N'"),
        ("device-meta", "device 'meta' cannot train networks (no data on it, or not supported here)"),
        ("device-mps", "device 'mps': Apple's MPS is not available on this machine (use 'cpu')"),
        ("seeds-0", "seeds must be an integer >= 1 (how many seeds to run), got 0"),
        ("resume-never-ran", "nothing to resume in {out}: no run started there (no config.json)"),
        ("T-0", "the data has T = 0 time steps; a spiking network needs T >= 1"),
        ("options", "motif-size option 3 is invalid for N=8"),
    ],
)
def test_search_refusals_are_one_line_and_write_nothing(
    tmp_path, capsys, monkeypatch, tiny_cli, case, message
):
    """Each of these used to be a traceback (``NotADirectoryError``, ``FileExistsError``, torch's
    RuntimeError for the device, ``IndexError`` for T = 0), to train the dense baseline before failing
    with ``max() arg is an empty sequence`` (``--seeds 0``), to start a fresh run on ``--resume`` of a
    folder that never ran, or to leave config.json behind (motif sizes that do not divide hidden). Now:
    exit status 2, one line, the folder as it was (the dense baseline not trained)."""
    from snn_motifs.search import experiment

    if case == "device-mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    trained = []
    monkeypatch.setattr(experiment, "train_dense_baseline", lambda *a, **k: trained.append(1))
    out, file, extra = tmp_path / "run", tmp_path / "file", []
    file.write_text("x")
    if case == "out-is-a-file":
        out = file
    elif case == "out-under-a-file":
        out = file / "run"
    elif case.startswith("device-"):
        extra = ["--device", case.split("-")[1]]
    elif case == "seeds-0":
        extra = ["--seeds", "0"]
    elif case == "resume-never-ran":
        extra = ["--resume"]
    elif case == "T-0":
        cfg, data = _tiny()
        empty = data._replace(x_train=data.x_train[:, :0], x_test=data.x_test[:, :0])
        monkeypatch.setattr(experiment, "load_data", lambda cfg, max_train=None: empty)
    elif case == "options":
        tiny_cli = [*tiny_cli[:1], str(tmp_path / "bad.json")]
        (tmp_path / "bad.json").write_text(json.dumps({**_tiny()[0].__dict__, "motif_sizes": [2, 3]}))
    before = _files(tmp_path)
    line = _one_line(*_search(capsys, tiny_cli, out, *extra))
    assert line.startswith("snn-motifs: error: ") and message.format(out=out, file=file) in line
    assert _files(tmp_path) == before and trained == []


def test_a_config_refused_when_the_network_is_built_leaves_no_files(tmp_path, capsys, tiny_cli):
    """A config that fails only when the first seed builds its network (an unknown spike function) used to
    leave config.json and run_info.json behind: the next run was told the folder 'exists; pass --resume'
    and --resume failed again. Now the folder is as before, and the corrected run starts normally."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**_tiny()[0].__dict__, "spike_fn": "bogus"}))
    line = _one_line(*_search(capsys, ["--config", str(bad)], tmp_path / "run"))
    assert "unknown spike function 'bogus'" in line
    assert not (tmp_path / "run").exists()
    code, err = _search(capsys, tiny_cli, tmp_path / "run")
    assert code == 0, err


def _os_error(monkeypatch, error: int, root: Path) -> None:
    """Make creating folders and files under ``root`` fail with ``error`` (a read-only file system: EROFS),
    as the kernel would; tests run as root, where a chmod 0555 folder does not stop writes."""
    real_mkdir, real_open = os.mkdir, os.open

    def refuse(path):
        if str(path).startswith(str(root)):
            raise OSError(error, os.strerror(error), str(path))

    def mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def open_(path, *args, **kwargs):
        refuse(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


def test_a_read_only_file_system_is_one_line(tmp_path, capsys, monkeypatch, tiny_cli):
    """``OSError: [Errno 30] Read-only file system`` used to be a traceback."""
    import errno

    (tmp_path / "ro").mkdir()
    _os_error(monkeypatch, errno.EROFS, tmp_path / "ro")
    out = tmp_path / "ro" / "run"
    line = _one_line(*_search(capsys, tiny_cli, out))
    assert (
        line == f"snn-motifs: error: {out}: Read-only file system; choose a folder on a writable file system"
    )
    genotype = tmp_path / "g.json"
    Genotype(MotifTopology.uniform(2), 8).to_json(genotype)
    line = _one_line(*_cli(capsys, "train", *tiny_cli, "--genotype", genotype, "--out", out))
    assert line.endswith("Read-only file system; choose a folder on a writable file system")
    assert list((tmp_path / "ro").iterdir()) == []


def _disk_full_after(monkeypatch, writes: int) -> None:
    """``os.fsync`` fails with ENOSPC after ``writes`` successful atomic writes (every artefact is
    fsync-ed once before its rename)."""
    import errno

    from snn_motifs import _io

    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _REAL_FSYNC(fd)

    monkeypatch.setattr(_io.os, "fsync", fsync)


@pytest.mark.slow
def test_a_full_disk_is_one_line_leaves_whole_files_and_resume_finishes_the_run(
    tmp_path, capsys, monkeypatch, tiny_cli
):
    """``[Errno 28] No space left on device`` used to be a traceback. Now one line naming the file and
    what to do; every file on disk is whole (no temp files, each JSON parses, the checkpoint loads); once
    space is free, --resume reaches the result of a run the disk never interrupted. A disk full at the
    first write leaves nothing at all."""
    from snn_motifs import _io

    assert _search(capsys, tiny_cli, tmp_path / "ref")[0] == 0
    _disk_full_after(monkeypatch, 0)
    line = _one_line(*_search(capsys, tiny_cli, tmp_path / "empty"))
    assert "config.json: No space left on device; free some space and run again" in line
    assert not (tmp_path / "empty").exists()
    _disk_full_after(monkeypatch, 5)  # config.json, run_info.json, 3 checkpoints: full in the 3rd epoch
    out = tmp_path / "run"
    line = _one_line(*_search(capsys, tiny_cli, out))
    assert line == (
        f"snn-motifs: error: {out / 'seed0' / 'checkpoint.pt'}: No space left on device; free some space and "
        "run again (--resume continues a search that had started)"
    )
    assert not list(out.rglob(".*.tmp"))
    for path in out.rglob("*.json"):
        json.loads(path.read_text())
    assert _io.load_torch(out / "seed0" / "checkpoint.pt")["state"]["epoch"] == 2
    monkeypatch.setattr(_io.os, "fsync", _REAL_FSYNC)  # space is free again
    assert _search(capsys, tiny_cli, out, "--resume")[0] == 0
    for name in ("result.json", "history.json", "genotype.json"):
        ref = json.loads((tmp_path / "ref" / "seed0" / name).read_text())
        assert _no_seconds(json.loads((out / "seed0" / name).read_text())) == _no_seconds(ref), name


def test_export_nir_onto_an_existing_file_or_under_one_is_one_line(tmp_path, capsys):
    """``export-nir --out model`` where ``model`` is a file used to end in ``FileExistsError`` (it was
    taken for a folder); now one line, and the file untouched."""
    from snn_motifs import search

    cfg, data = _tiny(epochs_retrain=1)
    search.train_genotype(Genotype(MotifTopology.uniform(2), 8), cfg, data, tmp_path / "trained")
    existing = tmp_path / "model"
    existing.write_text("keep me")
    line = _one_line(*_cli(capsys, "export-nir", "--run", tmp_path / "trained", "--out", existing))
    expected = f"--out {existing} is an existing file that is not a .nir graph; give a .nir name or a folder"
    assert line == f"snn-motifs: error: {expected}"
    line = _one_line(*_cli(capsys, "export-nir", "--run", tmp_path / "trained", "--out", existing / "m.nir"))
    assert f"{existing} is a file, not a folder" in line
    assert existing.read_text() == "keep me"


#: ``snn-motifs search ARGV[2:]`` on the data saved in ARGV[1]; the dense baseline gets a real SIGINT
CTRL_C_IN_BASELINE = """
    import os, signal, sys, time
    import torch
    from snn_motifs import cli
    from snn_motifs.datasets import SplitData
    from snn_motifs.search import experiment

    data = SplitData(*torch.load(sys.argv[1]), 2)
    experiment.load_data = lambda cfg, max_train=None: data

    def baseline(*args, **kwargs):  # Ctrl-C while the dense baseline trains
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(60)

    experiment.train_dense_baseline = baseline
    sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_ctrl_c_during_the_dense_baseline_is_one_line_exit_130_and_resume_finishes(
    tmp_path, capsys, tiny_cli
):
    """Ctrl-C while the dense baseline trained used to escape as KeyboardInterrupt (a traceback, exit status
    -2); now the 'interrupted ... --resume' line and 130, the seeds' results kept, and --resume trains the
    baseline and writes the summary."""
    import subprocess
    import sys
    import textwrap

    cfg, data = _tiny()
    torch.save((data.x_train, data.y_train, data.x_test, data.y_test), tmp_path / "data.pt")
    out = tmp_path / "run"
    args = ["search", *tiny_cli, "--out", str(out), "--quiet", "--no-plots"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = textwrap.dedent(CTRL_C_IN_BASELINE)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data.pt"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.startswith("interrupted while training the dense baseline") and "--resume" in proc.stderr
    )
    assert (out / "seed0" / "result.json").is_file() and not (out / "dense_baseline.json").exists()
    code, err = _cli(capsys, *args, "--resume")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dense_baseline"]["test_acc"] > 0


def test_ctrl_c_anywhere_else_is_one_line_and_exit_130(capsys, monkeypatch, tiny_cli, tmp_path):
    from snn_motifs.search import experiment

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "load_data", interrupted)
    code, err = _search(capsys, tiny_cli, tmp_path / "run")
    assert (
        _one_line(code, err, 130)
        == "snn-motifs: interrupted (--resume continues a search from its checkpoints)"
    )


def test_sweep_and_ray_trials_without_ray_are_one_line(tmp_path, capsys, monkeypatch, tiny_cli):
    """Without the [distributed] extra ``sweep`` ended in a MissingDependencyError traceback and
    ``search --workers`` did too, after writing config.json; now one line naming the extra, nothing
    written."""
    import sys

    for name in ("ray", "ray.tune", "optuna"):
        monkeypatch.setitem(sys.modules, name, None)
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"lr": {"loguniform": [1e-3, 1e-1]}}))
    line = _one_line(*_cli(capsys, "sweep", tiny_cli[1], "--space", space, "--out", tmp_path / "sweep"))
    assert "needs the optional package 'ray'" in line and "pip install 'snn-motifs[distributed]'" in line
    line = _one_line(*_search(capsys, tiny_cli, tmp_path / "run", "--workers", "2"))
    assert "needs the optional package 'ray'" in line
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "run").exists()


def test_plot_of_a_missing_or_empty_folder_fails(tmp_path, capsys):
    """``plot --run /nonexistent`` used to exit 0 without a word."""
    line = _one_line(*_cli(capsys, "plot", "--run", tmp_path / "nonexistent"))
    missing = tmp_path / "nonexistent"
    assert line == f"snn-motifs: error: no run folder {missing}; give a folder written by 'snn-motifs search'"
    pytest.importorskip("matplotlib")
    (tmp_path / "empty").mkdir()
    line = _one_line(*_cli(capsys, "plot", "--run", tmp_path / "empty"))
    assert "holds no search results to plot" in line


def test_a_binary_genotype_file_is_named(tmp_path, capsys):
    """A binary genotype file used to give "'utf-8' codec can't decode byte ..." without the file's name."""
    binary = tmp_path / "genotype.bin"
    binary.write_bytes(bytes(range(256)))
    line = _one_line(*_cli(capsys, "train", "--genotype", binary, "--out", tmp_path / "out"))
    assert line.startswith(f"snn-motifs: error: genotype file {binary} is not UTF-8 text")
    assert line.endswith("re-run the search or fix the file")
