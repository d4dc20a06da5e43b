"""Figures of an HRMAS run (matplotlib, saved as PNG): the found motif (the HRMAS paper, Figure 6; a
node-link graph for small motifs, an E/I adjacency map for large ones), the discretised recurrent weight
matrix (Figure 7), the architecture-parameter trajectories, validation loss / accuracy with and without
IP (Figures 8-9 style), and a spike raster of the retrained network."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from ._io import atomic_write_bytes, load_torch, read_json
from ._optional import require
from .search.config import HRMASConfig
from .search.genotype import Genotype
from .topology import ConnectionType, MotifTopology

__all__ = [
    "plot_motif",
    "plot_weight_matrix",
    "plot_alpha",
    "plot_validation",
    "plot_raster",
    "plot_sweep",
    "plot_run",
]

#: motifs up to this size are drawn as node-link graphs; larger ones as adjacency maps
NODE_LINK_MAX = 8

COLORS = {
    ConnectionType.EXCITATORY: "tab:red",
    ConnectionType.INHIBITORY: "tab:blue",
    ConnectionType.FREE: "gray",
}


def _plt():
    mpl = require("matplotlib", "all", "plotting")
    mpl.use("Agg")
    return require("matplotlib.pyplot", "all", "plotting")


def plot_motif(topology: MotifTopology, path: str | Path, title: str = "") -> Path:
    """The motif: for ``v <=`` :data:`NODE_LINK_MAX` a graph (neurons on a circle, red excitatory and blue
    inhibitory edges, self-loops as rings, lateral edges dashed to the neighbours' ghost neurons); for
    larger motifs an adjacency map (rows post-synaptic, columns pre-synaptic, two lateral rows below)."""
    if topology.motif_size > NODE_LINK_MAX:
        return _plot_motif_map(topology, path, title)
    plt = _plt()
    v = topology.motif_size
    fig, ax = plt.subplots(figsize=(5, 5))
    angles = [2 * math.pi * k / v for k in range(v)]
    pos = [(math.cos(a), math.sin(a)) for a in angles]
    for post in range(v):
        for pre in range(v):
            kind = ConnectionType(int(topology.intra[post, pre]))
            if kind == ConnectionType.NONE:
                continue
            color = COLORS[kind]
            if pre == post:
                x, y = pos[post]
                ax.add_patch(plt.Circle((1.15 * x, 1.15 * y), 0.12, fill=False, color=color, lw=1.2))
                continue
            (x0, y0), (x1, y1) = pos[pre], pos[post]
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops=dict(
                    arrowstyle="-|>",
                    color=color,
                    lw=0.8,
                    alpha=0.7,
                    connectionstyle="arc3,rad=0.15",
                    shrinkA=8,
                    shrinkB=8,
                ),
            )
    for row, side in enumerate((-1, 1)):
        for p in range(v):
            kind = ConnectionType(int(topology.lateral[row, p]))
            if kind == ConnectionType.NONE:
                continue
            x, y = pos[p]
            ax.annotate(
                "",
                xy=(x, y),
                xytext=(x + 0.5 * side, y + 0.35),
                arrowprops=dict(arrowstyle="-|>", color=COLORS[kind], lw=0.8, ls="--"),
            )
    ax.scatter([p[0] for p in pos], [p[1] for p in pos], s=220, c="white", edgecolors="black", zorder=3)
    for k, (x, y) in enumerate(pos):
        ax.text(x, y, str(k), ha="center", va="center", fontsize=8, zorder=4)
    ax.set_xlim(-1.8, 1.8)
    ax.set_ylim(-1.6, 1.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or f"motif v={v} (red: excitatory, blue: inhibitory, dashed: lateral)", fontsize=9)
    return _save(fig, path)


def _plot_motif_map(topology: MotifTopology, path: str | Path, title: str) -> Path:
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    v = topology.motif_size
    grid = torch.cat([topology.intra, torch.full((1, v), -1), topology.lateral]).numpy()  # -1: a gap row
    order = [ConnectionType.NONE, ConnectionType.EXCITATORY, ConnectionType.INHIBITORY, ConnectionType.FREE]
    colors = ["white", "whitesmoke", COLORS[ConnectionType.EXCITATORY], COLORS[ConnectionType.INHIBITORY]]
    colors.append(COLORS[ConnectionType.FREE])  # index k + 1 is ConnectionType k, index 0 the gap
    fig, ax = plt.subplots(figsize=(5.5, 6))
    ax.imshow(grid + 1, cmap=ListedColormap(colors), vmin=0, vmax=len(colors) - 1, interpolation="nearest")
    ax.set_yticks([0, v - 1, v + 1, v + 2], ["0", str(v - 1), "from left", "from right"], fontsize=8)
    ax.set_xlabel("presynaptic position in the motif")
    ax.set_ylabel("postsynaptic position (intra) / lateral edges")
    n = {t: int((topology.intra == t).sum()) for t in order}
    ax.set_title(
        title
        or f"motif v={v}: {n[ConnectionType.EXCITATORY]} excitatory, {n[ConnectionType.INHIBITORY]} "
        f"inhibitory, {n[ConnectionType.NONE]} absent of {v * v}",
        fontsize=9,
    )
    handles = [Patch(color=COLORS[t], label=t.name.lower()) for t in order[1:3]]
    ax.legend(handles=handles, loc="upper right", bbox_to_anchor=(1.0, -0.08), ncol=2, fontsize=8)
    return _save(fig, path)


def plot_raster(spikes: torch.Tensor, path: str | Path, title: str = "hidden-layer spikes") -> Path:
    """Spike raster ``[T, N]`` of one sample and each neuron's firing rate."""
    plt = _plt()
    s = spikes.detach().cpu().double()
    t, n = torch.nonzero(s, as_tuple=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    a1.scatter(t.numpy(), n.numpy(), s=2, c="black", marker="|")
    a1.set_xlim(-0.5, s.shape[0] - 0.5)
    a1.set_ylim(-0.5, s.shape[1] - 0.5)
    a1.set_xlabel("time step")
    a1.set_ylabel("neuron")
    a1.set_title(f"{title} (mean rate {float(s.mean()):.3f})", fontsize=9)
    a2.hist(s.mean(0).numpy(), bins=20, color="gray")
    a2.set_xlabel("firing rate per step")
    a2.set_ylabel("neurons")
    return _save(fig, path)


def plot_weight_matrix(matrix: torch.Tensor, path: str | Path, title: str = "recurrent weights") -> Path:
    """The ``[N, N]`` ``[post, pre]`` recurrent matrix as an image (Figure 7); red excitatory, blue
    inhibitory, colours saturating at the 98th percentile of the non-zero magnitudes."""
    plt = _plt()
    m = matrix.detach().cpu().double().numpy()
    nonzero = abs(m[m != 0])  # saturate the colours at the 98th percentile, so a few large weights
    lim = float(np.quantile(nonzero, 0.98)) if nonzero.size else 1.0  # do not wash out the rest
    lim = lim or 1.0
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xlabel("presynaptic neuron")
    ax.set_ylabel("postsynaptic neuron")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)


def plot_alpha(history: list[dict], options: list[int], path: str | Path) -> Path:
    """Softmaxed motif-size parameters ``alpha^v`` per option over the search epochs, the mean largest
    connection-type probability, and (a cost-aware search) the expected cost of the architecture as a
    fraction of the largest option with every edge; the dotted line marks where the motif size is fixed."""
    plt = _plt()
    rows = [h for h in history if "size_probs" in h]
    epochs = range(1, len(rows) + 1)
    costed = any("cost_ratio" in r for r in rows)
    fig, axes = plt.subplots(1, 3 if costed else 2, figsize=(13.5 if costed else 9, 3.5))
    a1, a2 = axes[0], axes[1]
    for j, v in enumerate(options):
        a1.plot(epochs, [r["size_probs"][j] for r in rows], marker="o", label=f"v={v}")
    if any("type_prob" in r for r in rows):
        a2.plot(epochs, [r.get("type_prob", float("nan")) for r in rows], marker="o", color="black")
    a2.axhline(1 / 3, color="gray", lw=0.8, ls="--")
    fixed = sum(r.get("phase") == "search_size" for r in rows)
    for ax in axes:
        if 0 < fixed < len(rows):
            ax.axvline(fixed + 0.5, color="gray", ls=":")
        ax.set_xlabel("search epoch")
        ax.set_ylim(0, 1.02)
    a1.set_ylabel("softmax(alpha^v)")
    a1.set_title("motif size")
    a1.legend(fontsize=8)
    a2.set_ylabel("mean largest type probability")
    a2.set_title("connection types (dashed: undecided)")
    if costed:
        a3 = axes[2]
        a3.plot(epochs, [r.get("cost_ratio", float("nan")) for r in rows], marker="o", color="tab:red")
        a3.set_ylabel("E_alpha[cost] / largest option, every edge")
        cost = next((r["cost"] for r in rows if "cost" in r), "cost")
        a3.set_title(f"expected recurrent {cost}")
    return _save(fig, path)


def plot_validation(histories: dict[str, list[dict]], path: str | Path) -> Path:
    """Validation loss and accuracy over the search, one line per run (e.g. with / without IP)."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, hist in histories.items():
        rows = [h for h in hist if "valid_acc" in h and h.get("phase", "").startswith("search")]
        epochs = range(1, len(rows) + 1)
        if rows and "valid_loss" in rows[0]:
            a1.plot(epochs, [r["valid_loss"] for r in rows], marker="o", label=name)
        a2.plot(epochs, [r["valid_acc"] for r in rows], marker="o", label=name)
    a1.set_title("validation loss")
    a2.set_title("validation accuracy")
    for ax in (a1, a2):
        ax.set_xlabel("search epoch")
        ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format=path.suffix.lstrip(".") or "png")
    _plt().close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def plot_run(out: str | Path) -> list[Path]:
    """Every figure for a search output directory (``seed*/`` subfolders with history and genotype)."""
    out = Path(out)
    written: list[Path] = []
    for seed_dir in sorted(p for p in out.glob("seed*") if p.is_dir()):
        gpath, hpath = seed_dir / "genotype.json", seed_dir / "history.json"
        if gpath.exists():
            genotype = Genotype.from_json(gpath)
            written.append(plot_motif(genotype.topology, seed_dir / "motif.png"))
            matrix = _final_matrix(seed_dir, genotype)
            written.append(
                plot_weight_matrix(
                    matrix,
                    seed_dir / "weights.png",
                    f"discretised recurrent weights (v={genotype.topology.motif_size})",
                )
            )
        if hpath.exists():
            history = read_json(hpath, "history")
            cfg = (
                HRMASConfig.from_file(out / "config.json")
                if (out / "config.json").exists()
                else HRMASConfig()
            )
            if any("size_probs" in h for h in history):
                written.append(plot_alpha(history, cfg.effective_options(), seed_dir / "alpha.png"))
        raster = _raster(seed_dir)
        if raster is not None:
            written.append(plot_raster(raster, seed_dir / "raster.png", "retrained SC-ML, first test sample"))
    histories = {}
    for run_dir in (out, out / "no_ip"):
        for seed_dir in sorted(run_dir.glob("seed*")):
            h = seed_dir / "history.json"
            if h.exists() and (run_dir / "config.json").exists():
                cfg = read_json(run_dir / "config.json", "config")
                if cfg.get("search") == "hrmas":
                    label = f"{'with' if cfg.get('ip') else 'without'} IP, {seed_dir.name}"
                    histories[label] = read_json(h, "history")
    if histories:
        written.append(plot_validation(histories, out / "validation.png"))
    return written


def plot_sweep(rows: list[dict], path: str | Path, metric: str = "valid_acc") -> Path:
    """A sweep's metric per trial (dots; early-stopped trials hollow) and the best so far (line)."""
    plt = _plt()
    done = [(r["trial"], r[metric], r.get("epochs", 0)) for r in rows if r.get(metric) is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if done:
        longest = max(e for _, _, e in done)
        full = [(t, m) for t, m, e in done if e == longest]
        cut = [(t, m) for t, m, e in done if e != longest]
        ax.scatter(*zip(*full, strict=True), color="tab:blue", label="ran to the end")
        if cut:
            ax.scatter(
                *zip(*cut, strict=True), facecolors="none", edgecolors="tab:blue", label="stopped by ASHA"
            )
        best, line = -1.0, []
        for t, m, _ in sorted(done):
            best = max(best, m)
            line.append((t, best))
        ax.step(*zip(*line, strict=True), where="post", color="black", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _raster(seed_dir: Path) -> torch.Tensor | None:
    """Hidden spikes ``[T, N]`` of the retrained network on the first test sample, or None when the run
    has not retrained yet or its data set is not available here."""
    from .search.experiment import load_data
    from .search.retrain import load_trained

    if not (seed_dir / "checkpoint.pt").is_file():
        return None
    try:
        model, _, cfg = load_trained(seed_dir)
        x = load_data(cfg).x_test[:1].transpose(0, 1)
    except (FileNotFoundError, ImportError) as exc:
        print(f"(no raster for {seed_dir}: {exc})")
        return None
    except ValueError as exc:
        if "not reached retraining" in str(exc):
            return None
        raise
    with torch.no_grad():
        spikes, _ = model.hidden.run(x * model.input_gain)
    return spikes[:, 0]


def _final_matrix(seed_dir: Path, genotype: Genotype) -> torch.Tensor:
    """The retrained SC-ML's recurrent matrix if the checkpoint has it, else the initial one."""
    from .scml import SCML

    layer = SCML(1, genotype.n_neurons, topology=genotype.topology)
    ckpt = seed_dir / "checkpoint.pt"
    if ckpt.exists():
        blob = load_torch(ckpt)
        state = blob.get("final_model") or {}
        with torch.no_grad():
            for name in ("intra_weight", "lateral_weight"):
                key = f"hidden.{name}"
                if key in state and getattr(layer, name) is not None:
                    getattr(layer, name).copy_(state[key])
    return layer.recurrent_matrix()
