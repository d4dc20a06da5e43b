"""Inference time of an SC-ML classifier in snn_motifs vs the same network exported to NIR and re-imported
by Norse's and snnTorch's importers, measured in one run, with a spike-equality check.

What you give up by leaving snn_motifs: NIR has no motif-shared or sparse weight, so the importers run a
dense N x N recurrent matrix, stepped through their graph executors.

Usage::

    python benchmarks/bench_nir.py                  # N = 800, v = 16, T = 100, B = 50 (Table 1, TI46)
    python benchmarks/bench_nir.py --quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform

import torch
from _common import median_time

from snn_motifs import NeuronParameters, SCMLClassifier
from snn_motifs.nir_export import import_norse, import_snntorch, run_imported, to_nir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=800)
    ap.add_argument("--motif", type=int, default=16)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--device", default="cpu", help="cpu or cuda (the model, the input, the importers' modules)"
    )
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick:
        args.repeats = 2
    torch.manual_seed(0)
    model = SCMLClassifier(
        78,
        args.hidden,
        26,
        args.motif,
        neuron=NeuronParameters(tau_mem=16, tau_syn=8),
        input_gain=2.0,
        readout="count",  # the papers' spiking output layer: output spikes compared for equality
    )
    device = torch.device(args.device)
    x = (torch.rand(args.steps, args.batch, 78) < 0.2).float().to(device)
    graph = to_nir(model)
    model = model.to(device)
    with torch.no_grad():
        expected = model(x)
    imported = {"norse": import_norse(graph).to(device), "snntorch": import_snntorch(graph).to(device)}
    print(
        f"SCMLClassifier 78-{args.hidden}(v={args.motif})-26, T={args.steps}, B={args.batch}, inference; "
        f"output rate {expected.mean():.3f}; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    rows = {}
    with torch.no_grad():
        rows["snn_motifs (fused, O(N v))"] = median_time(lambda: model(x), args.repeats, device)
    for name, module in imported.items():
        same = torch.equal(run_imported(module, x), expected)
        seconds = median_time(lambda m=module: run_imported(m, x), args.repeats, device)
        rows[f"{name} from_nir (dense W_rec)"] = seconds
        print(f"{name}: identical output spikes: {same}")
    base = rows["snn_motifs (fused, O(N v))"]
    for name, sec in rows.items():
        print(f"  {name:<32s} {1000 * sec:8.1f} ms   {sec / base:5.2f}x")
    if args.json:
        out = {"config": vars(args), "platform": platform.platform(), "seconds": rows}
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
