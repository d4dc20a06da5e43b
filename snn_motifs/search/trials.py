"""Seeds and ablations as Ray Tune trials: each (config, run folder) one trial with declared resources,
on a local Ray (``ray.init()``) or an existing cluster (``address="auto"`` or ``"ray://host:10001"``).

A trial is one :class:`~snn_motifs.search.runner.HRMASRun` in the run folder the sequential path would use,
so the folder layout, checkpoints and results are the same; a trial whose ``result.json`` exists returns
it at once, an unfinished one resumes from its checkpoint. Every epoch the run's checkpoint is also
reported through Tune's checkpoint API, so a trial Tune restarts on another node gets it back, and a
killed driver continues with ``Tuner.restore`` (``resume=True``). Every epoch's numbers are reported to Tune
(``valid_acc`` during the search, ``train_loss`` while retraining, ``test_acc`` at the end). Needs the
``[distributed]`` extra (``ray[tune]``). No scheduler, pool or socket code of our own: Ray runs the trials.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from .._io import read_json, write_json
from .._optional import require
from ..datasets import SplitData
from .config import HRMASConfig

__all__ = ["run_trials"]


def _numbers(record: dict) -> dict:
    return {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _trial(config: dict, jobs: list, data: SplitData, device: str, threads: int) -> None:
    """The Tune trainable: run job ``config["job"]`` and report its epochs."""
    from ray import tune

    from .baselines import train_baseline
    from .runner import HRMASRun

    torch.set_num_threads(threads)
    cfg_dict, folder, kind = jobs[config["job"]]
    out = Path(folder)
    if (out / "result.json").exists():
        tune.report({"test_acc": read_json(out / "result.json", "result")["test_acc"], "done": 1.0})
        return
    if kind != "hrmas":  # a baseline without search: minutes, written once at the end
        result = train_baseline(kind, HRMASConfig(**cfg_dict), data, device=device)
        write_json(out / "result.json", result)
        tune.report({"test_acc": result["test_acc"], "done": 1.0})
        return
    restored = tune.get_checkpoint()  # a trial Tune restarts elsewhere brings its last checkpoint
    if restored is not None and not (out / "checkpoint.pt").exists():
        with restored.as_directory() as folder:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(folder) / "checkpoint.pt", out / "checkpoint.pt")

    def report(record: dict) -> None:  # every epoch: its numbers and the run's checkpoint, through Tune
        with tempfile.TemporaryDirectory() as folder:
            shutil.copy2(out / "checkpoint.pt", Path(folder) / "checkpoint.pt")
            tune.report(_numbers(record), checkpoint=tune.Checkpoint.from_directory(folder))

    run = HRMASRun(
        HRMASConfig(**cfg_dict), data, out, device, progress=False, log=lambda s: None, on_epoch=report
    )
    result = run.run(resume=run.checkpoint_path.exists())
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
) -> list[dict]:
    """Run every ``(config, run folder)`` job as a Ray Tune trial (at most ``workers`` at once); returns
    the jobs' ``result.json`` contents in job order. Tune's own experiment state goes to ``storage``; with
    ``resume`` an interrupted experiment there is continued with ``Tuner.restore``.

    A job ``(config, folder, kind)`` with ``kind`` one of :data:`~snn_motifs.search.baselines.BASELINES`
    trains that baseline instead of a search (:func:`~snn_motifs.search.baselines.train_baseline`).
    A trial whose worker dies is restarted up to ``max_failures`` times (Tune's ``FailureConfig``; an HRMAS
    trial continues from its last epoch's checkpoint). ``callbacks`` are Tune callbacks of the driver,
    e.g. to rewrite a results table whenever a trial completes."""
    require("ray.tune", "distributed", "running seeds and ablations as Ray Tune trials")
    import ray
    from ray import tune

    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=int(max(1, (workers or 1) * cpus_per_trial)), include_dashboard=False,
                     log_to_driver=False)  # fmt: skip
        else:
            ray.init(address=address, log_to_driver=False)
    plain = [
        (dataclasses.asdict(job[0]), str(Path(job[1]).resolve()), (*job[2:], "hrmas")[0]) for job in jobs
    ]
    trainable = tune.with_parameters(
        _trial, jobs=plain, data=data, device=device, threads=max(1, int(cpus_per_trial))
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
                callbacks=callbacks,
            ),
        )
    grid = tuner.fit()
    failed = [r for r in grid if r.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} Ray Tune trial(s) failed; first error: {failed[0].error}")
    log(f"{len(jobs)} trial(s) done on Ray ({ray.cluster_resources().get('CPU', 0):.0f} CPUs)")
    return [read_json(Path(folder) / "result.json", "result") for _, folder, _ in plain]
