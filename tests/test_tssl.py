"""TSSL-BP: faithful step-wise gradients against a sequence-mode reference, the stateless variant in
stock snnTorch and Norse neurons, and the bad-input cases."""

from __future__ import annotations

import math

import pytest
import torch
from snn_motifs.adapters import NativeLIF
from torch import nn

from snn_motifs import SCML, TSSLBP, LIFState, NeuronParameters, build_scsr, get_adapter, tssl_bp
from snn_motifs.tssl import TSSLStateless, warmup_surrogate

from .conftest import ALL_BACKENDS, needs_norse, needs_snntorch
from .tssl_reference import tssl_reference

T, B, N = 90, 3, 48
PARAMS = NeuronParameters(tau_mem=6.0, tau_syn=4.0, v_threshold=1.0)


def _currents(seed: int) -> torch.Tensor:
    """Inputs whose per-neuron drive spans silence to ~0.4 spikes/step."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(-0.2, 3.0, N, dtype=torch.float64)
    noise = torch.rand(T, B, N, generator=g, dtype=torch.float64)
    return (noise < 0.35).double() * scale * 1.5


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stepwise_tssl_equals_sequence_reference(backend, seed):
    adapter = get_adapter(backend, N, PARAMS, spike_fn=TSSLBP.authors()).double()
    with torch.no_grad():
        adapter.tau_mem.copy_(torch.linspace(4.0, 12.0, N))  # per-neuron tau
    c = _currents(seed).requires_grad_()
    g = torch.Generator().manual_seed(100 + seed)
    grad_psc = torch.randn(T, B, N, generator=g, dtype=torch.float64)
    state = adapter.init_state(B)
    spikes, pscs = [], []
    for t in range(T):
        s, state = adapter.step(c[t], state)
        spikes.append(s)
        pscs.append(state.a)
    (torch.stack(pscs) * grad_psc).sum().backward()

    decay = 1 - 1 / PARAMS.tau_syn
    syn = torch.zeros_like(c)
    acc = torch.zeros(B, N, dtype=torch.float64)
    for t in range(T):
        acc = decay * acc + c.detach()[t]
        syn[t] = acc
    ref_spikes, ref_grad_syn = tssl_reference(syn, grad_psc, adapter.tau_mem.detach(), 4.0, 1.0)
    ref_grad_c = torch.zeros_like(ref_grad_syn)  # dL/dc[t] = sum_{k>=t} decay^(k-t) dL/dI[k]
    acc = torch.zeros(B, N, dtype=torch.float64)
    for t in range(T - 1, -1, -1):
        acc = decay * acc + ref_grad_syn[t]
        ref_grad_c[t] = acc

    assert torch.equal(torch.stack(spikes).detach(), ref_spikes)
    rates = ref_spikes.mean((0, 1))
    assert (rates == 0).sum() >= 5, "some neurons must never fire"
    assert rates.max() > 0.35 and ((rates > 0.01) & (rates < 0.1)).any()
    torch.testing.assert_close(c.grad, ref_grad_c, rtol=0, atol=1e-6)
    assert c.grad[:, :, rates == 0].abs().sum() > 0  # silent neurons learn through the warm-up


def test_tssl_switch_and_terms_are_all_exercised():
    """The reference comparison above is only meaningful if every branch occurs."""
    c = _currents(0)
    decay = 0.75
    syn = torch.zeros_like(c)
    acc = torch.zeros(B, N, dtype=torch.float64)
    for t in range(T):
        acc = decay * acc + c[t]
        syn[t] = acc
    spikes, grads = tssl_reference(
        syn, torch.ones_like(c), torch.full((N,), 6.0, dtype=torch.float64), 4.0, 1.0
    )
    a = torch.zeros(B, N, dtype=torch.float64)
    warm, hot_silent = 0, 0
    for t in range(T):
        a = decay * a + spikes[t]
        warm += int((a < 0.25).sum())
        hot_silent += int(((a >= 0.25) & (spikes[t] == 0)).sum())
    assert warm > 100 and hot_silent > 100 and spikes.sum() > 100


def test_tssl_through_recurrence_trains_scml():
    torch.manual_seed(0)
    layer = SCML(8, 16, 4, spike_fn="tssl", neuron=NeuronParameters(tau_mem=4.0, tau_syn=2.0))
    head = nn.Linear(16, 2)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (16,), generator=g)
    rates = torch.where(labels[:, None] == 0, torch.linspace(0.05, 0.5, 8), torch.linspace(0.5, 0.05, 8))
    x = (torch.rand(25, 16, 8, generator=g) < rates).float()
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=2e-2)
    losses = []
    for _ in range(30):
        spikes, _ = layer.run(x)
        loss = nn.functional.cross_entropy(head(spikes.mean(0)), labels)
        opt.zero_grad()
        loss.backward()
        assert layer.intra_weight.grad is not None and layer.intra_weight.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_learned_leak_gets_tssl_gradient():
    adapter = NativeLIF(6, PARAMS, spike_fn=TSSLBP(), learn_leak=True).double()
    c = _currents(3)[:, :, :6]
    state = adapter.init_state(B)
    total = 0
    for t in range(T):
        s, state = adapter.step(c[t], state)
        total = total + state.a.sum()
    total.backward()
    assert adapter.tau_mem.grad is not None and torch.isfinite(adapter.tau_mem.grad).all()
    assert adapter.tau_mem.grad.abs().sum() > 0


# -- the stateless variant and the smooth pieces ------------------------------------------------
def test_stateless_derivative_formula():
    fn = tssl_bp()
    x = torch.tensor([-1.0, -0.1, 0.0, 0.05, 0.5, 2.0], dtype=torch.float64)
    expect = torch.where(x > 0, 1 / (x + 1.0), warmup_surrogate(x, 0.2, 8.0))  # 1/du with du = u- = x + V_th
    torch.testing.assert_close(fn.derivative(x), expect)
    low = tssl_bp(v_threshold=0.1)
    assert low.derivative(torch.tensor([0.001]))[0] == pytest.approx(8.0)  # clipped like 1/du


def test_gradcheck_smooth_pieces():
    x = (torch.rand(30, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()  # |x/0.2| < 8: no clamp
    assert torch.autograd.gradcheck(lambda y: warmup_surrogate(y, 0.2, 8.0), (x,))
    xp = (torch.rand(20, dtype=torch.float64) + 0.2).requires_grad_()  # spike branch, smooth there
    assert torch.autograd.gradcheck(TSSLStateless().derivative, (xp,))
    # warm-up surrogate is the derivative of sigmoid(x / width)
    xs = x.detach().clone().requires_grad_()
    (ref,) = torch.autograd.grad(torch.sigmoid(xs / 0.2).sum(), xs)
    torch.testing.assert_close(warmup_surrogate(x.detach(), 0.2, 8.0), ref)


@needs_snntorch
def test_stock_snntorch_leaky_with_tssl_bp():
    import snntorch as snn

    lif = snn.Leaky(beta=0.9, spike_grad=tssl_bp(), reset_mechanism="zero", reset_delay=False)
    inp = torch.tensor([[-0.5, 0.3, 0.99, 1.02, 1.5]], requires_grad=True)
    spk, _ = lif(inp, torch.zeros_like(inp))
    spk.sum().backward()
    torch.testing.assert_close(inp.grad, tssl_bp().derivative(inp.detach() - 1.0))

    torch.manual_seed(0)
    fc1, fc2 = nn.Linear(10, 20), nn.Linear(20, 2)
    lif1 = snn.Leaky(beta=0.8, spike_grad=tssl_bp())
    lif2 = snn.Leaky(beta=0.8, spike_grad=tssl_bp())

    def net(x):
        mem1, mem2, out = torch.zeros(16, 20), torch.zeros(16, 2), []
        for t in range(x.shape[0]):
            s1, mem1 = lif1(fc1(x[t]), mem1)
            s2, mem2 = lif2(fc2(s1), mem2)
            out.append(s2)
        return torch.stack(out).sum(0)

    losses = _train_toy(net, [*fc1.parameters(), *fc2.parameters()], lr=1e-2)
    assert losses[-1] < 0.7 * losses[0]


def _train_toy(net, params, lr: float, steps: int = 40) -> list[float]:
    """Adam on a rate-coded two-class task; ``net(x [T, B, 10]) -> logits [B, 2]``. Returns the losses."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (16,), generator=g)
    rates = torch.where(labels[:, None] == 0, torch.linspace(0.05, 0.6, 10), torch.linspace(0.6, 0.05, 10))
    x = (torch.rand(25, 16, 10, generator=g) < rates).float()
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@needs_norse
def test_stock_norse_lifcell_with_method_tssl():
    from norse.torch import LIFCell, LIFParameters
    from snn_motifs.adapters import norse_methods

    from snn_motifs import register_norse_tssl, unregister_norse_tssl

    register_norse_tssl()
    register_norse_tssl()  # twice: harmless
    try:
        p = LIFParameters(
            method="tssl", tau_mem_inv=torch.as_tensor(100.0), tau_syn_inv=torch.as_tensor(200.0)
        )
        cell = LIFCell(p)
        inp = torch.tensor([[-50.0, 30.0, 90.0, 110.0, 300.0]], requires_grad=True)
        z, _ = cell(inp)
        z.sum().backward()
        v = 1e-3 * 100.0 * inp.detach()  # one Euler step from rest: v = dt tau_mem_inv i
        torch.testing.assert_close(inp.grad, tssl_bp().derivative(v - 1.0) * 1e-3 * 100.0)

        torch.manual_seed(0)
        fc1, fc2 = nn.Linear(10, 20), nn.Linear(20, 2)
        lif1, lif2 = LIFCell(p), LIFCell(p)

        def net(x):
            s1 = s2 = None
            out = []
            for t in range(x.shape[0]):
                z1, s1 = lif1(fc1(x[t]) * 20, s1)
                z2, s2 = lif2(fc2(z1) * 20, s2)
                out.append(s2.v)
            return torch.stack(out).sum(0)

        losses = _train_toy(net, [*fc1.parameters(), *fc2.parameters()], lr=2e-2)
        assert losses[-1] < 0.7 * losses[0]
    finally:
        unregister_norse_tssl()
    assert "tssl" not in norse_methods.registered_methods()


