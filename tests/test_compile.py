"""torch.compile(fullgraph=True) of SC-ML's step and sequence paths equals eager mode."""

from __future__ import annotations

import pytest
import torch

from snn_motifs import SCML, MotifTopology

pytestmark = pytest.mark.slow


def _layer() -> SCML:
    torch.manual_seed(0)
    topology = MotifTopology(2, [["e", "i"], ["n", "f"]], [["e", "i"], ["i", "e"]])
    return SCML(5, 8, topology=topology)


def _grads(layer: SCML, out: torch.Tensor) -> list[torch.Tensor]:
    layer.zero_grad()
    (out * torch.linspace(0.5, 1.5, out.shape[-1])).sum().backward()
    return [p.grad.clone() for p in (layer.fc.weight, layer.intra_weight, layer.lateral_weight)]


@pytest.mark.parametrize("path", ["step", "run"])
def test_compiled_equals_eager(path):
    torch._dynamo.reset()
    layer = _layer()
    x = torch.rand(6, 3, 5) * 3

    def unroll(fn):
        if path == "run":
            return fn(x)[0]
        state, out = None, []
        for t in range(x.shape[0]):
            spk, state = fn(x[t], state)
            out.append(spk + 0.1 * state.v)  # the membrane carries gradient too
        return torch.stack(out)

    eager_fn = layer.run if path == "run" else layer
    compiled_fn = torch.compile(eager_fn, fullgraph=True)
    eager = unroll(eager_fn)
    g_eager = _grads(layer, eager)
    compiled = unroll(compiled_fn)
    g_compiled = _grads(layer, compiled)
    assert eager.sum() > 0
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    for a, b in zip(g_compiled, g_eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_compiled_step_api_equals_eager_in_float64():
    """``SCML(..., kernel="compiled")`` in the step API: every step compiled (fullgraph); spikes identical and
    gradients within 1e-6 of the eager step path in float64."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    topology = MotifTopology(2, [["e", "i"], ["n", "f"]], [["e", "i"], ["i", "e"]])
    eager = SCML(5, 8, topology=topology).double()
    compiled = SCML(5, 8, topology=topology, kernel="compiled").double()
    compiled.load_state_dict(eager.state_dict())
    x = torch.rand(6, 3, 5, dtype=torch.float64) * 3
    outs, grads = [], []
    for layer in (eager, compiled):
        state, spikes, mems = None, [], []
        for t in range(x.shape[0]):
            spk, mem, state = layer(x[t], state, return_mem=True)
            spikes.append(spk)
            mems.append(mem)
        spikes, mems = torch.stack(spikes), torch.stack(mems)
        (spikes.sum() + 0.1 * mems.sum()).backward()
        outs.append((spikes, mems))
        grads.append([p.grad.clone() for p in (layer.fc.weight, layer.intra_weight, layer.lateral_weight)])
    assert torch.equal(outs[0][0], outs[1][0]) and outs[0][0].sum() > 0
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
    assert compiled.__dict__["_compiled_step"] is not None  # built once, reused
