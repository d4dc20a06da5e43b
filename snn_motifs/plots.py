"""Figures of an HRMAS run (matplotlib, saved as PNG), each meant to be read by someone who did not write
it: labelled axes and colour bars, legends beside or below the data rather than over it, a title saying
what the panel shows and a line above naming the run (:func:`run_context`).

* ``motif.png``: the found motif (the HRMAS paper, Figure 6; a node-link graph for small motifs, an E/I
  adjacency map for large ones);
* ``weights.png``: the discretised recurrent weight matrix (Figure 7);
* ``alpha.png``: the architecture-parameter trajectories (and the expected cost of a cost-aware search);
* ``validation.png``: validation loss / accuracy over the search, with and without IP (Figures 8-9 style);
* ``raster.png``: a spike raster of the retrained network;
* ``result.png``: the found network against its baselines, test accuracy and cost side by side.
"""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np
import torch

from ._io import atomic_write_bytes
from ._optional import require
from .topology import ConnectionType, MotifTopology

__all__ = [
    "plot_motif",
    "plot_weight_matrix",
    "plot_alpha",
    "plot_validation",
    "plot_raster",
    "plot_result",
    "plot_sweep",
    "run_context",
]

#: motifs up to this size are drawn as node-link graphs; larger ones as adjacency maps
NODE_LINK_MAX = 8

COLORS = {
    ConnectionType.EXCITATORY: "tab:red",
    ConnectionType.INHIBITORY: "tab:blue",
    ConnectionType.FREE: "gray",
}
#: absent edges in the adjacency map (a light grey, told apart from the white gap row)
ABSENT_COLOR = "#d9d9d9"
TYPE_NAMES = {
    ConnectionType.EXCITATORY: "excitatory (weight >= 0)",
    ConnectionType.INHIBITORY: "inhibitory (weight <= 0)",
    ConnectionType.FREE: "free sign",
}
#: marker and line style per curve, so that curves lying on top of each other stay distinguishable
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2)), (0, (8, 2)))
#: the legend entry of the dotted line where the search fixes the motif size and turns to the types
PHASE_LABEL = "motif size fixed"


def _plt():
    mpl = require("matplotlib", "all", "plotting")
    mpl.use("Agg")
    return require("matplotlib.pyplot", "all", "plotting")


def _style(j: int) -> dict:
    """Marker, line style and marker size of curve ``j``: hollow markers that shrink with ``j``, so that
    curves on top of each other still show every one (the larger outline around the smaller)."""
    return {
        "marker": MARKERS[j % len(MARKERS)],
        "ls": LINESTYLES[j % len(LINESTYLES)],
        "ms": max(10.0 - 1.5 * (j % len(MARKERS)), 3.5),
        "mfc": "none",
        "mew": 1.4,
        "lw": 1.3,
    }


def run_context(config: dict, seed: str | int | None = None) -> str:
    """One line naming what a run is, from its ``config.json``: the search, the data set, the network,
    the options that change it (IP, motifs, lateral edges, a cost-aware objective) and the seed."""
    search = {"hrmas": "HRMAS search", "random": "random search"}.get(str(config.get("search", "hrmas")))
    parts = [f"{search or 'search'} on {config.get('dataset', 'unnamed data')}"]
    if "hidden" in config:
        parts.append(f"{config['hidden']} hidden neurons")
    if config.get("motifs", True) is False:
        parts.append("no motifs (types over the full matrix)")
    elif config.get("motif_sizes"):
        parts.append("motif sizes " + "/".join(str(v) for v in config["motif_sizes"]))
    if config.get("lateral", True) is False:
        parts.append("no lateral edges")
    if config.get("ip", True) is not None:  # None: the figure compares both
        parts.append("with SpiKL-IP" if config.get("ip", True) else "without SpiKL-IP")
    if config.get("cost_weight"):
        parts.append(f"cost-aware ({config.get('cost', 'synops')}, weight {config['cost_weight']:g})")
    if seed is not None:
        parts.append(f"seed {seed}")
    return ", ".join(parts)


def _context(fig, context: str) -> None:
    """``context`` (what the run is) above the panels, wrapped to the figure's width."""
    if context:
        width = max(int(fig.get_figwidth() * 15), 40)
        fig.suptitle(textwrap.fill(context, width, break_on_hyphens=False), fontsize=8.5, color="dimgray")


def _phase_line(ax, fixed: int, n: int, label: bool = True) -> None:
    """The dotted line between the motif-size phase (epochs 1..fixed) and the type phase."""
    if 0 < fixed < n:
        ax.axvline(fixed + 0.5, color="gray", ls=":", lw=1.2, label=PHASE_LABEL if label else None)


