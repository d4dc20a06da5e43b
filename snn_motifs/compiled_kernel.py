"""The compiled SC-ML kernel: the fused BPTT kernel's time loop, forward and backward, via ``torch.compile``.

:class:`~snn_motifs.fused_kernel.MotifLIFSequence` (the eager reference) issues ~45 small operations per
step, each a separate pass over the ``[B, N]`` state; at the paper's size (N = 800, B = 50) the time goes
into those passes, not into the O(N v) arithmetic. Here the same equations (the HRMAS paper eqs 1-4 and the
recurrent term of eq 15, back-propagated exactly as the eager kernel's docstring writes out) are written as
pure functions of a *chunk* of ``K`` steps, which ``torch.compile`` (Inductor: C++/OpenMP kernels on CPU,
Triton on GPU) turns into a few fused loops per step: the motif matmul is a ``v``-term multiply-add fused
with the neuron update, and the spikes, membranes and adjoints of a step never make a round trip to memory
in between. The sequence is cut into chunks of :data:`CHUNK` steps (plus one remainder chunk), so compiling
costs a bounded, once-per-shape price (cached by torch) whatever ``T`` is.

Memory traffic is the other half of the cost, so the forward pass keeps only what the backward pass needs:
spikes (the output) and the pre-reset membrane ``u-[t]``; the post-reset membrane is recomputed
(``u = u- (1 - s)``), and the synaptic current, the weighted input and the neuron's own PSC are stored only
when a gradient (learned tau or R, TSSL-BP's warm-up switch) or ``record=True`` asks for them. The
weight, leak and gain gradients are accumulated inside the backward chunks instead of being reduced over
stored ``[T, B, N]`` adjoints afterwards. The kernel works in the layer's own layout (the neuron axis
viewed as ``[M, v]``: ``[T, B, M, v]``), so no layout copies surround it.

Numerics: the same operations as the eager kernel, but Inductor may reorder a sum or contract a
multiply-add, so values agree to rounding, not bit for bit: spikes are identical and gradients within
1e-6 in float64 (tested); in float32 a membrane that lands within rounding of the threshold can flip a
spike, as between any two BLAS libraries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .neuron import membrane_update, psc_update, synaptic_current, synaptic_decay
from .surrogate import SurrogateSpike
from .tssl import check_incoming_gradient, tssl_delta

__all__ = [
    "CompiledMotifSequence",
    "CHUNK",
    "compiler_available",
    "recurrent_input",
    "recurrent_input_t",
    "transposed_weights",
]

#: steps per compiled chunk: longer chunks fuse more but compile longer (unrolled by the compiler)
CHUNK = 10
#: cached compiled chunk functions; one torch.compile wrapper each, specialised per shape by torch
_COMPILED: dict[str, object] = {}
#: distinct shapes/configurations a compiled chunk function may specialise for before torch falls back
_RECOMPILE_LIMIT = 64


def compiler_available() -> bool:
    """Whether ``torch.compile`` can build kernels here (Inductor needs a C++ compiler on CPU)."""
    try:
        from torch._inductor import cpp_builder

        return bool(cpp_builder.get_cpp_compiler())
    except Exception:  # noqa: BLE001 - any failure means: no compiler, use the eager kernel
        return False


def _pad_motifs(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Zero-pad the motif axis (dim -2) of ``[..., M-1, v]`` to ``[..., M, v]``."""
    return torch.nn.functional.pad(x, (0, 0, before, after))


#: motif sizes up to this are multiplied out term by term (see :func:`_block_matvec`)
UNROLL_MAX = 32


