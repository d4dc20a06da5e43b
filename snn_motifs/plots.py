"""Figures of an HRMAS run (matplotlib, saved as PNG): the found motif as a graph (the HRMAS paper,
Figure 6), the
discretised recurrent weight matrix (Figure 7), the architecture-parameter trajectories, and validation
loss / accuracy with and without IP (Figures 8-9 style)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from ._io import atomic_write_bytes, load_torch, read_json
from ._optional import require
from .search.config import HRMASConfig
from .search.genotype import Genotype
from .topology import ConnectionType, MotifTopology

__all__ = ["plot_motif", "plot_weight_matrix", "plot_alpha", "plot_validation", "plot_run"]

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
    """The motif as a graph: neurons on a circle, red excitatory and blue inhibitory edges, self-loops as
    rings; lateral edges drawn to the neighbouring motifs' ghost neurons (dashed)."""
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


def plot_weight_matrix(matrix: torch.Tensor, path: str | Path, title: str = "recurrent weights") -> Path:
    """The ``[N, N]`` ``[post, pre]`` recurrent matrix as an image (Figure 7)."""
    plt = _plt()
    m = matrix.detach().cpu().double().numpy()
    lim = float(abs(m).max()) or 1.0
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xlabel("presynaptic neuron")
    ax.set_ylabel("postsynaptic neuron")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)


def plot_alpha(history: list[dict], options: list[int], path: str | Path) -> Path:
    """Softmaxed motif-size parameters ``alpha^v`` over the search epochs."""
    plt = _plt()
    rows = [h for h in history if "size_probs" in h]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for j, v in enumerate(options):
        ax.plot(range(1, len(rows) + 1), [r["size_probs"][j] for r in rows], marker="o", label=f"v={v}")
    ax.set_xlabel("search epoch")
    ax.set_ylabel("softmax(alpha^v)")
    ax.set_title("motif-size architecture parameters")
    ax.legend(fontsize=8)
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
