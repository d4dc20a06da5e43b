"""SC-ML topology (the HRMAS paper sec 2.2, eqs 16-17): edges, lateral pairs, sharing, O(N v) size."""

from __future__ import annotations

import pytest
import torch

from snn_motifs import SCML, ConnectionType, MotifTopology
from snn_motifs.recurrence import (
    dense_recurrent_matrix,
    from_motif_layout,
    recurrent_current,
    recurrent_current_t,
    to_motif_layout,
)
from snn_motifs.topology import check_motif_size

from .conftest import MIXED_TOPOLOGY


@pytest.mark.parametrize("n,v", [(12, 1), (12, 2), (12, 3), (12, 4), (12, 6), (12, 12), (800, 16)])
def test_full_topology_edge_counts(n, v):
    topo = MotifTopology.uniform(v, "e", "e")
    m = n // v
    counts = topo.edge_counts(n)
    assert counts["intra"] == m * v * v  # every ordered pair incl. self, in each motif
    assert counts["lateral"] == 2 * v * (m - 1)  # i <-> i - v and i <-> i + v, no wrap-around
    if n <= 100:
        dense = topo.type_matrix(n)
        assert int((dense != 0).sum()) == counts["total"]


def test_lateral_pairs_are_i_minus_v_and_i_plus_v_without_wraparound():
    n, v = 12, 3
    dense = MotifTopology.uniform(v, "n", "e").type_matrix(n)
    edges = {(int(i), int(r)) for i, r in torch.nonzero(dense)}
    expected = {(i, i - v) for i in range(v, n)} | {(i, i + v) for i in range(n - v)}
    assert edges == expected
    assert (0, n - v) not in edges and (n - 1, v - 1) not in edges


