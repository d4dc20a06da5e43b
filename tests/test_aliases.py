"""snnTorch's and Norse's names (beta, threshold, spike_grad, method, init_leaky, the membrane from the
step) checked against snnTorch's and Norse's own neurons; tests/test_semantics.py checks the equations each
simulator's names select in depth."""

from __future__ import annotations

import pytest
import torch

from snn_motifs import SCML, NeuronParameters, SpikingLinear, resolve_spike_fn
from snn_motifs.neuron import LeakyParameters
from snn_motifs.surrogate import FastSigmoid


def test_snntorch_names_reproduce_snn_leaky():
    """SpikingLinear(beta=, threshold=, spike_grad=) stepped as the snnTorch tutorial
    (``mem = lif.init_leaky(); spk, mem = lif(cur, mem)``) equals snnTorch's own ``snn.Leaky`` with the same
    names on the same currents: tensors in, tensors out, snnTorch's defaults (reset by subtraction, one step
    late)."""
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    beta, threshold = 0.9, 0.5
    layer = SpikingLinear(6, 20, beta=beta, threshold=threshold, spike_grad=snn.surrogate.atan())
    lif = snn.Leaky(beta=beta, threshold=threshold)
    x = torch.rand(30, 4, 6) * 1.5
    mem, mem_ref = layer.init_leaky(), lif.init_leaky()
    assert isinstance(mem, torch.Tensor) and mem.numel() == 0
    fired = 0
    for t in range(x.shape[0]):
        spk, mem = layer(x[t], mem)
        spk_ref, mem_ref = lif(layer.fc(x[t]), mem_ref)
        assert type(mem) is torch.Tensor and torch.equal(spk, spk_ref) and torch.equal(mem, mem_ref)
        fired += int(spk.sum())
    assert fired > 0
    assert layer.neurons.params == LeakyParameters(beta=beta, threshold=threshold)
    assert torch.equal(layer.beta, torch.full((20,), beta)) and float(layer.threshold) == threshold


@pytest.mark.slow
def test_norse_method_names_are_norse_superspike():
    norse_threshold = pytest.importorskip("norse.torch.functional.threshold")
    fn = resolve_spike_fn("superspike")
    assert fn == FastSigmoid(1.0) and resolve_spike_fn("super") == fn  # Norse 1.1 ignores alpha
    x = torch.linspace(-1, 1, 201, dtype=torch.float64, requires_grad=True)
    ours = torch.autograd.grad(fn(x).sum(), x)[0]
    x2 = x.detach().clone().requires_grad_()
    theirs = torch.autograd.grad(norse_threshold.threshold(x2, "super", 100.0).sum(), x2)[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)
    torch.manual_seed(0)
    native = SCML(5, 16, 4, method="super")
    pytest.importorskip("norse")
    norse = SCML(5, 16, 4, method="superspike", backend="norse")
    norse.load_state_dict(native.state_dict())
    xs = torch.rand(25, 3, 5) * 2
    s_native, _ = native.run(xs)
    s_norse, _ = norse.run(xs)
    assert torch.equal(s_native, s_norse) and s_native.sum() > 0


def test_alias_conflicts_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="spike_fn and spike_grad"):
        SpikingLinear(3, 4, spike_fn="atan", spike_grad="sigmoid")
    with pytest.raises(ValueError, match="beta must be in \\[0, 1\\]"):
        SpikingLinear(3, 4, beta=1.5)
    with pytest.raises(ValueError, match="unknown spike function 'superspikes'"):
        SpikingLinear(3, 4, method="superspikes")
    with pytest.raises(ValueError, match="neuron= and \\['beta'\\] both set the neuron"):
        SpikingLinear(3, 4, beta=0.75, neuron=NeuronParameters(tau_syn=4.0))
    with pytest.raises(ValueError, match="needs beta"):
        SpikingLinear(3, 4, threshold=0.5)
    with pytest.raises(TypeError, match="unexpected keyword argument\\(s\\) \\['tau'\\]"):
        SpikingLinear(3, 4, tau=4.0)
    layer = SpikingLinear(3, 4, spike_grad="sigmoid")  # a spike function name selects no neuron
    assert layer.neurons.params == NeuronParameters() and layer.neurons.equations == "hrmas"


def test_readme_quickstart_runs_as_written():
    """The README's quickstart (snnTorch tutorial 5 with SC-ML) executes verbatim."""
    import re
    from pathlib import Path

    pytest.importorskip("snntorch")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Quickstart") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    torch.manual_seed(0)
    exec(compile(code, "README quickstart", "exec"), namespace)
    spk, mem = namespace["spk_rec"], namespace["mem_rec"]
    assert spk.shape == mem.shape == (25, 128, 10) and spk.sum() > 0
