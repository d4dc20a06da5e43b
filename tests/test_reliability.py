"""Reliability of run folders and training (issue 23): one process per run folder, NaN/Inf stops training
with the likely cause, artefacts created with the umask's mode, and writes that a crash cannot tear.

Each test states the property it checks; the helpers below build the smallest search that runs.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from snn_motifs import NeuronParameters, _io
from snn_motifs._io import (
    FolderInUse,
    RunFolderLock,
    atomic_path,
    atomic_write_bytes,
    remove_stale_temps,
    save_torch,
    write_json,
)
from snn_motifs.datasets import SplitData
from snn_motifs.models import SCMLClassifier
from snn_motifs.search import Genotype, HRMASConfig, HRMASRun, experiment
from snn_motifs.topology import MotifTopology
from snn_motifs.training import NonFiniteError, epoch_context, fit, nonfinite_tensors

from .conftest import spike_task, tiny_search

_task, _tiny = spike_task, tiny_search

REPO = Path(__file__).resolve().parents[1]
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and file modes")


def _child(code: str, *args: str) -> subprocess.Popen:
    """A python process running ``code`` (dedented) with ``args`` in ``sys.argv[1:]``, stdout piped."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen, timeout: float = 180) -> str:
    """The child's first line of output (it prints one when it is in position)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"the child process printed nothing in {timeout} s")
    line = proc.stdout.readline().strip()
    if not line:
        proc.wait()
        pytest.fail(f"the child process exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    return line


def _kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


class _Reached(Exception):
    """Raised by a stand-in for the seeds' work: the run got past the run-folder checks."""


def _stand_in(*args, **kwargs):
    raise _Reached


# -- item 2: one process per run folder --------------------------------------------------------------------

#: a first ``search.run`` on ``argv[1]`` that stops in the middle of an atomic write (its temp file on
#: disk, ``os.fsync`` blocked) and prints the temp file's name
FIRST_RUN = """
    import json, os, sys, time
    from pathlib import Path
    import torch
    from snn_motifs import _io
    from snn_motifs.datasets import SplitData
    from snn_motifs.search import HRMASConfig, experiment

    out = Path(sys.argv[1])
    cfg = HRMASConfig(**json.loads(Path(sys.argv[2]).read_text()))
    data = SplitData(*torch.load(sys.argv[3]), 2)

    def in_flight(fd):  # the write is on disk in its temp file, not yet renamed: hold it there
        print(next(out.rglob(".*.tmp")), flush=True)
        time.sleep(600)

    def seeds(cfg, data, folder, *args):
        _io.os.fsync = in_flight
        _io.write_json(folder / "result.json", {"test_acc": 1.0})

    experiment.run_one = seeds
    experiment.run(cfg, out, data=data, baseline=False, plots=False, progress=False, log=lambda s: None)
"""