def _integer_ticks(axis) -> None:
    """Ticks at whole numbers only (epochs, time steps, neurons)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _legend_below(ax, ncol: int = 2, **kwargs):
    """The axes' legend under its x label, outside the data."""
    return ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, fontsize=8, frameon=False, **kwargs
    )


def _counts(topology: MotifTopology) -> str:
    v = topology.motif_size
    intra = {t: int((topology.intra == t).sum()) for t in ConnectionType}
    lateral = int((topology.lateral != ConnectionType.NONE).sum())
    kinds = [f"{intra[t]} {TYPE_NAMES[t].split()[0]}" for t in TYPE_NAMES if intra[t]]
    kinds.append(f"{intra[ConnectionType.NONE]} absent")
    return f"{', '.join(kinds)} of {v * v} intra-motif edges;\n{lateral} of {2 * v} lateral edges present"


def plot_motif(topology: MotifTopology, path: str | Path, title: str = "", context: str = "") -> Path:
    """The motif: for ``v <=`` :data:`NODE_LINK_MAX` a graph (neurons on a circle, red excitatory and blue
    inhibitory edges, self-connections as rings, lateral edges dashed from the same position of the
    neighbouring motifs, drawn as grey ghost neurons outside the circle); for larger motifs an adjacency
    map (rows post-synaptic, columns pre-synaptic, two lateral rows below). ``context`` (a line naming the
    run, :func:`run_context`) goes above the title."""
    if topology.motif_size > NODE_LINK_MAX:
        return _plot_motif_map(topology, path, title, context)
    plt = _plt()
    from matplotlib.lines import Line2D

    v = topology.motif_size
    fig, ax = plt.subplots(figsize=(6, 7.2), layout="constrained")
    angles = [math.pi / 2 + 2 * math.pi * k / v for k in range(v)]
    pos = [(math.cos(a), math.sin(a)) for a in angles]
    used: set[ConnectionType] = set()
    for post in range(v):
        for pre in range(v):
            kind = ConnectionType(int(topology.intra[post, pre]))
            if kind == ConnectionType.NONE:
                continue
            used.add(kind)
            color = COLORS[kind]
            if pre == post:  # a ring outside the neuron
                a = angles[post]
                ax.add_patch(
                    plt.Circle((1.2 * math.cos(a), 1.2 * math.sin(a)), 0.13, fill=False, color=color, lw=1.4)
                )
                continue
            (x0, y0), (x1, y1) = pos[pre], pos[post]
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops=dict(
                    arrowstyle="-|>",
                    color=color,
                    lw=0.9,
                    alpha=0.75,
                    connectionstyle="arc3,rad=0.15",
                    shrinkA=9,
                    shrinkB=9,
                ),
            )
    ghosts = []
    for row, side in enumerate((-1, 1)):  # row 0: from the left neighbour (i - v), row 1: the right (i + v)
        for p in range(v):
            kind = ConnectionType(int(topology.lateral[row, p]))
            if kind == ConnectionType.NONE:
                continue
            used.add(kind)
            a = angles[p] + side * 0.42
            gx, gy = 1.65 * math.cos(a), 1.65 * math.sin(a)
            ghosts.append((gx, gy))
            ax.annotate(
                "",
                xy=pos[p],
                xytext=(gx, gy),
                arrowprops=dict(arrowstyle="-|>", color=COLORS[kind], lw=0.9, ls="--", shrinkA=6, shrinkB=9),
            )
    if ghosts:
        ax.scatter(*zip(*ghosts, strict=True), s=90, c="white", edgecolors="gray", linestyles="--", zorder=3)
    ax.scatter([p[0] for p in pos], [p[1] for p in pos], s=260, c="white", edgecolors="black", zorder=3)
    for k, (x, y) in enumerate(pos):
        ax.text(x, y, str(k), ha="center", va="center", fontsize=9, zorder=4)
    if not used:
        ax.text(
            0, 0, "no recurrent edges:\nevery connection is absent", ha="center", va="center", fontsize=10
        )
    ax.set_xlim(-2.0, 2.0)
    ax.set_ylim(-3.0, 2.0)  # the legend goes below the graph, inside the axes where no edge is drawn
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or f"found motif, v={v} neurons: {_counts(topology)}", fontsize=9)
    handles = [Line2D([], [], color=COLORS[t], lw=1.5, label=TYPE_NAMES[t]) for t in TYPE_NAMES if t in used]
    handles += [
        Line2D([], [], color="black", lw=0, marker="o", mfc="none", ms=10, label="ring: self-connection"),
        Line2D([], [], color="gray", lw=1, ls="--", label="dashed: lateral edge from the same position"),
        Line2D([], [], lw=0, marker="o", mfc="white", mec="gray", ms=7, label="grey: neighbouring motif"),
        Line2D([], [], lw=0, label="no arrow: absent (no synapse)"),
    ]
    ax.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    _context(fig, context)
    return _save(fig, path)


