"""The SC-ML sequence kernel: the whole BPTT time loop of the native neuron in one autograd Function,
run eagerly (``kernel="fused"``) or through ``torch.compile`` (``kernel="compiled"``).

Eager autograd records ~20 small ops per step; at the paper's size (N = 800, B = 50, T = 100) that
bookkeeping, not the O(N v) recurrence, dominates. :class:`MotifLIFSequence` runs the forward loop (the
eq 1-4 functions of :mod:`snn_motifs.neuron` plus the recurrence of eq 15,
:func:`snn_motifs.recurrence.recurrent_input`) without recording a graph, and back-propagates through
time by hand::

    a_bar[t] = gA[t] + tau_s' a_bar[t+1]                         (a[t+1] = tau_s' a[t] + s[t+1])
    s_bar[t] = gS[t] + a_bar[t] + W^T c_bar[t+1]                 (c[t+1] = x[t+1] + W s[t])
    u_bar[t] = gU[t] + leak p_bar[t+1]                           (p[t+1] = leak u[t] + tau_inv I[t+1])
    p_bar[t] = u_bar[t] (1 - s[t]) + (s_bar[t] - u_bar[t] p[t]) f'(p[t] - V_th)   (u = p - s p)
    I_bar[t] = tau_inv p_bar[t] + tau_s' I_bar[t+1]             (i[t+1] = tau_s' I[t])
    c_bar[t] = R I_bar[t]

with ``tau_s' = 1 - 1/tau_s`` and ``f'`` the surrogate derivative. With TSSL-BP the ``u_bar``/``p_bar``
lines become its ``theta``/``delta`` recursion (:func:`snn_motifs.tssl.tssl_delta`, the same function
the step path calls), the rest is shared.

Both directions are pure functions of a *chunk* of ``K`` steps (:func:`forward_chunk`,
:func:`backward_chunk`), in the layer's own layout (the neuron axis viewed as motifs, ``[T, B, M, v]``: no
layout copies around the kernel). Eagerly the whole sequence is one chunk. With ``compiled=True``
``torch.compile`` (Inductor: C++/OpenMP kernels on CPU, Triton on GPU) turns each chunk into a few fused
loops per step: the motif matvec becomes ``v`` multiply-adds fused with the neuron update
(:func:`snn_motifs.recurrence.block_matvec`), and a step's spikes, membranes and adjoints never make a
round trip to memory in between. The sequence is then cut into chunks of :data:`CHUNK` steps (plus one
remainder chunk), so compiling costs a bounded, once-per-shape price (cached by torch) whatever ``T`` is.

Memory: the forward pass keeps only what the backward pass needs, the spikes (the output) and the
pre-reset membrane ``u-[t]``; the post-reset membrane is recomputed (``u = u- (1 - s)``), and the
synaptic current, the weighted input and the neuron's own PSC are stored only when a gradient (learned
tau or R, TSSL-BP's warm-up switch) or ``record=True`` asks for them. The weight, leak and gain gradients
are accumulated inside the backward chunks.

Numerics: eagerly, spikes and membranes are bit for bit those of the step path; compiled, Inductor may
reorder a sum or contract a multiply-add, so values agree to rounding: spikes identical and gradients
within 1e-6 in float64 (tested); in float32 a membrane that lands within rounding of the threshold can
flip a spike, as between any two BLAS libraries.
"""

from __future__ import annotations

from collections import Counter

import torch

from .neuron import membrane_update, psc_update, synaptic_current, synaptic_decay
from .recurrence import add_weight_grads, recurrent_input, recurrent_input_t, transposed_weights
from .surrogate import SurrogateSpike
from .tssl import check_incoming_gradient, tssl_delta

__all__ = ["MotifLIFSequence", "CHUNK", "compiler_available", "supports_fused", "runs"]

#: steps per compiled chunk: longer chunks fuse more but compile longer (unrolled by the compiler)
CHUNK = 10
#: cached compiled chunk functions; one torch.compile wrapper each, specialised per shape by torch
_COMPILED: dict[str, object] = {}
#: distinct shapes/configurations a compiled chunk function may specialise for before torch falls back
_RECOMPILE_LIMIT = 64
#: sequences run per path, ``runs["eager"]`` and ``runs["compiled"]`` (forward passes): what ran, for tests
runs: Counter[str] = Counter()


def supports_fused(spike_fn) -> bool:
    """The kernel needs a closed-form surrogate derivative (:class:`SurrogateSpike`) or TSSL-BP, whose
    backward it implements too."""
    return isinstance(spike_fn, SurrogateSpike)


def compiler_available() -> bool:
    """Whether ``torch.compile`` can build kernels here (Inductor needs a C++ compiler on CPU)."""
    try:
        from torch._inductor import cpp_builder

        return bool(cpp_builder.get_cpp_compiler())
    except Exception:  # noqa: BLE001 - any failure means: no compiler, use the eager kernel
        return False