@pytest.mark.slow
@POSIX
def test_a_second_run_on_a_busy_folder_is_refused_and_the_first_runs_temp_file_survives(
    tmp_path, monkeypatch, capsys
):
    """Issue 23 item 2: the second run used to delete the first one's in-flight temp file as 'stale'
    (the first then failed with ENOENT). Now it is refused in one line naming the holder, before it
    touches anything; after the holder is killed (-9) the folder is taken over and the dead run's temp
    file is cleaned up as stale."""
    from snn_motifs import cli
    from snn_motifs.search import train_genotype

    cfg, data = _tiny()
    out = tmp_path / "exp"
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.__dict__))
    torch.save((data.x_train, data.y_train, data.x_test, data.y_test), tmp_path / "data.pt")
    monkeypatch.setattr(experiment, "run_one", _stand_in)
    quiet = dict(data=data, baseline=False, plots=False, progress=False, log=lambda s: None)
    first = _child(FIRST_RUN, str(out), str(tmp_path / "cfg.json"), str(tmp_path / "data.pt"))
    try:
        temp = Path(_wait_for_line(first))
        assert temp.is_file() and temp.name.startswith(".result.json.")
        message = (
            rf"run folder {re.escape(str(out))} is in use by process {first.pid} \(started [-\d: ]+\); "
            "wait for it or choose another --out"
        )
        with pytest.raises(FolderInUse, match=message):
            experiment.run(cfg, out, resume=True, **quiet)
        with pytest.raises(FolderInUse, match=message):  # a fresh run, too (not 'exists; pass --resume')
            experiment.run(cfg, out, **quiet)
        assert temp.is_file(), "the refused run deleted the first run's in-flight temp file"
        # the CLI: one line, exit status 2
        assert cli.main(["search", "--out", str(out), "--resume", "--quiet", "--no-plots"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"is in use by process {first.pid}" in err
        # 'snn-motifs train' into a busy folder is refused the same way
        genotype = Genotype(MotifTopology.random(2, torch.Generator().manual_seed(0)), 8)
        with pytest.raises(FolderInUse, match=message):
            train_genotype(genotype, cfg, data, out)
        assert first.poll() is None and temp.is_file()  # the first run is still there, untouched
    finally:
        _kill9(first)
    # a lock left by a killed process is taken over; the dead writer's temp file is then stale
    with pytest.raises(_Reached):
        experiment.run(cfg, out, resume=True, **quiet)
    assert not temp.exists() and not (out / _io.LOCK_FILE).exists()  # cleaned, and the lock released


def test_the_lock_api_refuses_a_second_holder_and_releases_on_exit(tmp_path):
    """Two holders of one folder in one process (two open file descriptions) exclude each other too; the
    lock file goes on release, and so does a folder that taking the lock created and nothing filled."""
    folder = tmp_path / "new"
    with RunFolderLock(folder) as lock:
        assert lock.held and json.loads((folder / ".lock").read_text())["pid"] == os.getpid()
        with pytest.raises(FolderInUse, match=rf"in use by process {os.getpid()} \(this process\)"):
            RunFolderLock(folder).acquire()
        assert not _io.folder_has_files(folder)  # the lock file alone does not make a folder 'used'
    assert not folder.exists()
    kept = tmp_path / "kept"
    with RunFolderLock(kept):
        (kept / "config.json").write_text("{}")
    assert [p.name for p in kept.iterdir()] == ["config.json"]


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


@pytest.mark.parametrize("flock", [True, False], ids=["flock", "pid-file"])
def test_a_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path, monkeypatch, flock):
    """A lock file naming a process that is gone is taken over; with the pid-file mechanism (no
    ``flock``: Windows, some network file systems) a live holder is still refused."""
    import socket

    if not flock:
        monkeypatch.setattr(_io, "fcntl", None)
    elif _io.fcntl is None:
        pytest.skip("no fcntl.flock here")
    stale = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "2020-01-01 00:00:00"}
    (tmp_path / ".lock").write_text(json.dumps(stale))
    with RunFolderLock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
        if not flock:  # this process is alive: a second taker is refused, naming it
            with pytest.raises(FolderInUse, match=rf"in use by process {os.getpid()}.*delete .*\.lock"):
                RunFolderLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()


def test_only_rank_0_takes_the_lock_under_torchrun(tmp_path, monkeypatch):
    """Under torchrun every rank calls search.run on one folder; rank 0 holds it, the others go on."""
    cfg, data = _tiny()
    monkeypatch.setattr(experiment, "run_one", _stand_in)
    monkeypatch.setattr(experiment, "distributed_info", lambda: (1, 2))
    with RunFolderLock(tmp_path / "exp"), pytest.raises(_Reached):  # rank 0's lock
        experiment.run(cfg, tmp_path / "exp", data=data, baseline=False, plots=False, progress=False)


@pytest.mark.slow
def test_a_sweep_into_a_busy_folder_is_refused_before_ray_starts(tmp_path):
    """``snn-motifs sweep`` writes its folder too (sweep.json, ray/): a second one on it is refused."""
    pytest.importorskip("ray.tune")
    pytest.importorskip("optuna")
    import ray

    from snn_motifs.search.sweep import sweep

    cfg, data = _tiny()
    with RunFolderLock(tmp_path / "sweep"), pytest.raises(FolderInUse, match="is in use by process"):
        sweep(cfg, {"lr": {"loguniform": [1e-3, 1e-1]}}, 1, tmp_path / "sweep", data=data)
    assert not ray.is_initialized()


