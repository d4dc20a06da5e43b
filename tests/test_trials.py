"""Seeds and ablations as Ray Tune trials give the sequential path's results and folders."""

from __future__ import annotations

import json

import pytest

from .conftest import strip_seconds, tiny_search

pytestmark = pytest.mark.slow


def _quiet(data):
    return dict(data=data, baseline=False, plots=False, progress=False, log=lambda s: None)


def test_ray_tune_trials_equal_the_sequential_path(tmp_path):
    pytest.importorskip("ray.tune")
    import ray

    from snn_motifs import search

    cfg, data = tiny_search()
    try:
        sequential = search.run(cfg, tmp_path / "seq", seeds=1, ablation="all", **_quiet(data))
        trials = search.run(cfg, tmp_path / "ray", seeds=1, ablation="all", workers=2, **_quiet(data))
        assert trials == sequential  # best / mean / std per ablation
        for ablation in search.ABLATIONS:
            for seed in (0,):
                for name in ("result.json", "history.json", "genotype.json"):
                    a = json.loads((tmp_path / "seq" / ablation / f"seed{seed}" / name).read_text())
                    b = json.loads((tmp_path / "ray" / ablation / f"seed{seed}" / name).read_text())
                    assert strip_seconds(a) == strip_seconds(b), (ablation, seed, name)
            summary = json.loads((tmp_path / "ray" / ablation / "summary.json").read_text())
            assert summary["mean"] == sequential[ablation]["mean"]
        # a resumed driver: finished trials are not re-run (their files stay untouched)
        result = tmp_path / "ray" / "none" / "seed0" / "result.json"
        stamp = result.stat().st_mtime_ns
        again = search.run(
            cfg, tmp_path / "ray", seeds=1, ablation="all", workers=2, resume=True, **_quiet(data)
        )
        assert again == sequential and result.stat().st_mtime_ns == stamp
    finally:
        ray.shutdown()


def test_sweep_with_optuna_and_asha(tmp_path):
    pytest.importorskip("ray.tune")
    pytest.importorskip("optuna")
    import ray

    from snn_motifs.search.sweep import parse_space, sweep

    cfg, data = tiny_search()
    space = {"lr": {"loguniform": [1e-3, 5e-2]}, "arch_lr": {"choice": [0.01, 0.05]}}
    try:
        rows = sweep(cfg, space, 4, tmp_path / "sweep", data=data, workers=2, log=lambda s: None)
        with pytest.raises(ValueError, match="space key 'lrr' is not a config key"):
            parse_space({"lrr": {"uniform": [0, 1]}})
        with pytest.raises(ValueError, match="kind in"):
            parse_space({"lr": {"gaussian": [0, 1]}})
    finally:
        ray.shutdown()
    assert len(rows) == 4 and len({r["lr"] for r in rows}) == 4  # Optuna proposed four configurations
    assert all(1e-3 <= r["lr"] <= 5e-2 and r["arch_lr"] in (0.01, 0.05) for r in rows)
    assert all(0 <= r["valid_acc"] <= 1 and 1 <= r["epochs"] <= 3 for r in rows)  # search epochs only
    assert max(r["valid_acc"] for r in rows) > 0.6  # a two-class task: the best trial learned
    table = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["rows"]
    assert table == rows and (tmp_path / "sweep" / "sweep.csv").read_text().startswith("trial,lr,arch_lr")
    assert (tmp_path / "sweep" / "sweep.png").exists()
