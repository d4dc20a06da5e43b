"""A whole experiment as ``snn-motifs search`` runs it, callable from a notebook:
:func:`run_method` = seeds x (search -> retrain -> test) of one config, optionally the same search without
IP and the dense recurrent baseline, a ``summary.json`` and the figures; :func:`run_ablations` runs every
ablation so and tabulates them (``ablations.json``); :func:`run` (``snn-motifs search``) is either.

Folder layout (``out``)::

    .lock                  while a process runs here: its pid, host and start time (a second one is refused)
    config.json            the config every seed ran with (checked again on --resume), and under
                           "execution" how the run was executed (engine, threads, versions; not checked)
    run_info.json          library version and data fingerprint (checked again on --resume)
    seed<k>/               one HRMASRun each: checkpoint.pt, genotype.json, history.json, result.json
    no_ip/                 --compare-ip: the same search without SpiKL-IP (config.json, seed<k>/)
    dense_baseline.json    the fully connected RSNN of the same size, same training
    summary.json           best / mean / std of the test accuracy over the seeds, every seed's result,
                           the dense baseline's and the "execution" block
    ray/                   the Ray path: Tune's experiment state (and the dense baseline's trial)
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from .._io import (
    fingerprint,
    folder_has_files,
    hold_run_folder,
    read_json,
    remove_stale_temps,
    run_folder_scope,
    write_json,
)
from .._optional import require
from ..datasets import SplitData
from ..metrics import COST_KEYS
from ..training import distributed_info
from .baselines import ABLATIONS, train_dense_baseline, with_ablation
from .config import HRMASConfig, check_memory, config_diff, load_config, load_data
from .figures import write_figures
from .genotype import Genotype
from .runner import HRMASRun, Interrupted

__all__ = [
    "run",
    "run_method",
    "run_ablations",
    "ablation_table",
    "run_one",
    "summarise",
    "dense_baseline",
    "check_device",
    "check_folder",
    "preflight",
    "execution_info",
    "torch_threads",
]


def check_device(name: str) -> str:
    """``name`` if networks can train there (``cpu``, ``cuda``, ``cuda:N``, ``mps`` where it exists), else a
    one-line ``ValueError`` saying what to use."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {name!r} is not a device name; use 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cpu":
        return name
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available on this machine (use 'cpu')")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"device {name!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
        return name
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {name!r}: Apple's MPS is not available on this machine (use 'cpu')")
        return name
    raise ValueError(
        f"device {name!r} cannot train networks (no data on it, or not supported here); "
        "use 'cpu' or 'cuda[:N]'"
    )


def check_out(out: Path) -> None:
    """Refuse an output folder that is a file, or lies under one (one line, before anything is written)."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                where = "is a file" if path == out else f"lies under {path}, which is a file"
                raise ValueError(f"output folder {out} {where}; choose a folder with --out")
            return


def check_data(data: SplitData) -> None:
    """Refuse data a search cannot run on: no time steps, fewer than two training samples (the search
    halves them) or no test sample."""
    x, xt = data.x_train, data.x_test
    if x.dim() != 3 or xt.dim() != 3:
        raise ValueError(f"data must be [samples, steps, channels]; got {list(x.shape)} and {list(xt.shape)}")
    if x.shape[1] < 1 or xt.shape[1] < 1:
        raise ValueError(
            f"the data has T = {min(x.shape[1], xt.shape[1])} time steps; a spiking network needs T >= 1"
        )
    if len(data.y_train) < 2 or len(data.y_test) < 1:
        raise ValueError(
            f"the data has {len(data.y_train)} training and {len(data.y_test)} test samples; the search "
            "needs at least 2 training samples (it halves them) and 1 test sample (check --max-train)"
        )


def summarise(results: list[dict]) -> dict:
    """Best, mean and (population) standard deviation of the seeds' test accuracies, and the mean and
    standard deviation of each cost metric (:data:`snn_motifs.metrics.COST_KEYS`) over the seeds."""
    accs = [r["test_acc"] for r in results]
    summary = {"best": max(accs), "mean": statistics.mean(accs), "std": statistics.pstdev(accs)}
    costs = [r["cost"] for r in results if "cost" in r]
    if costs:
        summary["cost"] = {k: statistics.mean(c[k] for c in costs) for k in COST_KEYS}
        summary["cost_std"] = {k: statistics.pstdev(c[k] for c in costs) for k in COST_KEYS}
    return {**summary, "runs": results}


def check_folder(out: Path, cfg: HRMASConfig, resume: bool, started: bool = True) -> None:
    """Refuse a used folder unless resuming; on resume, refuse a changed config and (``started``) a folder
    where no run started (no ``config.json``); nothing is written."""
    stored = out / "config.json"
    if resume and started and not stored.is_file():
        raise ValueError(
            f"nothing to resume in {out}: no run started there (no config.json); run without --resume"
        )
    if resume and stored.is_file():
        diff = config_diff(read_json(stored, "config"), dataclasses.asdict(cfg))
        if diff:
            raise ValueError(
                f"{out} was run with a different config (differs in {diff}); resume with the same config "
                "and options, or choose another --out"
            )
    elif folder_has_files(out) and not resume:
        raise ValueError(
            f"output directory {out} exists; pass --resume to continue it or choose another --out"
        )


def preflight(cfg: HRMASConfig, data: SplitData, device: str = "cpu") -> None:
    """Refuse, before anything is written or allocated, a config whose network cannot be built on ``data``:
    motif-size options that do not divide ``hidden``, or sizes whose memory estimate exceeds the device's
    memory (:func:`~snn_motifs.search.config.check_memory`)."""
    from .space import check_options

    check_options(cfg.hidden, cfg.effective_options())
    check_memory(cfg, data.n_channels, data.n_steps, data.n_classes, device)


def provenance(data: SplitData) -> dict:
    """What a resumed run must share with the original besides the config: the library version and a
    fingerprint of the data (``--max-train`` or a changed data file change it)."""
    from .. import __version__

    return {
        "snn_motifs": __version__,
        "data": fingerprint(data.x_train, data.y_train, data.x_test, data.y_test),
    }


def execution_info(
    device: str,
    threads: int,
    *,
    workers: int | None = None,
    address: str | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float | None = None,
) -> dict:
    """How a run is executed, recorded in ``config.json`` and ``summary.json`` (``"execution"``; ``--resume``
    ignores it, so a run may continue on another engine): the engine (``sequential``, ``ray`` when
    ``workers`` or ``address`` is given, ``torchrun`` under a process group of several ranks), the world
    size, the trials at once, the Ray address (``local``: a Ray started for the run), the resources each
    trial declares, the torch threads of every process, the device and the library, torch and Python
    versions."""
    import platform

    from .. import __version__

    ray = workers is not None or address is not None
    world = distributed_info()[1]
    info = {
        "engine": "ray" if ray else "torchrun" if world > 1 else "sequential",
        "world_size": world,
        "workers": (workers or 1) if ray else 1,
        "address": (address or "local") if ray else None,
        "threads": threads,
        "device": device,
        "versions": {
            "snn_motifs": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    if ray:
        import ray as ray_module

        info.update(cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
        info["versions"]["ray"] = ray_module.__version__
    return info


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


def run_one(
    cfg: HRMASConfig,
    data: SplitData,
    folder: Path,
    resume: bool,
    device: str,
    progress: bool,
    log: Callable[[str], None],
) -> dict:
    """One :class:`HRMASRun` in ``folder``; a finished one is read back on resume."""
    if resume and (folder / "result.json").exists():
        return read_json(folder / "result.json", "result")
    run = HRMASRun(cfg, data, folder, device, progress, log)
    result = run.run(resume=resume and run.checkpoint_path.exists())
    log(f"seed {cfg.seed}: test accuracy {result['test_acc']:.4f}")
    return result


def dense_baseline(
    cfg: HRMASConfig, data: SplitData, device: str, out: Path, trials: dict | None = None
) -> dict:
    """:func:`~snn_motifs.search.baselines.train_dense_baseline`, cached in ``out/dense_baseline.json``.

    ``trials``: the keyword arguments of :func:`~snn_motifs.search.trials.run_trials` (the Ray path):
    the baseline trains as a Ray Tune trial (kind ``"dense"``, in ``out/ray/dense_baseline/``) with the
    threads and resources every trial declares, so its result is the sequential path's."""
    path = out / "dense_baseline.json"
    if path.exists():
        return read_json(path, "dense baseline result")
    try:
        if trials is None:
            result = train_dense_baseline(cfg, data, device=device)
        else:
            from .trials import run_trials

            where = out / "ray" / "dense_baseline"
            full = run_trials([(cfg, where / "trial", "dense")], data, storage=where, **trials)[0]
            result = {k: full[k] for k in ("test_acc", "seconds", "cost")}  # train_dense_baseline's keys
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted while training the dense baseline: the seeds' results are kept; continue with "
            "--resume (the baseline is trained again)"
        ) from None
    if distributed_info()[0] == 0:
        write_json(path, result)
    return result