def _block_matvec(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``r[..., m, j] = sum_i z[..., m, i] w[m, i, j]`` for ``z`` ``[B, M, v]`` and ``w`` ``[M, v, v]``
    contiguous over ``j``. Small motifs are multiplied out as ``v`` broadcast multiply-adds of the rows
    ``w[:, i]``: a pointwise expression the compiler vectorises over ``j`` and fuses with the neuron update
    (a reduction over ``i`` would cost a horizontal vector sum per neuron); larger ones through a batched
    matmul."""
    v = w.shape[-2]
    if v > UNROLL_MAX:  # large blocks (a dense layer is one motif of size N): a batched matmul
        return torch.einsum("bmi,mij->bmj", z, w)
    r = z[..., 0:1] * w[:, 0]
    for i in range(1, v):
        r = r + z[..., i : i + 1] * w[:, i]
    return r


def transposed_weights(
    intra: torch.Tensor | None, lateral: torch.Tensor | None
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``[motif, pre, post]`` copies of ``[motif, post, pre]`` weights (per-neuron lateral weights need
    none), the layout :func:`recurrent_input` reads contiguously; made once per sequence."""
    intra_t = None if intra is None else intra.transpose(-1, -2).contiguous()
    lateral_t = lateral
    if lateral is not None and lateral.dim() == 4:
        lateral_t = lateral.transpose(-1, -2).contiguous()
    return intra_t, lateral_t


def recurrent_input(
    z: torch.Tensor, intra_t: torch.Tensor | None, lateral_t: torch.Tensor | None
) -> torch.Tensor:
    """``W s`` for spikes ``z`` ``[B, M, v]`` (the neuron axis split into motifs, a view of ``[B, N]``), as
    :func:`snn_motifs.recurrence.add_recurrent_` computes it, from :func:`transposed_weights`."""
    if intra_t is None:
        return torch.zeros_like(z)
    r = _block_matvec(z, intra_t)
    if lateral_t is not None and z.shape[-2] > 1:
        if lateral_t.dim() == 4:  # full off-diagonal blocks (the HRMAS mixed op)
            left = _block_matvec(z[:, :-1], lateral_t[0, 1:])
            right = _block_matvec(z[:, 1:], lateral_t[1, :-1])
        else:
            left = lateral_t[0, 1:] * z[:, :-1]
            right = lateral_t[1, :-1] * z[:, 1:]
        r = r + _pad_motifs(left, 1, 0) + _pad_motifs(right, 0, 1)
    return r


def recurrent_input_t(
    g: torch.Tensor, intra: torch.Tensor | None, lateral: torch.Tensor | None
) -> torch.Tensor:
    """``W^T g``, the transpose of :func:`recurrent_input` (the backward pass), from the weights as
    stored (``[motif, post, pre]``)."""
    if intra is None:
        return torch.zeros_like(g)
    r = _block_matvec(g, intra)
    if lateral is not None and g.shape[-2] > 1:
        if lateral.dim() == 4:
            to_left = _block_matvec(g[:, 1:], lateral[0, 1:])
            to_right = _block_matvec(g[:, :-1], lateral[1, :-1])
        else:
            to_left = lateral[0, 1:] * g[:, 1:]
            to_right = lateral[1, :-1] * g[:, :-1]
        r = r + _pad_motifs(to_left, 0, 1) + _pad_motifs(to_right, 1, 0)
    return r


def _outer_sum(g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``sum_b g[b, ..., p] s[b, ..., q]`` -> ``[..., p, q]`` (a weight gradient over the batch)."""
    return (g.unsqueeze(-1) * s.unsqueeze(-2)).sum(0)


def forward_chunk(
    x: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    a: torch.Tensor,
    z: torch.Tensor,
    leak: torch.Tensor,
    tau_inv: torch.Tensor,
    resistance: torch.Tensor,
    intra_t: torch.Tensor | None,
    lateral_t: torch.Tensor | None,
    v_threshold: float,
    syn_decay: float,
    outs: tuple[torch.Tensor | None, ...],
):
    """Eqs 1-4 and eq 15's recurrence for the ``K`` steps of ``x`` ``[K, B, M, v]`` from state ``(v, i, a,
    z)`` (each ``[B, M, v]``; per-neuron parameters ``[M, v]``; weights from :func:`transposed_weights`).

    Writes the spikes, the membrane before the reset, and (where ``outs`` holds a buffer, not None) the
    synaptic current, the weighted input and the PSC of every step into ``outs`` (``[K, B, M, v]`` slices
    of the sequence's buffers) and returns the state after the last step."""
    records: tuple[list[torch.Tensor], ...] = ([], [], [], [], [])
    for k in range(x.shape[0]):
        c = x[k] + recurrent_input(z, intra_t, lateral_t)
        syn = synaptic_current(i, resistance, c)
        p = membrane_update(syn, v, leak, tau_inv)
        fired = p > v_threshold
        z = fired.to(p.dtype)
        v = torch.where(fired, 0.0, p)
        i = synaptic_decay(syn, syn_decay)
        a = psc_update(a, z, syn_decay)
        for record, value in zip(records, (z, p, syn, c, a), strict=True):
            record.append(value)
    for out, record in zip(outs, records, strict=True):
        if out is not None:
            out.copy_(torch.stack(record))
    return v, i, a, z


def backward_chunk(
    g_spikes: torch.Tensor | None,
    g_mems: torch.Tensor | None,
    g_pscs: torch.Tensor | None,
    spikes: torch.Tensor,
    pre: torch.Tensor,
    syns: torch.Tensor | None,
    currents: torch.Tensor | None,
    pscs: torch.Tensor | None,
    s_before: torch.Tensor,
    u_before: torch.Tensor,
    carries: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    sums: tuple[torch.Tensor | None, ...],
    leak: torch.Tensor,
    tau_inv: torch.Tensor,
    resistance: torch.Tensor,
    intra: torch.Tensor | None,
    lateral: torch.Tensor | None,
    v_threshold: float,
    syn_decay: float,
    rule: SurrogateSpike,
    out: torch.Tensor | None,
):
    """Back-propagation through the ``K`` steps of one chunk, last step first (the eager kernel's
    recursion). ``carries = (a_bar, p_bar, i_bar, c_bar)`` come from the step after the chunk (zeros after
    the last step); ``s_before``/``u_before`` are the spikes and membrane of the step before the chunk.
    ``sums = (intra, lateral_left, lateral_right, leak, tau_inv, gain)`` gradient accumulators (None: not
    needed). Writes ``dL/dx`` into ``out`` ``[K, B, M, v]`` (unless None) and returns ``(carries, sums)``."""
    tssl = getattr(rule, "uses_neuron_state", False)
    a_bar, p_bar, i_bar, c_bar = carries
    g_intra, g_left, g_right, g_leak, g_tau, g_res = sums
    c_bars = []
    for k in range(spikes.shape[0] - 1, -1, -1):
        s_t, p_t = spikes[k], pre[k]
        s_prev = spikes[k - 1] if k > 0 else s_before
        u_prev = pre[k - 1] * (1.0 - spikes[k - 1]) if k > 0 else u_before
        if g_pscs is not None:
            a_bar = g_pscs[k] + syn_decay * a_bar
        s_bar = a_bar + recurrent_input_t(c_bar, intra, lateral)
        if g_spikes is not None:
            s_bar = g_spikes[k] + s_bar
        if tssl:  # p_bar is TSSL-BP's delta, the carry its theta (snn_motifs.tssl)
            theta_in = p_bar if g_mems is None else g_mems[k] + p_bar
            p_bar, carry = tssl_delta(
                rule, s_bar, theta_in, p_t, u_prev, s_t, pscs[k], leak, tau_inv, v_threshold
            )
        else:
            u_bar = leak * p_bar if g_mems is None else g_mems[k] + leak * p_bar
            p_bar = u_bar * (1.0 - s_t) + (s_bar - u_bar * p_t) * rule.derivative(p_t - v_threshold)
            carry = p_bar
        i_bar = tau_inv * p_bar + syn_decay * i_bar
        c_bar = resistance * i_bar
        c_bars.append(c_bar)
        if g_intra is not None:
            g_intra = g_intra + _outer_sum(c_bar, s_prev)
        if g_left is not None and s_prev.shape[-2] > 1:
            if g_left.dim() == 3:  # full blocks [M, v, v]
                g_left = g_left + F.pad(_outer_sum(c_bar[:, 1:], s_prev[:, :-1]), (0, 0, 0, 0, 1, 0))
                g_right = g_right + F.pad(_outer_sum(c_bar[:, :-1], s_prev[:, 1:]), (0, 0, 0, 0, 0, 1))
            else:
                g_left = g_left + _pad_motifs((c_bar[:, 1:] * s_prev[:, :-1]).sum(0), 1, 0)
                g_right = g_right + _pad_motifs((c_bar[:, :-1] * s_prev[:, 1:]).sum(0), 0, 1)
        if g_leak is not None:
            g_leak = g_leak + (p_bar * u_prev).sum(0)
        if g_tau is not None:
            g_tau = g_tau + (p_bar * syns[k]).sum(0)
        if g_res is not None:
            g_res = g_res + (i_bar * currents[k]).sum(0)
        p_bar = carry
    if out is not None:
        out.copy_(torch.stack(c_bars[::-1]))
    return (a_bar, p_bar, i_bar, c_bar), (g_intra, g_left, g_right, g_leak, g_tau, g_res)


def _compiled(name: str, fn):
    """``torch.compile(fn)`` once per process (fullgraph, static shapes; one specialisation per shape)."""
    if name not in _COMPILED:
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, _RECOMPILE_LIMIT)
        _COMPILED[name] = torch.compile(fn, fullgraph=True, dynamic=False)
    return _COMPILED[name]


def _chunks(steps: int, chunk: int) -> list[tuple[int, int]]:
    return [(t, min(t + chunk, steps)) for t in range(0, steps, chunk)]


class CompiledMotifSequence(torch.autograd.Function):
    """``(x, leak, tau_inv, R, intra, lateral, v0, i0, a0, z0, V_th, decay, rule, record, chunk)
    -> (S, v_T, i_T, a_T, U|None, A|None)``: the equations of
    :class:`~snn_motifs.fused_kernel.MotifLIFSequence`, the whole time loop through compiled chunks.

    ``x`` ``[T, B, M, v]`` (the feed-forward current, neuron axis viewed as motifs); per-neuron
    ``leak, tau_inv, R`` ``[M, v]``; ``intra`` ``[M, v, v]``; ``lateral`` ``[2, M, v]``, ``[2, M, v, v]``
    or None; states ``[B, M, v]``. Returns spikes ``S`` ``[T, B, M, v]``, the final membrane, carried
    synaptic current and PSC ``[B, M, v]``, and with ``record`` the post-reset membranes ``U`` and PSCs
    ``A`` of every step.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: torch.Tensor,
        leak: torch.Tensor,
        tau_inv: torch.Tensor,
        resistance: torch.Tensor,
        intra: torch.Tensor | None,
        lateral: torch.Tensor | None,
        v0: torch.Tensor,
        i0: torch.Tensor,
        a0: torch.Tensor,
        z0: torch.Tensor,
        v_threshold: float,
        syn_decay: float,
        rule: SurrogateSpike,
        record: bool,
        chunk: int = CHUNK,
    ):
        ctx.set_materialize_grads(False)
        needs = ctx.needs_input_grad
        tssl = getattr(rule, "uses_neuron_state", False)
        step = _compiled("forward", forward_chunk)
        intra_t, lateral_t = transposed_weights(intra, lateral)
        steps = x.shape[0]
        spikes, pre = torch.empty_like(x), torch.empty_like(x)
        syns = torch.empty_like(x) if needs[2] else None  # for the gradient of 1/tau
        currents = torch.empty_like(x) if needs[3] else None  # for the gradient of R
        pscs = torch.empty_like(x) if record or tssl else None  # TSSL-BP's warm-up switch
        buffers = (spikes, pre, syns, currents, pscs)
        state = (v0, i0, a0, z0)
        for start, stop in _chunks(steps, chunk):
            outs = tuple(None if b is None else b[start:stop] for b in buffers)
            state = step(
                x[start:stop], *state, leak, tau_inv, resistance, intra_t, lateral_t,
                float(v_threshold), float(syn_decay), outs,
            )  # fmt: skip
        v_t, i_t, a_t, _ = state
        ctx.save_for_backward(
            leak, tau_inv, resistance, intra, lateral, v0, z0, spikes, pre, syns, currents, pscs
        )
        ctx.v_threshold, ctx.syn_decay = float(v_threshold), float(syn_decay)
        ctx.rule, ctx.chunk = rule, chunk
        mems = pre * (1.0 - spikes) if record else None
        return spikes, v_t, i_t, a_t, mems, (pscs if record else None)

    @staticmethod
    def backward(ctx, g_spikes, g_v_t, g_i_t, g_a_t, g_mems, g_pscs):  # type: ignore[override]
        saved = ctx.saved_tensors
        leak, tau_inv, resistance, intra, lateral, v0, z0, spikes, pre, syns, currents, pscs = saved
        needs = ctx.needs_input_grad
        rule = ctx.rule
        if getattr(rule, "uses_neuron_state", False):
            check_incoming_gradient(rule, g_spikes)
        steps = spikes.shape[0]
        # the final state's gradients are the last step's: fold them into per-step gradients
        if g_v_t is not None:
            g_mems = torch.zeros_like(spikes) if g_mems is None else g_mems.clone()
            g_mems[-1] += g_v_t
        if g_a_t is not None:
            g_pscs = torch.zeros_like(spikes) if g_pscs is None else g_pscs.clone()
            g_pscs[-1] += g_a_t
        zeros = torch.zeros_like(v0)
        i_bar = g_i_t if g_i_t is not None else zeros
        carries = (zeros, zeros, i_bar, zeros)
        per_neuron = torch.zeros_like(leak)
        lateral_sum = None  # [M, 1, v] per-neuron edges, [M, v, v] full blocks
        if lateral is not None and needs[5]:
            lateral_sum = torch.zeros_like(lateral[0] if lateral.dim() == 4 else leak)
        sums = (
            torch.zeros_like(intra) if intra is not None and needs[4] else None,
            lateral_sum,
            None if lateral_sum is None else lateral_sum.clone(),
            per_neuron if needs[1] else None,
            per_neuron.clone() if needs[2] else None,
            per_neuron.clone() if needs[3] else None,
        )
        step = _compiled("backward", backward_chunk)
        c_bars = torch.empty_like(spikes) if needs[0] else None
        for start, stop in reversed(_chunks(steps, ctx.chunk)):
            s_before = spikes[start - 1] if start > 0 else z0
            u_before = pre[start - 1] * (1.0 - spikes[start - 1]) if start > 0 else v0

            def part(t: torch.Tensor | None, start: int = start, stop: int = stop) -> torch.Tensor | None:
                return None if t is None else t[start:stop]

            carries, sums = step(
                part(g_spikes), part(g_mems), part(g_pscs), spikes[start:stop], pre[start:stop],
                part(syns), part(currents), part(pscs), s_before, u_before, carries, sums,
                leak, tau_inv, resistance, intra, lateral, ctx.v_threshold, ctx.syn_decay, rule,
                part(c_bars),
            )  # fmt: skip
        a_bar, p_bar, i_bar, c_bar = carries
        g_intra, g_left, g_right, g_leak, g_tau, g_res = sums
        g_lateral = None
        if g_left is not None:
            g_lateral = torch.stack([g_left, g_right]).reshape(lateral.shape)
        tssl = getattr(rule, "uses_neuron_state", False)
        return (
            c_bars,
            g_leak,
            g_tau,
            g_res,
            g_intra,
            g_lateral,
            (p_bar if tssl else leak * p_bar) if needs[6] else None,
            i_bar if needs[7] else None,
            ctx.syn_decay * a_bar if needs[8] else None,
            recurrent_input_t(c_bar, intra, lateral) if needs[9] else None,
            None,
            None,
            None,
            None,
            None,
        )