def _plot_motif_map(topology: MotifTopology, path: str | Path, title: str, context: str) -> Path:
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    v = topology.motif_size
    grid = torch.cat([topology.intra, torch.full((1, v), -1), topology.lateral]).numpy()  # -1: a gap row
    colors = ["white", ABSENT_COLOR, COLORS[ConnectionType.EXCITATORY], COLORS[ConnectionType.INHIBITORY]]
    colors.append(COLORS[ConnectionType.FREE])  # index k + 1 is ConnectionType k, index 0 the gap
    fig, ax = plt.subplots(figsize=(6, 7), layout="constrained")
    ax.imshow(grid + 1, cmap=ListedColormap(colors), vmin=0, vmax=len(colors) - 1, interpolation="nearest")
    ax.set_yticks([0, v - 1, v + 1, v + 2], ["0", str(v - 1), "lateral from left", "lateral from right"])
    ax.tick_params(labelsize=8)
    ax.set_xlabel("presynaptic position in the motif")
    ax.set_ylabel("postsynaptic position in the motif (rows 0..v-1) / lateral inputs")
    ax.set_title(title or f"found motif, v={v} neurons:\n{_counts(topology)}", fontsize=9)
    present = {
        ConnectionType(int(t)) for t in torch.cat([topology.intra.flatten(), topology.lateral.flatten()])
    }
    handles = [Patch(color=COLORS[t], label=TYPE_NAMES[t]) for t in TYPE_NAMES if t in present]
    handles.append(Patch(facecolor=ABSENT_COLOR, edgecolor="gray", label="absent (no synapse)"))
    ax.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False
    )
    _context(fig, context)
    return _save(fig, path)


def plot_raster(
    spikes: torch.Tensor, path: str | Path, title: str = "hidden-layer spikes", context: str = ""
) -> Path:
    """Spike raster ``[T, N]`` of one sample and each neuron's firing rate."""
    plt = _plt()
    s = spikes.detach().cpu().double()
    t, n = torch.nonzero(s, as_tuple=True)
    fig, (a1, a2) = plt.subplots(
        1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [3, 1]}, layout="constrained"
    )
    a1.scatter(t.numpy(), n.numpy(), s=25, c="black", marker="|")
    _integer_ticks(a1.xaxis)
    _integer_ticks(a1.yaxis)
    a1.set_xlim(-0.5, s.shape[0] - 0.5)
    a1.set_ylim(-0.5, s.shape[1] - 0.5)
    a1.set_xlabel("time step")
    a1.set_ylabel("neuron")
    a1.set_title(f"{title} (mean rate {float(s.mean()):.3f} spikes per neuron and step)", fontsize=9)
    a2.hist(s.mean(0).numpy(), bins=20, color="gray")
    a2.set_xlabel("firing rate (spikes per step)")
    a2.set_ylabel("neurons")
    a2.set_title("firing rates of the neurons", fontsize=9)
    _context(fig, context)
    return _save(fig, path)


def plot_weight_matrix(
    matrix: torch.Tensor, path: str | Path, title: str = "recurrent weights", context: str = ""
) -> Path:
    """The ``[N, N]`` ``[post, pre]`` recurrent matrix as an image (Figure 7); red excitatory, blue
    inhibitory, colours saturating at the 98th percentile of the non-zero magnitudes (the colour bar says
    so)."""
    plt = _plt()
    m = matrix.detach().cpu().double().numpy()
    nonzero = abs(m[m != 0])  # saturate the colours at the 98th percentile, so a few large weights
    lim = float(np.quantile(nonzero, 0.98)) if nonzero.size else 1.0  # do not wash out the rest
    lim = lim or 1.0
    fig, ax = plt.subplots(figsize=(6.2, 5.4), layout="constrained")
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xlabel("presynaptic neuron")
    ax.set_ylabel("postsynaptic neuron")
    ax.set_title(f"{title}\n{nonzero.size:,} of {m.size:,} synapses present (white: 0, absent)", fontsize=9)
    if not nonzero.size:
        ax.text(m.shape[1] / 2, m.shape[0] / 2, "no recurrent synapses", ha="center", va="center")
    bar = fig.colorbar(im, ax=ax, shrink=0.85, extend="both")
    bar.set_label(f"weight (red > 0 excitatory, blue < 0 inhibitory);\ncolours saturate at ±{lim:.3g}")
    _context(fig, context)
    return _save(fig, path)


