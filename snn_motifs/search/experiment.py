"""A whole experiment as ``snn-motifs search`` runs it, callable from a notebook:
:func:`run` = seeds x (search -> retrain -> test), optionally the same search without IP and the dense
recurrent baseline, a ``summary.json`` and the figures.

Folder layout (``out``)::

    config.json            the config every seed ran with (checked again on --resume)
    run_info.json          library version and data fingerprint (checked again on --resume)
    seed<k>/               one HRMASRun each: checkpoint.pt, genotype.json, history.json, result.json
    no_ip/                 --compare-ip: the same search without SpiKL-IP (config.json, seed<k>/)
    dense_baseline.json    the fully connected RSNN of the same size, same training
    summary.json           best / mean / std of the test accuracy over the seeds, every seed's result
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .._io import fingerprint, read_json, remove_stale_temps, write_json
from ..datasets import SplitData, load_dataset
from .baselines import train_dense_baseline, with_ablation
from .config import HRMASConfig, config_diff, load_config
from .genotype import Genotype
from .runner import HRMASRun

__all__ = [
    "run",
    "run_seeds",
    "load_data",
    "summarise",
    "dense_baseline",
    "check_device",
    "check_folder",
    "figures",
]


def load_data(cfg: HRMASConfig, max_train: int | None = None) -> SplitData:
    """The data set ``cfg.dataset`` names (``ti46_root``/``ti46_split`` from the config)."""
    return load_dataset(cfg.dataset, ti46_root=cfg.ti46_root, ti46_split=cfg.ti46_split, max_train=max_train)


def check_device(name: str) -> str:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: CUDA is not available on this machine (use 'cpu')")
    return name


def summarise(results: list[dict]) -> dict:
    """Best, mean and (population) standard deviation of the seeds' test accuracies."""
    accs = [r["test_acc"] for r in results]
    return {"best": max(accs), "mean": statistics.mean(accs), "std": statistics.pstdev(accs), "runs": results}


def check_folder(out: Path, cfg: HRMASConfig, resume: bool) -> None:
    """Refuse a used folder unless resuming; on resume, refuse a changed config (nothing is written)."""
    stored = out / "config.json"
    if resume and stored.is_file():
        diff = config_diff(read_json(stored, "config"), dataclasses.asdict(cfg))
        if diff:
            raise ValueError(
                f"{out} was run with a different config (differs in {diff}); resume with the same config "
                "and options, or choose another --out"
            )
    elif out.exists() and any(out.iterdir()) and not resume:
        raise ValueError(
            f"output directory {out} exists; pass --resume to continue it or choose another --out"
        )


def provenance(data: SplitData) -> dict:
    """What a resumed run must share with the original besides the config: the library version and a
    fingerprint of the data (``--max-train`` or a changed data file change it)."""
    from .. import __version__

    return {
        "snn_motifs": __version__,
        "data": fingerprint(data.x_train, data.y_train, data.x_test, data.y_test),
    }


def check_provenance(out: Path, info: dict, resume: bool) -> None:
    """On resume, refuse a run folder written by another library version or for other data."""
    stored = out / "run_info.json"
    if resume and stored.is_file():
        diff = config_diff(read_json(stored, "run info"), info)
        if diff:
            raise ValueError(
                f"{out} was run with a different {' and '.join(diff)} ({read_json(stored)} now {info}); "
                "resume with the same data and library version, or choose another --out"
            )


def run_seeds(
    cfg: HRMASConfig,
    data: SplitData,
    out: Path,
    seeds: range,
    resume: bool,
    device: str,
    progress: bool,
    log: Callable[[str], None],
) -> list[dict]:
    """One :class:`HRMASRun` per seed in ``out/seed<k>``; finished seeds are read back on resume."""
    results = []
    for seed in seeds:
        run_dir = out / f"seed{seed}"
        if resume and (run_dir / "result.json").exists():
            results.append(read_json(run_dir / "result.json", "result"))
            continue
        run = HRMASRun(dataclasses.replace(cfg, seed=seed), data, run_dir, device, progress, log)
        results.append(run.run(resume=resume and run.checkpoint_path.exists()))
        log(f"seed {seed}: test accuracy {results[-1]['test_acc']:.4f}")
    return results


