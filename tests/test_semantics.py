"""Speaking a simulator's names gives that simulator's neuron (issue 24, item 3).

snnTorch's names (``beta``, ``threshold``, ``reset_mechanism``, ``reset_delay``, ``learn_beta``, ...) give
snnTorch 1.0's ``snn.Leaky`` equations and Norse's names (``p=LIFParameters(...)``, ``tau_mem_inv``, ``dt``,
``input_size`` / ``hidden_size``) Norse 1.1's LIF equations: checked spike for spike (and membrane and
gradient) against ``snn.Leaky``, ``LIFCell`` and ``LIFRecurrentCell`` on the same currents. Without these
names the layers keep the papers' neuron (the HRMAS paper eqs 1-4).
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from snn_motifs import SCML, NeuronParameters, SpikingLinear
from snn_motifs.neuron import LeakyParameters, LIFState, NorseLIFParameters

snn = pytest.importorskip("snntorch")

T, B, N = 60, 4, 24
LEAKY_BACKENDS = ["native", "snntorch"]
NORSE_BACKENDS = ["native", "norse"]


def _currents(seed: int = 0, scale: float = 0.45, shape=(T, B, N), dtype=torch.float32) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(*shape, dtype=dtype) * scale


def _identity_fc(layer) -> None:
    """Make the layer's feed-forward map the identity, so the neuron gets exactly the given currents."""
    with torch.no_grad():
        layer.fc.weight.copy_(torch.eye(layer.n_neurons, layer.in_features))


# -- snnTorch's Leaky --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", LEAKY_BACKENDS)
@pytest.mark.parametrize("reset_delay", [True, False])
@pytest.mark.parametrize("reset_mechanism", ["subtract", "zero", "none"])
def test_snntorch_names_give_snn_leaky_spike_for_spike(backend, reset_mechanism, reset_delay):
    """``spk, mem = layer(x, mem)`` equals ``spk, mem = lif(x, mem)`` at every step: spikes, membrane (bit for
    bit) and, after the sequence, the gradients of the input, beta and threshold."""
    kwargs = dict(beta=0.9, threshold=0.8, reset_mechanism=reset_mechanism, reset_delay=reset_delay)
    layer = SpikingLinear(N, N, backend=backend, learn_beta=True, learn_threshold=True, **kwargs)
    _identity_fc(layer)
    lif = snn.Leaky(**{**kwargs, "beta": torch.full((N,), 0.9)}, learn_beta=True, learn_threshold=True)
    x = _currents().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    mem, mem_ref = layer.init_leaky(), lif.init_leaky()
    outputs, outputs_ref = [], []
    for t in range(T):
        spk, mem = layer(x[t], mem)
        spk_ref, mem_ref = lif(x_ref[t], mem_ref)
        assert type(mem) is torch.Tensor
        assert torch.equal(spk, spk_ref) and torch.equal(mem, mem_ref), t
        outputs.append(spk + 0.1 * mem)
        outputs_ref.append(spk_ref + 0.1 * mem_ref)
    assert 0 < float(torch.stack(outputs_ref).gt(0.5).float().mean()) < 1
    weights = torch.randn(T, B, N)
    (torch.stack(outputs) * weights).sum().backward()
    (torch.stack(outputs_ref) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.beta.grad, lif.beta.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.threshold.grad, lif.threshold.grad, rtol=1e-4, atol=1e-5)


def test_snntorch_defaults_are_snntorchs():
    """``beta`` alone: reset by subtraction, one step late, threshold 1, the arc-tangent surrogate; no
    synaptic filter (the PSC trace is the spike train)."""
    layer = SpikingLinear(N, N, beta=0.9)
    params = layer.neurons.params
    assert params == LeakyParameters(beta=0.9)
    assert (params.reset_mechanism, params.reset_delay, params.threshold) == ("subtract", True, 1.0)
    lif = snn.Leaky(beta=0.9)
    assert (lif.reset_mechanism, lif.reset_delay) == ("subtract", True)
    _identity_fc(layer)
    x = _currents(1, 0.3)
    spikes, state, record = layer.run(x, record=True)
    mem, count = lif.init_leaky(), 0
    for t in range(T):
        spk, mem = lif(x[t], mem)
        assert torch.equal(spikes[t], spk) and torch.equal(record.mem[t], mem)
        count += int(spk.sum())
    assert int(spikes.sum()) == count > 0
    assert torch.equal(record.psc, spikes) and not state.i.any()


