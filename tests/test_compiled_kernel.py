"""The compiled sequence kernel (``SCML(..., kernel="compiled")``) equals the eager one (``"fused"``).

The comparisons need a C++ compiler (Inductor); without one they are skipped, and each asserts that the
compiled path actually ran (:data:`snn_motifs.fused_kernel.runs`), so that eager is never compared with
eager. float64, so that rounding differences between the compiler's fused loops and the eager
operations cannot flip a spike: spikes identical, membranes and gradients within 1e-6 (they agree to
~1e-14). A small chunk size keeps compilation short and makes the sequence end in a partial chunk.
"""

from __future__ import annotations

import pytest
import torch

import snn_motifs.fused_kernel as ck
import snn_motifs.recurrence as rec
from snn_motifs import SCML, MotifTopology
from snn_motifs.search import MixedMotifLayer

TOPOLOGY = MotifTopology(2, [["e", "i"], ["n", "f"]], [["e", "i"], ["i", "e"]])


needs_compiler = pytest.mark.skipif(
    not ck.compiler_available(), reason="torch.compile needs a C++ compiler here (Inductor); none found"
)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(ck, "CHUNK", 3)  # T = 7: chunks 3 + 3 + 1


def _run(layer, x, state=None):
    """Spikes, records, final state and every parameter gradient of one forward+backward that sends a
    gradient through each output (spikes, membranes, PSCs, final state)."""
    layer.zero_grad()
    spikes, final, rec = layer.run(x, state, record=True)
    weights = torch.linspace(0.5, 1.5, spikes.shape[-1], dtype=x.dtype)
    loss = (spikes * weights).sum() + 0.1 * rec.mem.sum() + 0.05 * (rec.psc * weights).sum()
    loss = loss + 0.2 * final.v.sum() + 0.3 * final.i.sum() + 0.1 * final.a.sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}
    return spikes, rec, final, grads


def _pair(make):
    torch.manual_seed(0)
    eager = make(kernel="fused").double()
    compiled = make(kernel="compiled").double()
    compiled.load_state_dict(eager.state_dict())
    return eager, compiled


def _run_compiled(layer, x, state=None):
    """:func:`_run` on the compiled layer, checking that the compiled kernel ran (and nothing eager)."""
    before = dict(ck.runs)
    out = _run(layer, x, state)
    assert ck.runs["compiled"] == before.get("compiled", 0) + 1
    assert ck.runs["eager"] == before.get("eager", 0)
    return out


def _assert_same(eager_out, compiled_out):
    (s0, r0, f0, g0), (s1, r1, f1, g1) = eager_out, compiled_out
    assert torch.equal(s0, s1), "spikes differ"
    assert 0 < s0.mean() < 0.9
    for a, b in ((r0.mem, r1.mem), (r0.psc, r1.psc), *zip(f0, f1, strict=True)):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-9)
    assert sorted(g0) == sorted(g1)
    for name in g0:
        assert g0[name].abs().sum() > 0, name
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-6, atol=1e-9, msg=name)


@pytest.mark.slow
@needs_compiler
@pytest.mark.parametrize(
    "spike_fn, learn", [("atan", True), ("tssl", False)], ids=["atan-learned-tau-R", "tssl"]
)
def test_compiled_kernel_equals_eager_kernel(spike_fn, learn):
    def make(kernel):
        return SCML(
            5, 8, topology=TOPOLOGY, spike_fn=spike_fn, learn_leak=learn, learn_gain=learn, kernel=kernel
        )

    eager, compiled = _pair(make)
    x = torch.rand(7, 3, 5, dtype=torch.float64) * 3
    _assert_same(_run(eager, x), _run_compiled(compiled, x))
    # a sequence continued from a non-zero state (truncated BPTT): the state's gradient path too
    with torch.no_grad():
        _, start, _ = eager.run(x[:4], record=True)
    _assert_same(_run(eager, x, start), _run_compiled(compiled, x, start))


@pytest.mark.slow
@needs_compiler
def test_compiled_kernel_with_hrmas_mixed_op():
    """Full off-diagonal lateral blocks (the HRMAS mixed op) and a block wider than the unrolled limit."""

    def make(kernel):
        return MixedMotifLayer(5, 8, motif_sizes=(2, 4), kernel=kernel)

    eager, compiled = _pair(make)
    with torch.no_grad():
        for name, p in eager.named_parameters():  # random architecture and weights: every edge type mixed
            p.copy_(torch.randn_like(p) * (0.5 if "weight" in name else 1.0))
    compiled.load_state_dict(eager.state_dict())
    x = torch.rand(7, 3, 5, dtype=torch.float64) * 3
    _assert_same(_run(eager, x), _run_compiled(compiled, x))


def test_block_matvec_unrolled_equals_reduction(monkeypatch):
    """The form a compiled graph sees (``v`` multiply-adds; a batched matmul above ``UNROLL_MAX``) equals
    the eager batched matmul."""
    torch.manual_seed(0)
    z, w = torch.randn(3, 4, 5, dtype=torch.float64), torch.randn(4, 5, 5, dtype=torch.float64)
    expected = torch.einsum("bmi,mij->bmj", z, w)
    torch.testing.assert_close(rec.block_matvec(z, w), expected)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # the traced form, run eagerly
    torch.testing.assert_close(rec.block_matvec(z, w), expected)
    g = torch.randn(3, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(rec.block_outer(g, z), torch.einsum("bmp,bmq->mpq", g, z))
    monkeypatch.setattr(rec, "UNROLL_MAX", 2)
    torch.testing.assert_close(rec.block_matvec(z, w), expected)


@pytest.mark.slow
@needs_compiler
def test_compiled_once_per_shape():
    torch._dynamo.reset()
    torch.manual_seed(0)
    layer = SCML(5, 8, topology=TOPOLOGY, kernel="compiled").double()
    x = torch.rand(7, 3, 5, dtype=torch.float64) * 3
    stats = torch._dynamo.utils.counters["stats"]
    before = stats["unique_graphs"]
    layer.run(x)[0].sum().backward()
    graphs = stats["unique_graphs"]
    assert graphs > before  # forward and backward chunks compiled (or loaded from torch's cache)
    for _ in range(2):
        layer.run(x)[0].sum().backward()
    assert stats["unique_graphs"] == graphs  # reused: no new compilation for the same shapes


def test_without_a_compiler(monkeypatch):
    """``kernel="compiled"`` is refused, naming the fix; the deprecated ``compile=True`` warns and runs the
    eager kernel, as it did before ``kernel=``."""
    import snn_motifs.layers as layers

    monkeypatch.setattr(layers, "compiler_available", lambda: False)
    with pytest.raises(ValueError, match="kernel='compiled' cannot run.*no C\\+\\+ compiler.*kernel='auto'"):
        SCML(5, 8, topology=TOPOLOGY, kernel="compiled")
    layer = SCML(5, 8, topology=TOPOLOGY)
    assert layer.supported_kernels == ("auto", "step", "fused")
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"), pytest.warns(DeprecationWarning):
        layer = SCML(5, 8, topology=TOPOLOGY, compile=True)
    assert layer.kernel == "auto" and layer.compile is False
    before = ck.runs["eager"]
    assert layer.run(torch.rand(4, 2, 5))[0].shape == (4, 2, 8)
    assert ck.runs["eager"] == before + 1