def plot_alpha(
    history: list[dict],
    options: list[int],
    path: str | Path,
    context: str = "",
    cost_aware: bool | None = None,
) -> Path:
    """Softmaxed motif-size parameters ``alpha^v`` per option over the search epochs, the mean largest
    connection-type probability, and (when the history records it) the expected cost of the architecture
    as a fraction of the largest option with every edge, titled as part of the objective or not by
    ``cost_aware`` (the config's ``cost_weight > 0``); a dotted line, labelled in each legend, marks where
    the motif size is fixed. Each option has its own marker and line style, so options with equal
    probabilities stay visible; the legends sit below the panels."""
    plt = _plt()
    rows = [h for h in history if "size_probs" in h]
    epochs = list(range(1, len(rows) + 1))
    costed = any("cost_ratio" in r for r in rows)
    fig, axes = plt.subplots(
        1, 3 if costed else 2, figsize=(14 if costed else 9.5, 4.6), layout="constrained"
    )
    a1, a2 = axes[0], axes[1]
    fixed = sum(r.get("phase") == "search_size" for r in rows)
    for j, v in enumerate(options):
        a1.plot(epochs, [r["size_probs"][j] for r in rows], label=f"v = {v}", **_style(j))
    if any("type_prob" in r for r in rows):
        a2.plot(
            epochs,
            [r.get("type_prob", float("nan")) for r in rows],
            marker="o",
            color="black",
            label="mean largest type probability",
        )
    a2.axhline(1 / 3, color="gray", lw=0.9, ls="--", label="undecided: 1/3 (three types equally likely)")
    for ax in axes:
        ax.set_xlabel("search epoch")
        ax.set_ylim(-0.02, 1.02)
        _integer_ticks(ax.xaxis)
    if costed:
        a3 = axes[2]
        cost = next((r["cost"] for r in rows if "cost" in r), "cost")
        a3.plot(
            epochs,
            [r.get("cost_ratio", float("nan")) for r in rows],
            marker="o",
            color="tab:red",
            label=f"expected {cost} under alpha",
        )
        a3.set_ylabel("expected cost / largest option with every edge")
        role = {True: " (in the objective)", False: "\n(recorded, not in the objective)"}.get(cost_aware, "")
        a3.set_title(f"expected recurrent {cost} of the architecture{role}", fontsize=10)
    for ax in axes:
        _phase_line(ax, fixed, len(rows))
        _legend_below(ax, ncol=3 if ax is a1 else 1)
    a1.set_ylabel("softmax(alpha^v): probability of motif size v")
    a1.set_title("motif size: probability per option", fontsize=10)
    a2.set_ylabel("mean over edges of the largest type probability")
    a2.set_title("connection types: how decided", fontsize=10)
    _context(fig, context or "HRMAS architecture parameters")
    return _save(fig, path)


