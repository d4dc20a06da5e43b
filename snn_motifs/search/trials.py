"""Seeds and ablations as Ray Tune trials: each (config, run folder) one trial with declared resources,
on a local Ray (``ray.init()``) or an existing cluster (``address="auto"`` or ``"ray://host:10001"``).

A trial is one :class:`~snn_motifs.search.runner.HRMASRun` in the run folder the sequential path would use,
so the folder layout, checkpoints and results are the same; a trial whose ``result.json`` exists returns
it at once, an unfinished one resumes from its checkpoint. Every epoch the run's checkpoint is also
reported through Tune's checkpoint API, so a trial Tune restarts on another node gets it back, and a
killed driver continues with ``Tuner.restore`` (``resume=True``). Every epoch's numbers are reported to Tune
(``valid_acc`` during the search, ``train_loss`` while retraining, ``test_acc`` at the end). A trial
whose worker dies or raises is restarted (Tune's ``FailureConfig``, ``max_failures``) from its last
checkpoint, said in one line; one that fails every time ends the run with :class:`TrialsFailed`, one line.
Every trial trains with the torch threads it declares. Needs the ``[distributed]`` extra (``ray[tune]``).
No scheduler, pool or socket code of our own: Ray runs the trials.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .._io import read_json, write_json
from .._optional import require
from ..datasets import SplitData
from .config import HRMASConfig

__all__ = ["run_trials", "run_job", "TrialsFailed", "first_line", "quiet_tune"]


class TrialsFailed(RuntimeError):
    """A Ray Tune trial still failed after its restarts; the message is one line naming the trial's
    folder, the attempts, the last error's first line and how to continue (``--resume``)."""


def first_line(error: BaseException | str | None) -> str:
    """The first line of what went wrong in a trial: the trainable's own exception when Ray wrapped it
    (``RayTaskError.cause``), else the error's first line (``ActorDiedError: The actor died unexpectedly
    before finishing this task.`` for a killed worker); for a traceback's text, its last line."""
    cause = getattr(error, "cause", None)
    error = cause if isinstance(cause, BaseException) else error
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__ if isinstance(error, BaseException) else "unknown error"
    if lines[0].startswith(("ray::", "Traceback", "Failure #")):  # a traceback: its last line says it
        return lines[-1]
    return f"{type(error).__name__}: {lines[0]}" if isinstance(error, BaseException) else lines[0]


@contextlib.contextmanager
def quiet_tune() -> Iterator[None]:
    """Ray Tune without its own console output while it runs: no experiment table or per-trial error
    blocks (``RAY_AIR_NEW_OUTPUT=0`` with ``verbose=0``) and no tracebacks of failed trials logged by the
    ``ray.tune`` / ``ray.train`` loggers; the caller reports restarts and failures in one line each (the
    tracebacks stay in Tune's ``error.txt`` files)."""
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train")]
    levels = [logger.level for logger in loggers]
    output = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if output is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = output


def _error(trial) -> BaseException | str | None:
    """The latest error of a Tune trial, read from the trial's local error files as soon as Tune wrote
    them (``Trial.get_error`` reads the synced copy, which lags behind)."""
    import cloudpickle

    for path, load in ((trial.pickled_error_file, "pickle"), (trial.error_file, "text")):
        try:
            if path and Path(path).is_file():
                raw = Path(path).read_bytes()
                return cloudpickle.loads(raw) if load == "pickle" else raw.decode(errors="replace")
        except Exception:  # noqa: BLE001, S112 - an unreadable error file: try the next, report without it
            continue
    return None


def _restarts_callback(folders: list[str], log: Callable[[str], None]):
    """A Tune callback that says in one line when a trial failed and Tune restarts it from its last
    checkpoint, and counts every job's failed attempts (``.attempts``: job index -> count)."""
    from ray import tune

    class Restarts(tune.Callback):
        def __init__(self) -> None:
            self.attempts: dict[int, int] = {}

        def on_trial_recover(self, iteration, trials, trial, **info) -> None:
            job = trial.config["job"]
            self.attempts[job] = self.attempts.get(job, 0) + 1
            log(
                f"trial {folders[job]} failed (attempt {self.attempts[job]}): {first_line(_error(trial))}; "
                "Ray Tune restarts it from its last checkpoint"
            )

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            job = trial.config["job"]
            self.attempts[job] = self.attempts.get(job, 0) + 1

        def __reduce__(self):  # Tune pickles its callbacks with the experiment: keep no caller's ``log``
            return (_restarts_callback, (folders, print))

    return Restarts()