def test_scml_with_beta_is_snn_leaky_with_its_recurrence_zeroed():
    """``SCML(..., beta=0.9)`` with zero recurrent weights fires exactly as ``snn.Leaky(beta=0.9)`` on the
    same currents; the papers' neuron (no snnTorch names) fires differently on them."""
    torch.manual_seed(0)
    layer = SCML(10, N, 4, beta=0.9)
    with torch.no_grad():
        layer.intra_weight.zero_()
        layer.lateral_weight.zero_()
    lif = snn.Leaky(beta=0.9)
    x = torch.rand(50, B, 10)
    spikes, _ = layer.run(x)
    mem, count = lif.init_leaky(), 0
    for t in range(50):
        spk, mem = lif(layer.fc(x[t]), mem)
        assert torch.equal(spikes[t], spk), t
        count += int(spk.sum())
    ours = SCML(10, N, 4)
    ours.load_state_dict(
        {k: v for k, v in layer.state_dict().items() if not k.startswith("neurons.")}, strict=False
    )
    with torch.no_grad():
        ours.intra_weight.zero_()
        ours.lateral_weight.zero_()
    assert int(spikes.sum()) == count > 0
    assert int(ours.run(x)[0].sum()) != count  # our defaults stay ours: tau_syn, R and the hard reset


@pytest.mark.parametrize("backend", LEAKY_BACKENDS)
def test_scml_with_beta_is_rleaky_like_and_the_tutorial_idiom_returns_tensors(backend):
    """With its recurrence on, the snnTorch idiom ``mem = layer.init_leaky(); spk, mem = layer(x[t], mem)``
    gives the same spikes and membranes as the LIFState step API and as ``run`` (the last spikes that the
    recurrence reads are recomputed from the membrane, exact with ``reset_delay=True``)."""
    torch.manual_seed(0)
    layer = SCML(10, N, 4, beta=0.85, threshold=0.6, backend=backend)
    x = torch.rand(40, B, 10)
    spikes, final = layer.run(x)
    mem, state = layer.init_leaky(), None
    for t in range(40):
        spk, mem = layer(x[t], mem)
        spk2, state = layer(x[t], state)
        assert type(mem) is torch.Tensor and isinstance(state, LIFState)
        assert torch.equal(spk, spikes[t]) and torch.equal(spk2, spk) and torch.equal(state.v, mem)
    assert torch.equal(mem, final.v) and spikes.sum() > 0
    assert layer.reset_mem().numel() == 0
    spk0, mem0 = layer(x[0], layer.reset_mem())  # a new sequence: zeros of the input's batch size
    assert torch.equal(spk0, spikes[0]) and mem0.shape == (B, N)
    spikes_m, mem_m = layer.run(x, layer.init_leaky())  # run mirrors the state type too
    assert torch.equal(spikes_m, spikes) and type(mem_m) is torch.Tensor


def test_a_membrane_tensor_is_refused_where_it_cannot_be_the_whole_state():
    x = torch.rand(B, 10)
    delayed_off = SCML(10, N, 4, beta=0.9, reset_delay=False)
    with pytest.raises(TypeError, match="reset_delay=False.*pass the LIFState back"):
        delayed_off(x, torch.zeros(B, N))
    spk, mem = SpikingLinear(10, N, beta=0.9, reset_delay=False)(x, torch.zeros(B, N))  # no recurrence: fine
    assert type(mem) is torch.Tensor
    ours = SCML(10, N, 4)
    assert ours.init_leaky() is None  # the papers' neuron: the state is a LIFState
    with pytest.raises(TypeError, match="cannot be the state of the papers' neuron"):
        ours(x, torch.zeros(B, N))
    with pytest.raises(ValueError, match=r"membrane must have shape \[B, N\] = \[4, 24\]"):
        SpikingLinear(10, N, beta=0.9)(x, torch.zeros(3, N))


