"""``snn-motifs``: run HRMAS searches, train and evaluate genotypes, plot results.

snn-motifs search                       # offline default: MNIST-1D, search -> retrain -> test
snn-motifs search --config ti46_alpha --ti46-root DATA --seeds 5 --out runs/ti46
snn-motifs search --ablation no-ip      # random | no-ip | no-motif | no-lateral | dense | second-order
snn-motifs train --genotype runs/x/seed0/genotype.json --out runs/retrain
snn-motifs evaluate --run runs/x/seed0
snn-motifs export-nir --run runs/x/seed0 --out model.nir   # NIR graph for snnTorch / Norse
snn-motifs plot --run runs/x
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import torch

from . import datasets
from .hrmas import (
    Genotype,
    HRMASConfig,
    HRMASRun,
    Interrupted,
    classifier_from_genotype,
    retrain,
    train_dense_baseline,
)
from .training import evaluate

ABLATIONS = {
    "none": {},
    "random": {"search": "random"},
    "no-ip": {"ip": False},
    "no-motif": {"motifs": False},
    "no-lateral": {"lateral": False},
    "second-order": {"second_order": True},
}


def _configs():
    return resources.files("snn_motifs") / "configs"


def config_names() -> list[str]:
    return sorted(p.name[:-5] for p in _configs().iterdir() if p.name.endswith(".json"))


def load_config(name_or_path: str | None) -> HRMASConfig:
    if name_or_path is None:
        name_or_path = "mnist1d_default"
    path = Path(name_or_path)
    if path.exists():
        return HRMASConfig.from_file(path)
    packaged = _configs() / f"{name_or_path}.json"
    if not packaged.is_file():
        raise SystemExit(f"no config {name_or_path!r}: give a JSON file or one of {config_names()}")
    return HRMASConfig.from_dict(json.loads(packaged.read_text()))


def load_data(cfg: HRMASConfig, max_train: int | None = None) -> datasets.SplitData:
    if cfg.dataset == "mnist1d":
        data = datasets.load_mnist1d(seed=42)
    elif cfg.dataset == "ti46_alpha":
        data = datasets.load_ti46_alpha(cfg.ti46_root, cfg.ti46_split)
    else:
        raise SystemExit(
            f"dataset {cfg.dataset!r} has no loader here yet (mnist1d and ti46_alpha are available; the "
            "neuromorphic sets arrive with the tonic datasets)"
        )
    if max_train is not None:
        data = data._replace(x_train=data.x_train[:max_train], y_train=data.y_train[:max_train])
    return data


def _apply_overrides(cfg: HRMASConfig, args) -> HRMASConfig:
    changes = dict(ABLATIONS[args.ablation]) if getattr(args, "ablation", None) else {}
    for key in (
        "backend",
        "ti46_root",
        "ti46_split",
        "hidden",
        "epochs_size",
        "epochs_types",
        "epochs_retrain",
    ):
        value = getattr(args, key, None)
        if value is not None:
            changes[key] = value
    return dataclasses.replace(cfg, **changes)


def _device(name: str) -> str:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available on this machine")
    return name


def cmd_search(args) -> int:
    cfg = _apply_overrides(load_config(args.config), args)
    out = Path(args.out or f"runs/{cfg.dataset}_{args.ablation}")
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise SystemExit(
            f"output directory {out} exists; pass --resume to continue it or choose another --out"
        )
    data = load_data(cfg, args.max_train)
    device = _device(args.device)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    results, start = [], time.perf_counter()
    seeds = range(args.seed, args.seed + args.seeds)
    try:
        for seed in seeds:
            run_cfg = dataclasses.replace(cfg, seed=seed)
            run_dir = out / f"seed{seed}"
            resume = args.resume and (run_dir / "checkpoint.pt").exists()
            if (run_dir / "result.json").exists() and args.resume:
                results.append(json.loads((run_dir / "result.json").read_text()))
                continue
            run = HRMASRun(run_cfg, data, run_dir, device=device, progress=not args.quiet)
            results.append(run.run(resume=resume))
            print(f"seed {seed}: test accuracy {results[-1]['test_acc']:.4f}", flush=True)
        if args.compare_ip and cfg.ip and cfg.search == "hrmas":
            no_ip = dataclasses.replace(cfg, seed=args.seed, ip=False)
            run_dir = out / "no_ip"
            (run_dir).mkdir(exist_ok=True)
            (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(no_ip), indent=2))
            seed_dir = run_dir / f"seed{args.seed}"
            if not (seed_dir / "result.json").exists():
                res = HRMASRun(no_ip, data, seed_dir, device=device, progress=not args.quiet).run(
                    resume=args.resume and (seed_dir / "checkpoint.pt").exists()
                )
                print(f"without IP (seed {args.seed}): test accuracy {res['test_acc']:.4f}", flush=True)
        baseline = None
        if args.baseline:
            baseline = _dense_baseline(cfg, data, device, out)
    except Interrupted as exc:
        print(exc, file=sys.stderr)
        return 130
    summary = _summary(results)
    summary.update(
        config=dataclasses.asdict(cfg),
        ablation=args.ablation,
        seconds=time.perf_counter() - start,
        dense_baseline=baseline,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    genotype = Genotype.from_dict(results[0]["genotype"])
    print(f"found genotype (seed {args.seed}): {genotype.summary()}")
    print(
        f"test accuracy: best {summary['best']:.4f}, mean {summary['mean']:.4f} +- {summary['std']:.4f} "
        f"over {len(results)} seed(s)"
    )
    if baseline is not None:
        print(
            f"dense-recurrent baseline (N={cfg.hidden}, same training): "
            f"test accuracy {baseline['test_acc']:.4f}"
        )
    if not args.no_plots:
        _plots(out)
    print(f"results in {out}/ (summary.json, seed*/genotype.json, seed*/history.json, figures)")
    return 0


def _dense_baseline(cfg: HRMASConfig, data, device: str, out: Path) -> dict:
    path = out / "dense_baseline.json"
    if path.exists():
        return json.loads(path.read_text())
    result = train_dense_baseline(cfg, data, device=device)
    path.write_text(json.dumps(result, indent=2))
    return result


def _summary(results: list[dict]) -> dict:
    accs = [r["test_acc"] for r in results]
    return {"best": max(accs), "mean": statistics.mean(accs), "std": statistics.pstdev(accs), "runs": results}


def _plots(out: Path) -> None:
    try:
        from .plots import plot_run
    except ImportError as exc:
        print(f"(no figures: {exc})")
        return
    for path in plot_run(out):
        print(f"figure: {path}")


def cmd_train(args) -> int:
    cfg = _apply_overrides(load_config(args.config), args)
    genotype = Genotype.from_json(args.genotype)
    cfg = dataclasses.replace(cfg, hidden=genotype.n_neurons)
    data = load_data(cfg)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"output directory {out} exists; choose another --out")
    out.mkdir(parents=True)
    torch.manual_seed(args.seed)
    model = classifier_from_genotype(genotype, data, cfg)
    res = retrain(model, data, cfg, args.seed, _device(args.device))
    torch.save(
        {"genotype": genotype.to_dict(), "config": dataclasses.asdict(cfg), "model": model.state_dict()},
        out / "model.pt",
    )
    (out / "result.json").write_text(
        json.dumps({"test_acc": res["test_acc"], "genotype": genotype.to_dict()})
    )
    print(f"test accuracy {res['test_acc']:.4f}; model in {out / 'model.pt'}")
    return 0


def _trained_file(path: Path) -> Path:
    """``model.pt`` of 'snn-motifs train', or ``checkpoint.pt`` of a finished search seed directory."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise SystemExit(f"no such file or directory: {path}")
    for candidate in (path / "model.pt", path / "checkpoint.pt", *sorted(path.glob("seed*/checkpoint.pt"))):
        if candidate.is_file():
            return candidate
    raise SystemExit(
        f"{path} has no model.pt or checkpoint.pt; give a directory written by 'snn-motifs train' "
        "or a search output (seedN/ directory)"
    )