def run_method(
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
    workers: int | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    threads: int | None = None,
    max_failures: int = 2,
) -> dict:
    """One method: search, retrain and test ``seeds`` seeds from ``seed`` (default: the config's) of one
    config; returns its summary (``summary.json``: best / mean / std, the runs, the dense baseline).

    ``config`` is an :class:`HRMASConfig`, a JSON file or a packaged config name (default
    ``mnist1d_default``); ``ablation`` one of :data:`~snn_motifs.search.baselines.ABLATIONS` applied to it
    (every ablation at once, tabulated, is :func:`run_ablations`). ``out`` defaults to
    ``runs/<dataset>_<ablation>``. ``data`` overrides the data set the config names.
    ``workers`` (or ``address``) runs every (ablation, seed) as a Ray Tune trial, ``workers`` at once,
    each with ``cpus_per_trial`` / ``gpus_per_trial`` (:mod:`snn_motifs.search.trials`); the folders and
    results are those of the sequential path; a trial whose worker dies or fails is restarted from its
    last checkpoint up to ``max_failures`` times, and one that fails every time raises
    :class:`~snn_motifs.search.trials.TrialsFailed` (one line; ``resume=True`` continues). ``out`` is
    held by this process until ``run`` returns (rank 0 under torchrun;
    :class:`~snn_motifs._io.RunFolderLock`): a second run on it is refused with
    :class:`~snn_motifs._io.FolderInUse`. Ctrl-C leaves a checkpoint behind and raises
    :class:`~snn_motifs.search.runner.Interrupted`; run again with ``resume=True`` to continue.

    ``threads`` (default: ``cpus_per_trial``, 1) torch threads train every seed and the dense baseline, in
    this process (restored on return) or in every Ray trial: results depend on the thread count (float
    sums in another order), so the same config and threads give the same summary on every path, and one
    thread per declared CPU avoids OpenMP oversubscription. ``config.json`` and ``summary.json`` record
    how the run was executed (:func:`execution_info`).
    """
    if ablation == "all":
        raise ValueError(
            "run_method runs one method; every ablation at once is run_ablations(config, out, ...)"
        )
    options = {k: v for k, v in locals().items() if k not in ("config", "out")}
    return _experiment(_options(config, out, options))[ablation]