# -- item 6: NaN / Inf ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spike_fn", ["atan", "tssl"])
def test_fit_with_a_huge_learning_rate_stops_naming_the_epoch_and_the_cause(spike_fn):
    """fit(lr=1e6) used to return losses [~1e21, nan, nan] and a test accuracy, with only 'layer is
    silent ... raise the input gain'. Now: NonFiniteError (a ValueError) naming the epoch and lr, raised
    before the step that would write NaN into the weights, and no silent-layer warning."""
    x, y = _task(96, 0, steps=20, channels=8)
    xt, yt = _task(64, 1, steps=20, channels=8)
    torch.manual_seed(0)
    model = SCMLClassifier(8, 16, 2, 4, neuron=NeuronParameters(tau_mem=4, tau_syn=2), spike_fn=spike_fn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(NonFiniteError) as info:
            fit(model, SplitData(x, y, xt, yt, 2), epochs=3, lr=1e6, batch_size=16)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in message
    assert re.match(
        r"epoch \d/3: training diverged: the (loss|gradient norm) is (nan|inf) at batch \d+; ", message
    )
    assert "likely cause: learning rate too high: lower lr (it is 1e+06)" in message
    assert not [w for w in caught if "silent" in str(w.message)]
    assert nonfinite_tensors(model) == []  # the weights of the last finite step


def test_tssl_bps_own_nan_check_becomes_the_same_one_line_error():
    """TSSL-BP refuses a NaN/Inf gradient inside ``backward`` with FloatingPointError (a traceback in the
    CLI); inside an epoch it becomes a NonFiniteError with the epoch and the cause."""
    with pytest.raises(NonFiniteError, match=r"^epoch 3/5: training diverged: TSSL-BP .*lower lr$"):
        with epoch_context("epoch 3/5"):
            raise FloatingPointError("TSSL-BP received a NaN/Inf gradient from the layers above")


@pytest.mark.parametrize(
    "poisoned,label,saved",
    [(3, "search_types epoch 1/1", ("search_types", 0, 2)), (5, "retrain epoch 2/3", ("retrain", 1, 4))],
    ids=["search", "retrain"],
)
def test_a_diverging_search_stops_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, poisoned, label, saved
):
    """A NaN weight before epoch ``poisoned`` (a learning rate that blew up) stops the run with the epoch
    named; checkpoint.pt is that of the epoch boundary before it, all finite (it used to train on and
    save NaN; the search's mean loss even dropped the NaN batches)."""
    cfg, data = _tiny()
    run = HRMASRun(cfg, data, tmp_path, progress=False, log=lambda s: None, tensorboard=False)
    calls = {"n": 0}
    original = HRMASRun._epoch

    def poison(self, phase):
        calls["n"] += 1
        if calls["n"] == poisoned:
            model = self.final_model if phase == "retrain" else self.model
            with torch.no_grad():
                model.hidden.fc.weight[0, 0] = float("nan")
        return original(self, phase)

    monkeypatch.setattr(HRMASRun, "_epoch", poison)
    with pytest.raises(NonFiniteError, match=rf"^{label} \(not saved\): training diverged: .*lower lr"):
        run.run()
    blob = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state = blob["state"]
    assert (state["phase"], state["epoch"], len(state["history"])) == saved
    assert nonfinite_tensors(blob) == [] and not (tmp_path / "result.json").exists()


def test_a_search_config_with_lr_1e30_fails_in_one_cli_line(tmp_path, capsys):
    """The issue's case: a config with ``lr: 1e30`` exited 0 with a test accuracy; now exit status 2 and
    one line naming the epoch and the cause."""
    pytest.importorskip("mnist1d")
    from snn_motifs import cli

    config = tmp_path / "huge_lr.json"
    config.write_text(json.dumps({"hidden": 16, "motif_sizes": [2, 4], "epochs_size": 1, "lr": 1e30}))
    args = ["search", "--config", str(config), "--max-train", "200", "--quiet", "--no-plots", "--no-baseline"]
    assert cli.main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("snn-motifs: error: search_size epoch 1/1 (not saved)")
    assert "learning rate too high: lower lr (it is 1e+30)" in err
    assert not (tmp_path / "run" / _io.LOCK_FILE).exists()  # the run folder is released