def plot_validation(histories: dict[str, list[dict]], path: str | Path, context: str = "") -> Path:
    """Validation loss and accuracy over the search, one line per run (e.g. with / without IP), each with
    its own marker and line style; a single run is named in the titles instead of a legend."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.4), layout="constrained")
    fixed = 0
    n = 0
    for j, (name, hist) in enumerate(histories.items()):
        rows = [h for h in hist if "valid_acc" in h and h.get("phase", "").startswith("search")]
        epochs = range(1, len(rows) + 1)
        style = _style(j) if len(histories) > 1 else {"marker": "o", "color": "tab:blue"}
        if rows and "valid_loss" in rows[0]:
            a1.plot(epochs, [r["valid_loss"] for r in rows], label=name, **style)
        a2.plot(epochs, [r["valid_acc"] for r in rows], label=name, **style)
        fixed = max(fixed, sum(r.get("phase") == "search_size" for r in rows))
        n = max(n, len(rows))
    single = f" ({next(iter(histories))})" if len(histories) == 1 else ""
    a1.set_title(f"validation loss during the search{single}", fontsize=10)
    a2.set_title(f"validation accuracy during the search{single}", fontsize=10)
    a1.set_ylabel("loss on the validation split")
    a2.set_ylabel("accuracy on the validation split")
    for ax in (a1, a2):
        _phase_line(ax, fixed, n)
        ax.set_xlabel("search epoch")
        _integer_ticks(ax.xaxis)
        if ax.get_legend_handles_labels()[0]:
            _legend_below(ax, ncol=2)
    _context(fig, context)
    return _save(fig, path)


def plot_result(summary: dict, path: str | Path, context: str = "", extra: dict | None = None) -> Path:
    """The found network against its baselines: test accuracy (mean and standard deviation over the seeds,
    each seed a dot) and, when the summary has them, its cost (synaptic operations and energy estimate per
    sample, recurrent synapses) side by side with the dense-recurrent baseline's. ``summary`` is a search
    folder's ``summary.json`` (``mean``/``std``/``runs``, ``cost``, ``dense_baseline``: ``test_acc``,
    ``cost``); older folders without ``cost`` give the accuracy panel alone. ``extra`` adds bars by name,
    ``{name: {"test_acc", "cost"?}}`` (e.g. the search without IP)."""
    plt = _plt()
    runs = [r["test_acc"] for r in summary.get("runs", []) if "test_acc" in r]
    bars = [("found SC-ML", summary["mean"], summary.get("std", 0.0), runs, summary.get("cost"), "tab:blue")]
    dense = summary.get("dense_baseline")
    if dense:
        bars.append(
            ("dense RSNN\n(same N and training)", dense["test_acc"], 0.0, [], dense.get("cost"), "tab:red")
        )
    for k, (name, res) in enumerate((extra or {}).items()):
        bars.append((name, res["test_acc"], 0.0, [], res.get("cost"), ("tab:green", "tab:purple")[k % 2]))
    costs = [  # (key, title, y label, scale, value format)
        (
            "synops_per_sample",
            "synaptic operations per sample\n(AC + MAC)",
            "operations per sample",
            1,
            "{:,.0f}",
        ),
        ("recurrent_synapses", "recurrent synapses\n(non-zero recurrent weights)", "synapses", 1, "{:,.0f}"),
        (
            "energy_pj_per_sample",
            "energy per sample, an estimate\nfrom per-operation constants",
            "nJ per sample",
            1e-3,
            "{:,.1f}",
        ),
    ]
    costed = summary.get("cost") is not None
    panels = 1 + (len(costs) if costed else 0)
    fig, axes = plt.subplots(
        1, panels, figsize=(3.6 * panels + 0.6, 4.4), layout="constrained", squeeze=False
    )
    axes = axes[0]
    x = np.arange(len(bars))
    names = [b[0] for b in bars]
    ax = axes[0]
    ax.bar(x, [b[1] for b in bars], color=[b[5] for b in bars], alpha=0.8)
    for i, b in enumerate(bars):
        if b[2] > 0:  # the spread over seeds
            ax.errorbar(i, b[1], yerr=b[2], color="black", capsize=4, lw=1)
        if len(b[3]) > 1:
            ax.plot([i] * len(b[3]), b[3], "o", color="black", ms=4, mfc="none")
        ax.text(i, min(b[1] + b[2], 1.0) + 0.02, f"{b[1]:.3f}", ha="center", va="bottom", fontsize=8)
    seeds = f"mean ± std over {len(runs)} seeds, dots: seeds" if len(runs) > 1 else "one seed"
    ax.set_title(f"test accuracy ({seeds})", fontsize=9)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.12)
    ax.set_xticks(x, names, fontsize=8)
    for ax, (key, label, ylabel, scale, fmt) in zip(axes[1:], costs, strict=False):
        values = [(b[4] or {}).get(key) for b in bars]
        shown = [i for i, v in enumerate(values) if v is not None]
        heights = [values[i] * scale for i in shown]
        ax.bar(shown, heights, color=[bars[i][5] for i in shown], alpha=0.8)
        top = max(heights, default=0) or 1.0
        ref = values[1] if dense and values[1] else None
        for i, h in zip(shown, heights, strict=True):
            ratio = f"\n{values[i] / ref:.2g}× dense" if ref and i != 1 else ""
            ax.text(i, h + 0.02 * top, fmt.format(h) + ratio, ha="center", va="bottom", fontsize=8)
        for i in set(range(len(bars))) - set(shown):
            ax.text(i, 0.02 * top, "not\nmeasured", ha="center", va="bottom", fontsize=7, color="gray")
        ax.set_ylim(0, 1.3 * top)
        ax.set_title(label, fontsize=9)
        ax.set_ylabel(ylabel)
        ax.set_xticks(x, names, fontsize=8)
    if not costed:
        axes[0].set_xlabel("(this run folder has no cost record)", fontsize=8, color="gray")
    _context(fig, context)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format=path.suffix.lstrip(".") or "png")
    _plt().close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


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