def run_ablations(
    config: HRMASConfig | str | Path | None = None,
    out: str | Path | None = None,
    **options,
) -> dict:
    """Every ablation of :data:`~snn_motifs.search.baselines.ABLATIONS` (``out/<ablation>/``, each as
    :func:`run_method` runs one, ``out`` defaulting to ``runs/<dataset>_all``) and the dense baseline once;
    writes and returns the table ``{ablation: {"best", "mean", "std"}}`` (``out/ablations.json`` also holds
    the dense baseline). ``options``: the keyword arguments of :func:`run_method` but ``ablation`` and
    ``compare_ip``."""
    for key in ("ablation", "compare_ip"):
        if key in options:
            raise TypeError(f"run_ablations runs every ablation; {key}= belongs to run_method")
    summaries = _experiment({**_options(config, out, options), "ablation": "all"})
    return ablation_table(summaries)


def run(config: HRMASConfig | str | Path | None = None, out: str | Path | None = None, **options) -> dict:
    """``snn-motifs search`` from Python: :func:`run_ablations` with ``ablation="all"`` (returns the table),
    else :func:`run_method` (returns the summary); ``options`` are theirs."""
    if options.get("ablation") == "all":
        options.pop("ablation")
        options.pop("compare_ip", None)  # ignored with every ablation, as the CLI always did
        return run_ablations(config, out, **options)
    return run_method(config, out, **options)