def _numbers(record: dict) -> dict:
    return {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def run_job(
    cfg: HRMASConfig,
    folder: str | Path,
    kind: str,
    data: SplitData,
    device: str = "cpu",
    on_epoch: Callable[[dict], None] | None = None,
) -> dict:
    """One job, the same whether Ray Tune or a plain process runs it: a finished folder's
    ``result.json`` is read back; an HRMAS job (``kind="hrmas"``) resumes from the folder's checkpoint
    if there is one (``on_epoch`` gets every epoch's record after the checkpoint is written); a baseline
    (:data:`~snn_motifs.search.baselines.BASELINES`) trains and writes ``result.json`` once at the end."""
    from .baselines import train_baseline
    from .runner import HRMASRun

    out = Path(folder)
    if (out / "result.json").exists():
        return read_json(out / "result.json", "result")
    if kind != "hrmas":  # a baseline without search: written once at the end
        result = train_baseline(kind, cfg, data, device=device)
        write_json(out / "result.json", result)
        return result
    run = HRMASRun(cfg, data, out, device, progress=False, log=lambda s: None, on_epoch=on_epoch)
    return run.run(resume=run.checkpoint_path.exists())


def _trial(config: dict, jobs: list, data: SplitData, device: str, threads: int) -> None:
    """The Tune trainable: run job ``config["job"]`` (:func:`run_job`) and report its epochs."""
    from ray import tune

    torch.set_num_threads(threads)
    cfg_dict, folder, kind = jobs[config["job"]]
    out = Path(folder)
    restored = tune.get_checkpoint()  # a trial Tune restarts elsewhere brings its last checkpoint
    if kind == "hrmas" and restored is not None and not (out / "checkpoint.pt").exists():
        with restored.as_directory() as saved:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(saved) / "checkpoint.pt", out / "checkpoint.pt")

    def report(record: dict) -> None:  # every epoch: its numbers and the run's checkpoint, through Tune
        with tempfile.TemporaryDirectory() as saved:
            shutil.copy2(out / "checkpoint.pt", Path(saved) / "checkpoint.pt")
            tune.report(_numbers(record), checkpoint=tune.Checkpoint.from_directory(saved))

    result = run_job(HRMASConfig(**cfg_dict), out, kind, data, device, on_epoch=report)
    tune.report({"test_acc": result["test_acc"], "done": 1.0})


def run_trials(
    jobs: list[tuple[HRMASConfig, Path] | tuple[HRMASConfig, Path, str]],
    data: SplitData,
    *,
    workers: int | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    device: str = "cpu",
    storage: Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    max_failures: int = 2,
    callbacks: list | None = None,
    threads: int | None = None,
) -> list[dict]:
    """Run every ``(config, run folder)`` job as a Ray Tune trial (at most ``workers`` at once); returns
    the jobs' ``result.json`` contents in job order. Tune's own experiment state goes to ``storage``; with
    ``resume`` an interrupted experiment there is continued with ``Tuner.restore``.

    A job ``(config, folder, kind)`` with ``kind`` one of :data:`~snn_motifs.search.baselines.BASELINES`
    trains that baseline instead of a search (:func:`~snn_motifs.search.baselines.train_baseline`).
    A trial whose worker dies (or raises) is restarted up to ``max_failures`` times (Tune's
    ``FailureConfig``; an HRMAS trial continues from its last epoch's checkpoint), each restart logged in
    one line; a trial that fails every time raises :class:`TrialsFailed` (one line) once the others
    ended. ``callbacks`` are Tune callbacks of the driver, e.g. to rewrite a results table whenever a trial
    completes. Every trial trains with ``threads`` torch threads (default: the CPUs it declares,
    ``cpus_per_trial``, at least 1), so a trial's result is that of the sequential path with as many
    threads, whatever the worker's default. Tune's own console output is silenced (:func:`quiet_tune`)."""
    require("ray.tune", "distributed", "running seeds and ablations as Ray Tune trials")
    import ray
    from ray import tune

    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=int(max(1, (workers or 1) * cpus_per_trial)), include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING)  # fmt: skip
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    plain = [
        (dataclasses.asdict(job[0]), str(Path(job[1]).resolve()), (*job[2:], "hrmas")[0]) for job in jobs
    ]
    restarts = _restarts_callback([folder for _, folder, _ in plain], log)
    trainable = tune.with_parameters(
        _trial, jobs=plain, data=data, device=device, threads=threads or max(1, int(cpus_per_trial))
    )
    trainable = tune.with_resources(trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    experiment = Path(storage).resolve() / "trials"
    if resume and tune.Tuner.can_restore(str(experiment)):  # a killed driver: Tune's restore
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"job": tune.grid_search(list(range(len(jobs))))},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers),
            run_config=tune.RunConfig(
                name="trials",
                storage_path=str(experiment.parent),
                verbose=0,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                failure_config=tune.FailureConfig(max_failures=max_failures),
                callbacks=[restarts, *(callbacks or [])],
            ),
        )
    with quiet_tune():
        grid = tuner.fit()
    failed = [r for r in grid if r.error is not None]
    if failed:
        job = failed[0].config["job"]
        tries = restarts.attempts.get(job) or max_failures + 1
        others = f"; {len(failed) - 1} other trial(s) failed too" if len(failed) > 1 else ""
        raise TrialsFailed(
            f"Ray Tune trial {plain[job][1]} failed {tries} time(s) (restarted from its last checkpoint "
            f"up to max_failures={max_failures} times); last error: {first_line(failed[0].error)}{others}; "
            "fix the cause (or raise --max-failures) and run again with --resume to continue: finished "
            "trials are kept"
        )
    log(f"{len(jobs)} trial(s) done on Ray ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)")
    return [read_json(Path(folder) / "result.json", "result") for _, folder, _ in plain]