# -- bad input ---------------------------------------------------------------------------------------
class SubtractResetLIF(NativeLIF):
    reset_mechanism = "subtract"


def test_tssl_with_incompatible_neuron_is_an_error():
    layer = SCML(4, 8, 2, backend=SubtractResetLIF(8, spike_fn=TSSLBP()))
    with pytest.raises(ValueError, match="hard reset to 0.*reset_mechanism='subtract'"):
        layer.run(torch.rand(5, 2, 4))


@pytest.mark.parametrize("kernel", ["fused", "step"])
def test_nan_incoming_gradient_is_an_error_not_nan_weights(kernel):
    layer = SCML(4, 8, 2, spike_fn="tssl", kernel=kernel)
    spikes, _ = layer.run(torch.rand(6, 2, 4) * 3)
    loss = (spikes * torch.tensor(float("nan"))).sum()
    with pytest.raises(FloatingPointError, match="NaN/Inf gradient"):
        loss.backward()
    assert layer.fc.weight.grad is None or torch.isfinite(layer.fc.weight.grad).all()


def test_tssl_config_errors_and_names():
    with pytest.raises(ValueError, match="bound must be finite and > 0"):
        TSSLBP(bound=0)
    with pytest.raises(ValueError, match="warmup_threshold"):
        TSSLBP(warmup_threshold=-1)
    layer = SCML(4, 8, 2, spike_fn="tssl")
    assert isinstance(layer.neurons.spike_fn, TSSLBP)
    assert layer._fusable()  # the fused kernel implements the TSSL-BP backward too


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_tssl_forward_is_the_plain_forward(backend):
    """Selecting TSSL-BP changes gradients only: spikes equal the surrogate run."""
    x = (torch.rand(40, 2, 6, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    torch.manual_seed(0)
    a = SCML(6, 12, 4, backend=backend, spike_fn="tssl")
    torch.manual_seed(0)
    b = SCML(6, 12, 4, backend=backend)
    sa, st_a = a.run(x)
    sb, st_b = b.run(x)
    assert torch.equal(sa, sb) and sa.sum() > 0
    for u, w in zip(st_a, st_b, strict=True):
        torch.testing.assert_close(u, w, rtol=0, atol=1e-6)
    assert isinstance(st_a, LIFState)


def _recurrent_grad_norm(spike_fn, steps: int) -> float:
    """Input-weight gradient norm of an SC-ML layer whose recurrent weights sum to 1 per neuron (a trained
    network's level), driven for ``steps`` steps; the loss reads the time-mean rate."""
    torch.manual_seed(0)
    layer = SCML(16, 64, 8, neuron=NeuronParameters(tau_mem=16, tau_syn=8), spike_fn=spike_fn).double()
    with torch.no_grad():
        layer.intra_weight.fill_(0.1)
        layer.lateral_weight.fill_(0.1)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(steps, 4, 16, generator=g, dtype=torch.float64) < 0.3).double() * 2.0
    spikes, _ = layer.run(x)
    (spikes.mean(0) @ torch.randn(64, generator=g, dtype=torch.float64)).sum().backward()
    return float(layer.fc.weight.grad.norm())


def test_tssl_gradients_stay_bounded_through_scml_recurrence_over_1000_steps():
    default = _recurrent_grad_norm(TSSLBP(), 1000)
    surrogate = _recurrent_grad_norm("atan", 1000)
    assert math.isfinite(default) and 0 < default < 3 * surrogate  # the same scale as a surrogate's
    assert default < 5 * _recurrent_grad_norm(TSSLBP(), 200)  # no growth with the sequence length
    # the mechanism: with the authors' clamp of 1/du at 8 the recurrent loop gain exceeds 1
    assert _recurrent_grad_norm(TSSLBP.authors(), 1000) > 1e3 * default


def _scsr_grad_norm(spike_fn, steps: int) -> float:
    """First-layer gradient norm of a SrSc-BIP network (self-recurrence, an l -> l+2 skip, trained leaks)
    with self-weights of 1, over ``steps`` steps."""
    torch.manual_seed(0)
    neuron = NeuronParameters(tau_mem=16, tau_syn=8)
    net = build_scsr("SrSc-BIP", 16, (32, 32, 32), 4, spike_fn=spike_fn, neuron=neuron, input_gain=3.0)
    net = net.double()
    with torch.no_grad():
        for layer in net.layers[:3]:
            layer.intra_weight.fill_(1.0)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(steps, 4, 16, generator=g, dtype=torch.float64) < 0.3).double()
    net(x).mean(0).sum().backward()
    return float(net.layers[0].fc.weight.grad.norm())


def test_tssl_gradients_stay_bounded_through_self_recurrence_and_skips():
    default = _scsr_grad_norm(TSSLBP(), 1000)
    assert math.isfinite(default) and 0 < default < 5 * _scsr_grad_norm("atan", 1000)
    assert default < 5 * _scsr_grad_norm(TSSLBP(), 200)
    assert _scsr_grad_norm(TSSLBP.authors(), 1000) > 1e6 * default
