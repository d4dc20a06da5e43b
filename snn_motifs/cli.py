"""``snn-motifs``: run HRMAS searches, train and evaluate genotypes, plot results.

snn-motifs search                       # offline default: MNIST-1D, search -> retrain -> test
snn-motifs search --config ti46_alpha --ti46-root DATA --seeds 5 --out runs/ti46
snn-motifs search --ablation no-ip      # random | no-ip | no-motif | no-lateral | second-order
snn-motifs train --genotype runs/x/seed0/genotype.json --out runs/retrain
snn-motifs evaluate --run runs/x/seed0
snn-motifs export-nir --run runs/x/seed0 --out model.nir   # NIR graph for snnTorch / Norse
snn-motifs plot --run runs/x
snn-motifs sweep mnist1d_default --space space.json --trials 20 --workers 2   # Optuna + ASHA on Ray Tune

This module only parses arguments; the work is done by :mod:`snn_motifs.search` (``search.run_method``
and, for ``--ablation all``, ``search.run_ablations`` are the ``search`` command) so a notebook can do the
same.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import sys
from pathlib import Path

from . import search
from ._io import write_json
from ._optional import require
from .adapters import available_backends
from .search import ABLATIONS, Genotype, HRMASConfig, Interrupted, cost_line
from .search.config import DEFAULT_CONFIG
from .search.experiment import torch_threads
from .search.trials import TrialsFailed
from .training import evaluate

#: command-line options that override config keys of the same name
OVERRIDES = (
    "backend",
    "ti46_root",
    "ti46_split",
    "hidden",
    "epochs_size",
    "epochs_types",
    "epochs_retrain",
    "cost",
    "cost_weight",
)


def _config(args) -> HRMASConfig:
    cfg = search.load_config(args.config)
    changes = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k, None) is not None}
    return dataclasses.replace(cfg, **changes)


def cmd_search(args) -> int:
    options = dict(
        seeds=args.seeds,
        seed=args.seed,
        baseline=args.baseline,
        resume=args.resume,
        device=args.device,
        max_train=args.max_train,
        plots=not args.no_plots,
        progress=not args.quiet,
        log=lambda s: print(s, flush=True),
        workers=args.workers,
        address=args.address,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        threads=args.threads,
        max_failures=args.max_failures,
    )
    if args.ablation == "all":  # --compare-ip applies to one method only
        search.run_ablations(_config(args), args.out, **options)
    else:
        method = dict(ablation=args.ablation, compare_ip=args.compare_ip)
        search.run_method(_config(args), args.out, **method, **options)
    return 0


def cmd_sweep(args) -> int:
    from .search.sweep import sweep

    cfg = _config(args)
    rows = sweep(
        cfg,
        args.space,
        args.trials,
        args.out or f"runs/{cfg.dataset}_sweep",
        max_train=args.max_train,
        seed=args.seed,
        workers=args.workers,
        address=args.address,
        cpus_per_trial=args.cpus_per_trial,
        max_failures=args.max_failures,
        log=lambda s: print(s, flush=True),
    )
    print(f"{len(rows)} trials: {args.out or f'runs/{cfg.dataset}_sweep'}/sweep.csv, sweep.json, sweep.png")
    return 0


def cmd_train(args) -> int:
    cfg = _config(args)
    genotype = Genotype.from_json(args.genotype)
    data = search.load_data(dataclasses.replace(cfg, hidden=genotype.n_neurons))
    device = search.check_device(args.device)
    with torch_threads(args.threads):
        res = search.train_genotype(genotype, cfg, data, args.out, args.seed, device, args.workers)
    print(f"test accuracy {res['test_acc']:.4f}; model in {Path(args.out) / 'model.pt'}")
    return 0


def cmd_evaluate(args) -> int:
    """Test accuracy and hardware cost (NeuroBench's metrics, :mod:`snn_motifs.metrics`) of a trained
    model: JSON on stdout, also written to ``evaluation.json`` beside the model (or ``--out``); a
    one-line summary on stderr."""
    model, genotype, cfg = search.load_trained(args.run)
    data = search.load_data(cfg)
    result = {
        "test_acc": evaluate(model, data.x_test, data.y_test, tau_syn=cfg.tau_syn),
        "genotype": genotype.to_dict(),
        "cost": search.test_cost(model, data),
    }
    out = Path(args.out) if args.out else search.trained_file(args.run).parent / "evaluation.json"
    write_json(out, result)
    print(json.dumps(result, indent=1))  # machine-readable on stdout, the summary on stderr
    say = sys.stderr.write
    say(f"test accuracy {result['test_acc']:.4f} ({genotype.summary()})\ncost: {cost_line(result['cost'])}\n")
    say(f"wrote {out}\n")
    return 0


def cmd_export_nir(args) -> int:
    from .nir_export import export_nir

    out = Path(args.out)
    if out.exists() and not out.is_dir() and out.suffix != ".nir":
        raise ValueError(
            f"--out {out} is an existing file that is not a .nir graph; give a .nir name or a folder"
        )
    if out.suffix != ".nir":
        out = out.with_suffix(".nir") if out.suffix else out / "model.nir"
    for parent in out.parents:  # a folder on the way that is a file: one line, not FileExistsError
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--out {args.out}: {parent} is a file, not a folder; choose another --out")
            break
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the .nir file's name")
    model, genotype, _ = search.load_trained(args.run)
    out.parent.mkdir(parents=True, exist_ok=True)
    export_nir(model, out, dt=args.dt, recurrent_subgraphs=not args.flat)
    print(f"wrote {out} ({genotype.summary()}, dt={args.dt} s)")
    return 0


def cmd_plot(args) -> int:
    """Every figure of a search folder (for ``--ablation all``: of each ablation's folder); a folder that
    does not exist or holds no search results is an error, not a silent success."""
    run = Path(args.run)
    if not run.is_dir():
        raise FileNotFoundError(f"no run folder {run}; give a folder written by 'snn-motifs search'")
    require("matplotlib", "all", "figures (snn-motifs plot)")
    from .search.figures import plot_run

    folders = [run, *sorted(p for p in run.iterdir() if p.is_dir() and (p / "config.json").is_file())]
    written = [path for folder in folders if folder.name != "no_ip" for path in plot_run(folder)]
    if not written:
        raise ValueError(
            f"{run} holds no search results to plot (no seed*/genotype.json or history.json); give a folder "
            "written by 'snn-motifs search'"
        )
    for path in written:
        print(f"figure: {path}")
    return 0


def _positive(text: str) -> int:
    """An ``int >= 1`` option (argparse reports anything else as a usage error, exit status 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _restarts(text: str) -> int:
    """``--max-failures``: an int >= 0, or -1 for no limit (Tune's convention)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or -1, got {text!r}") from None
    if value < -1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or -1 (no limit), got {value}")
    return value


class _Defaults(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every option whose help does not already say its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "(default" in text or "default:" in text or quiet or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """Every option has a help line, and ``--help`` shows its default ("the config's value" where the config
    decides)."""
    fmt = dict(formatter_class=_Defaults)
    ap = argparse.ArgumentParser(
        prog="snn-motifs", description="HRMAS searches for SC-ML recurrent SNNs", **fmt
    )
    sub = ap.add_subparsers(dest="command", required=True)
    from_config = "the config's value"
    names = ", ".join(search.config_names())

    def common(p):
        p.add_argument(
            "--config", default=DEFAULT_CONFIG, help=f"JSON config file or a packaged one: {names}"
        )
        p.add_argument(
            "--backend", choices=available_backends(), help=f"neuron backend (default: {from_config})"
        )
        p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
        p.add_argument("--seed", type=int, default=0, help="first seed")
        p.add_argument(
            "--ti46-root",
            dest="ti46_root",
            help="TI46-Alpha folder (default: the config's, then $SNN_MOTIFS_TI46_ALPHA)",
        )
        p.add_argument(
            "--ti46-split",
            dest="ti46_split",
            choices=["speaker_dependent", "loso"],
            help=f"TI46-Alpha split (default: {from_config})",
        )
        p.add_argument("--hidden", type=int, help=f"neurons N of the SC-ML (default: {from_config})")
        for phase, what in (
            ("size", "phase 1 (size and types)"),
            ("types", "phase 2 (types)"),
            ("retrain", "retraining"),
        ):
            p.add_argument(
                f"--epochs-{phase}",
                dest=f"epochs_{phase}",
                type=int,
                help=f"epochs of {what} (default: {from_config})",
            )
        p.add_argument(
            "--cost",
            choices=["synops", "synapses"],
            help=f"what a cost-aware search trades accuracy against (default: {from_config}, synops)",
        )
        p.add_argument(
            "--cost-weight",
            dest="cost_weight",
            type=float,
            help=f"lambda >= 0 of the cost term in the architecture loss, 0: accuracy alone "
            f"(default: {from_config})",
        )

    def max_failures(p):
        p.add_argument(
            "--max-failures",
            dest="max_failures",
            type=_restarts,
            default=2,
            help="restarts of a Ray trial whose worker dies or fails, each from its last checkpoint "
            "(-1: no limit)",
        )

    p = sub.add_parser("search", help="search -> discretise -> retrain -> test", **fmt)
    common(p)
    p.add_argument("--seeds", type=int, default=1, help="number of seeds, from --seed on")
    p.add_argument("--out", help="run folder (default: runs/<dataset>_<ablation>, e.g. runs/mnist1d_none)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    p.add_argument(
        "--ablation", choices=[*sorted(ABLATIONS), "all"], default="none", help="ablation of the search"
    )
    p.add_argument(
        "--workers",
        type=int,
        help="run each (ablation, seed) as a Ray Tune trial, this many at once ([distributed] extra); "
        "default: sequential, no Ray",
    )
    p.add_argument(
        "--address",
        help="join an existing Ray cluster ('auto' or ray://host:port) (default: a local Ray for --workers)",
    )
    p.add_argument(
        "--cpus-per-trial", dest="cpus_per_trial", type=float, default=1, help="CPUs each trial declares"
    )
    p.add_argument(
        "--gpus-per-trial", dest="gpus_per_trial", type=float, default=0, help="GPUs each trial declares"
    )
    p.add_argument(
        "--threads",
        type=_positive,
        help="torch threads of this process and of every Ray trial; results depend on the thread count "
        "(default: --cpus-per-trial, 1)",
    )
    max_failures(p)
    p.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="skip the same-size dense RSNN baseline"
    )
    p.add_argument("--no-plots", action="store_true", help="write no figures")
    p.add_argument(
        "--compare-ip",
        dest="compare_ip",
        action="store_true",
        help="also run the search without IP (same seed) and overlay the validation curves",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--max-train", dest="max_train", type=int, help="use only the first N training samples (default: all)"
    )
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("sweep", help="hyper-parameter sweep of the search (Optuna + ASHA on Ray Tune)", **fmt)
    p.add_argument("config", help=f"JSON config file or a packaged one: {names}")
    p.add_argument("--space", required=True, help='JSON file: {"lr": {"loguniform": [1e-3, 1e-1]}, ...}')
    p.add_argument("--trials", type=int, default=20, help="configurations to sample")
    p.add_argument("--out", help="sweep folder (default: runs/<dataset>_sweep)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument(
        "--max-train", dest="max_train", type=int, help="use only the first N training samples (default: all)"
    )
    p.add_argument(
        "--workers", type=int, help="trials at once (default: 1, on a local Ray of that many CPUs)"
    )
    p.add_argument("--address", help="join an existing Ray cluster (default: a local one)")
    p.add_argument(
        "--cpus-per-trial", dest="cpus_per_trial", type=float, default=1, help="CPUs each trial declares"
    )
    max_failures(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("train", help="train an SC-ML built from a genotype JSON", **fmt)
    common(p)
    p.add_argument("--genotype", required=True, help="genotype.json written by a search")
    p.add_argument("--out", required=True, help="new, empty output folder (model.pt, result.json)")
    p.add_argument(
        "--workers",
        type=int,
        help="feed training through a torch DataLoader with this many worker processes (0: in-process; "
        "default: no DataLoader)",
    )
    p.add_argument(
        "--threads", type=_positive, default=1, help="torch threads; results depend on the thread count"
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="test accuracy and hardware cost of a trained model (train dir or search seed)",
        **fmt,
    )
    p.add_argument("--run", required=True, help="model.pt, a 'train' directory or a search seedN/ directory")
    p.add_argument("--out", help="where to write the JSON (default: evaluation.json beside the model)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "export-nir", help="write a trained model (train dir or search seed) as a NIR graph", **fmt
    )
    p.add_argument("--run", required=True, help="model.pt, a 'train' directory or a search seedN/ directory")
    p.add_argument("--out", required=True, help="output .nir file")
    p.add_argument("--dt", type=float, default=1e-4, help="seconds per step (snnTorch reads only 1e-4)")
    p.add_argument("--flat", action="store_true", help="flat recurrent cycles (Norse only)")
    p.set_defaults(func=cmd_export_nir)

    p = sub.add_parser("plot", help="figures of a search output directory", **fmt)
    p.add_argument("--run", required=True, help="a search output folder (runs/...)")
    p.set_defaults(func=cmd_plot)
    return ap


def _join_torchrun() -> None:
    """Under ``torchrun`` (``WORLD_SIZE`` set) join the process group: NCCL with CUDA, else gloo."""
    import os

    import torch

    if "WORLD_SIZE" in os.environ and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


#: what to do about a file-system error, by errno
_OS_ADVICE = {
    errno.ENOSPC: "free some space and run again (--resume continues a search that had started)",
    errno.EDQUOT: "free some space and run again (--resume continues a search that had started)",
    errno.EROFS: "choose a folder on a writable file system",
    errno.EACCES: "choose a folder you may write to, or fix its permissions",
    errno.EPERM: "choose a folder you may write to, or fix its permissions",
}


def error_line(exc: BaseException) -> str:
    """``exc`` as one line: an ``OSError`` as its reason, the file and what to do; anything else its text
    with line breaks folded."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror if exc.filename is None else f"{exc.filename}: {exc.strerror}"
        advice = _OS_ADVICE.get(exc.errno)
        text = f"{text}; {advice}" if advice else text
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure is one line on stderr and a non-zero exit status: 2 for errors (bad
    options, configs, files, a full or read-only disk, a missing extra), 130 for Ctrl-C (with how to
    continue)."""
    args = build_parser().parse_args(argv)
    try:
        _join_torchrun()
        return args.func(args)
    except Interrupted as exc:
        print(error_line(exc), file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        again = " (--resume continues a search from its checkpoints)" if args.command == "search" else ""
        print(f"snn-motifs: interrupted{again}", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError, TrialsFailed) as exc:  # MissingDependencyError: ImportError
        print(f"snn-motifs: error: {error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
