"""SCML / SelfRecurrent behaviour: delays, fused kernel vs step path, APIs, bad input, training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snn_motifs import SCML, LIFState, MotifTopology, NeuronParameters, SelfRecurrent
from snn_motifs.surrogate import FastSigmoid

from .conftest import ALL_BACKENDS, build_layer, drive


def _grads(layer: SCML, x: torch.Tensor, state=None):
    layer.zero_grad()
    spikes, final, rec = layer.run(x, state, record=True)
    w = torch.linspace(-1, 1, layer.n_neurons, dtype=x.dtype)
    loss = (spikes * w).sum() + 0.2 * rec.mem.pow(2).sum() + 0.1 * (rec.psc * w).sum()
    loss = loss + final.i.sum() + final.v.sum()
    loss.backward()
    return spikes.detach(), {n: p.grad.clone() for n, p in layer.named_parameters()}


@pytest.mark.parametrize(
    "topology",
    [MotifTopology.random(4, torch.Generator().manual_seed(s)) for s in range(3)]
    + [
        MotifTopology.uniform(8, "e", None),
        MotifTopology.self_recurrent(),
        MotifTopology.random(32, torch.Generator().manual_seed(9)),
    ],
    ids=lambda t: f"v{t.motif_size}",
)
@pytest.mark.parametrize(
    "spike_fn", ["atan", FastSigmoid(10.0), "tssl"], ids=["atan", "fast_sigmoid", "tssl"]
)
def test_fused_kernel_equals_step_path_forward_and_gradients(topology, spike_fn):
    layer = build_layer(
        topology=topology, dtype=torch.float64, learn_leak=True, learn_gain=True, spike_fn=spike_fn
    )
    x = drive(steps=100, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    state = LIFState(
        *(torch.rand(4, 32, generator=g, dtype=torch.float64) * 0.5 for _ in range(3)),
        (torch.rand(4, 32, generator=g) < 0.3).double(),
    )
    s_fused, g_fused = _grads(layer, x, state)
    layer.kernel = "step"
    s_step, g_step = _grads(layer, x, state)
    assert torch.equal(s_fused, s_step)
    assert 0.01 < s_fused.mean() < 0.7
    for name in g_step:
        torch.testing.assert_close(g_fused[name], g_step[name], rtol=1e-9, atol=1e-9, msg=name)


def test_fused_gradients_reach_initial_state():
    layer = build_layer(dtype=torch.float64)
    x = drive(steps=30, dtype=torch.float64)
    results = []
    for kernel in ("auto", "step"):
        layer.kernel = kernel
        st = tuple(torch.full((4, 32), 0.3, dtype=torch.float64, requires_grad=True) for _ in range(4))
        spikes, final, rec = layer.run(x, LIFState(*st), record=True)
        (rec.mem.sum() + rec.psc.sum() + spikes.sum()).backward()
        results.append([t.grad for t in st])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_feedforward_has_no_delay_recurrence_has_one_step():
    layer = SCML(1, 4, 2, neuron=NeuronParameters(tau_mem=2.0, tau_syn=1.0))
    with torch.no_grad():
        layer.fc.weight.copy_(torch.tensor([[10.0], [0.0], [0.0], [0.0]]))
        layer.intra_weight.fill_(0.0)
        layer.intra_weight[0, 1, 0] = 5.0  # neuron 0 -> neuron 1
    x = torch.zeros(4, 1, 1)
    x[0] = 1.0
    _, _, rec = layer.run(x, record=True)
    spikes, _ = layer.run(x)
    assert spikes[0, 0, 0] == 1  # input at t=0 fires neuron 0 at t=0: no feed-forward delay
    assert spikes[0, 0, 1] == 0 and rec.mem[0, 0, 1] == 0  # neuron 1 untouched at t=0
    assert rec.mem[1, 0, 1] > 0 or spikes[1, 0, 1] == 1  # ...and driven at t=1: one-step delay


def test_self_recurrent_layer_is_eq_8():
    torch.manual_seed(0)
    layer = SelfRecurrent(5, 6, neuron=NeuronParameters(tau_mem=4.0, tau_syn=2.0))
    with torch.no_grad():
        layer.intra_weight.copy_(torch.linspace(-1.0, 1.0, 6).view(6, 1, 1))
    assert layer.lateral_weight is None and layer.motif_size == 1
    dense = layer.recurrent_matrix()
    assert torch.equal(dense, torch.diag(layer.self_weight.detach()))  # only self-connections
    x = drive(steps=40, batch=2, features=5)
    spikes, _ = layer.run(x)
    # reference: the neuron equations with a diagonal recurrent matrix
    leak, tinv, a_decay = 0.75, 0.25, 0.5
    w, ws = layer.fc.weight.detach(), layer.self_weight.detach()
    i = u = s = torch.zeros(2, 6)
    ref = []
    for t in range(40):
        c = x[t] @ w.T + ws * s
        syn = i + c
        u = leak * u + tinv * syn
        s = (u > 1.0).float()
        u = u * (1 - s)
        i = a_decay * syn
        ref.append(s)
    assert torch.equal(spikes, torch.stack(ref))
    with pytest.raises(TypeError, match="fixes the topology"):
        SelfRecurrent(5, 6, motif_size=2)


def test_batch_first_and_records():
    layer = build_layer()
    x = drive(steps=25)
    s_tf, st_tf, rec_tf = layer.run(x, record=True)
    s_bf, st_bf, rec_bf = layer.run(x.transpose(0, 1), record=True, batch_first=True)
    assert torch.equal(s_bf.transpose(0, 1), s_tf)
    assert torch.equal(rec_bf.mem.transpose(0, 1), rec_tf.mem)
    layer.batch_first = True
    s_bf2, _ = layer.run(x.transpose(0, 1))
    assert torch.equal(s_bf2, s_bf)
    assert rec_tf.psc.shape == (25, 4, 32)


def test_he_normal_feedforward_init():
    torch.manual_seed(0)
    layer = SCML(400, 800, 16)
    std = layer.fc.weight.std().item()
    assert abs(std - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)
    assert layer.fc.bias is None


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_bad_inputs_raise_clear_errors(backend):
    layer = build_layer(backend)
    with pytest.raises(ValueError, match=r"\[T, B, F\] with F = in_features = 12, got \[5, 12\]"):
        layer.run(torch.rand(5, 12))
    with pytest.raises(ValueError, match=r"got \[5, 2, 7\]"):
        layer.run(torch.rand(5, 2, 7))
    with pytest.raises(TypeError, match="floating-point tensor, got dtype torch.int64"):
        layer.run(torch.ones(5, 2, 12, dtype=torch.long))
    with pytest.raises(TypeError, match="dtype torch.float64 but the layer's weights are torch.float32"):
        layer.run(torch.rand(5, 2, 12, dtype=torch.float64))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        layer.run([[0.0] * 12])
    bad = torch.rand(5, 2, 12)
    bad[3, 1, 4] = float("nan")
    with pytest.raises(ValueError, match="1 NaN/Inf"):
        layer.run(bad)
    bad[3, 1, 4] = float("inf")
    with pytest.raises(ValueError, match="check_inputs=False"):
        layer(bad[3], layer.init_state(2))
    layer.check_inputs = False  # the documented switch: no check, NaN propagates
    out, _ = layer.run(bad)
    assert out.shape == (5, 2, 32)
    layer.check_inputs = True
    with pytest.raises(ValueError, match=r"\[B, F\]"):
        layer(torch.rand(2, 3, 12))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_state_from_other_batch_size_is_an_error_not_a_reset(backend):
    layer = build_layer(backend)
    state = layer.init_state(4)
    with pytest.raises(ValueError, match="state has batch size 4 but the input has 3"):
        layer(torch.rand(3, 12), state)
    with pytest.raises(ValueError, match="state has batch size 4 but the input has 2"):
        layer.run(torch.rand(5, 2, 12), state)
    with pytest.raises(ValueError, match="this layer has N = 32"):
        layer(torch.rand(4, 12), LIFState(*(torch.zeros(4, 16) for _ in range(4))))
    with pytest.raises(TypeError, match="LIFState"):
        layer(torch.rand(4, 12), (torch.zeros(4, 32),))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        layer.init_state(0)


def test_constructor_errors():
    with pytest.raises(ValueError, match="give motif_size"):
        SCML(3, 8)
    with pytest.raises(ValueError, match="disagrees"):
        SCML(3, 8, 4, topology=MotifTopology.uniform(2))
    with pytest.raises(ValueError, match="in_features"):
        SCML(0, 8, 2)
    with pytest.raises(ValueError, match="v=3 does not divide"):
        SCML(3, 8, topology=MotifTopology.uniform(3))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_trains_in_an_snntorch_tutorial_style_loop(backend):
    """Tutorial-5 shape: Linear -> SCML (step API) -> Linear -> readout, rate-coded targets."""
    torch.manual_seed(0)
    steps, batch, feats, classes = 30, 16, 10, 2

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scml = SCML(feats, 16, 4, backend=backend, neuron=NeuronParameters(tau_mem=4.0, tau_syn=2.0))
            self.fc2 = nn.Linear(16, classes)

        def forward(self, x):
            state = self.scml.init_state(x.shape[1])
            out = []
            for t in range(x.shape[0]):
                spk, state = self.scml(x[t], state)
                out.append(self.fc2(spk))
            return torch.stack(out)

    net = Net()
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, classes, (batch,), generator=g)
    rates = torch.where(
        labels[:, None] == 0, torch.linspace(0.05, 0.6, feats), torch.linspace(0.6, 0.05, feats)
    )
    x = (torch.rand(steps, batch, feats, generator=g) < rates).float()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    losses = []
    for _ in range(40):
        logits = net(x).mean(0)
        loss = nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert all(math.isfinite(v) for v in losses)


def test_step_api_builds_the_recurrent_weights_once_per_sequence():
    """The step API reuses the signed weights within a sequence (gradients equal the fused path), rebuilds
    them for a new sequence and after an in-place parameter change, and never shares a graph between
    separately back-propagated forwards."""
    torch.manual_seed(0)
    layer = SCML(4, 16, 4, topology=MotifTopology.random(4, torch.Generator().manual_seed(1))).double()
    x = torch.rand(12, 3, 4, dtype=torch.float64) * 3
    calls = {"n": 0}
    original = layer.recurrent_weights

    def counted():
        calls["n"] += 1
        return original()

    layer.recurrent_weights = counted

    def unroll():
        state, out = None, []
        for t in range(x.shape[0]):
            spk, state = layer(x[t], state)
            out.append(spk)
        return torch.stack(out)

    spikes = unroll()
    assert calls["n"] == 1  # one build for 12 steps
    spikes.sum().backward()
    g_step = layer.intra_weight.grad.clone()
    layer.zero_grad()
    fused, _ = SCML.run(layer, x)  # the fused kernel's gradient
    fused.sum().backward()
    assert torch.equal(fused, spikes)
    torch.testing.assert_close(g_step, layer.intra_weight.grad, rtol=1e-10, atol=1e-12)
    a, b = unroll(), unroll()  # two forwards, two backwards: no shared graph
    a.sum().backward()
    b.sum().backward()
    state = None
    spk, state = layer(x[0], state)
    with torch.no_grad():
        layer.intra_weight.mul_(0.5)  # an optimiser step in the middle of a sequence is seen at once
    before = calls["n"]
    layer(x[1], state)
    assert calls["n"] == before + 1
