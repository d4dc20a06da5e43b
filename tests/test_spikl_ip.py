"""SpiKL-IP (the HRMAS paper eqs 24-26): does what the paper claims, on our layers and on stock neurons."""

from __future__ import annotations

import math

import pytest
import torch

from snn_motifs import SCML, NeuronParameters, SpikingLinear, SpiKLIP
from snn_motifs.losses import psc
from snn_motifs.spikl_ip import rate_kl_to_exponential, spikl_ip_step

from .conftest import needs_norse, needs_snntorch

N = 256


def _population(seed: int = 0) -> SpikingLinear:
    torch.manual_seed(seed)
    layer = SpikingLinear(20, N, neuron=NeuronParameters(tau_mem=16, tau_syn=8))
    with torch.no_grad():  # excitatory drive whose strength spans silent to saturated neurons
        scale = torch.cat([torch.full((32,), 0.04), torch.linspace(0.1, 3.0, N - 32)])
        layer.fc.weight.abs_().mul_(scale[:, None])
    return layer


def _run(layer, g, steps):
    """Random input whose intensity changes every 20 steps, so each neuron's rate varies over time."""
    level = (torch.rand(steps // 20, 8, 1, generator=g) * 0.3).repeat_interleave(20, 0)
    x = (torch.rand(steps, 8, 20, generator=g) < level).float()
    with torch.no_grad():
        spikes, _ = layer.run(x)
    return spikes


def _kl_per_neuron(spikes, mu=0.2, tau_cal=16.0):
    """Mean over neurons of KL(distribution of the neuron's calcium rate y[t] || exponential(mu))."""
    y = psc(spikes, tau_cal)[int(2 * tau_cal) :] / tau_cal
    return sum(rate_kl_to_exponential(y[..., i].flatten(), mu) for i in range(y.shape[-1])) / y.shape[-1]


def test_ip_moves_rate_distribution_toward_exponential():
    layer = _population()
    g = torch.Generator().manual_seed(1)
    before = _run(layer, g, 1000)
    ip = SpiKLIP(mu=0.2, tau_cal=16)
    handle = ip.attach(layer)
    for _ in range(30):  # an IP window of 3000 steps of random input
        _run(layer, g, 100)
    handle.freeze()
    after = _run(layer, g, 1000)
    kl0, kl1 = _kl_per_neuron(before), _kl_per_neuron(after)
    assert kl1 < 0.6 * kl0, (kl0, kl1)
    r0, r1 = before.mean((0, 1)), after.mean((0, 1))
    silent, hot = r0 == 0, r0 > 0.5
    assert silent.sum() >= 10 and hot.sum() >= 10
    assert (r1[silent] > 0).float().mean() > 0.8  # silent neurons start firing
    assert (r1[hot] < r0[hot]).all() and r1[hot].max() < 0.5  # over-active ones calm down
    assert abs(r1.mean() - 0.2) < abs(r0.mean() - 0.2)
    res, tau = layer.neurons.resistance, layer.neurons.tau_mem
    assert torch.isfinite(res).all() and torch.isfinite(tau).all()
    assert (res >= 0.5).all() and (res <= 8).all() and (tau >= 8).all() and (tau <= 128).all()


def test_single_neuron_update_by_hand():
    y, r, tau, vth, mu, lr, lr_tau = 0.3, 1.5, 20.0, 1.0, 0.2, 0.05, 0.8
    w = vth / (math.exp(1 / (tau * y)) - 1)
    d_r = (2 * y * tau * vth - w - vth - tau * vth * y * y / mu) / (r * w)
    d_tau = (-1 + y / mu) / tau
    new_r, new_tau = spikl_ip_step(
        torch.tensor([y], dtype=torch.float64),
        torch.tensor([r], dtype=torch.float64),
        torch.tensor([tau], dtype=torch.float64),
        mu=mu,
        v_threshold=vth,
        lr=lr,
        lr_tau=lr_tau,
    )
    assert new_r.item() == pytest.approx(r + lr * d_r, rel=1e-12)
    assert new_tau.item() == pytest.approx(tau + lr_tau * d_tau, rel=1e-12)
    assert d_r < 0 and d_tau > 0  # y > mu: homeostatic direction (less gain, slower membrane)


def test_hook_applies_the_formula_to_one_step():
    layer = SpikingLinear(3, 4, neuron=NeuronParameters(tau_mem=10, tau_syn=2))
    ip = SpiKLIP(mu=0.2, lr=0.1, tau_cal=4, lr_tau=0.5, silent_rate_tau=1e-6)
    ip.attach(layer)
    r0, tau0 = layer.neurons.resistance.clone(), layer.neurons.tau_mem.clone()
    x = torch.zeros(1, 2, 3)
    with torch.no_grad():
        layer.fc.weight.fill_(0.0)
        layer.fc.weight[0].fill_(100.0)  # neuron 0 fires in both samples
        layer.fc.weight[1, 0] = 100.0  # neuron 1 fires in sample 0 only
    x[0, :, :] = 1.0
    x[0, 1, 0] = 0.0
    with torch.no_grad():
        s, _ = layer.run(x)
    rate = s[0].mean(0) / 4  # batch-mean spikes enter the calcium trace, y = phi / tau_cal
    expect_r, expect_tau = spikl_ip_step(
        rate, r0, tau0, mu=0.2, v_threshold=1.0, lr=0.1, lr_tau=0.5, silent_rate_tau=1e-6
    )
    torch.testing.assert_close(layer.neurons.resistance, expect_r)
    torch.testing.assert_close(layer.neurons.tau_mem, expect_tau)


@pytest.mark.parametrize(
    "rate,case",
    [(0.0, "silent"), (1e-9, "almost silent"), (1.0, "saturated"), (0.999, "saturated")],
)
def test_numerically_safe_extremes(rate, case):
    r, tau = torch.tensor([1.0, 0.05, 20.0]), torch.tensor([16.0, 2.0, 512.0])
    y = torch.full((3,), rate)
    for _ in range(2000):
        r, tau = spikl_ip_step(y, r, tau, mu=0.2, v_threshold=1.0, lr=5.0, lr_tau=50.0)
        assert torch.isfinite(r).all() and torch.isfinite(tau).all(), case
    assert (r >= 0.05).all() and (r <= 20).all() and (tau >= 2).all() and (tau <= 512).all()
    if rate < 0.01:  # silent fallback: more excitable
        assert r[0] > 1.0 and tau[0] < 16.0
    else:  # saturated: less excitable
        assert r[0] < 1.0 and tau[0] > 16.0


def test_window_only_and_per_sample():
    layer = _population()
    g = torch.Generator().manual_seed(3)
    ip = SpiKLIP(window_only=True)
    ip.attach(layer)
    tau0 = layer.neurons.tau_mem.clone()
    assert not layer.neurons.has_step_hooks  # outside the window: the fused fast path stays on
    _run(layer, g, 40)
    assert torch.equal(layer.neurons.tau_mem, tau0)
    with ip.window():
        assert layer.neurons.has_step_hooks
        _run(layer, g, 40)
    changed = layer.neurons.tau_mem.clone()
    assert not torch.equal(changed, tau0)

    per = SpiKLIP(per_sample=True)
    layer2 = _population()
    per.attach(layer2)
    tau_init = layer2.neurons.tau_mem.clone()
    _run(layer2, g, 40)
    assert not torch.equal(layer2.neurons.tau_mem, tau_init)
    _run(layer2, g, 20)  # run() starts a new sample: R and tau restored first
    per.new_sample()
    torch.testing.assert_close(layer2.neurons.tau_mem, tau_init)


def test_attach_to_scml_and_errors():
    layer = SCML(5, 16, 4)
    ip = SpiKLIP()
    handle = ip.attach(layer)
    with pytest.raises(ValueError, match="already attached"):
        ip.attach(layer)
    handle.remove()
    ip.attach(layer.neurons)  # after remove, attaching again is fine
    with pytest.raises(TypeError, match="cannot adapt a torch.nn.modules.linear.Linear.*no leak"):
        ip.attach(torch.nn.Linear(3, 3))
    for kwargs, msg in [
        ({"mu": 0.0}, "mu"),
        ({"mu": 1.0}, "mu"),
        ({"lr": -1.0}, "lr must be >= 0"),
        ({"tau_cal": 0.0}, "tau_cal"),
        ({"tau_cal": -2.0}, "tau_cal"),
    ]:
        with pytest.raises(ValueError, match=msg):
            SpiKLIP(**kwargs)


def _stock_drive(steps: int, g: torch.Generator, top: float) -> torch.Tensor:
    """[steps, 4, N] input currents: per-neuron strength up to ``top``, intensity changing every 20 steps."""
    level = (torch.rand(steps // 20, 4, 1, generator=g) * 0.6).repeat_interleave(20, 0)
    return torch.linspace(0.0, top, N) * (torch.rand(steps, 4, N, generator=g) < level)


@needs_snntorch
@pytest.mark.parametrize("kind", ["Leaky", "Synaptic"])
def test_stock_snntorch_neurons(kind):
    import snntorch as snn

    g = torch.Generator().manual_seed(0)
    cls = getattr(snn, kind)
    lif = cls(beta=0.9, reset_mechanism="zero") if kind == "Leaky" else cls(alpha=0.5, beta=0.9)
    ip = SpiKLIP(mu=0.2)
    handle = ip.attach(lif)

    def run(steps):
        mem, syn, out = torch.zeros(4, N), torch.zeros(4, N), []
        for x in _stock_drive(steps, g, 1.5 if kind == "Leaky" else 0.8):
            if kind == "Leaky":
                spk, mem = lif(x, mem)
            else:
                spk, syn, mem = lif(x, syn, mem)
            out.append(spk)
        return torch.stack(out)

    with torch.no_grad():
        handle.freeze()
        before = run(1000)  # the identity gain: unchanged behaviour
        handle.unfreeze()
        for _ in range(30):
            run(100)
        handle.freeze()
        after = run(1000)
    assert _kl_per_neuron(after) < 0.8 * _kl_per_neuron(before)
    assert lif.beta.shape == (N,) and torch.all((lif.beta >= 0) & (lif.beta < 1))
    handle.remove()


@needs_norse
def test_stock_norse_lifcell():
    from norse.torch import LIFCell, LIFParameters

    g = torch.Generator().manual_seed(0)
    cell = LIFCell(LIFParameters(tau_mem_inv=torch.as_tensor(100.0)))
    ip = SpiKLIP(mu=0.2)
    handle = ip.attach(cell)

    def run(steps):
        state, out = None, []
        for x in _stock_drive(steps, g, 400.0):
            z, state = cell(x, state)
            out.append(z)
        return torch.stack(out)

    with torch.no_grad():
        handle.freeze()
        before = run(1000)
        handle.unfreeze()
        for _ in range(30):
            run(100)
        handle.freeze()
        after = run(1000)
    handle.remove()
    assert _kl_per_neuron(after) < 0.8 * _kl_per_neuron(before)
    assert cell.p.tau_mem_inv.shape == (N,) and torch.isfinite(cell.p.tau_mem_inv).all()