def test_nan_weights_are_refused_when_a_model_or_checkpoint_is_loaded(tmp_path, capsys):
    """load_trained (evaluate, export-nir) and HRMASRun.load (--resume) name the file and the parameter."""
    from snn_motifs import cli
    from snn_motifs.search import build_classifier, load_trained

    cfg, data = _tiny()
    genotype = Genotype(MotifTopology.random(2, torch.Generator().manual_seed(0)), 8)
    state = build_classifier(genotype, cfg, 6, 2).state_dict()
    state["hidden.fc.weight"][1, 2] = float("inf")
    trained = tmp_path / "trained"
    trained.mkdir()
    torch.save({"genotype": genotype.to_dict(), "config": cfg.__dict__, "model": state}, trained / "model.pt")
    model_file = re.escape(str(trained / "model.pt"))
    message = rf"{model_file}: parameter 'hidden\.fc\.weight' holds Inf: the network diverged"
    with pytest.raises(NonFiniteError, match=message):
        load_trained(trained)
    assert cli.main(["evaluate", "--run", str(trained)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "parameter 'hidden.fc.weight' holds Inf" in err

    seed = tmp_path / "seed0"
    HRMASRun(cfg, data, seed, progress=False, log=lambda s: None, tensorboard=False).save()
    blob = torch.load(seed / "checkpoint.pt", weights_only=True)
    name = next(k for k, v in blob["model"].items() if v.is_floating_point())
    blob["model"][name].view(-1)[0] = float("nan")
    torch.save(blob, seed / "checkpoint.pt")
    checkpoint = re.escape(str(seed / "checkpoint.pt"))
    with pytest.raises(
        NonFiniteError, match=rf"checkpoint {checkpoint}: parameter 'model\.{re.escape(name)}' holds NaN"
    ):
        HRMASRun(cfg, data, seed, progress=False, log=lambda s: None, tensorboard=False).run(resume=True)


# -- item 9: file modes --------------------------------------------------------------------------------------


@POSIX
@pytest.mark.parametrize(
    "umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)], ids=["022", "077", "002"]
)
def test_artefacts_are_created_with_the_umask_mode(tmp_path, umask, mode):
    """Every artefact used to be 0600 whatever the umask (tempfile.mkstemp's mode, kept by the rename);
    now it gets 0o666 less the umask, as a plain open() would give it."""
    old = os.umask(umask)
    try:
        files = [
            write_json(tmp_path / "config.json", {"a": 1}),
            save_torch({"w": torch.ones(2)}, tmp_path / "model.pt"),
            atomic_write_bytes(tmp_path / "raw.bin", b"x"),
        ]
        with atomic_path(tmp_path / "graph.h5") as tmp:
            tmp.write_bytes(b"hdf5")
        files.append(tmp_path / "graph.h5")
        write_json(tmp_path / "config.json", {"a": 2})  # replacing a file: the new one's mode, too
        if _has("nir"):
            from snn_motifs.nir_export import export_nir

            export_nir(SCMLClassifier(6, 8, 2, 2), tmp_path / "model.nir")
            files.append(tmp_path / "model.nir")
    finally:
        os.umask(old)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(mode) for p in files}


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# -- item 10: the atomic write itself ------------------------------------------------------------------------

#: writes ``argv[2]`` bytes to ``argv[1]`` through atomic_write_bytes, with a file-size limit of half that:
#: the write stops in the middle, either killing the process (SIGXFSZ, as a crash or ``kill -9`` would)
#: or raising EFBIG (Python's default, SIGXFSZ ignored)
HALF_WRITE = """
    import resource, signal, sys
    from snn_motifs._io import atomic_write_bytes

    path, size, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "killed":
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        atomic_write_bytes(path, b"n" * size)
    except OSError as exc:
        print("raised", exc.errno)
    else:
        print("written")
"""


@pytest.mark.slow
@POSIX
@pytest.mark.parametrize("mode", ["killed", "raised"])
def test_a_writer_stopped_mid_write_leaves_the_previous_file_intact(tmp_path, mode):
    """A writer that dies (or fails) after half of the new bytes leaves the old file whole and readable:
    an in-place write would leave half of the new one. A killed writer's temp file is stale and removed
    by remove_stale_temps (search.run calls it on --resume); a failed one removes its own; a later
    successful write leaves no temp file of its own."""
    pytest.importorskip("resource")
    target = tmp_path / "result.json"
    write_json(target, {"test_acc": 0.5})
    before = target.read_bytes()
    size = 1 << 21  # 2 MiB: more than any write buffer, so the limit cuts it in the middle
    child = _child(HALF_WRITE, str(target), str(size), mode)
    out, err = child.communicate(timeout=180)
    if mode == "killed":
        assert child.returncode == -signal.SIGXFSZ, (child.returncode, out, err)
    else:
        assert child.returncode == 0 and out.split() == ["raised", "27"], (out, err)  # EFBIG
    assert target.read_bytes() == before and json.loads(target.read_text()) == {"test_acc": 0.5}
    temps = list(tmp_path.glob(".*.tmp"))
    if mode == "killed":
        assert len(temps) == 1 and 0 < temps[0].stat().st_size <= size // 2  # the half-written temp
        assert remove_stale_temps(tmp_path) == temps
    else:
        assert temps == []
    atomic_write_bytes(target, b"n" * size)
    assert target.read_bytes() == b"n" * size and list(tmp_path.glob(".*.tmp")) == []


def _record_fsync_and_replace(monkeypatch) -> list[tuple]:
    """Record ``os.fsync`` (inode and size of the file synced) and ``os.replace`` (source inode, target)
    in call order; both still do their work."""
    events: list[tuple] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", st.st_ino, st.st_size))
        return fsync(fd)

    def recording_replace(src, dst, **kwargs):
        events.append(("replace", os.stat(src).st_ino, Path(dst)))
        return replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return events


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    """The bytes reach the disk (fsync of the complete temp file) before the temp file is renamed over
    the target, for each write path; without the fsync a power cut after the rename can leave an empty
    or partial file under the target's name."""
    events = _record_fsync_and_replace(monkeypatch)
    payload = {"test_acc": 0.75, "runs": list(range(100))}
    writes = {
        "a.json": lambda p: write_json(p, payload),
        "b.pt": lambda p: save_torch({"w": torch.arange(1000.0)}, p),
        "c.bin": lambda p: atomic_write_bytes(p, b"z" * 5000),
    }
    for name, write in writes.items():
        events.clear()
        target = tmp_path / name
        write(target)
        assert [e[0] for e in events] == ["fsync", "replace"], name
        (_, synced, synced_size), (_, renamed, dst) = events
        assert synced == renamed == target.stat().st_ino and dst == target, name
        assert synced_size == target.stat().st_size > 0, name  # all of it was written before the fsync
    events.clear()
    with atomic_path(tmp_path / "d.h5") as tmp:  # writers that need a file name (NIR's HDF5)
        tmp.write_bytes(b"h" * 3000)
    assert [e[0] for e in events] == ["fsync", "replace"]
    assert events[0][1] == events[1][1] == (tmp_path / "d.h5").stat().st_ino and events[0][2] == 3000


def test_a_failed_fsync_leaves_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    """A write that fails (disk full at fsync) raises, keeps the old content and removes its temp file."""
    target = tmp_path / "config.json"
    write_json(target, {"v": 1})

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1} and list(tmp_path.glob(".*.tmp")) == []


