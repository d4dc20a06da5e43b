"""The HRMAS paper's Table 1 setting on TI46-Alpha, at full scale: SC-ML of N = 800, motif sizes
[5, 10, 16, 25, 40], 150 + 150 search and 400 retraining epochs, TSSL-BP (the packaged ``ti46_alpha``
config with ``compile=True``), against the dense RSNN of N = 800 (400 epochs, no search), random search
in the same space with the same budget, the same HRMAS with the arc-tangent surrogate, and (beyond the
paper) the same HRMAS trading accuracy against expected recurrent synops (``COST_WEIGHTS``);
speaker-dependent split, 3 seeds each, every run a Ray Tune trial.

    python benchmarks/bench_table1.py --workers 2                 # all methods, resumes what exists
    python benchmarks/bench_table1.py --tabulate                  # the JSON from the folders, no runs
    python benchmarks/bench_table1.py --markdown                  # the README table from the JSON
    python benchmarks/bench_table1.py --sequential --only hrmas_tssl/seed0 --device cuda   # one run, no Ray

Each (method, seed) runs in its own folder under ``--out`` with a checkpoint after every epoch, so the
command can be stopped at any time and run again: finished runs are read back, unfinished HRMAS runs
resume exactly (a dense RSNN is written once when it finishes). The JSON
(``benchmarks/results/bench_table1.json``) is rewritten whenever a run finishes, so results can be
committed as they land. ``--sequential`` runs the selected jobs one after another in this process (the
library's sequential path, for a machine without Ray); the folders are the same, so a run started one
way can be finished the other way, on another device too.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
from _common import DEFAULT_TI46

from snn_motifs._io import load_torch, read_json, write_json
from snn_motifs.datasets import load_ti46_alpha
from snn_motifs.search import load_config, with_ablation
from snn_motifs.search.trials import run_job, run_trials

#: the paper's Table 2 (TI46-Alpha, HRMAS-searched SC-ML, the full 16-speaker corpus)
PAPER = {"best": 0.9644, "mean": 0.9608}
#: lambda of each cost-aware arm: the architecture loss + lambda * expected recurrent synops / those of the
#: largest option (both chose v = 5 on every seed of the N = 200 accuracy-cost front)
COST_WEIGHTS = {"hrmas_cost": 0.1, "hrmas_cost1": 1.0}
#: method slug -> (table row, kind)
METHODS = {
    "hrmas_tssl": ("HRMAS, TSSL-BP (Table 1)", "hrmas"),
    "hrmas_atan": ("HRMAS, arc-tangent surrogate", "hrmas"),
    "random": ("random search, same space and budget", "hrmas"),
    "dense": ("dense RSNN N = 800, no search", "dense"),
    **{m: (f"cost-aware HRMAS, lambda = {w:g} (beyond the paper)", "hrmas") for m, w in COST_WEIGHTS.items()},
}


def base_config():
    """The packaged Table 1 config with the compiled kernel."""
    return dataclasses.replace(load_config("ti46_alpha"), compile=True)


def jobs(args, methods: str | None = None) -> list[tuple[str, int, object, Path, str]]:
    """``(method, seed, config, folder, kind)`` of every run of ``methods`` (default ``--methods``)."""
    base = base_config()
    if args.epochs:
        size, types, retrain = (int(e) for e in args.epochs.split(","))
        base = dataclasses.replace(base, epochs_size=size, epochs_types=types, epochs_retrain=retrain)
    configs = {
        "hrmas_tssl": base,
        "hrmas_atan": dataclasses.replace(base, spike_fn="atan"),
        "random": with_ablation(base, "random"),
        "dense": base,
        **{m: dataclasses.replace(base, cost="synops", cost_weight=w) for m, w in COST_WEIGHTS.items()},
    }
    out = []
    for method in (methods or args.methods).split(","):
        if method not in METHODS:
            raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        for seed in range(args.seeds):
            cfg = dataclasses.replace(configs[method], seed=seed)
            out.append((method, seed, cfg, Path(args.out) / method / f"seed{seed}", METHODS[method][1]))
    return out


def _progress(folder: Path, kind: str) -> str:
    """How far an unfinished run has got, read from its last checkpoint."""
    if not (folder / "checkpoint.pt").exists():
        if kind == "dense":
            return "running or not started (a dense RSNN writes nothing until it finishes)"
        return "not started"
    state = load_torch(folder / "checkpoint.pt")["state"]
    return f"{state['phase']}, {state['epoch']} epochs of that phase done"


def tabulate(all_jobs, seconds: float) -> dict:
    """Mean, std and best over the finished seeds of every method, and how far each run has got."""
    table: dict = {}
    progress: dict = {}
    for method, seed, _cfg, folder, kind in all_jobs:
        path = folder / "result.json"
        if path.exists():
            res = read_json(path, "result")
            table.setdefault(method, {"name": METHODS[method][0], "runs": []})["runs"].append(res)
        else:
            progress[f"{method}/seed{seed}"] = _progress(folder, kind)
    for entry in table.values():
        accs = [r["test_acc"] for r in entry["runs"]]
        entry.update(seeds=len(accs), mean=statistics.mean(accs), std=statistics.pstdev(accs), best=max(accs))
        costs = [r["cost"] for r in entry["runs"] if "cost" in r]
        if costs:
            entry["synops_per_sample"] = statistics.mean(c["synops_per_sample"] for c in costs)
            entry["recurrent_synapses"] = statistics.mean(c["recurrent_synapses"] for c in costs)
        sizes = [r["genotype"]["motif_size"] for r in entry["runs"] if "genotype" in r]
        if sizes:
            entry["motif_sizes"] = sizes
        decided = [r["decision"]["decisive"] for r in entry["runs"] if "decision" in r]
        if decided:
            entry["decisive"] = decided
    return {
        "config": dataclasses.asdict(base_config()),
        "paper": PAPER,
        "torch": torch.__version__,
        "seconds": seconds,
        "methods": table,
        "unfinished": progress,
    }


def restore_finished(all_jobs, json_path: str | Path) -> int:
    """Put back the ``result.json`` of every run the committed table already holds but whose folder is
    missing (a fresh clone or machine: run folders are not committed), so finished runs are neither run
    again nor dropped from the table; returns how many were restored."""
    path = Path(json_path)
    if not path.exists():
        return 0
    done = {
        (method, run["seed"]): run
        for method, entry in read_json(path, "results").get("methods", {}).items()
        for run in entry.get("runs", [])
        if "seed" in run
    }
    restored = 0
    for method, seed, _cfg, folder, _kind in all_jobs:
        run = done.get((method, seed))
        if run is not None and not (folder / "result.json").exists():
            write_json(folder / "result.json", run)
            restored += 1
    if restored:
        print(f"{restored} finished run(s) restored from {path}")
    return restored


def markdown(res: dict) -> str:
    """The README table: the paper's numbers beside ours, unfinished runs said as such."""
    lines = [
        "| method | seeds done | mean ± std | best | motif sizes chosen | synops/sample |",
        "|---|---:|---:|---:|---|---:|",
        f"| paper, Table 2 (HRMAS, full TI46-Alpha) | — | {100 * PAPER['mean']:.2f} % | "
        f"{100 * PAPER['best']:.2f} % | — | — |",
    ]
    for method, (name, _kind) in METHODS.items():
        r = res["methods"].get(method)
        if r is None:
            lines.append(f"| {name} | 0 | running | — | — | — |")
            continue
        sizes = "/".join(map(str, r.get("motif_sizes", []))) or "—"
        synops = f"{r['synops_per_sample']:,.0f}" if "synops_per_sample" in r else "—"
        lines.append(
            f"| {name} | {r['seeds']} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} % | "
            f"{100 * r['best']:.2f} % | {sizes} | {synops} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ti46-root", default=str(DEFAULT_TI46))
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated: {', '.join(METHODS)}")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="Ray Tune trials at once (one CPU each)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--max-failures", type=int, default=2, help="restarts of a trial whose worker died")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--out", default="runs/bench_table1")
    ap.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "bench_table1.json"))
    ap.add_argument("--epochs", help="override search/types/retrain epochs, e.g. 1,1,2 (smoke test)")
    ap.add_argument("--only", help="comma-separated method/seedK runs, e.g. hrmas_tssl/seed0")
    ap.add_argument("--sequential", action="store_true", help="run in this process, no Ray")
    ap.add_argument("--markdown", action="store_true", help="print the README table from --json and exit")
    ap.add_argument(
        "--tabulate", action="store_true", help="rewrite --json from the run folders as they are (no runs)"
    )
    args = ap.parse_args(argv)
    if args.markdown:
        res = read_json(args.json, "results")
        print(markdown(res))
        return res
    torch.set_num_threads(args.threads)
    all_jobs = jobs(args, ",".join(METHODS))  # the table always covers every method
    restore_finished(all_jobs, args.json)
    if args.tabulate:
        res = tabulate(all_jobs, 0.0)
        write_json(args.json, res)
        print(markdown(res))
        return res
    chosen = [j for j in jobs(args) if not args.only or f"{j[0]}/seed{j[1]}" in args.only.split(",")]
    data = load_ti46_alpha(args.ti46_root, "speaker_dependent")
    t0 = time.perf_counter()

    def rewrite() -> None:
        if not args.epochs:  # a smoke test's numbers never overwrite the table
            write_json(args.json, tabulate(all_jobs, time.perf_counter() - t0))

    todo = [j for j in chosen if not (j[3] / "result.json").exists()]
    print(f"{len(chosen)} runs, {len(todo)} to do", flush=True)
    if args.sequential:
        for method, seed, cfg, folder, kind in todo:
            start = time.perf_counter()
            res = run_job(cfg, folder, kind, data, args.device)
            took = time.perf_counter() - start
            print(f"{method}/seed{seed}: {res['test_acc']:.4f} ({took:.0f} s)", flush=True)
            rewrite()
    elif todo:
        from ray import tune

        class Rewrite(tune.Callback):  # the JSON after every finished run
            def on_trial_complete(self, iteration, trials, trial, **info):
                rewrite()

        todo.sort(key=lambda j: j[4] != "hrmas")  # the long searches first
        run_trials(
            [(cfg, folder, kind) for _m, _s, cfg, folder, kind in todo],
            data,
            workers=args.workers,
            cpus_per_trial=args.threads,
            device=args.device,
            storage=Path(args.out) / "ray" / time.strftime("%Y%m%d-%H%M%S"),
            max_failures=args.max_failures,
            callbacks=[Rewrite()],
        )
    res = tabulate(all_jobs, time.perf_counter() - t0)
    rewrite()
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
