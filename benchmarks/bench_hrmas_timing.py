"""Cost of HRMAS: one search iteration (all motif sizes x 3 types) vs one training step of a same-size
dense recurrent SNN and of the discretised SC-ML, at N = 800, T = 100, B = 50, 78 inputs (TI46 setting).

A search iteration is Algorithm 1's (a) architecture step on a validation batch, (b) weight step on a
training batch and (c) SpiKL-IP over a one-batch IP window; "training step" is forward + backward +
optimizer step. All models run our fused kernel with TSSL-BP; with ``--compile`` the search network and
the SC-ML run the compiled kernel (the dense RSNN keeps the eager kernel, whose matmul is already BLAS).

    python benchmarks/bench_hrmas_timing.py [--options 2,4,8,16,32] [--compile] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch
from _common import median_time

from snn_motifs import SpiKLIP
from snn_motifs.models import SCMLClassifier
from snn_motifs.search import Architect, HRMASConfig, dense_rsnn, search_network, weight_parameters
from snn_motifs.topology import MotifTopology
from snn_motifs.training import LossConfig, make_loss


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--options", default="2,4,8,16,32")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compile", action="store_true", help="compile=True for the search network and SC-ML")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    options = [int(v) for v in args.options.split(",")]
    cfg = HRMASConfig(hidden=args.n, motif_sizes=options, input_gain=1.0, compile=args.compile)
    loss_fn = make_loss(LossConfig())
    torch.manual_seed(0)
    device = torch.device(args.device)
    x = (torch.rand(args.steps, args.batch, 78, device=device) < 0.15).float()
    y = torch.randint(0, 26, (args.batch,), device=device)

    search = search_network(cfg, 78, 26).to(device)
    w_opt = torch.optim.Adam(weight_parameters(search), lr=1e-3)
    architect = Architect(search, loss_fn, lr=1e-3)
    ip = SpiKLIP(window_only=True)
    ip.attach(search.hidden)

    def train_step(model, opt, params):
        def f():
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return f

    def search_iteration():
        architect.step((x, y), (x, y))
        train_step(search, w_opt, None)()
        with ip.window(), torch.no_grad():
            search(x)

    dense = dense_rsnn(78, args.n, 26, replace(cfg, compile=False)).to(device)  # eager: BLAS matmul
    scml = SCMLClassifier(
        78,
        args.n,
        26,
        topology=MotifTopology.random(16, torch.Generator().manual_seed(0)),
        spike_fn="tssl",
        kernel="compiled" if args.compile else "auto",
    ).to(device)
    sec = {
        "search iteration (a+b+c)": median_time(search_iteration, args.repeats, device),
        "search net training step (b only)": median_time(
            train_step(search, w_opt, None), args.repeats, device
        ),
        "dense RSNN training step": median_time(
            train_step(dense, torch.optim.Adam(dense.parameters(), 1e-3), None), args.repeats, device
        ),
        "discretised SC-ML (v=16) training step": median_time(
            train_step(scml, torch.optim.Adam(scml.parameters(), 1e-3), None), args.repeats, device
        ),
    }
    dense_s = sec["dense RSNN training step"]
    print(f"N={args.n}, T={args.steps}, B={args.batch}, options={options}, threads={torch.get_num_threads()}")
    for name, s in sec.items():
        print(f"  {name:<42s} {s * 1e3:8.1f} ms   {s / dense_s:5.2f} x dense step")
    result = {
        "setting": vars(args),
        "seconds": sec,
        "ratio_to_dense": {k: v / dense_s for k, v in sec.items()},
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