def test_init_hidden_is_refused_and_output_returns_the_membrane():
    with pytest.raises(ValueError, match="state is explicit in snn_motifs.*spk, mem = layer\\(x, mem\\)"):
        SCML(10, N, 4, beta=0.9, init_hidden=True)
    SpikingLinear(10, N, beta=0.9, init_hidden=False)  # snnTorch's default is accepted
    for name in ("inhibition", "state_quant", "surrogate_disable", "learn_graded_spikes_factor"):
        with pytest.raises(ValueError, match=f"{name} \\(snnTorch\\) is not supported"):
            SpikingLinear(10, N, beta=0.9, **{name: True})
    layer = SpikingLinear(10, N, beta=0.9, output=True)
    x = torch.rand(B, 10)
    spk, mem, state = layer(x)
    assert isinstance(state, LIFState) and mem is state.v
    spk, mem, mem_again = layer(x, layer.init_leaky())
    assert mem is mem_again and type(mem) is torch.Tensor
    assert len(layer(x, return_mem=False)) == 2


def test_beta_and_threshold_are_attributes_and_learn_beta_trains_beta():
    layer = SCML(10, N, 4, beta=0.9, threshold=0.7, learn_beta=True)
    assert isinstance(layer.beta, torch.nn.Parameter) and layer.beta.shape == (N,)
    assert not isinstance(layer.threshold, torch.nn.Parameter) and float(layer.threshold) == pytest.approx(
        0.7
    )
    assert {"neurons.beta", "neurons.threshold"} <= set(layer.state_dict())
    assert "neurons.tau_mem" not in layer.state_dict()
    assert any(p is layer.beta for p in layer.parameters())
    spikes, _ = layer.run(torch.rand(20, B, 10))
    spikes.sum().backward()
    assert layer.beta.grad is not None and layer.beta.grad.abs().sum() > 0
    per_neuron = SpikingLinear(10, 3, beta=torch.tensor([0.5, 0.7, 0.9]), learn_threshold=True)
    assert torch.equal(per_neuron.beta, torch.tensor([0.5, 0.7, 0.9]))
    assert isinstance(per_neuron.threshold, torch.nn.Parameter)
    assert SpikingLinear(10, 3, beta=0.5, learn_leak=True).beta.requires_grad  # learn_leak is learn_beta
    ours = SCML(10, N, 4)  # the papers' neuron: beta = 1 - 1/tau, read-only views
    torch.testing.assert_close(ours.beta, torch.full((N,), 1 - 1 / 16))
    assert float(ours.threshold) == 1.0


@pytest.mark.parametrize("backend", LEAKY_BACKENDS)
def test_leaky_layers_save_load_and_copy_across_backends(backend):
    torch.manual_seed(0)
    layer = SCML(10, N, 4, beta=0.9, learn_beta=True, backend=backend)
    x = torch.rand(15, B, 10)
    spikes, _ = layer.run(x)
    spikes.sum().backward()  # the Leaky now holds non-leaf tensors of the last step
    clone = copy.deepcopy(layer)
    restored = pickle.loads(pickle.dumps(layer))
    other = SCML(10, N, 4, beta=0.9, learn_beta=True, backend="snntorch" if backend == "native" else "native")
    other.load_state_dict(layer.state_dict())
    for model in (clone, restored, other):
        assert torch.equal(model.run(x)[0], spikes)


def test_norse_backend_refuses_snntorch_equations_and_snntorch_backend_refuses_norses():
    pytest.importorskip("norse")
    with pytest.raises(
        ValueError, match="'norse' backend does not run snnTorch's Leaky equations: .*'native'"
    ):
        SpikingLinear(10, N, beta=0.9, backend="norse")
    with pytest.raises(ValueError, match="'snntorch' backend does not run Norse's LIF equations"):
        SpikingLinear(10, N, dt=1e-3, backend="snntorch")


def test_other_neurons_leave_the_papers_machinery_with_clear_errors():
    layer = SCML(10, N, 4, beta=0.9)
    assert not layer._fusable() and not layer.neurons.supports_fused_kernel
    assert SCML(10, N, 4)._fusable()  # the papers' neuron keeps the fused kernel
    with pytest.raises(ValueError, match="TSSL-BP.*derived for the papers' neuron"):
        SCML(10, N, 4, beta=0.9, spike_fn="tssl")
    with pytest.raises(AttributeError, match="runs snnTorch's Leaky equations, which have no tau_mem"):
        _ = layer.neurons.tau_mem
    with pytest.raises(ValueError, match="learn_gain.*have no R"):
        SCML(10, N, 4, beta=0.9, learn_gain=True)


