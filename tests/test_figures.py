"""The figures of a search folder read on their own: ``plot_run`` on a tiny search (with and without IP)
writes motif, weights, alpha, raster, validation and result figures, and each is inspected as matplotlib
objects: a line naming the run, titled panels with labelled axes, a labelled colour bar, legends that
cover no data point and name the phase line, distinguishable curves, and result bars that are the
numbers of summary.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from snn_motifs import MotifTopology
from snn_motifs.datasets import SplitData
from snn_motifs.search import HRMASConfig

pytest.importorskip("matplotlib")

from snn_motifs import plots, search  # noqa: E402
from snn_motifs.search import figures as run_figures  # noqa: E402  (the module)

from .conftest import spike_task  # noqa: E402

_data = spike_task  # the two-class task: [n, 15, 6] spike trains


#: the renderer each figure was drawn with, for the extents of its legends and patches
RENDERERS: dict = {}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A finished tiny HRMAS search, its no-IP twin and the dense baseline (plots off: drawn by the tests)."""
    out = tmp_path_factory.mktemp("figures") / "run"
    x, y = _data(200, 0)
    xt, yt = _data(100, 1)
    data = SplitData(x, y, xt, yt, 2)
    cfg = HRMASConfig(
        hidden=8,
        motif_sizes=[2, 4],
        epochs_size=2,
        epochs_types=1,
        epochs_retrain=2,
        batch_size=20,
        input_gain=1.0,
        tau_mem=4.0,
        tau_syn=2.0,
        tau_cal=4.0,
    )
    quiet = dict(data=data, plots=False, progress=False, log=lambda s: None)
    search.run(cfg, out, compare_ip=True, **quiet)
    return out, data


@pytest.fixture
def drawn(monkeypatch):
    """Every figure ``plots`` saves, by file name, drawn (so legends and texts have their extents)."""
    figures = {}
    save = plots._save

    def keep(fig, path):
        fig.canvas.draw()
        RENDERERS[fig] = fig.canvas.get_renderer()  # saving closes the figure and its canvas
        figures[str(path).rsplit("/", 1)[-1]] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def _legends(fig) -> list:
    return [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]


def _labels(fig) -> list[str]:
    return [t.get_text() for legend in _legends(fig) for t in legend.get_texts()]


def _data_axes(fig) -> list:
    """The panels of ``fig`` (colour bars and axes switched off excluded)."""
    bars = {getattr(im.colorbar, "ax", None) for ax in fig.axes for im in ax.images}
    return [ax for ax in fig.axes if ax.axison and ax not in bars]


def _assert_readable(fig, name: str) -> None:
    """A line naming the run, each panel titled with both axes labelled, legends over no data point."""
    assert fig._suptitle is not None and "HRMAS search on mnist1d" in fig._suptitle.get_text(), name
    for ax in _data_axes(fig):
        assert ax.get_title(), f"{name}: a panel without a title"
        named = any(c.isalpha() for t in ax.get_xticklabels() for c in t.get_text())  # bars named by ticks
        assert ax.get_xlabel() or named, f"{name}: {ax.get_title()!r} has an unlabelled x axis"
        assert ax.get_ylabel(), f"{name}: {ax.get_title()!r} has an unlabelled y axis"
    renderer = RENDERERS[fig]
    for legend in _legends(fig):
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            for line in ax.get_lines():  # every vertex and the segments between them
                xy = line.get_transform().transform(line.get_xydata())
                xy = np.concatenate(
                    [np.linspace(a, b, 25) for a, b in zip(xy[:-1], xy[1:], strict=True)] or [xy]
                )
                assert not box.count_contains(xy[np.isfinite(xy).all(1)]), (
                    f"{name}: the legend covers {line.get_label()!r}"
                )
            for points in ax.collections:  # scatter markers
                xy = points.get_offset_transform().transform(points.get_offsets())
                assert not box.count_contains(xy), f"{name}: the legend covers markers"
            for patch in ax.patches:
                assert not box.overlaps(patch.get_window_extent(renderer)), (
                    f"{name}: the legend covers a patch"
                )


