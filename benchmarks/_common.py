"""Shared pieces of the benchmarks: data sets, seeds loop, summary table, JSON output and a timer."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from snn_motifs import datasets
from snn_motifs.training import LossConfig, fit

DEFAULT_TI46 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ti46_alpha"

#: name -> (loader(args) -> SplitData, input gain, epochs attribute of args)
DATASETS: dict[str, tuple[Callable, float, str]] = {
    "ti46_sd": (lambda a: datasets.load_ti46_alpha(a.ti46_root, "speaker_dependent"), 20.0, "epochs_ti46"),
    "ti46_loso": (lambda a: datasets.load_ti46_alpha(a.ti46_root, "loso", "f1"), 20.0, "epochs_ti46"),
    "mnist1d": (lambda a: datasets.load_mnist1d(channels=16), 3.0, "epochs_mnist1d"),
}


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def add_common_args(ap) -> None:
    ap.add_argument("--ti46-root", default=str(DEFAULT_TI46))
    ap.add_argument("--datasets", default="ti46_sd,ti46_loso,mnist1d")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--loss", default="count", choices=["count", "kernel"])
    ap.add_argument("--epochs-ti46", type=int, default=20)
    ap.add_argument("--epochs-mnist1d", type=int, default=12)
    ap.add_argument("--json")


def compare(args, models: dict[str, Callable[[object, float], torch.nn.Module]]) -> dict:
    """Train every ``models[name](data, input_gain)`` on every data set for ``args.seeds`` seeds."""
    results: dict = {"config": vars(args), "results": {}}
    for key in args.datasets.split(","):
        loader, gain, epochs_attr = DATASETS[key]
        try:
            data = loader(args)
        except (FileNotFoundError, ImportError) as exc:
            print(f"skip {key}: {exc}")
            continue
        epochs = getattr(args, epochs_attr)
        print(
            f"{key}: {len(data.y_train)} train / {len(data.y_test)} test, T={data.n_steps}, "
            f"C={data.n_channels}, {epochs} epochs",
            flush=True,
        )
        table = results["results"][key] = {}
        for name, build in models.items():
            runs = []
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                model = build(data, gain)
                res = fit(
                    model,
                    data,
                    epochs,
                    lr=args.lr,
                    batch_size=args.batch,
                    loss=LossConfig(kind=args.loss),
                    seed=seed,
                )
                print(
                    f"    {name:<32s} seed {seed}: test acc {res['test_acc']:.4f}  ({res['seconds']:.1f} s)",
                    flush=True,
                )
                runs.append(
                    {"acc": res["test_acc"], "seconds": res["seconds"], "final_loss": res["train_loss"][-1]}
                )
            accs = [r["acc"] for r in runs]
            table[name] = {
                "acc_mean": statistics.mean(accs),
                "acc_std": statistics.pstdev(accs),
                "acc_best": max(accs),
                "seconds_mean": statistics.mean(r["seconds"] for r in runs),
                "runs": runs,
            }
    print("\nsummary (mean +- std over seeds, best, training seconds):")
    for key, table in results["results"].items():
        for name, r in table.items():
            print(
                f"  {key:<10s} {name:<32s} {r['acc_mean']:.4f} +- {r['acc_std']:.4f}"
                f"  best {r['acc_best']:.4f}  {r['seconds_mean']:6.1f} s"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results
