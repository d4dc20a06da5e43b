"""Readouts: the non-spiking leaky integrator and the membrane cross-entropy."""

from __future__ import annotations

import pytest
import torch

from snn_motifs import SCMLClassifier, ScSrSNN, to_nir
from snn_motifs.losses import decode_membrane, membrane_loss
from snn_motifs.readout import LeakyIntegrator, leaky_integrate, make_readout


def _reference(current: torch.Tensor, tau: float) -> torch.Tensor:
    """u[t] = sum_{k<=t} (1 - 1/tau)^(t-k) c[k] / tau, written as a sum (independent of the loop)."""
    steps = current.shape[0]
    t = torch.arange(steps, dtype=current.dtype)
    kernel = torch.where(t[:, None] >= t[None, :], (1 - 1 / tau) ** (t[:, None] - t[None, :]), 0.0) / tau
    return torch.einsum("tk,k...->t...", kernel, current)


def test_leaky_integrate_matches_its_closed_form_and_gradcheck():
    c = torch.randn(30, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(leaky_integrate(c, 5.0), _reference(c, 5.0), rtol=1e-12, atol=1e-12)
    c.requires_grad_()
    assert torch.autograd.gradcheck(lambda z: leaky_integrate(z, 3.0), (c[:8, :1, :2],))
    with pytest.raises(ValueError, match="tau_mem must be >= 1"):
        leaky_integrate(c, 0.5)


def test_leaky_integrator_step_sequence_and_batch_first_agree():
    torch.manual_seed(0)
    ro = LeakyIntegrator(6, 3, tau_mem=4.0).double()
    x = (torch.rand(12, 2, 6, dtype=torch.float64) < 0.3).double()
    mem, last = ro.run(x)
    v, steps = None, []
    for t in range(12):
        out, v = ro(x[t], v)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps), mem, rtol=0, atol=1e-14)
    torch.testing.assert_close(last, mem[-1])
    bf, _ = ro.run(x.transpose(0, 1), batch_first=True)
    torch.testing.assert_close(bf.transpose(0, 1), mem)
    extra = torch.randn(12, 2, 3, dtype=torch.float64)
    with_extra, _ = ro.run(x, extra_current=extra)
    torch.testing.assert_close(with_extra - mem, _reference(extra, 4.0))
    with pytest.raises(ValueError, match=r"readout input must be \[T, B, 6\]"):
        ro.run(torch.rand(12, 2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="extra_current must have shape"):
        ro.run(x, extra_current=extra[:, :1])


@pytest.mark.parametrize("decode", ["mean", "max", "last"])
def test_membrane_loss_is_cross_entropy_of_the_decoded_membrane(decode):
    mem = torch.randn(7, 5, 4)
    y = torch.tensor([0, 3, 1, 2, 3])
    logits = {"mean": mem.mean(0), "max": mem.max(0).values, "last": mem[-1]}[decode]
    torch.testing.assert_close(decode_membrane(mem, decode), logits)
    expected = torch.nn.functional.cross_entropy(logits, y)
    torch.testing.assert_close(membrane_loss(mem, y, decode), expected)
    torch.testing.assert_close(membrane_loss(mem, y, decode, reduction="sum"), expected * 5)


def test_bad_readout_inputs_are_named():
    with pytest.raises(ValueError, match="decode must be one of"):
        decode_membrane(torch.zeros(3, 2, 2), "median")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        membrane_loss(torch.zeros(3, 2, 2), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="unknown readout 'spikes'"):
        make_readout("spikes", 4, 2)


def test_classifiers_use_the_readout():
    torch.manual_seed(0)
    x = (torch.rand(10, 2, 6) < 0.3).float()
    model = SCMLClassifier(6, 8, 3, 4, input_gain=20.0)
    assert model.readout == "mean" and isinstance(model.output, LeakyIntegrator)
    out = model(x)
    assert out.shape == (10, 2, 3) and not torch.all((out == 0) | (out == 1))  # a membrane, not spikes
    spiking = SCMLClassifier(6, 8, 3, 4, readout="count", input_gain=20.0)
    assert torch.all((spiking(x) == 0) | (spiking(x) == 1))


def _euler_li(graph, x: torch.Tensor, steps: int) -> torch.Tensor:
    """The exported readout run by hand from the NIR parameters: forward Euler of
    tau dv/dt = v_leak - v + r (W s + b) at the graph's dt."""
    fc, li = graph.nodes["layer1.fc"], graph.nodes["layer1.li"]
    dt = graph.metadata["dt"]
    w, b = torch.as_tensor(fc.weight, dtype=torch.float64), torch.as_tensor(fc.bias, dtype=torch.float64)
    tau, r = torch.as_tensor(li.tau), torch.as_tensor(li.r)
    v, out = torch.zeros(x.shape[1], w.shape[0], dtype=torch.float64), []
    for t in range(steps):
        v = v + dt / tau * (torch.as_tensor(li.v_leak) - v + r * (x[t] @ w.T + b))
        out.append(v)
    return torch.stack(out)


def test_membrane_readout_exports_to_nir_as_li():
    pytest.importorskip("nir")
    torch.manual_seed(0)
    model = SCMLClassifier(6, 8, 3, 4, input_gain=20.0).double()
    graph = to_nir(model)
    assert type(graph.nodes["layer1.li"]).__name__ == "LI" and ("layer1.li", "output") in graph.edges
    x = (torch.rand(25, 2, 6) < 0.3).double()
    with torch.no_grad():
        hidden, _ = model.hidden.run(x * model.input_gain)
        torch.testing.assert_close(_euler_li(graph, hidden, 25), model(x), rtol=1e-12, atol=1e-12)
    scsr = to_nir(ScSrSNN(6, (8, 8), 3, skip=True, readout="max"))
    assert ("layer2.li", "output") in scsr.edges and ("layer2.in_skip0", "layer2.li") in scsr.edges