@pytest.mark.slow
def test_plot_run_draws_every_figure_readably(run_folder, drawn):
    out, data = run_folder
    written = run_figures.plot_run(out, data=data)
    names = {p.name for p in written}
    assert names == {"motif.png", "weights.png", "alpha.png", "raster.png", "validation.png", "result.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    assert (out / "result.png").exists() and (out / "seed0" / "raster.png").exists()
    for name, fig in drawn.items():
        _assert_readable(fig, name)

    motif = drawn["motif.png"]
    assert "absent" in " ".join(_labels(motif)) and "excitatory" in " ".join(_labels(motif))
    assert "found motif, v=" in motif.axes[0].get_title()

    weights = drawn["weights.png"]
    colorbar = weights.axes[0].images[0].colorbar
    assert colorbar is not None and "weight" in colorbar.ax.get_ylabel()
    assert "retrained" in weights.axes[0].get_title()

    alpha = drawn["alpha.png"]
    labels = _labels(alpha)
    assert {"v = 2", "v = 4", plots.PHASE_LABEL} <= set(labels)
    assert any("undecided" in label for label in labels)
    curves = [line for line in alpha.axes[0].get_lines() if line.get_label().startswith("v = ")]
    assert len({(line.get_marker(), str(line.get_linestyle())) for line in curves}) == len(curves) == 2
    dotted = [line for line in alpha.axes[0].get_lines() if line.get_label() == plots.PHASE_LABEL]
    assert len(dotted) == 1 and dotted[0].get_xdata()[0] == 2.5  # after the 2 motif-size epochs

    validation = drawn["validation.png"]
    labels = _labels(validation)
    assert {"with SpiKL-IP, seed 0", "without SpiKL-IP, seed 0", plots.PHASE_LABEL} <= set(labels)
    curves = [line for line in validation.axes[1].get_lines() if "SpiKL-IP" in line.get_label()]
    assert len({(line.get_marker(), str(line.get_linestyle())) for line in curves}) == len(curves) == 2

    summary = json.loads((out / "summary.json").read_text())
    result = drawn["result.png"]
    acc, *costs = _data_axes(result)
    assert "test accuracy" in acc.get_title() and len(costs) == 3
    ticks = [t.get_text() for t in acc.get_xticklabels()]
    assert ticks[0] == "found SC-ML" and ticks[1].startswith("dense RSNN") and "without IP" in ticks[2]
    heights = [bar.get_height() for bar in acc.patches]
    no_ip = json.loads((out / "no_ip" / "seed0" / "result.json").read_text())
    assert heights == pytest.approx(
        [summary["mean"], summary["dense_baseline"]["test_acc"], no_ip["test_acc"]]
    )
    dense = summary["dense_baseline"]["cost"]
    for ax, key, scale in zip(
        costs, ("synops_per_sample", "recurrent_synapses", "energy_pj_per_sample"), (1, 1, 1e-3), strict=True
    ):
        got = [bar.get_height() for bar in ax.patches]
        assert got == pytest.approx(
            [summary["cost"][key] * scale, dense[key] * scale, no_ip["cost"][key] * scale]
        )


def test_result_of_an_old_folder_is_accuracy_alone(tmp_path, drawn):
    """Folders written before costs were measured have no 'cost': one accuracy panel, no baseline needed."""
    summary = {"best": 0.9, "mean": 0.85, "std": 0.05, "runs": [{"test_acc": 0.8}, {"test_acc": 0.9}]}
    plots.plot_result(summary, tmp_path / "result.png", "HRMAS search on mnist1d, 64 hidden neurons")
    fig = drawn["result.png"]
    (acc,) = _data_axes(fig)
    assert [bar.get_height() for bar in acc.patches] == pytest.approx([0.85])
    assert [t.get_text() for t in acc.get_xticklabels()] == ["found SC-ML"]
    assert "2 seeds" in acc.get_title()
    _assert_readable(fig, "result.png")
    summary["dense_baseline"] = {"test_acc": 0.7}  # a baseline without cost, next to a costed run
    summary["cost"] = {"synops_per_sample": 10.0, "recurrent_synapses": 4, "energy_pj_per_sample": 9.0}
    plots.plot_result(summary, tmp_path / "result.png", "HRMAS search on mnist1d")
    fig = drawn["result.png"]
    assert len(_data_axes(fig)) == 4
    assert [bar.get_height() for bar in _data_axes(fig)[1].patches] == [10.0]  # the baseline: not measured


@pytest.mark.parametrize("v", [2, 16])
def test_motif_legend_names_absent_edges(tmp_path, drawn, v):
    topology = MotifTopology.random(v, torch.Generator().manual_seed(0))
    plots.plot_motif(topology, tmp_path / "motif.png", context="HRMAS search on mnist1d, seed 0")
    fig = drawn["motif.png"]
    assert any("absent" in label for label in _labels(fig))
    _assert_readable(fig, f"motif v={v}")
    empty = MotifTopology(2, ["nn", "nn"], ["nn", "nn"])  # a search can prune every edge
    plots.plot_motif(empty, tmp_path / "motif.png", context="HRMAS search on mnist1d, seed 0")
    texts = [t.get_text() for t in drawn["motif.png"].axes[0].texts]
    assert any("every connection is absent" in t for t in texts)


def test_motif_figure_is_a_graph_when_small_and_a_map_when_large(tmp_path):
    pytest.importorskip("matplotlib")
    from snn_motifs.plots import NODE_LINK_MAX, plot_motif, plot_raster

    g = torch.Generator().manual_seed(0)
    sizes = {}
    for v in (4, 32):
        path = plot_motif(MotifTopology.random(v, g), tmp_path / f"motif{v}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[v] = path.stat().st_size
    assert 4 <= NODE_LINK_MAX < 32
    raster = plot_raster((torch.rand(40, 16, generator=g) < 0.2).float(), tmp_path / "raster.png")
    assert raster.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files behind
