"""Hyper-parameter sweeps of the search on Ray Tune: Optuna proposes, ASHA stops the weak early.

``sweep(config, space, trials, out)`` samples ``trials`` configurations of the keys in ``space`` (any
:class:`HRMASConfig` field: ``lr``, ``arch_lr``, ``tau_mem``, ``motif_sizes``, ``mu``, ``ip_lr``, ...), runs
each as a Tune trial (the search phases of one :class:`~snn_motifs.search.runner.HRMASRun`), reports the
search-validation accuracy of every epoch to Tune, and lets ``OptunaSearch`` choose the next
configuration and ``ASHAScheduler`` stop trials that fall behind at the same epoch. The objective is the
search's own validation split (half the training set, the HRMAS paper's protocol), never the test set:
trials stop after the search (no retraining); run the best configuration with ``snn-motifs search``.

A space is plain JSON, one entry per key: ``{"lr": {"loguniform": [1e-3, 1e-1]}, "tau_mem": {"uniform":
[4, 32]}, "epochs_size": {"randint": [2, 8]}, "motif_sizes": {"choice": [[2, 4, 8], [4, 8, 16]]}}``.
Results: ``out/sweep.json`` and ``out/sweep.csv`` (one row per trial) and ``out/sweep.png`` (the metric
per trial, best so far).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

from .._io import atomic_write_text, hold_run_folder, read_json, run_folder_scope, write_json
from .._optional import require
from ..datasets import SplitData
from .config import HRMASConfig, load_config, renamed_keys

__all__ = ["sweep", "parse_space", "SPACE_KINDS"]

SPACE_KINDS = ("uniform", "loguniform", "randint", "choice")


def parse_space(space: dict | str | Path) -> dict:
    """A JSON space (dict or file) as Tune sampling objects; unknown keys and kinds are refused."""
    from ray import tune

    if not isinstance(space, dict):
        space = read_json(space, "search space")
    if not isinstance(space, dict) or not space:
        raise ValueError(f"a search space is a non-empty JSON object of config keys, got {space!r}")
    space = renamed_keys(space, warn=True)  # an old key name (loss) is swept as its new one (readout)
    known = {f.name for f in dataclasses.fields(HRMASConfig)}
    out = {}
    for key, spec in space.items():
        if key not in known:
            raise ValueError(f"space key {key!r} is not a config key; known: {sorted(known)}")
        if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in SPACE_KINDS):
            raise ValueError(
                f"space entry {key!r} must be one of {{kind: arguments}} with kind in {SPACE_KINDS}"
            )
        kind, args = next(iter(spec.items()))
        if kind == "choice":
            out[key] = tune.choice(list(args))
        else:
            lo, hi = args
            out[key] = getattr(tune, kind)(lo, hi)
    return out


def _trial(config: dict, base: dict, data: SplitData, out: str, threads: int = 1) -> None:
    import torch
    from ray import tune

    from .runner import HRMASRun

    torch.set_num_threads(threads)  # the CPUs the trial declares (results depend on the thread count)

    cfg = HRMASConfig(**{**base, **config})
    folder = Path(out) / "trials" / tune.get_context().get_trial_id()

    def report(record: dict) -> None:
        if "valid_acc" in record:
            tune.report({"valid_acc": float(record["valid_acc"])})

    run = HRMASRun(cfg, data, folder, progress=False, log=lambda s: None, tensorboard=False, on_epoch=report)
    run.run(resume=run.checkpoint_path.exists())  # a restarted trial continues from its checkpoint


@run_folder_scope  # releases the lock hold_run_folder takes on ``out`` when the sweep returns or raises
def sweep(
    config: HRMASConfig | str | Path | None,
    space: dict | str | Path,
    trials: int,
    out: str | Path,
    *,
    data: SplitData | None = None,
    max_train: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1,
    log: Callable[[str], None] = print,
    max_failures: int = 2,
) -> list[dict]:
    """Sample ``trials`` configurations with Optuna, early-stop with ASHA; returns the rows of the table.

    A trial whose worker dies or fails is restarted up to ``max_failures`` times (Tune's
    ``FailureConfig``), continuing from its run folder's checkpoint; trials that fail every time are rows
    without ``valid_acc``, reported in one line."""
    require("ray.tune", "distributed", "hyper-parameter sweeps")
    require("optuna", "distributed", "hyper-parameter sweeps (Optuna)")
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from .config import load_data

    base = config if isinstance(config, HRMASConfig) else load_config(config)
    base = dataclasses.replace(base, epochs_retrain=0, seed=seed)
    param_space = parse_space(space)
    data = load_data(base, max_train) if data is None else data
    out = Path(out)
    hold_run_folder(out)  # one process per folder: a second sweep on ``out`` is refused
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else int(max(1, (workers or 1) * cpus_per_trial)),
                 include_dashboard=False, log_to_driver=False)  # fmt: skip
    epochs = base.epochs_size + base.epochs_types
    threads = max(1, int(cpus_per_trial))
    trainable = tune.with_parameters(
        _trial, base=dataclasses.asdict(base), data=data, out=str(out.resolve()), threads=threads
    )
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus_per_trial}),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric="valid_acc",
            mode="max",
            search_alg=OptunaSearch(seed=seed),
            scheduler=ASHAScheduler(max_t=max(1, epochs), grace_period=1, reduction_factor=2),
            num_samples=trials,
            max_concurrent_trials=workers,
        ),
        run_config=tune.RunConfig(
            name="sweep",
            storage_path=str((out / "ray").resolve()),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=max_failures),
        ),
    )
    from .trials import first_line, quiet_tune

    with quiet_tune():
        grid = tuner.fit()
    rows = []
    for i, result in enumerate(grid):
        metrics = result.metrics or {}
        row = {"trial": i, **{k: result.config[k] for k in param_space}}
        row.update(valid_acc=metrics.get("valid_acc"), epochs=metrics.get("training_iteration", 0))
        rows.append(row)
    _write(out, rows, list(param_space))
    failed = [r for r in grid if r.error is not None]
    if failed:
        log(
            f"{len(failed)} of {len(rows)} sweep trial(s) failed after {max_failures + 1} attempt(s) "
            f"(their rows have no valid_acc); first error: {first_line(failed[0].error)}"
        )
    best = max((r for r in rows if r["valid_acc"] is not None), key=lambda r: r["valid_acc"], default=None)
    if best is not None:
        log(f"best of {len(rows)} trials: valid_acc {best['valid_acc']:.4f} with "
            + ", ".join(f"{k}={best[k]!r}" for k in param_space))  # fmt: skip
    return rows


def _write(out: Path, rows: list[dict], keys: list[str]) -> None:
    write_json(out / "sweep.json", {"rows": rows})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["trial", *keys, "valid_acc", "epochs"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "sweep.csv", buffer.getvalue())
    try:
        from ..plots import plot_sweep
    except ImportError:
        return
    plot_sweep(rows, out / "sweep.png")
