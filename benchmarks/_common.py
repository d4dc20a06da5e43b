"""Shared pieces of the benchmarks: data sets, seeds loop, summary table, JSON output and a timer."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from snn_motifs import datasets
from snn_motifs._io import write_json
from snn_motifs.neuron import NeuronParameters
from snn_motifs.training import fit

DEFAULT_TI46 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ti46_alpha"

#: name -> (loader(args) -> SplitData, neuron constants, readout, epochs attribute of args). MNIST-1D's
#: short sequences want short time constants and the max-over-time readout (docs/results.md, "Accuracy").
DATASETS: dict[str, tuple[Callable, NeuronParameters, str, str]] = {
    "ti46_sd": (
        lambda a: datasets.load_ti46_alpha(a.ti46_root, "speaker_dependent"),
        NeuronParameters(tau_mem=16.0, tau_syn=8.0),
        "mean",
        "epochs_ti46",
    ),
    "ti46_loso": (
        lambda a: datasets.load_ti46_alpha(a.ti46_root, "loso", "f1"),
        NeuronParameters(tau_mem=16.0, tau_syn=8.0),
        "mean",
        "epochs_ti46",
    ),
    "mnist1d": (
        lambda a: datasets.load_mnist1d(channels=16),
        NeuronParameters(tau_mem=4.0, tau_syn=2.0),
        "max",
        "epochs_mnist1d",
    ),
}


def sync(device: torch.device | str) -> None:
    """Wait for the GPU's queued work (timings of asynchronous CUDA calls); no-op on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], object], repeats: int, device: torch.device | str = "cpu") -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def add_common_args(ap) -> None:
    ap.add_argument("--ti46-root", default=str(DEFAULT_TI46))
    ap.add_argument("--datasets", default="ti46_sd,ti46_loso,mnist1d")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--epochs-ti46", type=int, default=40)
    ap.add_argument("--epochs-mnist1d", type=int, default=60)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (every model and batch)")
    ap.add_argument("--json")


def compare(args, models: dict[str, Callable[[object, NeuronParameters, str], torch.nn.Module]]) -> dict:
    """Train every ``models[name](data, neuron, readout)`` with :func:`~snn_motifs.training.fit`'s
    defaults on every data set for ``args.seeds`` seeds; mean +- std table, raw runs in JSON."""
    results: dict = {"config": vars(args), "torch": torch.__version__, "results": {}}
    for key in args.datasets.split(","):
        loader, neuron, readout, epochs_attr = DATASETS[key]
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
                model = build(data, neuron, readout)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # rates are in the JSON history
                    res = fit(
                        model,
                        data,
                        epochs,
                        lr=args.lr,
                        batch_size=args.batch,
                        seed=seed,
                        schedule=args.schedule,
                        weight_decay=args.weight_decay,
                        device=args.device,
                    )
                rates = res["history"][-1].get("rates", {}) if res["history"] else {}
                print(
                    f"    {name:<28s} seed {seed}: test acc {res['test_acc']:.4f}  ({res['seconds']:.1f} s)"
                    f"  rates {' '.join(f'{v:.3f}' for v in rates.values())}",
                    flush=True,
                )
                runs.append(
                    {
                        "acc": res["test_acc"],
                        "seconds": res["seconds"],
                        "final_loss": res["train_loss"][-1],
                        "input_gain": res["input_gain"],
                        "final_rates": rates,
                        "max_grad_norm": max(h["grad_norm"] for h in res["history"]),
                    }
                )
            accs = [r["acc"] for r in runs]
            table[name] = {
                "acc_mean": statistics.mean(accs),
                "acc_std": statistics.pstdev(accs),
                "acc_best": max(accs),
                "seconds_mean": statistics.mean(r["seconds"] for r in runs),
                "runs": runs,
            }
            if args.json:  # after every model: a long run never loses finished work
                write_json(args.json, results)
    print("\nsummary (mean +- std over seeds, best, training seconds):")
    for key, table in results["results"].items():
        for name, r in table.items():
            print(
                f"  {key:<10s} {name:<28s} {r['acc_mean']:.4f} +- {r['acc_std']:.4f}"
                f"  best {r['acc_best']:.4f}  {r['seconds_mean']:6.1f} s"
            )
    if args.json:
        write_json(args.json, results)
    return results
