"""The HRMAS search space (``search/space.py``): the mixed-op layer against eq 15 summed edge by edge, its
fused and step runs and their gradients, its initial balance, discretisation and the weight/architecture
parameter split; the second-order architecture gradient (``search/architect.py``) against finite differences;
the dense baseline network (``search/baselines.py``)."""

from __future__ import annotations

import math

import pytest
import torch

from snn_motifs.search import (
    HRMASConfig,
    MixedMotifLayer,
    arch_parameters,
    dense_rsnn,
    search_network,
    second_order_arch_grad,
    weight_parameters,
)
from snn_motifs.topology import ConnectionType


def _naive_mixed(layer: MixedMotifLayer) -> torch.Tensor:
    """Eq 15 edge by edge: ``w^exc = |w|``, ``w^inh = -|w|`` (or the fixed weight), ``w^none = 0``."""
    inh = layer.inhibitory_weight

    def mixed(p, w):
        return p[1] * w + p[2] * (-w if inh is None else inh)

    n = layer.n_neurons
    out = torch.zeros(n, n, dtype=torch.float64)
    pv = layer.size_probabilities()
    for j, v in enumerate(layer.options):
        pi = torch.softmax(layer.arch[f"intra_{v}"], -1)
        pl = torch.softmax(layer.arch[f"lateral_{v}"], -1) if layer.lateral else None
        for i in range(n):
            k, p = divmod(i, v)
            for q in range(v):
                w = layer.intra_weight[j][k, p, q].abs()
                out[i, k * v + q] += pv[j] * mixed(pi[p, q], w)
            if pl is None:
                continue
            for row, r in ((0, i - v), (1, i + v)):
                if 0 <= r < n:
                    w = layer.lateral_weight[j][row, k, p].abs()
                    out[i, r] += pv[j] * mixed(pl[row, p], w)
    return out


@pytest.mark.parametrize(
    "options,n,lateral,inh",
    [
        ([2, 4, 8], 16, True, None),
        ([2, 4, 8], 16, True, -2.0),
        ([5, 10, 16, 25, 40], 400, True, None),
        ([2, 3], 12, True, None),
        ([2, 4], 8, False, -2.0),
    ],
)
def test_mixed_matrix_equals_naive_per_option_sum(options, n, lateral, inh):
    torch.manual_seed(0)
    layer = MixedMotifLayer(3, n, options, lateral=lateral, inhibitory_weight=inh).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    if n <= 40:
        torch.testing.assert_close(layer.recurrent_matrix(), _naive_mixed(layer), rtol=0, atol=1e-12)
    else:  # spot-check a large one on a few rows
        full = layer.recurrent_matrix()
        assert full.shape == (n, n) and torch.isfinite(full).all()
    intra, lat = layer.recurrent_weights()
    assert intra.numel() + lat.numel() == 3 * n * max(options)  # O(N max v), not O(N^2)