def load_trained(path: str | Path) -> tuple[torch.nn.Module, Genotype, HRMASConfig]:
    """Rebuild the trained SC-ML classifier of a 'train' directory or a finished search seed.

    Layer sizes come from the saved weights, so no data set is loaded.
    """
    file = _trained_file(Path(path))
    try:
        blob = torch.load(file, map_location="cpu", weights_only=False)
        cfg = HRMASConfig.from_dict(blob["config"])
        if "genotype" in blob:  # snn-motifs train
            genotype, state = Genotype.from_dict(blob["genotype"]), blob["model"]
        else:  # HRMASRun checkpoint: the retrained network is 'final_model'
            state = blob.get("final_model")
            if state is None:
                raise ValueError("the search has not reached retraining yet (resume it first)")
            genotype = Genotype.from_json(file.parent / "genotype.json")
        shapes = SimpleNamespace(n_channels=state["hidden.fc.weight"].shape[1])
        shapes.n_classes = state["output.fc.weight"].shape[0]
        model = classifier_from_genotype(genotype, shapes, cfg)
        model.load_state_dict(state)
    except SystemExit:
        raise
    except Exception as exc:
        raise SystemExit(f"cannot read a trained model from {file}: {type(exc).__name__}: {exc}") from exc
    return model, genotype, cfg