def _store(out: torch.Tensor, values: list[torch.Tensor]) -> None:
    """Write the per-step ``values`` into their ``[K, ...]`` slice of a sequence buffer."""
    if torch.compiler.is_compiling():
        out.copy_(torch.stack(values))  # fused into the chunk's loops
    else:
        torch.stack(values, out=out)  # eagerly: no intermediate copy


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
    z)`` (each ``[B, M, v]``; per-neuron parameters ``[M, v]``; weights from
    :func:`~snn_motifs.recurrence.transposed_weights`).

    Writes the spikes, the membrane before the reset, and (where ``outs`` holds a buffer, not None) the
    synaptic current, the weighted input and the PSC of every step into ``outs`` (``[K, B, M, v]`` slices
    of the sequence's buffers) and returns the state after the last step."""
    records: tuple[list[torch.Tensor], ...] = ([], [], [], [], [])
    for k in range(x.shape[0]):
        c = x[k] if intra_t is None else x[k] + recurrent_input(z, intra_t, lateral_t)
        syn = synaptic_current(i, resistance, c)
        p = membrane_update(syn, v, leak, tau_inv)
        fired = p > v_threshold
        z = fired.to(p.dtype)
        v = torch.where(fired, 0.0, p)
        i = synaptic_decay(syn, syn_decay)
        a = psc_update(a, z, syn_decay)
        for record, value, out in zip(records, (z, p, syn, c, a), outs, strict=True):
            if out is not None:
                record.append(value)
    for out, record in zip(outs, records, strict=True):
        if out is not None:
            _store(out, record)
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
    spike_fn: SurrogateSpike,
    out: torch.Tensor | None,
):
    """Back-propagation through the ``K`` steps of one chunk, last step first (the module docstring's
    recursion). ``carries = (a_bar, p_bar, i_bar, c_bar)`` come from the step after the chunk (zeros after
    the last step); ``s_before``/``u_before`` are the spikes and membrane of the step before the chunk.
    ``sums = (intra, lateral_left, lateral_right, leak, tau_inv, gain)`` gradient accumulators (None: not
    needed). Writes ``dL/dx`` into ``out`` ``[K, B, M, v]`` (unless None) and returns ``(carries, sums)``."""
    tssl = getattr(spike_fn, "uses_neuron_state", False)
    a_bar, p_bar, i_bar, c_bar = carries
    g_intra, g_left, g_right, g_leak, g_tau, g_res = sums
    weight_grads = (g_intra, g_left, g_right)
    c_bars = []
    for k in range(spikes.shape[0] - 1, -1, -1):
        s_t, p_t = spikes[k], pre[k]
        s_prev = spikes[k - 1] if k > 0 else s_before
        u_prev = None  # the membrane u[t-1], recomputed where needed
        if tssl or g_leak is not None:
            u_prev = pre[k - 1] * (1.0 - spikes[k - 1]) if k > 0 else u_before
        if g_pscs is not None:
            a_bar = g_pscs[k] + syn_decay * a_bar
        s_bar = a_bar if intra is None else a_bar + recurrent_input_t(c_bar, intra, lateral)
        if g_spikes is not None:
            s_bar = g_spikes[k] + s_bar
        if tssl:  # p_bar is TSSL-BP's delta, the carry its theta (snn_motifs.tssl)
            theta_in = p_bar if g_mems is None else g_mems[k] + p_bar
            p_bar, carry = tssl_delta(
                spike_fn, s_bar, theta_in, p_t, u_prev, s_t, pscs[k], leak, tau_inv, v_threshold
            )
        else:
            u_bar = leak * p_bar if g_mems is None else g_mems[k] + leak * p_bar
            p_bar = u_bar * (1.0 - s_t) + (s_bar - u_bar * p_t) * spike_fn.derivative(p_t - v_threshold)
            carry = p_bar
        i_bar = tau_inv * p_bar + syn_decay * i_bar
        c_bar = resistance * i_bar
        if out is not None:
            c_bars.append(c_bar)
        weight_grads = add_weight_grads(weight_grads, c_bar, s_prev)
        if g_leak is not None:
            g_leak = g_leak + (p_bar * u_prev).sum(0)
        if g_tau is not None:
            g_tau = g_tau + (p_bar * syns[k]).sum(0)
        if g_res is not None:
            g_res = g_res + (i_bar * currents[k]).sum(0)
        p_bar = carry
    if out is not None:
        _store(out, c_bars[::-1])
    return (a_bar, p_bar, i_bar, c_bar), (*weight_grads, g_leak, g_tau, g_res)


