"""The HRMAS paper's comparison (Tables 3-4), measured: HRMAS vs random search (same space, same budget)
vs HRMAS without IP / without motif / without lateral connections vs the dense RSNN of the same size,
on MNIST-1D, TI46-Alpha speaker-dependent and TI46-Alpha leave-one-speaker-out, >= 3 seeds.

    python benchmarks/bench_hrmas.py --datasets mnist1d --json benchmarks/results/bench_hrmas_mnist1d.json
    python benchmarks/bench_hrmas.py --datasets ti46_loso --json benchmarks/results/bench_hrmas_ti46_loso.json

Every (data set, method, seed) is one :class:`~snn_motifs.search.HRMASRun` in its own folder under
``--out`` with checkpoints: re-running the command resumes unfinished runs and re-reads finished ones.
The JSON is rewritten after every run. Configs: ``mnist1d_default`` (the main job's) and
``ti46_alpha_cpu`` (Table 1 scaled to 2 CPU cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
from _common import DEFAULT_TI46

from snn_motifs._io import read_json, write_json
from snn_motifs.datasets import load_mnist1d, load_ti46_alpha
from snn_motifs.search import ABLATIONS, HRMASRun, load_config, train_dense_baseline, with_ablation

#: data set -> (config, loader)
DATASETS = {
    "mnist1d": ("mnist1d_default", lambda root: load_mnist1d(seed=42)),
    "ti46_sd": ("ti46_alpha_cpu", lambda root: load_ti46_alpha(root, "speaker_dependent")),
    "ti46_loso": ("ti46_alpha_cpu", lambda root: load_ti46_alpha(root, "loso", "f1")),
}
#: table row -> ablation name (snn_motifs.search.ABLATIONS); "dense" is the dense RSNN without search
METHODS = {
    "HRMAS": "none",
    "random search": "random",
    "HRMAS without IP": "no-ip",
    "HRMAS without motif": "no-motif",
    "HRMAS without lateral": "no-lateral",
    "dense RSNN (no search)": "dense",
}


def load(key: str, root: str):
    """``(config name, data)`` of data set ``key``, or None (with a line saying why) when it is absent."""
    config, loader = DATASETS[key]
    try:
        return config, loader(root)
    except (FileNotFoundError, ImportError) as exc:
        print(f"skip {key}: {exc}")
        return None


def run_one(cfg, data, out: Path, method: str, device: str = "cpu") -> dict:
    """One seed of one method; finished runs are read back, unfinished ones resumed."""
    if method == "dense":
        path = out / "dense.json"
        if not path.exists():
            torch.manual_seed(cfg.seed)
            write_json(path, train_dense_baseline(cfg, data, device=device))
        return read_json(path)
    if (out / "result.json").exists():
        return read_json(out / "result.json")
    run = HRMASRun(with_ablation(cfg, method), data, out, progress=False, log=lambda s: None, device=device)
    return run.run(resume=run.checkpoint_path.exists())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ti46-root", default=str(DEFAULT_TI46))
    ap.add_argument("--datasets", default="mnist1d,ti46_sd,ti46_loso")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one core per benchmark process)")
    ap.add_argument("--out", default="runs/bench_hrmas")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict = {"torch": torch.__version__, "seeds": args.seeds, "results": {}}
    for key in args.datasets.split(","):
        if (loaded := load(key, args.ti46_root)) is None:
            continue
        config, data = loaded
        base = load_config(config)
        table = results["results"][key] = {"config": dataclasses.asdict(base)}
        for name in args.methods.split(","):
            method = METHODS[name]
            assert method == "dense" or method in ABLATIONS
            runs = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                cfg = dataclasses.replace(base, seed=seed)
                res = run_one(cfg, data, Path(args.out) / key / method / f"seed{seed}", method, args.device)
                runs.append(res)
                extra = f"v={res['genotype']['motif_size']}" if "genotype" in res else ""
                if "decision" in res:
                    d = res["decision"]
                    extra += f" p(v)={d['size_prob']:.2f} p(type)={d['type_prob']:.2f}"
                print(
                    f"{key:<10s} {name:<24s} seed {seed}: {res['test_acc']:.4f} {extra} "
                    f"({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
            accs = [r["test_acc"] for r in runs]
            table[name] = {
                "mean": statistics.mean(accs),
                "std": statistics.pstdev(accs),
                "best": max(accs),
                "runs": runs,
            }
            if args.json:
                write_json(args.json, results)
    print("\nmean +- std (best) test accuracy:")
    for key, table in results["results"].items():
        for name, r in table.items():
            if name != "config":
                print(f"  {key:<10s} {name:<24s} {r['mean']:.4f} +- {r['std']:.4f} ({r['best']:.4f})")
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
