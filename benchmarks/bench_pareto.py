"""The accuracy-cost front: cost-aware HRMAS at several cost weights against random search, the no-motif
ablation, dense RSNNs of several sizes, the FF-SNN and non-spiking references, with NeuroBench's cost
metrics (:mod:`snn_motifs.metrics`), >= 3 seeds, every run a Ray Tune trial.

    python benchmarks/bench_pareto.py --datasets mnist1d --workers 2
    python benchmarks/bench_pareto.py --datasets ti46_sd,ti46_loso --workers 2

Each (data set, method, seed) runs in its own folder under ``--out`` (an HRMAS run keeps its per-epoch
checkpoint there): re-running the command reads finished runs back and resumes unfinished ones. The JSON
(``--json-dir``/bench_pareto_<data set>.json) is rewritten whenever a trial completes; ``pareto.png``
(accuracy vs synaptic operations per sample, log x, mean +- std over seeds, the non-dominated front) at
the end. Configs: ``mnist1d_default`` (the main job's) and ``ti46_alpha_cpu`` (Table 1 scaled to 2 CPU
cores); HRMAS trades accuracy against ``--cost`` (default expected recurrent synops).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch
from _common import DEFAULT_TI46
from bench_hrmas import load

from snn_motifs._io import read_json, write_json
from snn_motifs.search import load_config, with_ablation
from snn_motifs.search.trials import run_trials

#: dense RSNN sizes per data set: from a quarter of the SC-ML's neurons to the same size
DENSE_FRACTIONS = (0.125, 0.25, 0.5, 1.0)


def jobs_for(key: str, base, args) -> list[tuple[str, object, Path, str]]:
    """``(method, config, folder, kind)`` for every method and seed of one data set."""
    out = Path(args.out) / key
    methods: list[tuple[str, object, str]] = []
    for lam in args.lambdas:
        methods.append(
            (f"HRMAS lambda={lam:g}", dataclasses.replace(base, cost=args.cost, cost_weight=lam), "hrmas")
        )
    methods.append(("random search", with_ablation(base, "random"), "hrmas"))
    methods.append(("HRMAS without motif", with_ablation(base, "no-motif"), "hrmas"))
    for frac in DENSE_FRACTIONS:
        n = max(1, int(round(base.hidden * frac)))
        methods.append((f"dense RSNN N={n}", dataclasses.replace(base, hidden=n), "dense"))
    methods.append((f"FF-SNN N={base.hidden}", base, "ff"))
    methods.append(("logistic regression", base, "logistic"))
    methods.append((f"GRU H={base.hidden}", base, "gru"))
    jobs = []
    for name, cfg, kind in methods:
        slug = name.replace(" ", "_").replace("=", "").replace("(", "").replace(")", "")
        for seed in range(args.seeds):
            jobs.append((name, dataclasses.replace(cfg, seed=seed), out / slug / f"seed{seed}", kind))
    return jobs


def _recurrent_ops(cost: dict) -> float:
    return sum(
        v["ac"] + v["mac"] for k, v in cost.get("ops_per_layer", {}).items() if k.endswith("recurrent")
    )


def tabulate(key: str, base, jobs, seconds: float) -> dict:
    """Mean and std over seeds of accuracy and cost for every method whose runs have finished."""
    rows: dict[str, list[dict]] = {}
    for name, _cfg, folder, kind in jobs:
        path = folder / "result.json"
        if path.exists():
            res = read_json(path, "result")
            res["kind"] = kind
            rows.setdefault(name, []).append(res)
    table = {}
    for name, runs in rows.items():
        costs = [r["cost"] for r in runs if "cost" in r]
        accs = [r["test_acc"] for r in runs]
        entry = {
            "kind": runs[0]["kind"],
            "seeds": len(runs),
            "acc_mean": statistics.mean(accs),
            "acc_std": statistics.pstdev(accs),
        }
        for metric in ("synops_per_sample", "ac_per_sample", "mac_per_sample", "energy_pj_per_sample"):
            values = [c[metric] for c in costs]
            entry[metric] = statistics.mean(values)
            entry[metric + "_std"] = statistics.pstdev(values)
        entry["recurrent_synapses"] = statistics.mean(c["recurrent_synapses"] for c in costs)
        entry["recurrent_synops_per_sample"] = statistics.mean(_recurrent_ops(c) for c in costs)
        entry["parameters"] = statistics.mean(c["parameters"] for c in costs)
        if "genotype" in runs[0]:
            entry["motif_sizes"] = [r["genotype"]["motif_size"] for r in runs]
        entry["runs"] = runs
        table[name] = entry
    front = pareto_front({k: v for k, v in table.items() if v["kind"] not in ("logistic", "gru")})
    return {
        "config": dataclasses.asdict(base),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "methods": table,
        "front": front,
        "targets": targets(table),
    }


def pareto_front(table: dict) -> list[str]:
    """Methods not dominated in (higher mean accuracy, fewer mean synops per sample), cheapest first."""
    names = sorted(table, key=lambda n: (table[n]["synops_per_sample"], -table[n]["acc_mean"]))
    front, best = [], -1.0
    for n in names:
        if table[n]["acc_mean"] > best:
            front.append(n)
            best = table[n]["acc_mean"]
    return front


def targets(table: dict) -> dict:
    """The issue's targets, measured: the chosen motif sizes per cost weight; the best HRMAS point at
    <= 25 % of the best dense RSNN's synops against that RSNN; HRMAS against random search at matched cost."""
    hrmas = {n: r for n, r in table.items() if n.startswith("HRMAS lambda")}
    dense = {n: r for n, r in table.items() if r["kind"] == "dense"}
    out: dict = {"motif_sizes": {n: r.get("motif_sizes") for n, r in hrmas.items()}}
    if dense and hrmas:
        best_name = max(dense, key=lambda n: dense[n]["acc_mean"])
        best = dense[best_name]
        cheap = {n: r for n, r in hrmas.items() if r["synops_per_sample"] <= 0.25 * best["synops_per_sample"]}
        out["best_dense"] = {"name": best_name, "acc": best["acc_mean"], "synops": best["synops_per_sample"]}
        if cheap:
            top = max(cheap, key=lambda n: cheap[n]["acc_mean"])
            out["hrmas_at_quarter_synops"] = {
                "name": top,
                "acc": cheap[top]["acc_mean"],
                "synops": cheap[top]["synops_per_sample"],
                "margin_points": 100 * (cheap[top]["acc_mean"] - best["acc_mean"]),
            }
        else:
            cheapest = min(hrmas, key=lambda n: hrmas[n]["synops_per_sample"])
            out["hrmas_at_quarter_synops"] = {
                "name": None,
                "cheapest_hrmas_synops_fraction": hrmas[cheapest]["synops_per_sample"]
                / best["synops_per_sample"],
            }
    rnd = table.get("random search")
    if rnd and hrmas:
        near = min(hrmas, key=lambda n: abs(hrmas[n]["synops_per_sample"] - rnd["synops_per_sample"]))
        out["vs_random"] = {
            "hrmas": near,
            "hrmas_acc": hrmas[near]["acc_mean"],
            "random_acc": rnd["acc_mean"],
            "random_std": rnd["acc_std"],
            "synops_ratio": hrmas[near]["synops_per_sample"] / rnd["synops_per_sample"],
        }
    return out