def _compiled(name: str, fn):
    """``torch.compile(fn)`` once per process (fullgraph, static shapes; one specialisation per shape)."""
    if name not in _COMPILED:
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, _RECOMPILE_LIMIT)
        _COMPILED[name] = torch.compile(fn, fullgraph=True, dynamic=False)
    return _COMPILED[name]


def _chunks(steps: int, chunk: int) -> list[tuple[int, int]]:
    return [(t, min(t + chunk, steps)) for t in range(0, steps, chunk)]


class MotifLIFSequence(torch.autograd.Function):
    """``(x, leak, tau_inv, R, intra, lateral, v0, i0, a0, z0, V_th, decay, spike_fn, record, compiled)
    -> (S, v_T, i_T, a_T, U|None, A|None)``: the whole time loop, eager or through compiled chunks.

    ``x`` ``[T, B, M, v]`` (the feed-forward current, neuron axis viewed as motifs); per-neuron
    ``leak, tau_inv, R`` ``[M, v]``; ``intra`` ``[M, v, v]`` or None; ``lateral`` ``[2, M, v]``,
    ``[2, M, v, v]`` or None; states ``[B, M, v]``. Returns spikes ``S`` ``[T, B, M, v]``, the final
    membrane, carried synaptic current and PSC ``[B, M, v]``, and with ``record`` the post-reset membranes
    ``U`` and PSCs ``A`` of every step.
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
        spike_fn: SurrogateSpike,
        record: bool = False,
        compiled: bool = False,
    ):
        ctx.set_materialize_grads(False)
        needs = ctx.needs_input_grad
        tssl = getattr(spike_fn, "uses_neuron_state", False)
        runs["compiled" if compiled else "eager"] += 1
        step = _compiled("forward", forward_chunk) if compiled else forward_chunk
        chunk = CHUNK if compiled else max(x.shape[0], 1)
        intra_t, lateral_t = transposed_weights(intra, lateral)
        spikes, pre = torch.empty_like(x), torch.empty_like(x)
        syns = torch.empty_like(x) if needs[2] else None  # for the gradient of 1/tau
        currents = torch.empty_like(x) if needs[3] else None  # for the gradient of R
        pscs = torch.empty_like(x) if record or tssl else None  # TSSL-BP's warm-up switch
        buffers = (spikes, pre, syns, currents, pscs)
        state = (v0, i0, a0, z0)
        for start, stop in _chunks(x.shape[0], chunk):
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
        ctx.spike_fn, ctx.compiled, ctx.chunk = spike_fn, compiled, chunk
        mems = pre * (1.0 - spikes) if record else None
        return spikes, v_t, i_t, a_t, mems, (pscs if record else None)

    @staticmethod
    def backward(ctx, g_spikes, g_v_t, g_i_t, g_a_t, g_mems, g_pscs):  # type: ignore[override]
        saved = ctx.saved_tensors
        leak, tau_inv, resistance, intra, lateral, v0, z0, spikes, pre, syns, currents, pscs = saved
        needs = ctx.needs_input_grad
        spike_fn = ctx.spike_fn
        tssl = getattr(spike_fn, "uses_neuron_state", False)
        if tssl:
            check_incoming_gradient(spike_fn, g_spikes)
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
        lateral_sum = None  # [M, v] per-neuron edges, [M, v, v] full blocks
        if lateral is not None and needs[5]:
            lateral_sum = torch.zeros_like(lateral[0])
        sums = (
            torch.zeros_like(intra) if intra is not None and needs[4] else None,
            lateral_sum,
            None if lateral_sum is None else lateral_sum.clone(),
            per_neuron if needs[1] else None,
            per_neuron.clone() if needs[2] else None,
            per_neuron.clone() if needs[3] else None,
        )
        step = _compiled("backward", backward_chunk) if ctx.compiled else backward_chunk
        c_bars = torch.empty_like(spikes) if needs[0] else None
        for start, stop in reversed(_chunks(spikes.shape[0], ctx.chunk)):
            s_before = spikes[start - 1] if start > 0 else z0
            u_before = pre[start - 1] * (1.0 - spikes[start - 1]) if start > 0 else v0

            def part(t: torch.Tensor | None, start: int = start, stop: int = stop) -> torch.Tensor | None:
                return None if t is None else t[start:stop]

            carries, sums = step(
                part(g_spikes), part(g_mems), part(g_pscs), spikes[start:stop], pre[start:stop],
                part(syns), part(currents), part(pscs), s_before, u_before, carries, sums,
                leak, tau_inv, resistance, intra, lateral, ctx.v_threshold, ctx.syn_decay, spike_fn,
                part(c_bars),
            )  # fmt: skip
        a_bar, p_bar, i_bar, c_bar = carries
        g_intra, g_left, g_right, g_leak, g_tau, g_res = sums
        g_lateral = None
        if g_left is not None:
            g_lateral = torch.stack([g_left, g_right])
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
