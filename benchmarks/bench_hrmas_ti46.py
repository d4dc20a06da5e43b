"""HRMAS vs random search vs HRMAS without IP vs a same-size dense RSNN on the real TI46-Alpha subset, both
splits of its README (speaker-dependent; leave speaker f1 out), best / mean / std over seeds.

Uses the CPU-scaled config ``snn_motifs/configs/ti46_alpha_cpu.json`` (N 200, 6+6 search and 20 retrain
epochs instead of Table 1's 800 and 150+150+400). The HRMAS paper's Tables 3-4 are on the full
16-speaker corpus.

    python benchmarks/bench_hrmas_ti46.py --seeds 2 --out runs/bench_ti46 --json hrmas_ti46.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from _common import DEFAULT_TI46

from snn_motifs import datasets
from snn_motifs.search import HRMASRun, load_config, train_dense_baseline

METHODS = {"HRMAS": {}, "random search": {"search": "random"}, "HRMAS without IP": {"ip": False}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ti46-root", default=str(DEFAULT_TI46))
    ap.add_argument("--config", default="ti46_alpha_cpu")
    ap.add_argument("--splits", default="speaker_dependent,loso")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default="runs/bench_hrmas_ti46")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    base = dataclasses.replace(load_config(args.config), ti46_root=args.ti46_root)
    table: dict = {}
    for split in args.splits.split(","):
        data = datasets.load_ti46_alpha(args.ti46_root, split, "f1")
        table[split] = {}
        for name, over in METHODS.items():
            accs = []
            for seed in range(args.seeds):
                cfg = dataclasses.replace(base, ti46_split=split, seed=seed, **over)
                out = Path(args.out) / split / name.replace(" ", "_") / f"seed{seed}"
                run = HRMASRun(cfg, data, out, progress=False, log=lambda s: None)
                res = run.run(resume=(out / "checkpoint.pt").exists())
                accs.append(res["test_acc"])
                print(
                    f"{split:<18s} {name:<18s} seed {seed}: {res['test_acc']:.4f}  "
                    f"v={res['genotype']['motif_size']}",
                    flush=True,
                )
            table[split][name] = accs
        accs = []
        for seed in range(args.seeds):
            res = train_dense_baseline(base, data, seed)
            accs.append(res["test_acc"])
            print(f"{split:<18s} {'dense RSNN':<18s} seed {seed}: {res['test_acc']:.4f}", flush=True)
        table[split]["dense RSNN (no search)"] = accs
    print("\nbest / mean +- std test accuracy:")
    summary = {}
    for split, rows in table.items():
        for name, accs in rows.items():
            s = {
                "best": max(accs),
                "mean": statistics.mean(accs),
                "std": statistics.pstdev(accs),
                "runs": accs,
            }
            summary.setdefault(split, {})[name] = s
            print(f"  {split:<18s} {name:<24s} {s['best']:.4f} / {s['mean']:.4f} +- {s['std']:.4f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"config": dataclasses.asdict(base), "summary": summary}, indent=2)
        )
    return summary


if __name__ == "__main__":
    main()
