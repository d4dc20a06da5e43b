"""``SpikingLayer(kernel=...)``: each choice, ``supported_kernels`` per backend, errors that name the fix,
and the deprecated ``fused=`` / ``compile=`` keywords."""

from __future__ import annotations

import copy
import json
import pickle
import warnings

import pytest
import torch

import snn_motifs.fused_kernel as fk
from snn_motifs import SCML, SpikingLinear
from snn_motifs.surrogate import FastSigmoid

from .conftest import ALL_BACKENDS, build_layer, drive


def _runs(layer, x):
    """Which kernel paths one ``layer.run(x)`` took (``fused_kernel.runs`` before and after)."""
    before = dict(fk.runs)
    spikes, _ = layer.run(x)
    return spikes, {k: fk.runs[k] - before.get(k, 0) for k in ("eager", "compiled")}


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_supported_kernels_per_backend(backend):
    layer = build_layer(backend)
    if backend == "native":
        expected = {"auto", "step", "fused"} | ({"compiled"} if fk.compiler_available() else set())
    else:  # snnTorch and Norse run their own step: no sequence kernel
        expected = {"auto", "step"}
    assert set(layer.supported_kernels) == expected
    assert layer.kernel == "auto"
    x = drive(steps=6)
    _, ran = _runs(layer, x)
    assert ran == ({"eager": 1, "compiled": 0} if backend == "native" else {"eager": 0, "compiled": 0})
    if backend != "native":
        for kernel in ("fused", "compiled"):
            with pytest.raises(ValueError, match=f"kernel='{kernel}' cannot run.*{backend}.*kernel='auto'"):
                build_layer(backend, kernel=kernel)


def test_each_choice_runs_what_it_says_and_agrees():
    x = drive(steps=20)
    outs = {}
    for kernel in ("step", "fused", "auto"):
        layer = build_layer(kernel=kernel)
        spikes, ran = _runs(layer, x)
        assert ran["eager"] == (0 if kernel == "step" else 1) and ran["compiled"] == 0
        assert layer.kernel == kernel and layer.fused is (kernel != "step") and not layer.compile
        outs[kernel] = spikes
    assert torch.equal(outs["step"], outs["fused"]) and torch.equal(outs["fused"], outs["auto"])
    assert outs["step"].sum() > 0
    layer = SpikingLinear(12, 8, kernel="fused")  # no recurrence: the kernel runs it too
    assert _runs(layer, x)[1]["eager"] == 1


def test_unknown_or_unsupported_choice_names_the_fix():
    with pytest.raises(ValueError, match=r"kernel must be one of \['auto', 'step', 'fused', 'compiled'\]"):
        SCML(4, 8, 2, kernel="cuda")
    with pytest.raises(ValueError, match="kernel='fused' cannot run.*surrogate.*kernel='auto'"):
        SCML(4, 8, 2, spike_fn=lambda u: (u > 0).float(), kernel="fused")
    layer = SCML(4, 8, 2, spike_fn=lambda u: (u > 0).float())
    assert layer.supported_kernels == ("auto", "step")  # "auto" picks the step path, silently
    assert layer.run(torch.rand(5, 2, 4))[0].shape == (5, 2, 8)
    assert "fused" in SCML(4, 8, 2, spike_fn=FastSigmoid(10.0)).supported_kernels


def test_step_hooks_attached_later_refuse_an_explicit_kernel():
    x = torch.rand(5, 2, 4) * 3
    seen = []
    fused = SCML(4, 8, 2, kernel="fused")
    handle = fused.neurons.register_step_hook(lambda neurons, spikes, state: seen.append(spikes))
    assert "fused" not in fused.supported_kernels
    with pytest.raises(ValueError, match="kernel='fused' cannot run.*step hooks.*kernel='auto'"):
        fused.run(x)
    handle.remove()
    assert _runs(fused, x)[1]["eager"] == 1 and not seen
    auto = SCML(4, 8, 2)
    auto.neurons.register_step_hook(lambda neurons, spikes, state: seen.append(spikes))
    assert _runs(auto, x)[1]["eager"] == 0 and len(seen) == 5  # "auto" takes the step path


