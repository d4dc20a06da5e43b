"""What a search writes and reads back (``search/config.py``, ``search/genotype.py``): invalid options and
configs are refused, a genotype survives its JSON, and a config key added later (``compile``) reaches every
network without breaking the resume of an older run folder."""

from __future__ import annotations

import pytest
import torch

from snn_motifs.search import Genotype, HRMASConfig, MixedMotifLayer, search_network
from snn_motifs.topology import MotifTopology


def test_bad_options_and_configs():
    with pytest.raises(ValueError, match="option 3 is invalid for N=16.*does not divide"):
        MixedMotifLayer(3, 16, [2, 3])
    with pytest.raises(ValueError, match="motif_sizes is empty"):
        MixedMotifLayer(3, 16, [])
    with pytest.raises(ValueError, match="lr must be a positive"):
        HRMASConfig(lr=0.0)
    with pytest.raises(ValueError, match="arch_lr must be a positive"):
        HRMASConfig(arch_lr=-1e-3)
    with pytest.raises(ValueError, match="motif_sizes is empty"):
        HRMASConfig(motif_sizes=[])
    with pytest.raises(ValueError, match="unknown config keys"):
        HRMASConfig.from_dict({"hiden": 3})


def test_genotype_json_round_trip_and_errors(tmp_path):
    topo = MotifTopology.random(4, torch.Generator().manual_seed(0))
    g = Genotype(topo, 32)
    path = tmp_path / "g.json"
    g.to_json(path)
    again = Genotype.from_json(path)
    assert again.topology == topo and again.n_neurons == 32
    assert Genotype.from_json(g.to_json()).topology == topo
    bad_shape = {"n_neurons": 8, "motif_size": 2, "intra": ["eee", "ee"], "lateral": ["ee", "ee"]}
    with pytest.raises(ValueError, match="shape"):
        Genotype.from_dict(bad_shape)
    with pytest.raises(ValueError, match="unknown connection type 'q'"):
        Genotype.from_dict({"n_neurons": 8, "motif_size": 2, "intra": ["eq", "ee"], "lateral": ["ee", "ee"]})
    with pytest.raises(ValueError, match="not a multiple"):
        Genotype.from_dict({"n_neurons": 7, "motif_size": 2, "intra": ["ee", "ee"], "lateral": ["ee", "ee"]})
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Genotype.from_json(tmp_path / "broken.json")


def test_compile_key_reaches_every_network_and_old_run_folders_still_resume():
    from snn_motifs.search.config import config_diff
    from snn_motifs.search.retrain import build_classifier

    cfg = HRMASConfig(hidden=8, motif_sizes=[2, 4], compile=True)
    assert search_network(cfg, 3, 2).hidden.compile
    genotype = Genotype(MotifTopology.random(2, torch.Generator().manual_seed(0)), 8)
    assert build_classifier(genotype, cfg, 3, 2).hidden.compile
    assert not build_classifier(genotype, HRMASConfig(hidden=8), 3, 2).hidden.compile
    current = vars(HRMASConfig(hidden=8))
    written_before_the_key = {k: v for k, v in current.items() if k != "compile"}
    assert config_diff(written_before_the_key, current) == []
    assert config_diff(written_before_the_key, vars(cfg)) == ["compile", "motif_sizes"]
