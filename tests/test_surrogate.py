"""Surrogate spike functions: Heaviside forward; backward checked against an independent reference,
the autograd derivative of the smooth function each surrogate stands for."""

from __future__ import annotations

import math

import pytest
import torch

from snn_motifs.spike_fns import resolve_spike_fn
from snn_motifs.surrogate import ATan, FastSigmoid, Sigmoid, Triangle, heaviside

SMOOTH = [
    (ATan(2.0), lambda x: torch.atan(math.pi / 2 * 2.0 * x) / math.pi + 0.5),
    (FastSigmoid(25.0), lambda x: x / (1 + 25.0 * x.abs())),
    (Sigmoid(5.0), lambda x: torch.sigmoid(5.0 * x)),
    (
        Triangle(1.0),
        lambda x: torch.where(x < 0, 0.5 * (1 + x).clamp(min=0) ** 2, 1 - 0.5 * (1 - x).clamp(min=0) ** 2),
    ),
]


@pytest.mark.parametrize("fn,smooth", SMOOTH, ids=lambda f: getattr(f, "name", ""))
def test_surrogate_backward_equals_smooth_derivative(fn, smooth):
    x = torch.linspace(-2, 2, 401, dtype=torch.float64).requires_grad_()
    y = fn(x)
    assert torch.equal(y.detach(), heaviside(x.detach()))
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    xs = x.detach().clone().requires_grad_()
    (ref,) = torch.autograd.grad(smooth(xs), xs, torch.ones_like(xs))
    torch.testing.assert_close(g, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn", [f for f, _ in SMOOTH[:3]], ids=lambda f: f.name)
def test_surrogate_derivative_gradcheck(fn):
    """The derivative itself is smooth (for these three): gradcheck its own autograd in float64."""
    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn.derivative, (x,))


def test_heaviside_is_strict():
    assert heaviside(torch.tensor([-1.0, 0.0, 1e-12])).tolist() == [0.0, 0.0, 1.0]


def test_resolve_and_errors():
    assert isinstance(resolve_spike_fn(None), ATan)
    assert resolve_spike_fn("sigmoid") == Sigmoid()
    with pytest.raises(ValueError, match="unknown spike function 'nope'"):
        resolve_spike_fn("nope")
    with pytest.raises(TypeError, match="spike_fn must be"):
        resolve_spike_fn(3)
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        ATan(0.0)
    assert ATan(2.0) == ATan(2.0) and hash(ATan(2.0)) == hash(ATan(2.0)) and ATan(2) != ATan(3)


def test_spike_fn_registry_names_and_user_registration(monkeypatch):
    from snn_motifs import SCML, TSSLBP, spike_fns
    from snn_motifs.tssl import TSSLStateless

    monkeypatch.setattr(spike_fns, "SPIKE_FUNCTIONS", dict(spike_fns.SPIKE_FUNCTIONS))  # undone after
    builtin = ["atan", "fast_sigmoid", "sigmoid", "triangle", "tssl", "tssl_authors", "tssl_stateless"]
    builtin += ["super", "superspike", "triangular"]  # Norse's and snnTorch's names (snn_motifs.aliases)
    assert spike_fns.available_spike_fns() == sorted(builtin)
    assert isinstance(resolve_spike_fn("tssl"), TSSLBP) and resolve_spike_fn("tssl").bound == 1.0
    assert resolve_spike_fn("tssl_authors").bound == 8.0
    assert type(resolve_spike_fn("tssl_stateless")) is TSSLStateless
    with pytest.raises(ValueError, match=r"available: \['atan', 'fast_sigmoid'.*'tssl_stateless'\]"):
        resolve_spike_fn("nope")

    def steep():
        return ATan(5.0)

    spike_fns.register_spike_fn("steep_atan", steep)
    spike_fns.register_spike_fn("steep_atan", steep)  # the same factory again: harmless
    assert SCML(3, 8, 2, spike_fn="steep_atan").neurons.spike_fn == ATan(5.0)
    with pytest.raises(ValueError, match="already registered"):
        spike_fns.register_spike_fn("steep_atan", Sigmoid)
    spike_fns.register_spike_fn("steep_atan", Sigmoid, replace=True)
    assert resolve_spike_fn("steep_atan") == Sigmoid()
    with pytest.raises(ValueError, match="non-empty string"):
        spike_fns.register_spike_fn("", Sigmoid)
    with pytest.raises(TypeError, match="factory must be callable"):
        spike_fns.register_spike_fn("x", 3)