def test_mixed_layer_runs_fused_and_gradients_reach_alpha():
    torch.manual_seed(0)
    layer = MixedMotifLayer(4, 16, [2, 4, 8], spike_fn="tssl").double()
    x = (torch.rand(30, 3, 4, dtype=torch.float64) < 0.5).double() * 2
    s_fused, _ = layer.run(x)
    s_fused.sum().backward()
    g_fused = [p.grad.clone() for p in layer.arch_parameters()]
    layer.zero_grad()
    layer.kernel = "step"
    s_step, _ = layer.run(x)
    s_step.sum().backward()
    assert torch.equal(s_fused, s_step)
    for a, b in zip(g_fused, [p.grad for p in layer.arch_parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    assert any(g.abs().sum() > 0 for g in g_fused)
    arch_ids = {id(p) for p in layer.arch_parameters()}
    assert all(id(p) not in arch_ids for p in layer.weight_parameters())
    assert len(layer.arch_parameters()) + len(layer.weight_parameters()) == len(list(layer.parameters()))


def test_mixed_op_starts_balanced_and_fan_in_scaled():
    """At a neutral alpha every mixed edge is exactly 0 (excitatory and inhibitory share |w|), so the
    searched layer fires at the rate its input sets; the paper's fixed -2 makes every edge negative."""
    layer = MixedMotifLayer(3, 32, [2, 4, 8, 16, 32])
    assert torch.count_nonzero(layer.recurrent_matrix()) == 0
    # v = 2: 2 intra + 2 lateral edges share 0.2
    assert float(layer.intra_weight[0][0, 0, 0].detach()) == pytest.approx(0.2 / 4)
    with torch.no_grad():
        layer.arch["intra_2"][..., 1] += 1.0  # tilt v = 2 towards excitatory
    assert (layer.recurrent_matrix() >= 0).all() and layer.recurrent_matrix().sum() > 0
    paper = MixedMotifLayer(3, 32, [2, 4, 8, 16, 32], inhibitory_weight=-2.0, weight_init=0.2)
    assert (paper.recurrent_matrix() < 0).sum() > 0 and paper.recurrent_matrix().max() < 0.2


def test_fix_motif_size_and_discretise():
    layer = MixedMotifLayer(3, 16, [2, 4, 8])
    with torch.no_grad():
        layer.arch["size"].copy_(torch.tensor([0.0, 3.0, 1.0]))
        logits = torch.zeros(4, 4, 3)
        logits[..., 1] = 1.0  # excitatory everywhere ...
        logits[0, 1] = torch.tensor([0.0, 0.0, 5.0])  # ... but 1 -> 0 inhibitory
        logits[2, 3] = torch.tensor([5.0, 0.0, 0.0])  # ... and 3 -> 2 removed
        layer.arch["intra_4"].copy_(logits)
        layer.arch["lateral_4"][..., 1] = 1.0
        layer.arch["intra_8"][..., 1] = 1.0  # option 8 would connect 0 <- 5 if it still counted
    assert layer.fix_motif_size() == 4
    assert layer.size_probabilities().tolist() == [0.0, 1.0, 0.0]
    topo = layer.genotype_topology()
    assert topo.motif_size == 4
    assert topo.intra[0, 1] == ConnectionType.INHIBITORY and topo.intra[2, 3] == ConnectionType.NONE
    assert int((topo.intra == ConnectionType.EXCITATORY).sum()) == 14
    # with the size fixed only option 4 contributes to the mixed matrix
    dense = layer.recurrent_matrix()
    assert dense[0, 5] == 0 and dense[0, 4] != 0  # lateral edge of v=4 exists, v=8's does not


def test_second_order_gradient_matches_finite_differences():
    """On a smooth tiny model the DARTS approximation (eqs 12-14) must match the finite-difference
    gradient of the unrolled objective L_valid(w - eta grad_w L_train(w, alpha), alpha)."""
    torch.manual_seed(0)
    xt, yt = torch.randn(12, 3, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
    xv, yv = torch.randn(12, 3, dtype=torch.float64), torch.randn(12, dtype=torch.float64)
    w = [
        torch.randn(3, dtype=torch.float64, requires_grad=True),
        torch.randn(3, dtype=torch.float64, requires_grad=True),
    ]
    alpha = [torch.randn(2, dtype=torch.float64, requires_grad=True)]

    def model(x, w_, a_):
        p = torch.softmax(a_[0], 0)  # a mixed op of two candidate operations
        return p[0] * torch.tanh(x @ w_[0]) + p[1] * (x @ w_[1])

    def loss(x, y, w_, a_):
        return ((model(x, w_, a_) - y) ** 2).mean()

    eta = 0.05
    got = second_order_arch_grad(
        w, alpha, lambda: loss(xt, yt, w, alpha), lambda: loss(xv, yv, w, alpha), eta, eps_scale=1e-4
    )

    def unrolled(a_value):
        a_ = [a_value]
        w_ = [p.detach().clone().requires_grad_() for p in w]
        gs = torch.autograd.grad(loss(xt, yt, w_, a_), w_)
        return loss(xv, yv, [p - eta * g for p, g in zip(w_, gs, strict=True)], a_).item()

    fd = torch.zeros(2, dtype=torch.float64)
    for k in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[k] = 1e-6
        fd[k] = (unrolled(alpha[0].detach() + e) - unrolled(alpha[0].detach() - e)) / 2e-6
    torch.testing.assert_close(got[0], fd, rtol=1e-5, atol=1e-7)
    # and it differs from the first-order gradient (the correction term matters here)
    first = torch.autograd.grad(loss(xv, yv, w, alpha), alpha)[0]
    assert (first - fd).abs().max() > 1e-4


def test_dense_baseline_is_fully_connected():
    cfg = HRMASConfig(hidden=12)
    model = dense_rsnn(5, 12, 3, cfg)
    matrix = model.hidden.recurrent_matrix()
    assert (matrix != 0).all() and matrix.std() < 1.0 and math.isclose(float(matrix.mean()), 0.0, abs_tol=0.2)


def test_search_network_parameter_split():
    net = search_network(HRMASConfig(hidden=8, motif_sizes=[2, 4]), 5, 3)
    arch = arch_parameters(net, trainable=True)
    assert len(arch) == 1 + 2 * 2 and all(p.requires_grad for p in arch)
    weights = weight_parameters(net)
    assert {id(p) for p in arch}.isdisjoint({id(p) for p in weights})
    assert len(arch) + len(weights) == len(list(net.parameters()))
    net.hidden.fix_motif_size(4)  # phase 2: the size logits leave the trainable set
    assert len(arch_parameters(net, trainable=True)) == 4 and len(arch_parameters(net)) == 5
