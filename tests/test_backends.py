"""Backend swap is exact: native, snnTorch and Norse give the same spikes, membranes and gradients."""

from __future__ import annotations

import sys

import pytest
import torch
from snn_motifs.adapters import NativeLIF

from snn_motifs import (
    SCML,
    MissingDependencyError,
    NeuronParameters,
    available_backends,
    get_adapter,
)

from .conftest import ALL_BACKENDS, build_layer, drive, needs_norse, needs_snntorch


def _run_with_grads(layer: SCML, x: torch.Tensor):
    layer.zero_grad()
    spikes, state, rec = layer.run(x, record=True)
    weights = torch.linspace(0.5, 1.5, layer.n_neurons, dtype=x.dtype)
    loss = (spikes * weights).sum() + 0.1 * rec.mem.pow(2).sum() + 0.05 * rec.psc.sum()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in layer.named_parameters() if p.grad is not None}
    return spikes.detach(), rec.mem.detach(), rec.psc.detach(), grads


@pytest.mark.parametrize("backend", ALL_BACKENDS[1:])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_backend_swap_same_spikes_membranes_and_gradients(backend, dtype, tol):
    x = drive(steps=150, dtype=dtype)
    kw = dict(dtype=dtype, learn_leak=True, learn_gain=True)
    ref = build_layer("native", **kw)
    other = build_layer(backend, **kw)
    for (n, p), (n2, p2) in zip(ref.named_parameters(), other.named_parameters(), strict=True):
        assert n == n2 and torch.equal(p, p2)
    s_ref, m_ref, a_ref, g_ref = _run_with_grads(ref, x)
    s, m, a, g = _run_with_grads(other, x)
    rate = s_ref.mean().item()
    assert 0.03 < rate < 0.6, f"firing rate {rate} is not a meaningful test"
    assert s_ref.sum(0).min() >= 0 and (s_ref.sum((0, 1)) > 0).float().mean() > 0.5
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(m, m_ref, rtol=0, atol=tol)
    torch.testing.assert_close(a, a_ref, rtol=0, atol=tol)
    assert g.keys() == g_ref.keys()
    for name in g_ref:
        scale = g_ref[name].abs().max().clamp(min=1.0)
        torch.testing.assert_close(
            g[name] / scale,
            g_ref[name] / scale,
            rtol=0,
            atol=10 * tol,
            msg=f"gradient of {name} differs",
        )


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_step_api_equals_sequence_api(backend):
    layer = build_layer(backend)
    x = drive(steps=110)
    spikes_seq, state_seq, rec = layer.run(x, record=True)
    state = layer.init_state(x.shape[1])
    spikes, mems = [], []
    for t in range(x.shape[0]):
        spk, state = layer(x[t], state)
        spikes.append(spk)
        mems.append(state.v)
    assert torch.equal(torch.stack(spikes), spikes_seq)
    torch.testing.assert_close(torch.stack(mems), rec.mem, rtol=0, atol=1e-6)
    for a, b in zip(state, state_seq, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert spikes_seq.mean() > 0.03


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_in_place_parameter_changes_reach_the_backend(backend):
    """Hooks (SpiKL-IP) edit tau and R in place; every backend must see the edit at the next step."""
    layer = build_layer(backend)
    x = drive(steps=60)
    base, _ = layer.run(x)
    with torch.no_grad():
        layer.neurons.resistance.mul_(3.0)
        layer.neurons.tau_mem.fill_(2.0)
    louder, _ = layer.run(x)
    assert louder.sum() > base.sum() * 1.2


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'brian2'.*\['native', 'norse', 'snntorch'\]"):
        SCML(3, 8, 2, backend="brian2")
    assert available_backends() == ["native", "norse", "snntorch"]
    with pytest.raises(TypeError, match="backend must be"):
        SCML(3, 8, 2, backend=3)


def test_adapter_instance_is_accepted_and_checked():
    adapter = NativeLIF(8)
    layer = SCML(3, 8, 2, backend=adapter)
    assert layer.neurons is adapter
    with pytest.raises(ValueError, match="has 8 neurons, layer needs 16"):
        SCML(3, 16, 2, backend=NativeLIF(8))


@pytest.mark.parametrize(
    "backend,extra,module", [("snntorch", "snntorch", "snntorch"), ("norse", "norse", "norse")]
)
def test_missing_optional_package_names_the_extra(monkeypatch, backend, extra, module):
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
        if name.startswith(f"snn_motifs.adapters.{backend}"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import of it now raises ImportError
    with pytest.raises(MissingDependencyError, match=rf"pip install 'snn-motifs\[{extra}\]'"):
        get_adapter(backend, 8)
    with pytest.raises(ImportError):
        SCML(3, 8, 2, backend=backend)


@pytest.mark.slow
def test_core_imports_without_optional_packages():
    import subprocess

    code = (
        "import sys; sys.modules['snntorch'] = None; sys.modules['norse'] = None\n"
        "import snn_motifs, torch\n"
        "l = snn_motifs.SCML(3, 8, 2)\n"
        "s, _ = l.run(torch.rand(5, 2, 3))\n"
        "assert not any(m.startswith(('snntorch', 'norse', 'matplotlib')) "
        "for m in sys.modules if sys.modules[m] is not None)\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@needs_snntorch
def test_snntorch_backend_uses_stock_leaky_outside_the_global_registry():
    import snntorch as snn

    before = len(snn.SpikingNeuron.instances)
    layer = build_layer("snntorch")
    assert isinstance(layer.neurons.neuron, snn.Leaky)
    assert layer.neurons.neuron.reset_mechanism == "zero" and layer.neurons.neuron.reset_delay is False
    assert len(snn.SpikingNeuron.instances) == before
    x = drive(steps=30)
    s1, _ = layer.run(x)
    snn.Leaky.reset_hidden()  # snnTorch's global reset must not touch our explicit state
    s2, _ = layer.run(x)
    assert torch.equal(s1, s2)


@needs_norse
def test_norse_backend_follows_to_and_double():
    layer = build_layer("norse").double()
    assert layer.neurons.tau_mem.dtype == torch.float64
    s, state = layer.run(drive(steps=20, dtype=torch.float64))
    assert s.dtype == torch.float64 and state.v.dtype == torch.float64
    assert "neurons.tau_mem" in layer.state_dict()


@needs_norse
def test_norse_method_registry_is_idempotent_and_reversible():
    import norse.torch.functional.lif as nlif
    import norse.torch.functional.threshold as nthr
    from snn_motifs.adapters import norse_methods

    from snn_motifs.surrogate import Sigmoid

    original = nthr.threshold
    for name in list(norse_methods.registered_methods()):
        norse_methods.unregister_method(name)
    assert nlif.threshold is original
    norse_methods.register_method("test_sig", Sigmoid(3.0))
    norse_methods.register_method("test_sig", Sigmoid(3.0))  # twice: harmless
    assert nlif.threshold is not original
    x = torch.randn(10, requires_grad=True)
    y = nlif.threshold(x, "test_sig", 0.0)
    y.sum().backward()
    torch.testing.assert_close(x.grad, Sigmoid(3.0).derivative(x.detach()))
    # Norse's own methods still work through the dispatcher
    assert torch.equal(nlif.threshold(x, "heaviside", 0.0), (x > 0).float())
    with pytest.raises(ValueError, match="already registered"):
        norse_methods.register_method("test_sig", Sigmoid(4.0))
    with pytest.raises(ValueError, match="built-in"):
        norse_methods.register_method("super", Sigmoid())
    norse_methods.unregister_method("test_sig")
    assert nlif.threshold is original and nthr.threshold is original
    assert not norse_methods.is_installed()


def test_learn_leak_and_gain_make_parameters():
    layer = SCML(3, 8, 2, learn_leak=True, neuron=NeuronParameters(tau_mem=16.0))
    names = dict(layer.named_parameters())
    assert "neurons.tau_mem" in names and "neurons.resistance" not in names
    assert "neurons.resistance" in dict(layer.named_buffers())


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_adapter_capabilities_not_backend_names(backend):
    """Layers and TSSL-BP ask adapters what they can do (``supports_fused_kernel``,
    ``forward_only_step``), never which backend name they carry."""
    layer = build_layer(backend, spike_fn="tssl")
    neurons = layer.neurons
    assert layer._fusable() is (backend == "native") is neurons.supports_fused_kernel
    x = drive(steps=1)[0]
    current = layer.fc(x)
    state = neurons.init_state(x.shape[0])
    simulated = neurons.forward_only_step(current, state)
    if backend == "native":
        assert simulated is None  # TSSL-BP's neuron step computes lif_step itself
    else:
        spikes, new = simulated
        assert spikes.grad_fn is None and new.v.grad_fn is None
        s_ref, st_ref = neurons.step(current, state)
        assert torch.equal(spikes, s_ref) and torch.equal(new.v, st_ref.v)


def test_fused_kernel_follows_the_capability():
    class NamedNative(NativeLIF):  # another name, same neuron: still fused
        backend = "mine"

    class NoFused(NativeLIF):  # the name "native", but the adapter declines the fused kernel
        supports_fused_kernel = False

    assert SCML(3, 8, 2, backend=NamedNative(8))._fusable()
    layer = SCML(3, 8, 2, backend=NoFused(8))
    assert not layer._fusable() and layer.neurons.backend == "native"
    x = drive(steps=10, features=3)
    torch.manual_seed(0)
    ref = SCML(3, 8, 2)
    layer.load_state_dict(ref.state_dict())
    assert torch.equal(layer.run(x)[0], ref.run(x)[0])  # step path and fused kernel agree


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_psc_is_written_once(backend):
    """Every backend's own PSC (eq 1) is snn_motifs.neuron.psc_update, the same op the losses use."""
    from snn_motifs.losses import psc

    layer = build_layer(backend)
    with torch.no_grad():
        spikes, _, rec = layer.run(drive(steps=60), record=True)
    assert spikes.sum() > 0
    assert torch.equal(rec.psc, psc(spikes, layer.neurons.params.tau_syn))