def test_intra_motif_block_structure_and_shared_pattern():
    n, v = 16, 4
    dense = MIXED_TOPOLOGY.type_matrix(n)
    for k in range(n // v):
        sl = slice(k * v, (k + 1) * v)
        assert torch.equal(dense[sl, sl], MIXED_TOPOLOGY.intra)  # same pattern in every motif
    # nothing outside the diagonal blocks except the lateral band
    mask = torch.zeros(n, n, dtype=torch.bool)
    for k in range(n // v):
        mask[k * v : (k + 1) * v, k * v : (k + 1) * v] = True
    idx = torch.arange(n)
    mask[idx[v:], idx[v:] - v] = True
    mask[idx[:-v], idx[:-v] + v] = True
    assert int(dense[~mask].abs().sum()) == 0


@pytest.mark.parametrize("n,v", [(64, 4), (256, 16), (1024, 16), (3200, 16)])
def test_parameter_count_is_order_n_v(n, v):
    layer = SCML(3, n, v)
    rec_params = layer.intra_weight.numel() + layer.lateral_weight.numel()
    assert rec_params == n * v + 2 * n
    assert rec_params < n * n or v == n
    # no dense N x N tensor anywhere in the module
    for t in list(layer.parameters()) + list(layer.buffers()):
        assert t.numel() < n * n or n < 64


def test_recurrent_current_equals_dense_matrix_product():
    torch.manual_seed(0)
    n, v, b = 24, 4, 5
    layer = SCML(3, n, topology=MotifTopology.random(v, torch.Generator().manual_seed(3)))
    with torch.no_grad():
        layer.intra_weight.normal_()
        layer.lateral_weight.normal_()
    intra, lateral = layer.recurrent_weights()
    dense = layer.recurrent_matrix()
    s = torch.rand(b, n)
    got = from_motif_layout(recurrent_current(to_motif_layout(s, v), intra, lateral))
    torch.testing.assert_close(got, s @ dense.T, rtol=1e-5, atol=1e-6)
    g = torch.rand(b, n)
    got_t = from_motif_layout(recurrent_current_t(to_motif_layout(g, v), intra, lateral))
    torch.testing.assert_close(got_t, g @ dense, rtol=1e-5, atol=1e-6)
    # a dense re-materialisation from signed weights agrees with the types: negative where inhibitory
    types = layer.topology.type_matrix(n)
    assert torch.all(dense[types == ConnectionType.INHIBITORY] <= 0)
    assert torch.all(dense[types == ConnectionType.NONE] == 0)
    assert torch.all(dense[types == ConnectionType.EXCITATORY] >= 0)
    assert torch.equal(dense, dense_recurrent_matrix(intra.detach(), lateral.detach()))


def test_excitatory_positive_inhibitory_negative_and_the_papers_fixed_weight():
    topology = MotifTopology(2, [["e", "i"], ["n", "e"]], [["e", "i"], ["n", "n"]])
    layer = SCML(4, 8, topology=topology)
    # fan-in aware init: position 0 has 2 intra + 1 lateral edges sharing the total magnitude 0.2
    intra, lateral = layer.recurrent_weights()
    assert torch.allclose(intra[:, 0, 1], torch.tensor(-0.2 / 3)) and torch.allclose(
        intra[:, 0, 0], torch.tensor(0.2 / 3)
    )
    with torch.no_grad():
        layer.intra_weight.fill_(-0.7)  # raw weights of either sign keep each type's sign
    intra, lateral = layer.recurrent_weights()
    assert torch.all(intra[:, 0, 0] == 0.7) and torch.all(intra[:, 0, 1] == -0.7)
    assert torch.all(intra[:, 1, 0] == 0)
    assert torch.allclose(lateral[0, 1:, 0], torch.tensor(0.2 / 3))
    assert torch.all(lateral[0, 0] == 0)  # boundary
    (intra.sum() + lateral.sum()).backward()
    g = layer.intra_weight.grad
    assert torch.all(g[:, 1, 0] == 0)  # absent edge: no gradient
    assert torch.all(g[:, 0, 0] != 0) and torch.all(g[:, 0, 1] != 0)  # excitatory and inhibitory train
    paper = SCML(4, 8, topology=topology, inhibitory_weight=-2.0)  # the paper's fixed, untrained -2
    intra, lateral = paper.recurrent_weights()
    assert torch.all(intra[:, 0, 1] == -2) and torch.all(lateral[0, 1:, 1] == -2)
    intra.sum().backward()
    assert torch.all(paper.intra_weight.grad[:, 0, 1] == 0)
    with pytest.raises(ValueError, match="inhibitory_weight must be a finite number"):
        SCML(4, 8, topology=topology, inhibitory_weight=float("nan"))
    assert layer.intra_weight.shape == (4, 2, 2)
    excitatory = SCML(4, 8, topology=MotifTopology.uniform(2))  # 2 intra + 2 lateral edges share 0.2
    assert torch.allclose(excitatory.recurrent_weights()[0], torch.tensor(0.05))
    torch.manual_seed(0)
    fresh = SCML(4, 64, 4)  # the default: free-sign edges drawn from N(0, 1/fan_in), fan_in = 4 + 2
    assert fresh.topology == MotifTopology.uniform(4, "free", "free")
    w = torch.cat([fresh.intra_weight.flatten(), fresh.lateral_weight.flatten()]).detach()
    assert (w < 0).any() and (w > 0).any() and abs(float(w.std()) - 6**-0.5) < 0.08
    paper = SCML(4, 8, 2, recurrent_init=0.2)  # the paper's init: 0.2 on every edge
    assert torch.all(paper.recurrent_weights()[0] == 0.2)


def test_topology_json_round_trip_and_parse():
    topo = MotifTopology.random(5, torch.Generator().manual_seed(0))
    again = MotifTopology.from_json(topo.to_json())
    assert again == topo
    assert MotifTopology.from_dict({"motif_size": 2, "intra": ["ei", "ne"], "lateral": ["en", "nn"]})
    with pytest.raises(ValueError, match="unknown connection type 'x'"):
        MotifTopology(2, [["e", "x"], ["n", "e"]], [["e", "e"], ["e", "e"]])
    with pytest.raises(ValueError, match=r"must have shape \[2, 2\]"):
        MotifTopology(2, [["e", "e", "e"], ["n", "e", "e"]], [["e", "e"], ["e", "e"]])
    with pytest.raises(ValueError, match="motif_size, intra, lateral"):
        MotifTopology.from_dict({"intra": []})


@pytest.mark.parametrize(
    "n,v,msg",
    [
        (800, 7, "v=7 does not divide n_neurons N=800"),
        (10, 20, "v=20 is larger than the layer"),
        (10, 0, "positive int"),
        (10, 2.0, "positive int"),
    ],
)
def test_bad_motif_sizes(n, v, msg):
    with pytest.raises(ValueError, match=msg):
        check_motif_size(n, v)
    with pytest.raises(ValueError, match=msg):
        SCML(3, n, v)