def ablation_table(summaries: dict[str, dict]) -> dict:
    """``{ablation: {"best", "mean", "std"}}`` of the ablations' summaries."""
    return {n: {k: summary[k] for k in ("best", "mean", "std")} for n, summary in summaries.items()}


def _options(config, out, options: dict) -> dict:
    """Every argument of :func:`run_method` by name, its defaults filled in: what :func:`_experiment`
    takes. An unknown keyword is a TypeError naming it, as a call of :func:`run_method` would raise."""
    try:
        bound = inspect.signature(run_method).bind(config, out, **options)
    except TypeError as exc:
        raise TypeError(f"run_ablations() {exc}; it takes run_method's keyword arguments") from None
    bound.apply_defaults()
    return dict(bound.arguments)


@run_folder_scope  # releases the run folder's lock (hold_run_folder below) when it returns or raises
def _experiment(options: dict) -> dict[str, dict]:
    """The shared body of :func:`run_method` (``ablation`` one name) and :func:`run_ablations`
    (``"all"``): every (ablation, seed) job, the dense baseline, summaries and figures; returns the summary
    of each ablation run, by name (and with ``"all"`` writes ``out/ablations.json``). ``options``: every
    argument of :func:`run_method`, by name (:func:`_options`)."""
    config, out, seeds, seed, ablation = (options[k] for k in ("config", "out", "seeds", "seed", "ablation"))
    baseline, compare_ip, resume = options["baseline"], options["compare_ip"], options["resume"]
    device, max_train, data = options["device"], options["max_train"], options["data"]
    plots, progress, log = options["plots"], options["progress"], options["log"]
    workers, address, threads = options["workers"], options["address"], options["threads"]
    cpus_per_trial, gpus_per_trial = options["cpus_per_trial"], options["gpus_per_trial"]
    max_failures = options["max_failures"]
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1 (how many seeds to run), got {seeds!r}")
    base = config if isinstance(config, HRMASConfig) else load_config(config)
    base = dataclasses.replace(base, seed=base.seed if seed is None else seed)
    threads = max(1, int(cpus_per_trial)) if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1 (torch threads per process), got {threads!r}")
    ray = workers is not None or address is not None
    if ray:  # before anything is written: the extra it needs
        require("ray.tune", "distributed", "running seeds and ablations as Ray Tune trials")
    lead = distributed_info()[0] == 0  # under torchrun every rank computes, rank 0 writes and reports
    write = write_json if lead else (lambda *args: None)
    log = log if lead else (lambda s: None)
    names = sorted(ABLATIONS) if ablation == "all" else [ablation]
    out = Path(out or f"runs/{base.dataset}_{ablation}")
    check_out(out)
    device = check_device(device)
    if lead:  # one process per run folder, held to the end, before anything (stale temps) is touched
        hold_run_folder(out)
    folders = {name: out / name if ablation == "all" else out for name in names}
    cfgs = {name: with_ablation(base, name) for name in names}
    single = cfgs[names[0]]
    searched = compare_ip and ablation != "all" and single.ip and single.search == "hrmas"
    no_ip = dataclasses.replace(single, ip=False) if searched else None
    for name in names:
        check_folder(folders[name], cfgs[name], resume)
    if no_ip is not None:
        check_folder(out / "no_ip", no_ip, resume, started=False)  # --compare-ip may come with --resume
    data = load_data(base, max_train) if data is None else data
    check_data(data)
    for cfg in [*cfgs.values(), *([no_ip] if no_ip is not None else [])]:
        preflight(cfg, data, device)  # a network that cannot be built is refused before anything is written
    info = provenance(data)
    for name in names:
        check_provenance(folders[name], info, resume)
    if lead:
        remove_stale_temps(out)
    seed_range = range(base.seed, base.seed + seeds)
    jobs = [
        (dataclasses.replace(cfgs[n], seed=k), folders[n] / f"seed{k}") for n in names for k in seed_range
    ]
    if no_ip is not None:
        jobs.append((no_ip, out / "no_ip" / f"seed{base.seed}"))
    resources = dict(
        workers=workers, address=address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial
    )
    execution = execution_info(device, threads, **resources)
    written = {
        folders[n] / "config.json": {**dataclasses.asdict(cfgs[n]), "execution": execution} for n in names
    }
    written.update({folders[n] / "run_info.json": info for n in names})
    if no_ip is not None:
        written[out / "no_ip" / "config.json"] = {**dataclasses.asdict(no_ip), "execution": execution}
    trials = dict(
        resources, device=device, threads=threads, resume=resume, log=log, max_failures=max_failures
    )
    trials = trials if ray else None
    start = time.perf_counter()
    with _undone_unless_started(list(written) if lead else [], [folder for _, folder in jobs]):
        for path, content in written.items():
            write(path, content)
        if ray:
            from .trials import run_trials

            results = run_trials(jobs, data, storage=out / "ray", **trials)
        else:
            with torch_threads(threads):
                results = [run_one(cfg, data, folder, resume, device, progress, log) for cfg, folder in jobs]
    if no_ip is not None:
        log(f"without IP (seed {base.seed}): test accuracy {results.pop()['test_acc']:.4f}")
    with torch_threads(threads):
        dense = dense_baseline(base, data, device, out, trials) if baseline else None
    summaries = {}
    for j, name in enumerate(names):
        summary = summarise(results[j * seeds : (j + 1) * seeds])
        summary.update(
            config=dataclasses.asdict(cfgs[name]), ablation=name, seconds=time.perf_counter() - start
        )
        summary["dense_baseline"] = dense
        summary["execution"] = execution
        write(folders[name] / "summary.json", summary)
        _report(summary, summary["runs"], cfgs[name], log)
        if plots and lead:
            write_figures(folders[name], log)
        summaries[name] = summary
    log(f"results in {out}/ (summary.json, seed*/genotype.json, seed*/history.json, figures)")
    if ablation == "all":
        write(out / "ablations.json", {"ablations": ablation_table(summaries), "dense_baseline": dense})
    return summaries


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Train with ``threads`` torch threads in this process; the previous number is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _undone_unless_started(files: list[Path], job_folders: list[Path]) -> Iterator[None]:
    """Nothing half-written: when the block fails before any job started (no job folder exists), the
    ``files`` it creates (config.json, run_info.json) are removed again, with the folders that held only
    them, so a refused or failed start leaves the run folder as it was (and a fresh run is not told to
    ``--resume`` a run that never started)."""
    new = [path for path in files if not path.exists()]
    try:
        yield
    except BaseException:
        if not any(folder.exists() for folder in job_folders):
            for path in new:
                path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # only when empty; the run folder itself goes with its lock
        raise