def dense_baseline(cfg: HRMASConfig, data: SplitData, device: str, out: Path) -> dict:
    """:func:`~snn_motifs.search.baselines.train_dense_baseline`, cached in ``out/dense_baseline.json``."""
    path = out / "dense_baseline.json"
    if path.exists():
        return read_json(path, "dense baseline result")
    return read_json(write_json(path, train_dense_baseline(cfg, data, device=device)))


def run(
    config: HRMASConfig | str | Path | None = None,
    out: str | Path | None = None,
    *,
    seeds: int = 1,
    seed: int | None = None,
    ablation: str = "none",
    baseline: bool = True,
    compare_ip: bool = False,
    resume: bool = False,
    device: str = "cpu",
    max_train: int | None = None,
    plots: bool = True,
    progress: bool = True,
    data: SplitData | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Search, retrain and test ``seeds`` seeds from ``seed`` (default: the config's); returns the summary.

    ``config`` is an :class:`HRMASConfig`, a JSON file or a packaged config name (default
    ``mnist1d_default``); ``ablation`` one of :data:`~snn_motifs.search.baselines.ABLATIONS`. ``out``
    defaults to ``runs/<dataset>_<ablation>``. ``data`` overrides the data set the config names.
    Ctrl-C leaves a checkpoint behind and raises :class:`~snn_motifs.search.runner.Interrupted`; run again
    with ``resume=True`` to continue.
    """
    cfg = config if isinstance(config, HRMASConfig) else load_config(config)
    cfg = with_ablation(cfg, ablation)
    cfg = dataclasses.replace(cfg, seed=cfg.seed if seed is None else seed)
    out = Path(out or f"runs/{cfg.dataset}_{ablation}")
    device = check_device(device)
    no_ip = dataclasses.replace(cfg, ip=False) if compare_ip and cfg.ip and cfg.search == "hrmas" else None
    check_folder(out, cfg, resume)
    if no_ip is not None:
        check_folder(out / "no_ip", no_ip, resume)
    data = load_data(cfg, max_train) if data is None else data
    info = provenance(data)
    check_provenance(out, info, resume)
    remove_stale_temps(out)
    write_json(out / "config.json", dataclasses.asdict(cfg))
    write_json(out / "run_info.json", info)
    start = time.perf_counter()
    results = run_seeds(cfg, data, out, range(cfg.seed, cfg.seed + seeds), resume, device, progress, log)
    if no_ip is not None:
        write_json(out / "no_ip" / "config.json", dataclasses.asdict(no_ip))
        first = range(cfg.seed, cfg.seed + 1)
        res = run_seeds(no_ip, data, out / "no_ip", first, resume, device, progress, log)
        log(f"without IP (seed {cfg.seed}): test accuracy {res[0]['test_acc']:.4f}")
    summary = summarise(results)
    baseline_result = dense_baseline(cfg, data, device, out) if baseline else None
    summary.update(config=dataclasses.asdict(cfg), ablation=ablation, seconds=time.perf_counter() - start)
    summary["dense_baseline"] = baseline_result
    write_json(out / "summary.json", summary)
    _report(summary, results, cfg, log)
    if plots:
        figures(out, log)
    log(f"results in {out}/ (summary.json, seed*/genotype.json, seed*/history.json, figures)")
    return summary


def _report(summary: dict, results: list[dict], cfg: HRMASConfig, log: Callable[[str], None]) -> None:
    log(f"found genotype (seed {cfg.seed}): {Genotype.from_dict(results[0]['genotype']).summary()}")
    log(
        f"test accuracy: best {summary['best']:.4f}, mean {summary['mean']:.4f} +- {summary['std']:.4f} "
        f"over {len(results)} seed(s)"
    )
    if summary["dense_baseline"] is not None:
        acc = summary["dense_baseline"]["test_acc"]
        log(f"dense-recurrent baseline (N={cfg.hidden}, same training): test accuracy {acc:.4f}")


def figures(out: str | Path, log: Callable[[str], None] = print) -> None:
    """Write every figure of a search folder (:func:`snn_motifs.plots.plot_run`), if matplotlib is there."""
    try:
        from ..plots import plot_run
    except ImportError as exc:
        log(f"(no figures: {exc})")
        return
    for path in plot_run(out):
        log(f"figure: {path}")