FAMILIES = {  # kind or method name -> (legend label, marker, colour)
    "hrmas": ("cost-aware HRMAS (λ = cost weight, v = chosen motif sizes)", "o", "tab:blue"),
    "random search": ("random search (same space and budget)", "X", "tab:orange"),
    "HRMAS without motif": ("HRMAS without motif (types over N x N)", "v", "tab:cyan"),
    "dense": ("dense RSNN (N neurons)", "s", "tab:red"),
    "ff": ("FF-SNN (no recurrence)", "^", "tab:green"),
    "gru": ("GRU (non-spiking, MACs)", "P", "tab:purple"),
    "logistic": ("logistic regression (non-spiking, MACs)", "D", "tab:gray"),
}


def _family(name: str, kind: str) -> str:
    return name if name in FAMILIES else kind


def plot(results: dict, path: Path) -> Path:
    """Per data set two panels: accuracy against all synaptic operations per sample (the non-dominated
    front drawn) and against the recurrent ones only (what the motif structure changes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(results)
    fig, axes = plt.subplots(2, len(keys), figsize=(6.0 * len(keys), 9.5), squeeze=False)
    metrics = [
        ("synops_per_sample", "synaptic operations per sample (AC + MAC, log)"),
        ("recurrent_synops_per_sample", "recurrent synaptic operations per sample (AC, log)"),
    ]
    for col, key in enumerate(keys):
        table = results[key]["methods"]
        spiking = [r for r in table.values() if r["kind"] not in ("logistic", "gru")]
        low = min(r["acc_mean"] - r["acc_std"] for r in spiking) - 0.02
        for row, (metric, label) in enumerate(metrics):
            ax = axes[row][col]
            seen = set()
            for family in ("hrmas", "dense"):  # the sweeps as lines, in cost order
                pts = sorted(
                    (r[metric], r["acc_mean"]) for n, r in table.items()
                    if _family(n, r["kind"]) == family and r[metric] > 0
                )  # fmt: skip
                if pts:
                    ax.plot(*zip(*pts, strict=True), color=FAMILIES[family][2], lw=0.8, alpha=0.5)
            for name, r in table.items():
                x, y = r[metric], r["acc_mean"]
                family = _family(name, r["kind"])
                text, marker, color = FAMILIES[family]
                if x <= 0:
                    continue  # nothing recurrent (FF-SNN, the references) on the recurrent panel
                if y < low:
                    text = f"{text}: {y:.3f}, below the axis"
                ax.errorbar(
                    x, y, yerr=r["acc_std"], xerr=r.get(metric + "_std", 0.0), fmt=marker, color=color,
                    capsize=3, label=None if family in seen else text,
                )  # fmt: skip
                seen.add(family)
                tag = ""
                if family == "hrmas":
                    tag = name.replace("HRMAS lambda=", "λ=") + " v=" + "/".join(map(str, r["motif_sizes"]))
                elif family == "dense":
                    tag = name.replace("dense RSNN ", "")
                if tag:
                    ax.annotate(tag, (x, y), fontsize=7, xytext=(5, -9 if family == "dense" else 4),
                                textcoords="offset points")  # fmt: skip
            if row == 0:
                names = results[key]["front"]
                xs = [table[n][metric] for n in names]
                ys = [table[n]["acc_mean"] for n in names]
                ax.step(xs, ys, where="post", color="black", lw=0.8, ls="--", label="non-dominated front")
            ax.set_xscale("log")
            ax.set_ylim(low, min(1.0, max(r["acc_mean"] + r["acc_std"] for r in table.values()) + 0.02))
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy (mean ± std over 3 seeds)")
            ax.set_title(f"{key}: accuracy vs {'all' if row == 0 else 'recurrent'} synaptic operations")
            ax.grid(alpha=0.3, which="both")
        handles, labels = axes[0][col].get_legend_handles_labels()
        axes[1][col].legend(
            handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1
        )
    fig.suptitle(
        "Accuracy-cost front (NeuroBench synaptic operations; test set; 3 seeds per point)", fontsize=11
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _row_labels(table: dict) -> dict[str, str]:
    """Method name -> a label shared by every data set (the dense sizes as fractions of the SC-ML's N)."""
    dense = sorted((n for n, r in table.items() if r["kind"] == "dense"), key=lambda n: int(n.split("=")[1]))
    labels = {n: f"dense RSNN, N/{2 ** (len(dense) - 1 - i)}" if i < len(dense) - 1 else "dense RSNN, N"
              for i, n in enumerate(dense)}  # fmt: skip
    for n, r in table.items():
        if r["kind"] in ("ff", "gru"):
            labels[n] = {"ff": "FF-SNN, N", "gru": "GRU, N units"}[r["kind"]]
    return {n: labels.get(n, n) for n in table}


def markdown(results: dict) -> str:
    """The README table: one row per method, per data set accuracy (mean ± std, non-dominated points in
    bold, chosen motif sizes) and synaptic operations per sample (recurrent ones in brackets)."""
    keys = list(results)
    rows: dict[str, dict[str, tuple[str, dict]]] = {}
    for k in keys:
        table = results[k]["methods"]
        for name, label in _row_labels(table).items():
            rows.setdefault(label, {})[k] = (name, table[name])
    lam = sorted((n for n in rows if n.startswith("HRMAS lambda=")), key=lambda n: float(n.split("=")[1]))
    rows = {n: rows[n] for n in [*lam, *(n for n in rows if n not in lam)]}
    head = "| method | " + " | ".join(f"{k} accuracy | {k} synops/sample (recurrent)" for k in keys) + " |"
    lines = [head, "|---|" + "---:|---:|" * len(keys)]
    for label, per in rows.items():
        cells = []
        for k in keys:
            if k not in per:
                cells += ["—", "—"]
                continue
            name, r = per[k]
            bold = "**" if name in results[k]["front"] else ""
            size = ""
            if "motif_sizes" in r and name.startswith("HRMAS"):
                size = " v=" + "/".join(map(str, r["motif_sizes"]))
            elif r["kind"] in ("dense", "ff", "gru"):
                size = f" ({name.split()[-1]})"
            cells.append(f"{bold}{r['acc_mean']:.3f} ± {r['acc_std']:.3f}{bold}{size}")
            cells.append(f"{r['synops_per_sample']:,.0f} ({r['recurrent_synops_per_sample']:,.0f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ti46-root", default=str(DEFAULT_TI46))
    ap.add_argument("--datasets", default="mnist1d,ti46_sd,ti46_loso")
    ap.add_argument(
        "--lambdas", default="0,0.1,1,3,10", help="cost weights of the HRMAS runs (0: accuracy alone)"
    )
    ap.add_argument("--cost", default="synops", choices=["synops", "synapses"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="Ray Tune trials at once (one CPU each)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per trial")
    ap.add_argument("--max-failures", type=int, default=2, help="restarts of a trial whose worker died")
    ap.add_argument("--out", default="runs/bench_pareto")
    results_dir = Path(__file__).resolve().parent / "results"
    ap.add_argument("--json-dir", default=str(results_dir))
    ap.add_argument("--plot", default=str(results_dir / "pareto.png"))
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument(
        "--epochs", help="override the configs' search/types/retrain epochs, e.g. 1,1,2 (smoke test)"
    )
    ap.add_argument(
        "--markdown",
        action="store_true",
        help="print the README table from the JSON files and exit (no runs)",
    )
    args = ap.parse_args(argv)
    args.lambdas = [float(v) for v in args.lambdas.split(",")]
    if args.markdown:
        files = {k: Path(args.json_dir) / f"bench_pareto_{k}.json" for k in args.datasets.split(",")}
        found = {k: read_json(f, "results") for k, f in files.items() if f.exists()}
        print(markdown(found))
        return found
    torch.set_num_threads(args.threads)
    from ray import tune

    results: dict = {}
    for key in args.datasets.split(","):
        if (loaded := load(key, args.ti46_root)) is None:
            continue
        config, data = loaded
        base = load_config(config)
        if args.epochs:
            size, types, retrain = (int(e) for e in args.epochs.split(","))
            base = dataclasses.replace(base, epochs_size=size, epochs_types=types, epochs_retrain=retrain)
        jobs = jobs_for(key, base, args)
        json_path = Path(args.json_dir) / f"bench_pareto_{key}.json"
        t0 = time.perf_counter()

        class Rewrite(tune.Callback):  # the JSON after every finished run
            def __init__(self, path: Path, key: str, base, jobs: list, t0: float) -> None:
                self.args = (path, key, base, jobs, t0)

            def on_trial_complete(self, iteration, trials, trial, **info):
                path, key, base, jobs, t0 = self.args
                write_json(path, tabulate(key, base, jobs, time.perf_counter() - t0))

        todo = [(cfg, folder, kind) for _, cfg, folder, kind in jobs if not (folder / "result.json").exists()]
        todo.sort(key=lambda j: j[2] != "hrmas")  # the long searches first
        print(f"{key}: {len(jobs)} runs, {len(todo)} to do, {args.workers} at once", flush=True)
        if todo:
            run_trials(
                todo,
                data,
                workers=args.workers,
                cpus_per_trial=args.threads,
                device=args.device,
                storage=Path(args.out) / key / "ray" / time.strftime("%Y%m%d-%H%M%S"),
                max_failures=args.max_failures,
                callbacks=[Rewrite(json_path, key, base, jobs, t0)],
            )
        results[key] = tabulate(key, base, jobs, time.perf_counter() - t0)
        write_json(json_path, results[key])
        report(key, results[key])
    if results and args.plot:
        print(f"figure: {plot(results, Path(args.plot))}")
    return results


def report(key: str, res: dict) -> None:
    print(f"\n{key}: mean ± std over seeds")
    print(
        f"  {'method':<24s} {'accuracy':>15s} {'synops/sample':>14s} {'recurrent':>10s} {'synapses':>9s}  v"
    )
    for name, r in sorted(res["methods"].items(), key=lambda kv: kv[1]["synops_per_sample"]):
        sizes = ",".join(str(v) for v in r.get("motif_sizes", []))
        print(
            f"  {name:<24s} {r['acc_mean']:.4f} ± {r['acc_std']:.4f} {r['synops_per_sample']:14,.0f} "
            f"{r['recurrent_synops_per_sample']:10,.0f} {r['recurrent_synapses']:9,.0f}  {sizes}"
        )
    print(f"  front: {' -> '.join(res['front'])}")
    print(f"  targets: {res['targets']}")


if __name__ == "__main__":
    main()