# -- items 3, 4, 5: Ray Tune restarts, thread counts, provenance ---------------------------------------------


def _without(obj, keys=("seconds", "execution")):
    """``obj`` without wall-clock seconds and the execution block, at any depth."""
    if isinstance(obj, dict):
        return {k: _without(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [_without(v, keys) for v in obj]
    return obj


def test_config_and_summary_record_how_the_run_was_executed_and_resume_ignores_it(tmp_path, monkeypatch):
    """Item 5: config.json and summary.json record the engine, world size, workers, Ray address, torch
    threads, device and versions under "execution"; --resume compares the config without it, so a run
    continues on another engine (or thread count), and the new execution is recorded. A run folder's
    config.json still loads as a config (plots read it)."""
    import platform

    import snn_motifs

    cfg, data = _tiny()
    out = tmp_path / "exp"
    quiet = dict(data=data, baseline=False, plots=False, progress=False, log=lambda s: None)
    first = experiment.run(cfg, out, **quiet)
    stored = json.loads((out / "config.json").read_text())
    versions = {
        "snn_motifs": snn_motifs.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    execution = {
        "engine": "sequential",
        "world_size": 1,
        "workers": 1,
        "address": None,
        "threads": 1,
        "device": "cpu",
        "versions": versions,
    }
    assert stored["execution"] == execution
    assert json.loads((out / "summary.json").read_text())["execution"] == execution
    assert HRMASConfig.from_file(out / "config.json") == cfg
    stored["execution"] = {**execution, "engine": "ray", "address": "ray://head:10001", "threads": 4}
    (out / "config.json").write_text(json.dumps(stored))
    again = experiment.run(cfg, out, resume=True, threads=2, **quiet)
    assert again["runs"] == first["runs"]
    assert json.loads((out / "config.json").read_text())["execution"]["threads"] == 2
    monkeypatch.setattr(experiment, "distributed_info", lambda: (0, 4))
    assert experiment.execution_info("cuda:0", 1)["engine"] == "torchrun"
    assert experiment.execution_info("cuda:0", 1)["world_size"] == 4


def test_every_process_trains_with_the_threads_it_declares(tmp_path, monkeypatch):
    """Item 4: results depend on the torch thread count (the dense baseline: 0.597 with 1 thread, 0.59 with
    2), and the sequential path trained at the process default. Now the seeds and the dense baseline train
    with ``threads`` (default: the CPUs a trial declares, 1) and the caller's setting is restored."""
    cfg, data = _tiny()
    seen = []

    def seed(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return {"test_acc": 1.0, "genotype": Genotype(MotifTopology.uniform(2), 8).to_dict()}

    def dense(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return {"test_acc": 1.0}

    monkeypatch.setattr(experiment, "run_one", seed)
    monkeypatch.setattr(experiment, "train_dense_baseline", dense)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        experiment.run(cfg, tmp_path / "a", data=data, plots=False, progress=False, log=lambda s: None)
        experiment.run(
            cfg, tmp_path / "b", data=data, plots=False, progress=False, log=lambda s: None, threads=2
        )
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1, 2, 2]


def _ray():
    """Ray Tune, or skip; tests shut Ray down when they end."""
    pytest.importorskip("ray.tune")
    import ray

    return ray


@pytest.mark.slow
def test_the_ray_path_writes_the_summary_of_the_sequential_path(tmp_path):
    """Item 4: the Ray path trained the dense baseline in the driver at the default thread count, so its
    summary differed from a 1-thread sequential run. Now every trial and the dense baseline (a Ray trial
    of kind "dense") train with the declared threads: summary.json and dense_baseline.json are the
    sequential path's, wall-clock seconds and the execution block aside."""
    ray = _ray()
    cfg, data = _tiny()
    quiet = dict(data=data, seeds=2, plots=False, progress=False, log=lambda s: None)
    try:
        experiment.run(cfg, tmp_path / "seq", **quiet)
        experiment.run(cfg, tmp_path / "ray", workers=2, **quiet)
    finally:
        ray.shutdown()
    for name in ("summary.json", "dense_baseline.json"):
        sequential = json.loads((tmp_path / "seq" / name).read_text())
        on_ray = json.loads((tmp_path / "ray" / name).read_text())
        assert _without(on_ray) == _without(sequential), name
    assert (tmp_path / "ray" / "ray" / "dense_baseline" / "trial" / "result.json").is_file()  # in a worker
    execution = json.loads((tmp_path / "ray" / "summary.json").read_text())["execution"]
    assert {k: v for k, v in execution.items() if k != "versions"} == {
        "engine": "ray",
        "world_size": 1,
        "workers": 2,
        "address": "local",
        "threads": 1,
        "device": "cpu",
        "cpus_per_trial": 1,
        "gpus_per_trial": 0,
    }
    assert execution["versions"]["ray"] == ray.__version__


def _worker_killer(times: int, at: int):
    """A Tune callback (driver side) that kills a trial's worker process (SIGKILL, as the OOM killer or a
    lost node would) when it reports its ``at``-th result, ``times`` times in all; it records every
    result's worker pid and the pids it killed."""
    from ray import tune

    class KillWorker(tune.Callback):
        def __init__(self) -> None:
            self.pids: list[int] = []
            self.killed: list[int] = []

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            pid = result["pid"]
            self.pids.append(pid)
            if len(self.killed) < times and self.pids.count(pid) == at:
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)

    return KillWorker()


def _with_callback(monkeypatch, callback) -> None:
    """Let ``search.run``'s Ray trials run with ``callback`` (what a test cannot pass through the CLI)."""
    from snn_motifs.search import trials

    real = trials.run_trials
    monkeypatch.setattr(
        trials, "run_trials", lambda *args, **kwargs: real(*args, callbacks=[callback], **kwargs)
    )


@pytest.mark.slow
def test_a_killed_trial_worker_restarts_from_its_checkpoint_and_the_run_completes(tmp_path, monkeypatch):
    """Item 3: a trial whose worker was killed used to end the driver (exit status 1, a 162-line traceback
    ending 'The actor died unexpectedly before finishing this task'). Now Tune restarts it (FailureConfig,
    --max-failures) from its last checkpoint, says so in one line, and the run reaches the result of an
    uninterrupted one."""
    ray = _ray()
    cfg, data = _tiny()
    quiet = dict(data=data, baseline=False, plots=False, progress=False)
    expected = experiment.run(cfg, tmp_path / "seq", log=lambda s: None, **quiet)
    killer = _worker_killer(times=1, at=2)  # after the second epoch's checkpoint
    _with_callback(monkeypatch, killer)
    lines: list[str] = []
    try:
        got = experiment.run(cfg, tmp_path / "ray", workers=1, log=lines.append, **quiet)
    finally:
        ray.shutdown()
    assert len(killer.killed) == 1
    assert _without(got) == _without(expected)
    for name in ("result.json", "history.json", "genotype.json"):
        a = json.loads((tmp_path / "seq" / "seed0" / name).read_text())
        b = json.loads((tmp_path / "ray" / "seed0" / name).read_text())
        assert _without(a) == _without(b), name
    restarts = [line for line in lines if "failed (attempt" in line]
    assert restarts == [
        f"trial {(tmp_path / 'ray' / 'seed0').resolve()} failed (attempt 1): {restarts[0].split(': ', 1)[1]}"
    ]
    assert (
        "The actor died unexpectedly" in restarts[0] and "restarts it from its last checkpoint" in restarts[0]
    )
    # from the checkpoint, not from scratch: the new worker reported fewer than the run's 6 epochs
    second = [pid for pid in killer.pids if pid != killer.killed[0]]
    assert 1 <= len(second) - 1 < 6


#: ``snn-motifs ARGV[2:]`` with the data saved in ARGV[1] (the tiny search's, instead of MNIST-1D)
CLI_ON_SAVED_DATA = """
    import sys
    import torch
    from snn_motifs import cli
    from snn_motifs.datasets import SplitData
    from snn_motifs.search import experiment

    data = SplitData(*torch.load(sys.argv[1]), 2)
    experiment.load_data = lambda cfg, max_train=None: data
    sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_a_trial_that_fails_every_time_is_one_cli_line(tmp_path):
    """Item 3: a trial failing at every attempt (here: a learning rate that diverges in the first epoch)
    ends the CLI with one line (which trial, how many attempts, the last error's first line, what to do)
    and exit status 2: no traceback, neither ours nor Tune's (it used to print each failed attempt's
    traceback and its experiment table); each restart is said in one line on stdout."""
    pytest.importorskip("ray.tune")
    cfg, data = _tiny(lr=1e30)
    config = tmp_path / "diverges.json"
    config.write_text(json.dumps(cfg.__dict__))
    torch.save((data.x_train, data.y_train, data.x_test, data.y_test), tmp_path / "data.pt")
    out = tmp_path / "run"
    args = ["search", "--config", str(config), "--out", str(out), "--quiet", "--no-plots", "--no-baseline"]
    child = _child(
        CLI_ON_SAVED_DATA, str(tmp_path / "data.pt"), *args, "--workers", "1", "--max-failures", "1"
    )
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 2, stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout and "errored" not in stdout
    ours = [line for line in stderr.splitlines() if line.startswith("snn-motifs")]
    assert len(ours) == 1 and stderr.rstrip().endswith(ours[0])
    cause = "NonFiniteError: search_size epoch 1/2 (not saved): training diverged: "
    assert ours[0].startswith(
        f"snn-motifs: error: Ray Tune trial {out.resolve() / 'seed0'} failed 2 time(s) (restarted from its "
        f"last checkpoint up to max_failures=1 times); last error: {cause}"
    )
    advice = "fix the cause (or raise --max-failures) and run again with --resume to continue"
    assert ours[0].endswith(f"{advice}: finished trials are kept")
    assert stdout.splitlines() == [
        f"trial {out.resolve() / 'seed0'} failed (attempt 1): {cause}{stdout.split(cause, 1)[1].strip()}"
    ]
    assert stdout.rstrip().endswith("Ray Tune restarts it from its last checkpoint")