# -- Norse's LIF -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", NORSE_BACKENDS)
def test_norse_names_give_norse_lif_cell_spike_for_spike(backend):
    """``p=LIFParameters(...)``, ``dt``: the neuron steps exactly as Norse's ``LIFCell`` on the same currents
    (spikes, v and i bit for bit, from Norse's own initial state v = v_leak), and the gradients agree."""
    norse = pytest.importorskip("norse.torch")
    p = norse.LIFParameters(
        tau_syn_inv=torch.as_tensor(150.0),
        tau_mem_inv=torch.as_tensor(90.0),
        v_leak=torch.as_tensor(0.1),
        v_th=torch.as_tensor(0.6),
        v_reset=torch.as_tensor(-0.2),
    )
    layer = SpikingLinear(N, N, p=p, dt=2e-3, backend=backend)
    _identity_fc(layer)
    cell = norse.LIFCell(p, dt=2e-3)
    x = _currents(2, 0.8).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    state, state_ref, out, out_ref = None, None, [], []
    for t in range(T):
        spk, state = layer(x[t], state)
        spk_ref, state_ref = cell(x_ref[t], state_ref)
        assert torch.equal(spk, spk_ref) and torch.equal(state.v, state_ref.v), t
        assert torch.equal(state.i, state_ref.i), t
        out.append(spk + 0.1 * state.v)
        out_ref.append(spk_ref + 0.1 * state_ref.v)
    assert 0 < float(torch.stack(out_ref).gt(0.5).float().mean()) < 1
    weights = torch.randn(T, B, N)
    (torch.stack(out) * weights).sum().backward()
    (torch.stack(out_ref) * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-6)


def test_norse_names_and_defaults():
    norse = pytest.importorskip("norse.torch")
    layer = SCML(input_size=10, hidden_size=N, motif_size=4, tau_mem_inv=50.0)
    assert (layer.in_features, layer.n_neurons) == (10, N)
    assert layer.neurons.params == NorseLIFParameters(tau_mem_inv=50.0)  # Norse's defaults for the rest
    assert layer.neurons.spike_fn == SCML(10, N, 4, method="super").neurons.spike_fn  # Norse's default method
    from_p = SCML(10, N, 4, p=norse.LIFParameters(v_leak=torch.as_tensor(0.2)))
    assert from_p.neurons.params == NorseLIFParameters(
        v_leak=float(torch.as_tensor(0.2))
    )  # p's float32 value
    assert torch.equal(from_p.init_state(2).v, torch.full((2, N), 0.2))  # Norse starts at v_leak
    torch.testing.assert_close(from_p.beta, torch.full((N,), 1 - 1e-3 * 100.0))
    assert float(from_p.threshold) == 1.0 and not from_p._fusable()
    with pytest.raises(ValueError, match=r"p \(Norse's LIFParameters\) already holds \['tau_mem_inv'\]"):
        SCML(10, N, 4, p=norse.LIFParameters(), tau_mem_inv=50.0)
    with pytest.raises(ValueError, match="select two different neurons"):
        SCML(10, N, 4, beta=0.9, dt=1e-3)
    with pytest.raises(ValueError, match="p.method='tanh'.*spike_fn="):
        SCML(10, N, 4, p=norse.LIFParameters(method="tanh"))
    with pytest.raises(ValueError, match="n_neurons and hidden_size"):
        SCML(10, N, 4, hidden_size=N)
    with pytest.raises(ValueError, match="input_size and dt|select two"):
        SCML(10, N, 4, beta=0.9, p=norse.LIFParameters())


