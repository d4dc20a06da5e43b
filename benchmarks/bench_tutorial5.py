"""snnTorch tutorial 5's network and loop, hidden layer swapped for SC-ML: does the swap cost accuracy?

Tutorial 5 ("Training Spiking Neural Networks with snnTorch"): 784 -> 1000 -> 10, the image fed as a
constant current for 25 steps, ``snn.Leaky(beta=0.95)`` neurons, loss = sum over steps of the
cross-entropy of the output membrane, Adam 5e-4, batch 128, one epoch; accuracy = most output spikes.
Compared in the same process and loop, same seeds:

* ``snn.Leaky`` hidden layer (the tutorial), ``snn.RLeaky`` (dense all-to-all recurrence, same size);
* ``SCML(784, 1000, motif_size=8)`` with the Leaky-equivalent neuron (``tau_mem = 1/(1 - beta) = 20``,
  ``resistance = 20`` so the input enters with gain 1 as in Leaky, no synaptic filter: ``tau_syn = 1``);
* the same SC-ML with the library's default neuron constants (tau_mem 16, tau_s 8, R 1).

Data: MNIST-format IDX files. This machine has no MNIST digits offline; Debian's ``dataset-fashion-mnist``
package ships Fashion-MNIST (same format and size) under ``/usr/share/datasets/fashion-mnist``.

    python benchmarks/bench_tutorial5.py --json benchmarks/results/bench_tutorial5.json
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import write_json
from torch import nn

from snn_motifs import SCML, NeuronParameters

STEPS, HIDDEN, BETA = 25, 1000, 0.95


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (``.gz`` or plain) as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = "train" if split == "train" else "t10k"
    find = lambda stem: next(p for p in (root / f"{stem}.gz", root / stem) if p.exists())  # noqa: E731
    x = read_idx(find(f"{prefix}-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


class Net(nn.Module):
    """Tutorial 5's network; ``hidden`` is "leaky", "rleaky", "scml" (Leaky-equivalent neuron, native
    backend), "scml-snntorch" / "scml-norse" (the same on the snnTorch / Norse backend) or "scml-default"
    (the library's default neuron)."""

    def __init__(self, hidden: str) -> None:
        super().__init__()
        import snntorch as snn

        self.kind = hidden
        self.fc2 = nn.Linear(HIDDEN, 10)
        self.lif2 = snn.Leaky(beta=BETA)
        if hidden in ("leaky", "rleaky"):
            self.fc1 = nn.Linear(784, HIDDEN)
            self.lif1 = (
                snn.Leaky(beta=BETA) if hidden == "leaky" else snn.RLeaky(beta=BETA, linear_features=HIDDEN)
            )
        else:
            tau = 1.0 / (1.0 - BETA)
            default = hidden == "scml-default"
            neuron = None if default else NeuronParameters(tau_mem=tau, tau_syn=1.0, resistance=tau)
            backend = hidden.split("-")[1] if hidden in ("scml-snntorch", "scml-norse") else "native"
            self.scml = SCML(784, HIDDEN, motif_size=8, neuron=neuron, backend=backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem2 = self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        if self.kind == "leaky":
            mem1, cur1 = self.lif1.init_leaky(), self.fc1(x)
        elif self.kind == "rleaky":
            spk1, mem1 = self.lif1.init_rleaky()
            cur1 = self.fc1(x)
        else:
            state = self.scml.init_state(x.shape[0])
        for _ in range(STEPS):
            if self.kind == "leaky":
                spk1, mem1 = self.lif1(cur1, mem1)
            elif self.kind == "rleaky":
                spk1, mem1 = self.lif1(cur1, spk1, mem1)
            else:
                spk1, state = self.scml(x, state)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec), torch.stack(mem2_rec)


def run(kind: str, seed: int, data, batch: int, limit: int | None, device: str = "cpu") -> dict:
    (xtr, ytr), (xte, yte) = data
    torch.manual_seed(seed)
    net = Net(kind).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.9, 0.999))
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(seed))
    n = len(xtr) if limit is None else min(limit, len(xtr))
    start = time.perf_counter()
    net.train()
    for i in range(0, n, batch):
        idx = order[i : i + batch]
        xb, yb = xtr[idx].to(device), ytr[idx].to(device)
        _, mem = net(xb)
        loss = sum(loss_fn(mem[t], yb) for t in range(STEPS))
        opt.zero_grad()
        loss.backward()
        opt.step()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xte), 1000):
            spk, _ = net(xte[i : i + 1000].to(device))
            correct += int((spk.sum(0).argmax(-1).cpu() == yte[i : i + 1000]).sum())
    return {"acc": correct / len(xte), "seconds": seconds, "ms_per_batch": 1e3 * seconds / -(-n // batch)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--models", default="leaky,rleaky,scml,scml-snntorch,scml-norse,scml-default")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--limit", type=int, help="train on the first LIMIT samples only (smoke test)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        raise SystemExit(f"no MNIST-format data at {root} (apt-get install dataset-fashion-mnist)")
    data = (load(root, "train"), load(root, "test"))
    results: dict = {"config": vars(args), "torch": torch.__version__, "results": {}}
    for kind in args.models.split(","):
        runs = []
        for seed in range(args.seeds):
            runs.append(run(kind, seed, data, args.batch, args.limit, args.device))
            r = runs[-1]
            print(
                f"{kind:<13s} seed {seed}: test acc {r['acc']:.4f} ({r['seconds']:.0f} s, "
                f"{r['ms_per_batch']:.0f} ms per batch)",
                flush=True,
            )
        accs = [r["acc"] for r in runs]
        results["results"][kind] = {
            "acc_mean": statistics.mean(accs),
            "acc_std": statistics.pstdev(accs),
            "seconds_mean": statistics.mean(r["seconds"] for r in runs),
            "ms_per_batch": statistics.mean(r["ms_per_batch"] for r in runs),
            "runs": runs,
        }
        if args.json:
            write_json(args.json, results)
    base = results["results"].get("rleaky", {}).get("ms_per_batch")
    for kind, r in results["results"].items():
        ratio = f"  {r['ms_per_batch'] / base:.2f} x RLeaky" if base else ""
        print(
            f"  {kind:<13s} {r['acc_mean']:.4f} +- {r['acc_std']:.4f}  {r['seconds_mean']:.0f} s  "
            f"{r['ms_per_batch']:.0f} ms/batch{ratio}"
        )
    return results


if __name__ == "__main__":
    main()
