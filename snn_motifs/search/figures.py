"""The figures of an HRMAS run folder (:func:`plot_run`): the motif, the recurrent matrix, the
architecture probabilities, validation curves, a spike raster of the retrained network and the result
against the baselines, each drawn by :mod:`snn_motifs.plots` from what the folder holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .._io import load_torch, read_json
from ..plots import (
    plot_alpha,
    plot_motif,
    plot_raster,
    plot_result,
    plot_validation,
    plot_weight_matrix,
    run_context,
)
from ..scml import SCML
from .config import HRMASConfig, load_data
from .genotype import Genotype
from .retrain import NotRetrainedError, load_trained

__all__ = ["plot_run", "write_figures"]


def plot_run(out: str | Path, data=None) -> list[Path]:
    """Every figure for a search output directory (``seed*/`` subfolders with history and genotype, and
    ``result.png`` from its ``summary.json``). ``data`` (a :class:`~snn_motifs.datasets.SplitData`) is what
    the raster runs the retrained network on; by default the data set its config names, skipped when that
    does not fit the network (a run on data passed in by hand)."""
    out = Path(out)
    written: list[Path] = []
    config = read_json(out / "config.json", "config") if (out / "config.json").exists() else {}
    cfg = HRMASConfig.from_file(out / "config.json") if config else HRMASConfig()
    for seed_dir in sorted(p for p in out.glob("seed*") if p.is_dir()):
        context = run_context(config, seed_dir.name.removeprefix("seed")) if config else seed_dir.name
        gpath, hpath = seed_dir / "genotype.json", seed_dir / "history.json"
        if gpath.exists():
            genotype = Genotype.from_json(gpath)
            written.append(plot_motif(genotype.topology, seed_dir / "motif.png", context=context))
            matrix, retrained = _final_matrix(seed_dir, genotype)
            what = "retrained" if retrained else "initial (not retrained yet)"
            written.append(
                plot_weight_matrix(
                    matrix,
                    seed_dir / "weights.png",
                    f"{what} recurrent weights [post, pre], motif size v={genotype.topology.motif_size}",
                    context,
                )
            )
        if hpath.exists():
            history = read_json(hpath, "history")
            if any("size_probs" in h for h in history):
                aware = bool(cfg.cost_weight) if config else None
                written.append(
                    plot_alpha(history, cfg.effective_options(), seed_dir / "alpha.png", context, aware)
                )
        raster = _raster(seed_dir, data)
        if raster is not None:
            written.append(
                plot_raster(raster, seed_dir / "raster.png", "retrained SC-ML, first test sample", context)
            )
    histories = {}
    for run_dir in (out, out / "no_ip"):
        for seed_dir in sorted(run_dir.glob("seed*")):
            h = seed_dir / "history.json"
            if h.exists() and (run_dir / "config.json").exists():
                run_cfg = read_json(run_dir / "config.json", "config")
                if run_cfg.get("search") == "hrmas":
                    ip = "with SpiKL-IP" if run_cfg.get("ip", True) else "without SpiKL-IP"
                    histories[f"{ip}, seed {seed_dir.name.removeprefix('seed')}"] = read_json(h, "history")
    if histories:
        context = run_context({**config, "ip": None}) if config else ""
        written.append(plot_validation(histories, out / "validation.png", context))
    if (out / "summary.json").exists():
        summary = read_json(out / "summary.json", "summary")
        extra = {}
        for result in sorted((out / "no_ip").glob("seed*/result.json")):
            extra[f"HRMAS without IP\n(seed {result.parent.name.removeprefix('seed')})"] = read_json(
                result, "result"
            )
        written.append(plot_result(summary, out / "result.png", run_context(config) if config else "", extra))
    return written


def write_figures(out: str | Path, log: Callable[[str], None] = print) -> None:
    """Write every figure of a search folder (:func:`plot_run`), if matplotlib is there."""
    try:
        written = plot_run(out)
    except ImportError as exc:
        log(f"(no figures: {exc})")
        return
    for path in written:
        log(f"figure: {path}")


def _raster(seed_dir: Path, data=None) -> torch.Tensor | None:
    """Hidden spikes ``[T, N]`` of the retrained network on the first test sample of ``data`` (default: the
    data set of the run's config), or None when the run has not retrained yet, its data set is not
    available here, or it does not fit the network (a run on data passed in by hand)."""
    if not (seed_dir / "checkpoint.pt").is_file():
        return None
    try:
        model, _, cfg = load_trained(seed_dir)
        x = (load_data(cfg) if data is None else data).x_test[:1].transpose(0, 1)
    except (FileNotFoundError, ImportError) as exc:
        print(f"(no raster for {seed_dir}: {exc})")
        return None
    except NotRetrainedError:
        return None
    if x.shape[-1] != model.hidden.in_features:
        print(
            f"(no raster for {seed_dir}: the network takes {model.hidden.in_features} input channels, the "
            f"{cfg.dataset} data {x.shape[-1]}; the run had other data: plot_run(out, data=...))"
        )
        return None
    with torch.no_grad():
        spikes, _ = model.hidden.run(x * model.input_gain)
    return spikes[:, 0]


def _final_matrix(seed_dir: Path, genotype: Genotype) -> tuple[torch.Tensor, bool]:
    """The retrained SC-ML's recurrent matrix and True if the checkpoint has it, else the initial one and
    False."""
    layer = SCML(1, genotype.n_neurons, topology=genotype.topology)
    ckpt = seed_dir / "checkpoint.pt"
    retrained = False
    if ckpt.exists():
        blob = load_torch(ckpt)
        state = blob.get("final_model") or {}
        with torch.no_grad():
            for name in ("intra_weight", "lateral_weight"):
                key = f"hidden.{name}"
                if key in state and getattr(layer, name) is not None:
                    getattr(layer, name).copy_(state[key])
                    retrained = True
    return layer.recurrent_matrix(), retrained
