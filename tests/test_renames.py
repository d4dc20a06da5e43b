"""The renames of CHANGELOG.md ("Renamed"): every old name still works (a DeprecationWarning where it is a
keyword or key), old configs and run folders resume, old search checkpoints load; and the training loop's
model contract (``training.SpikingClassifier``) names what is wrong."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch
from torch import nn

from snn_motifs.search import HRMASConfig, MixedMotifLayer, load_config, search_network
from snn_motifs.search.config import RENAMED_KEYS, config_diff, config_names
from snn_motifs.search.experiment import check_folder, run_ablations, run_method
from snn_motifs.training import LossConfig, check_model, evaluate, make_loss, make_predict, objective_of


def _old(cfg: HRMASConfig) -> dict:
    """``cfg`` as a run folder written before the rename stored it (``loss``, not ``readout``)."""
    data = dataclasses.asdict(cfg)
    data["loss"] = data.pop("readout")
    return data


# -- the readout: config key "loss" -> "readout", LossConfig(kind=) -> LossConfig(readout=) ---------------


def test_old_config_key_loads_with_a_warning():
    with pytest.warns(DeprecationWarning, match="'loss' is deprecated; call it 'readout'"):
        cfg = HRMASConfig.from_dict({"loss": "max"})
    assert cfg.readout == "max"
    assert RENAMED_KEYS == {"loss": "readout"}


def test_old_config_file_loads(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"hidden": 16, "motif_sizes": [2, 4], "loss": "count"}))
    with pytest.warns(DeprecationWarning):
        assert load_config(path).readout == "count"


def test_old_keyword_and_attribute_warn_and_work():
    with pytest.warns(DeprecationWarning):
        cfg = HRMASConfig(loss="last")
    assert cfg.readout == "last"
    with pytest.warns(DeprecationWarning):
        assert cfg.loss == "last"
    assert dataclasses.replace(cfg, readout="max").readout == "max"


def test_old_and_new_key_together_must_agree():
    with pytest.raises(ValueError, match="old name of 'readout'"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        HRMASConfig.from_dict({"loss": "max", "readout": "mean"})
    with pytest.warns(DeprecationWarning):
        assert HRMASConfig.from_dict({"loss": "max", "readout": "max"}).readout == "max"


def test_bad_readout_is_named():
    with pytest.raises(ValueError, match="readout must be a readout name"):
        HRMASConfig(readout="mse")


def test_packaged_configs_use_the_new_key():
    import json
    from importlib import resources

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # an old key would warn, and fail here
        for name in config_names():
            cfg = load_config(name)
            raw = json.loads(resources.files("snn_motifs.configs").joinpath(f"{name}.json").read_text())
            assert "loss" not in raw, name
            assert cfg.readout == raw.get("readout", HRMASConfig().readout), name


def test_config_diff_treats_old_and_new_spellings_as_one_key():
    cfg = HRMASConfig(readout="max")
    assert config_diff(_old(cfg), dataclasses.asdict(cfg)) == []
    assert config_diff(dataclasses.asdict(cfg), _old(cfg)) == []
    assert config_diff(_old(cfg), dataclasses.asdict(HRMASConfig(readout="mean"))) == ["readout"]


def test_run_folder_written_with_the_old_key_resumes(tmp_path):
    cfg = HRMASConfig(readout="max", hidden=16, motif_sizes=[2, 4])
    (tmp_path / "config.json").write_text(json.dumps({**_old(cfg), "execution": {"threads": 1}}))
    check_folder(tmp_path, cfg, resume=True)  # no "different config" refusal
    with pytest.raises(ValueError, match="differs in \\['readout'\\]"):
        check_folder(tmp_path, dataclasses.replace(cfg, readout="mean"), resume=True)


def test_loss_config_kind_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="LossConfig\\(readout=...\\)"):
        old = LossConfig(kind="count", tau_syn=4.0)
    new = LossConfig(readout="count", tau_syn=4.0)
    assert old == new and old.readout == "count"
    with pytest.warns(DeprecationWarning):
        assert new.kind == "count"
    assert LossConfig("max").readout == "max" and LossConfig().readout == "mean"
    with pytest.raises(ValueError, match="give one"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        LossConfig(readout="max", kind="mean")
    s = torch.zeros(5, 2, 3)
    y = torch.tensor([0, 1])
    assert torch.equal(make_loss(old)(s, y), make_loss(new)(s, y))
    assert torch.equal(make_predict(old)(s), make_predict(new)(s))


# -- MixedMotifLayer: weights_intra / weights_lateral -> intra_weight / lateral_weight --------------------


def _renamed_to_old(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        key = key.replace("intra_weight.", "weights_intra.").replace("lateral_weight.", "weights_lateral.")
        out[key] = value
    return out


def test_mixed_layer_uses_scml_names():
    layer = MixedMotifLayer(3, 8, [2, 4])
    names = {name.split(".")[0] for name, _ in layer.named_parameters()}
    assert {"intra_weight", "lateral_weight"} <= names
    assert not {"weights_intra", "weights_lateral"} & names


def test_old_checkpoint_keys_load_into_the_layer():
    torch.manual_seed(0)
    saved = MixedMotifLayer(3, 8, [2, 4])
    with torch.no_grad():
        for p in saved.parameters():
            p.normal_()
    old = _renamed_to_old(saved.state_dict())
    assert {"weights_intra.0", "weights_lateral.1"} <= set(old)
    fresh = MixedMotifLayer(3, 8, [2, 4])
    fresh.load_state_dict(old)  # strict: every key found under its new name
    for (name, a), (_, b) in zip(saved.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_old_search_checkpoint_loads_into_the_search_network():
    cfg = HRMASConfig(hidden=8, motif_sizes=[2, 4], spike_fn="atan")
    torch.manual_seed(1)
    saved = search_network(cfg, 3, 2)
    old = _renamed_to_old(saved.state_dict())
    assert "hidden.weights_intra.0" in old  # what a search checkpoint's "model" held before the rename
    torch.manual_seed(2)
    fresh = search_network(cfg, 3, 2)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.hidden.intra_weight[1], saved.hidden.intra_weight[1])
    assert torch.equal(fresh.hidden.lateral_weight[0], saved.hidden.lateral_weight[0])


def test_largest_option_and_motif_size():
    layer = MixedMotifLayer(3, 8, [4, 2])
    assert layer.largest_option == 4 and layer.block_size == 4  # the kernel's layout block
    with pytest.warns(DeprecationWarning, match="largest_option, leading_size"):
        assert layer.motif_size == 4  # what it returned before: the layout block, not a motif size
    assert layer.leading_size() in (2, 4)
    assert layer.fixed_size is None and layer.fix_motif_size(2) == 2 and layer.fixed_size == 2


# -- run_method / run_ablations ----------------------------------------------------------------------------


def test_run_method_and_run_ablations_refuse_each_others_arguments(tmp_path):
    with pytest.raises(ValueError, match="run_ablations"):
        run_method(HRMASConfig(), tmp_path / "a", ablation="all")
    with pytest.raises(TypeError, match="compare_ip= belongs to run_method"):
        run_ablations(HRMASConfig(), tmp_path / "b", compare_ip=True)
    with pytest.raises(TypeError, match="run_ablations\\(\\) got an unexpected keyword argument 'sedes'"):
        run_ablations(HRMASConfig(), tmp_path / "b", sedes=2)  # run_method's keywords, checked by name
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# -- the model contract of fit / evaluate ------------------------------------------------------------------


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)


def test_contract_defaults_and_readout():
    net = _Net()
    assert objective_of(net).readout == "count"  # no readout: the spiking count loss
    net.readout, net.tau_syn = "max", 4.0
    assert objective_of(net) == LossConfig(readout="max", tau_syn=4.0)


def test_contract_names_a_wrong_attribute_and_the_fix():
    net = _Net()
    net.readout = nn.Linear(2, 2)  # Norse's models call their output layer "readout"
    with pytest.raises(TypeError, match="_Net.readout is a Linear.*loss=LossConfig\\(readout="):
        objective_of(net)
    x, y = torch.zeros(4, 5, 3), torch.zeros(4, dtype=torch.long)
    assert 0 <= evaluate(net, x, y, loss=LossConfig("max")) <= 1  # a given loss does not read it
    net = _Net()
    net.input_gain = 2.0
    with pytest.raises(TypeError, match="input_gain is 2.0.*register_buffer"):
        check_model(net)
    net = _Net()
    net.tau_syn = -1.0
    with pytest.raises(TypeError, match="tau_syn is -1.0"):
        check_model(net)
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        check_model(lambda x: x)


# -- spike_fn: one name for the spike function -------------------------------------------------------------


def test_bind_layer_rules_is_a_deprecated_alias_of_bind_spike_fns():
    from snn_motifs import SCMLClassifier
    from snn_motifs.training import bind_layer_rules, bind_spike_fns
    from snn_motifs.tssl import TSSLBP

    model = SCMLClassifier(3, 8, 2, motif_size=4, spike_fn=TSSLBP(warmup="layer"))
    bind_spike_fns(model)
    with pytest.warns(DeprecationWarning, match="bind_spike_fns"):
        bind_layer_rules(model)


def test_old_attribute_names_warn_and_work():
    layer = MixedMotifLayer(3, 8, [2, 4])
    with pytest.warns(DeprecationWarning, match="intra_weight"):
        assert layer.weights_intra is layer.intra_weight
    with pytest.warns(DeprecationWarning, match="lateral_weight"):
        assert layer.weights_lateral is layer.lateral_weight


def test_trained_model_saved_with_the_old_config_key_loads(tmp_path):
    from snn_motifs._io import save_torch
    from snn_motifs.search import Genotype, build_classifier, load_trained
    from snn_motifs.topology import MotifTopology

    cfg = HRMASConfig(readout="max", hidden=8, motif_sizes=[4], spike_fn="atan")
    genotype = Genotype(MotifTopology.uniform(4), 8)
    model = build_classifier(genotype, cfg, 3, 2)
    blob = {"genotype": genotype.to_dict(), "config": _old(cfg), "model": model.state_dict()}
    save_torch(blob, tmp_path / "model.pt")  # as 'snn-motifs train' wrote it before the rename
    with pytest.warns(DeprecationWarning, match="'loss'"):
        loaded, _, loaded_cfg = load_trained(tmp_path)
    assert loaded_cfg == cfg and loaded.readout == "max"


def test_search_checkpoint_written_before_the_renames_resumes(tmp_path):
    from snn_motifs._io import load_torch, save_torch
    from snn_motifs.search import HRMASRun

    from .conftest import tiny_search

    cfg, data = tiny_search()
    quiet = dict(progress=False, log=lambda s: None, tensorboard=False)
    run = HRMASRun(cfg, data, tmp_path, **quiet)
    run.save()
    blob = load_torch(run.checkpoint_path)
    blob["config"] = _old(cfg)
    blob["model"] = _renamed_to_old(blob["model"])
    assert "hidden.weights_intra.0" in blob["model"]
    save_torch(blob, run.checkpoint_path)
    again = HRMASRun(cfg, data, tmp_path, **quiet)
    with torch.no_grad():
        for p in again.model.hidden.intra_weight:
            p.zero_()
    again.load()  # no "different config" refusal, every weight found under its new name
    for a, b in zip(again.model.hidden.intra_weight, run.model.hidden.intra_weight, strict=True):
        assert torch.equal(a, b)


def test_sweep_space_with_the_old_key_sweeps_the_readout():
    pytest.importorskip("ray.tune")
    from snn_motifs.search.sweep import parse_space

    with pytest.warns(DeprecationWarning, match="'loss'"):
        space = parse_space({"loss": {"choice": ["max", "mean"]}})
    assert list(space) == ["readout"]


def test_the_neurons_R_is_effective_resistance_and_gain_still_works():
    from snn_motifs import SCML

    neurons = SCML(3, 4, 2).neurons
    with torch.no_grad():
        neurons.resistance.fill_(-1.0)  # clamped: R stays positive
    r = neurons.effective_resistance()
    assert torch.all(r > 0)
    with pytest.warns(DeprecationWarning, match="effective_resistance"):
        assert torch.equal(neurons.gain(), r)
