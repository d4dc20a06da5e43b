"""Does TSSL-BP learn? The same SC-ML classifier trained with three spike gradients, same seeds:

(a) faithful TSSL-BP in our layers (``spike_fn="tssl"``, native backend),
(b) the stateless TSSL-BP approximation inside snnTorch's own ``snn.Leaky`` (``tssl_bp()``),
(c) snnTorch's ``atan`` surrogate inside ``snn.Leaky``,

on the real TI46-Alpha subset (both splits of its README: speaker-dependent utterances 1-6 / 7-8, and
leave-one-speaker-out) and on MNIST-1D generated locally. Prints test accuracy and training time.

    python benchmarks/bench_tssl.py --ti46-root ../shared/data/ti46_alpha --json tssl.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from snn_motifs import NeuronParameters, datasets, tssl_bp
from snn_motifs.models import SCMLClassifier
from snn_motifs.training import LossConfig, fit

DEFAULT_TI46 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ti46_alpha"


def variants():
    out = {
        "(a) TSSL-BP faithful [native]": ("native", "tssl"),
        "(b) tssl_bp() in snn.Leaky": ("snntorch", tssl_bp()),
    }
    try:
        import snntorch.surrogate as ss

        out["(c) atan in snn.Leaky"] = ("snntorch", ss.atan())
    except ImportError:
        pass
    return out


def run(data, name: str, backend, spike_fn, args, seed: int, in_gain: float, epochs: int) -> dict:
    torch.manual_seed(seed)
    model = SCMLClassifier(
        data.n_channels,
        args.hidden,
        data.n_classes,
        args.motif,
        backend=backend,
        neuron=NeuronParameters(tau_mem=16.0, tau_syn=8.0),  # Table 1
        spike_fn=spike_fn,
        input_gain=in_gain,
    )
    res = fit(
        model, data, epochs, lr=args.lr, batch_size=args.batch, loss=LossConfig(kind=args.loss), seed=seed
    )
    print(
        f"    {name:<32s} seed {seed}: test acc {res['test_acc']:.4f}  ({res['seconds']:.1f} s)", flush=True
    )
    return {"acc": res["test_acc"], "seconds": res["seconds"], "final_loss": res["train_loss"][-1]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ti46-root", default=str(DEFAULT_TI46))
    ap.add_argument("--datasets", default="ti46_sd,ti46_loso,mnist1d")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--motif", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--loss", default="count", choices=["count", "kernel"])
    ap.add_argument("--epochs-ti46", type=int, default=20)
    ap.add_argument("--epochs-mnist1d", type=int, default=12)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    loaders = {
        "ti46_sd": lambda: (
            datasets.load_ti46_alpha(args.ti46_root, "speaker_dependent"),
            20.0,
            args.epochs_ti46,
        ),
        "ti46_loso": lambda: (datasets.load_ti46_alpha(args.ti46_root, "loso", "f1"), 20.0, args.epochs_ti46),
        "mnist1d": lambda: (datasets.load_mnist1d(channels=16), 3.0, args.epochs_mnist1d),
    }
    results: dict = {"config": vars(args), "results": {}}
    for key in args.datasets.split(","):
        try:
            data, gain, epochs = loaders[key]()
        except (FileNotFoundError, ImportError) as exc:
            print(f"skip {key}: {exc}")
            continue
        print(
            f"{key}: {len(data.y_train)} train / {len(data.y_test)} test, "
            f"T={data.n_steps}, C={data.n_channels}"
        )
        table = results["results"][key] = {}
        for name, (backend, fn) in variants().items():
            runs = [run(data, name, backend, fn, args, seed, gain, epochs) for seed in range(args.seeds)]
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
                f"  best {r['acc_best']:.4f}"
                f"  {r['seconds_mean']:6.1f} s"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