def test_scml_with_norse_names_equals_lif_recurrent_cell():
    """``SCML(input_size, hidden_size, motif_size=N, p=..., dt=...)`` with ``LIFRecurrentCell``'s input and
    recurrent weights copied in (one motif of all N neurons holds the dense recurrent matrix) gives its
    spikes at every step; float64, where the different summation order of the two recurrent matmuls cannot
    move a spike."""
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    f, n = 12, 16
    p = norse.LIFParameters(
        tau_syn_inv=torch.as_tensor(200.0, dtype=torch.float64),
        tau_mem_inv=torch.as_tensor(100.0, dtype=torch.float64),
        v_leak=torch.as_tensor(0.05, dtype=torch.float64),
        v_th=torch.as_tensor(0.5, dtype=torch.float64),
        v_reset=torch.as_tensor(-0.1, dtype=torch.float64),
    )
    cell = norse.LIFRecurrentCell(f, n, p=p, dt=1e-3).double()
    layer = SCML(input_size=f, hidden_size=n, motif_size=n, p=p, dt=1e-3).double()
    with torch.no_grad():
        layer.fc.weight.copy_(cell.input_weights)
        layer.intra_weight[0].copy_(cell.recurrent_weights)
    x = (torch.rand(T, B, f, dtype=torch.float64) < 0.3).double() * 1.5
    state = None
    zeros = torch.zeros(B, n, dtype=torch.float64)
    state_ref = norse.LIFState(z=zeros, v=zeros + 0.05, i=zeros)  # Norse's initial state, in float64
    spikes, _ = layer.run(x)
    fired = 0
    for t in range(T):
        spk, state = layer(x[t], state)
        spk_ref, state_ref = cell(x[t], state_ref)
        assert torch.equal(spk, spk_ref) and torch.equal(spikes[t], spk_ref), t
        torch.testing.assert_close(state.v, state_ref.v, rtol=0, atol=1e-12)
        torch.testing.assert_close(state.i, state_ref.i, rtol=0, atol=1e-12)
        fired += int(spk.sum())
    assert 0 < fired < T * B * n


def test_a_sequence_through_layer_call_and_norse_sequential_state():
    """With Norse's names ``layer(x)`` on ``[T, B, F]`` runs the sequence as ``LIFRecurrent`` does, so the
    layers stack in ``norse.torch.SequentialState``; the state list carries one sequence into the next."""
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    hidden = SCML(input_size=10, hidden_size=N, motif_size=4, tau_mem_inv=200.0, dt=1e-3)
    readout = SpikingLinear(input_size=N, hidden_size=5, tau_mem_inv=200.0, dt=1e-3)
    model = norse.SequentialState(hidden, readout)
    x = (torch.rand(T, B, 10) < 0.4).float() * 2.0
    out, states = model(x)
    h_spikes, h_state = hidden.run(x[:30])
    h_spikes2, _ = hidden.run(x[30:], h_state)
    expected, _ = readout.run(torch.cat([h_spikes, h_spikes2]))
    assert out.shape == (T, B, 5) and torch.equal(out, expected) and h_spikes.sum() > 0
    first, states_half = model(x[:30])
    second, _ = model(x[30:], states_half)
    assert torch.equal(torch.cat([first, second]), out)
    assert isinstance(states[0], LIFState) and states[0].v.shape == (B, N)
    with pytest.raises(ValueError, match=r"a whole sequence \[T, B, F\] runs with layer.run\(x\)"):
        SCML(10, N, 4)(x)  # the papers' neuron keeps the step strict


@pytest.mark.parametrize("backend", NORSE_BACKENDS)
def test_norse_layers_save_and_load_across_backends(backend):
    pytest.importorskip("norse")
    torch.manual_seed(0)
    layer = SCML(10, N, 4, tau_mem_inv=150.0, dt=1e-3, backend=backend, learn_leak=True)
    assert isinstance(layer.neurons.tau_mem_inv, torch.nn.Parameter)
    x = torch.rand(15, B, 10) * 3
    spikes, _ = layer.run(x)
    spikes.sum().backward()
    other = SCML(
        10,
        N,
        4,
        tau_mem_inv=150.0,
        dt=1e-3,
        learn_leak=True,
        backend="norse" if backend == "native" else "native",
    )
    other.load_state_dict(layer.state_dict())
    for model in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer)), other):
        assert torch.equal(model.run(x)[0], spikes)
    assert spikes.sum() > 0


def test_explicit_parameter_objects_equal_the_names():
    torch.manual_seed(0)
    by_name = SCML(10, N, 4, beta=0.8, reset_mechanism="zero")
    torch.manual_seed(0)
    by_object = SCML(10, N, 4, neuron=LeakyParameters(beta=0.8, reset_mechanism="zero"))
    x = torch.rand(20, B, 10)
    assert torch.equal(by_name.run(x)[0], by_object.run(x)[0])
    assert SCML(10, N, 4, neuron=NeuronParameters(tau_mem=8.0)).neurons.equations == "hrmas"