def _report(summary: dict, results: list[dict], cfg: HRMASConfig, log: Callable[[str], None]) -> None:
    log(f"found genotype (seed {cfg.seed}): {Genotype.from_dict(results[0]['genotype']).summary()}")
    log(
        f"test accuracy: best {summary['best']:.4f}, mean {summary['mean']:.4f} +- {summary['std']:.4f} "
        f"over {len(results)} seed(s)"
    )
    if "cost" in summary:
        log(f"cost: {cost_line(summary['cost'])}")
    if summary["dense_baseline"] is not None:
        acc = summary["dense_baseline"]["test_acc"]
        log(f"dense-recurrent baseline (N={cfg.hidden}, same training): test accuracy {acc:.4f}")
        if "cost" in summary["dense_baseline"]:
            log(f"dense-recurrent baseline cost: {cost_line(summary['dense_baseline']['cost'])}")


def cost_line(cost: dict) -> str:
    """One line of the main cost metrics (:func:`snn_motifs.metrics.measure`)."""
    return (
        f"{cost['synops_per_sample']:,.0f} synaptic ops/sample ({cost['ac_per_sample']:,.0f} AC + "
        f"{cost['mac_per_sample']:,.0f} MAC), {cost['recurrent_synapses']:,} recurrent synapses, "
        f"{cost['energy_pj_per_sample'] / 1e3:,.1f} nJ/sample (estimate), {cost['parameters']:,} parameters"
    )