def cmd_evaluate(args) -> int:
    model, _, cfg = load_trained(args.run)
    data = load_data(cfg)
    acc = evaluate(model, data.x_test, data.y_test, tau_syn=cfg.tau_syn)
    print(json.dumps({"test_acc": acc}))
    return 0


def cmd_export_nir(args) -> int:
    from .nir_export import export_nir

    model, genotype, _ = load_trained(args.run)
    out = Path(args.out)
    if out.suffix != ".nir":
        out = out.with_suffix(".nir") if out.suffix else out / "model.nir"
    out.parent.mkdir(parents=True, exist_ok=True)
    export_nir(model, out, dt=args.dt, recurrent_subgraphs=not args.flat)
    print(f"wrote {out} ({genotype.summary()}, dt={args.dt} s)")
    return 0


def cmd_plot(args) -> int:
    _plots(Path(args.run))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="snn-motifs", description="HRMAS searches for SC-ML recurrent SNNs")
    sub = ap.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--config", help=f"JSON config file or a packaged one: {', '.join(config_names())}")
        p.add_argument("--backend", choices=["native", "snntorch", "norse"])
        p.add_argument("--device", default="cpu")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--ti46-root", dest="ti46_root")
        p.add_argument("--ti46-split", dest="ti46_split", choices=["speaker_dependent", "loso"])
        p.add_argument("--hidden", type=int)
        p.add_argument("--epochs-size", dest="epochs_size", type=int)
        p.add_argument("--epochs-types", dest="epochs_types", type=int)
        p.add_argument("--epochs-retrain", dest="epochs_retrain", type=int)

    p = sub.add_parser("search", help="search -> discretise -> retrain -> test")
    common(p)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--out")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--ablation", choices=sorted(ABLATIONS), default="none")
    p.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="skip the same-size dense-recurrent baseline",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--compare-ip",
        dest="compare_ip",
        action="store_true",
        help="also run the search without IP (same seed) and overlay the validation curves",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--max-train", dest="max_train", type=int, help="use only the first N training samples")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("train", help="train an SC-ML built from a genotype JSON")
    common(p)
    p.add_argument("--genotype", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a trained model (train dir or search seed)")
    p.add_argument("--run", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export-nir", help="write a trained model (train dir or search seed) as a NIR graph")
    p.add_argument("--run", required=True, help="model.pt, a 'train' directory or a search seedN/ directory")
    p.add_argument("--out", required=True, help="output .nir file")
    p.add_argument("--dt", type=float, default=1e-4, help="seconds per step (snnTorch reads only 1e-4)")
    p.add_argument("--flat", action="store_true", help="flat recurrent cycles (Norse only)")
    p.set_defaults(func=cmd_export_nir)

    p = sub.add_parser("plot", help="figures of a search output directory")
    p.add_argument("--run", required=True)
    p.set_defaults(func=cmd_plot)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"snn-motifs: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
