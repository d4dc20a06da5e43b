"""BIP (trained per-neuron leaks, the ScSr-SNN paper eqs 20-21) and the ScSr-SNN builder (eqs 8, 17-19)."""

from __future__ import annotations

import pytest
import torch

from snn_motifs import NeuronParameters, SelfRecurrent, SpikingLinear
from snn_motifs.models import SCSR_VARIANTS, ScSrSNN, build_scsr

from .conftest import ALL_BACKENDS


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("spike_fn", ["tssl", "atan"])
def test_bip_leak_is_trained_on_every_backend(backend, spike_fn):
    torch.manual_seed(0)
    layer = SelfRecurrent(
        6,
        10,
        backend=backend,
        learn_leak=True,
        spike_fn=spike_fn,
        neuron=NeuronParameters(tau_mem=8.0, tau_syn=4.0),
    )
    assert isinstance(layer.neurons.tau_mem, torch.nn.Parameter)
    x = (torch.rand(40, 3, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    spikes, _ = layer.run(x)
    spikes.sum().backward()
    grad = layer.neurons.tau_mem.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_bip_gradients_agree_across_backends():
    grads = {}
    for backend in ("native", "snntorch", "norse"):
        torch.manual_seed(0)
        layer = SelfRecurrent(
            6,
            10,
            backend=backend,
            learn_leak=True,
            spike_fn="tssl",
            neuron=NeuronParameters(tau_mem=8.0, tau_syn=4.0),
        ).double()
        x = (torch.rand(40, 3, 6, generator=torch.Generator().manual_seed(0)) < 0.5).double()
        spikes, _, rec = layer.run(x, record=True)
        (spikes.sum() + rec.psc.sum()).backward()
        grads[backend] = layer.neurons.tau_mem.grad
    torch.testing.assert_close(grads["snntorch"], grads["native"], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grads["norse"], grads["native"], rtol=1e-9, atol=1e-9)


def test_bip_leak_stays_valid_under_aggressive_training():
    torch.manual_seed(0)
    layer = SpikingLinear(6, 10, learn_leak=True, neuron=NeuronParameters(tau_mem=2.0, tau_syn=2.0))
    opt = torch.optim.SGD(layer.parameters(), lr=50.0)
    x = (torch.rand(30, 4, 6) < 0.5).float()
    for _ in range(20):
        spikes, _ = layer.run(x)
        loss = -spikes.sum()  # pushes the leak hard
        opt.zero_grad()
        loss.backward()
        opt.step()
        leak = layer.neurons.leak()
        assert torch.isfinite(leak).all() and (leak >= 0).all() and (leak < 1).all()


def test_scsr_wiring_and_variants():
    torch.manual_seed(0)
    net = ScSrSNN(5, (7, 8, 9), 3, skip=True, bip=True, spike_fn="atan")
    assert [type(m).__name__ for m in net.layers] == ["SelfRecurrent"] * 3 + ["LeakyIntegrator"]
    spiking = ScSrSNN(5, (7, 8, 9), 3, skip=True, readout="count")
    assert type(spiking.layers[-1]).__name__ == "SpikingLinear"
    assert sorted(net.skips.keys()) == ["0->2", "1->3"]  # h1 -> h3 and h2 -> output (eq 19)
    assert net.skips["0->2"].weight.shape == (9, 7) and net.skips["1->3"].weight.shape == (3, 8)
    assert all(isinstance(m.neurons.tau_mem, torch.nn.Parameter) for m in net.layers[:3])
    x = (torch.rand(20, 2, 5) < 0.5).float()
    out = net(x)
    assert out.shape == (20, 2, 3)
    out.sum().backward()
    assert net.skips["0->2"].weight.grad is not None  # the skip path is in the graph

    ff = build_scsr("FF-SNN", 5, (7, 8), 3)
    assert [type(m).__name__ for m in ff.layers] == ["SpikingLinear"] * 2 + ["LeakyIntegrator"]
    assert len(ff.skips) == 0
    assert set(SCSR_VARIANTS) == {"FF-SNN", "Sr-SNN", "SrSc-SNN", "SrSc-BIP"}
    with pytest.raises(ValueError, match="unknown ScSr-SNN variant"):
        build_scsr("LSTM", 5, (7,), 3)
    with pytest.raises(ValueError, match="hidden must be"):
        ScSrSNN(5, (), 3)


def test_skip_connection_changes_the_output_layer_input():
    """With the skip weights zeroed, SrSc equals Sr with the same weights (eq 19 adds a term)."""
    torch.manual_seed(0)
    srsc = ScSrSNN(5, (16, 16, 16), 3, skip=True, spike_fn="atan")
    torch.manual_seed(0)
    sr = ScSrSNN(5, (16, 16, 16), 3, skip=False, spike_fn="atan")
    x = (torch.rand(30, 2, 5, generator=torch.Generator().manual_seed(1)) < 0.6).float() * 3
    sr.load_state_dict({k: v for k, v in srsc.state_dict().items() if not k.startswith("skips")})
    with torch.no_grad():
        for lin in srsc.skips.values():
            lin.weight.zero_()
    assert torch.equal(srsc(x), sr(x))
    with torch.no_grad():
        for lin in srsc.skips.values():
            lin.weight.fill_(0.5)
    assert not torch.equal(srsc(x), sr(x))


def test_extra_current_shape_is_checked():
    layer = SpikingLinear(4, 6)
    with pytest.raises(ValueError, match=r"extra_current must have shape \[5, 2, 6\]"):
        layer.run(torch.rand(5, 2, 4), extra_current=torch.rand(5, 2, 7))