def test_deprecated_fused_and_compile_keywords():
    with pytest.warns(DeprecationWarning, match="kernel='step'"):
        layer = SCML(4, 8, 2, fused=False)
    assert layer.kernel == "step" and layer.fused is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old defaults, as configs pass them, change nothing, say nothing
        assert SCML(4, 8, 2, fused=True, compile=False).kernel == "auto"
    with pytest.warns(DeprecationWarning):
        layer.fused = True
    assert layer.kernel == "auto"
    with pytest.raises(ValueError, match="contradicts"):
        SCML(4, 8, 2, kernel="fused", fused=False)
    with pytest.raises(TypeError, match="fused must be True or False"):
        SCML(4, 8, 2, fused="yes")
    if fk.compiler_available():
        with pytest.warns(DeprecationWarning, match="compile="):
            layer = SCML(4, 8, 2, compile=True)
        assert layer.kernel == "compiled" and layer.compile is True


def test_old_pickles_get_a_kernel():
    layer = SCML(4, 8, 2, kernel="step")
    state = layer.__getstate__()
    del state["kernel"]
    state.update(fused=False, compile=False)  # a layer pickled before kernel= existed
    old = SCML.__new__(SCML)
    old.__setstate__(state)
    assert old.kernel == "step"
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert clone.kernel == "step"


def test_use_kernel_runs_hooked_sequences_on_the_step_path_and_restores_the_choice():
    from snn_motifs.layers import use_kernel

    x = torch.rand(5, 2, 4) * 3
    model = torch.nn.Sequential(SCML(4, 8, 2, kernel="fused"))
    layer, seen = model[0], []
    handle = layer.neurons.register_step_hook(lambda neurons, spikes, state: seen.append(spikes))
    with pytest.raises(ValueError, match=r"use_kernel\(model, 'step'\)"):
        layer.run(x)
    with use_kernel(model, "step"):
        assert layer.kernel == "step"
        layer.run(x)
    assert layer.kernel == "fused" and len(seen) == 5
    handle.remove()
    with pytest.raises(ValueError, match="kernel must be one of"):
        with use_kernel(model, "gpu"):
            pass
    with pytest.raises(ValueError, match="kernel='fused' cannot run.*surrogate"):
        with use_kernel(SCML(4, 8, 2, spike_fn=lambda u: (u > 0).float()), "fused"):
            pass
    assert layer.kernel == "fused"


@pytest.mark.slow
@pytest.mark.skipif(not fk.compiler_available(), reason="torch.compile needs a C++ compiler here")
def test_compiled_search_runs_its_spikl_ip_windows_on_the_step_path(tmp_path):
    """A config with ``compile: true`` (the packaged ti46_alpha one) and SpiKL-IP: the IP window's step
    hooks need the step path, the rest of the search runs the compiled kernel."""
    from snn_motifs import search

    from .conftest import tiny_search

    cfg, data = tiny_search(compile=True, ip=True, epochs_size=1, epochs_types=1, epochs_retrain=1)
    quiet = dict(data=data, baseline=False, plots=False, progress=False, log=lambda s: None)
    search.run(cfg, tmp_path / "exp", **quiet)
    result = json.loads((tmp_path / "exp" / "seed0" / "result.json").read_text())
    assert 0.0 <= result["test_acc"] <= 1.0 and result["cost"]["synops_per_sample"] > 0


def test_random_search_trials_never_compile_their_one_epoch_networks():
    """A random-search trial trains a new network of a random motif size for one epoch: compiling it
    cannot pay back, so the trial runs the eager kernel even under ``compile: true``."""
    from snn_motifs.search import random_trial
    from snn_motifs.search.retrain import loss_config
    from snn_motifs.training import make_loss

    from .conftest import tiny_search

    cfg, data = tiny_search(compile=True)
    before = dict(fk.runs)
    trial = random_trial(0, cfg, data, data, make_loss(loss_config(cfg)), torch.Generator().manual_seed(0))
    assert 0.0 <= trial["valid_acc"] <= 1.0
    assert fk.runs["compiled"] == before.get("compiled", 0) and fk.runs["eager"] > before.get("eager", 0)
