"""The fused BPTT kernel for SC-ML with the native neuron: the whole time loop in one autograd Function.

Eager autograd records ~20 small ops per step; at the paper's size (N = 800, B = 50, T = 100) that
bookkeeping, not the O(N v) recurrence, dominates. :class:`MotifLIFSequence` runs the forward loop of
:func:`snn_motifs.neuron.lif_step` plus the recurrence (:func:`snn_motifs.recurrence.recurrent_current`)
without recording a graph, with the *same elementary operations in the same order* as the step path (the
eq 1-2 functions of :mod:`snn_motifs.neuron`, writing into preallocated buffers through their ``out=``),
so spikes and membranes are bit-for-bit those of the step API. Its backward is back-propagation through time
written out by hand::

    a_bar[t] = gA[t] + tau_s' a_bar[t+1]                         (a[t+1] = tau_s' a[t] + s[t+1])
    s_bar[t] = gS[t] + a_bar[t] + W^T c_bar[t+1]                 (c[t+1] = x[t+1] + W s[t])
    u_bar[t] = gU[t] + leak p_bar[t+1]                           (p[t+1] = leak u[t] + tau_inv I[t+1])
    p_bar[t] = u_bar[t] (1 - s[t]) + (s_bar[t] - u_bar[t] p[t]) f'(p[t] - V_th)   (u = p - s p)
    I_bar[t] = tau_inv p_bar[t] + tau_s' I_bar[t+1]             (i[t+1] = tau_s' I[t])
    c_bar[t] = R I_bar[t]

with ``tau_s' = 1 - 1/tau_s`` and ``f'`` the surrogate derivative. With TSSL-BP the ``u_bar``/``p_bar``
lines become its ``theta``/``delta`` recursion (:func:`snn_motifs.tssl.tssl_delta`, the same function
the step path calls), the rest is shared. Only the four carried adjoints live in the loop; the weight,
leak and gain gradients are reductions over all steps done once afterwards (one batched matmul for the
motif weights). The tests check it against autograd through the step path.
"""

from __future__ import annotations

import torch

from .neuron import membrane_update, psc_update, synaptic_current, synaptic_decay
from .recurrence import add_recurrent_, add_recurrent_t_, recurrent_current_t
from .surrogate import SurrogateSpike
from .tssl import check_incoming_gradient, tssl_delta

__all__ = ["MotifLIFSequence", "supports_fused"]


def supports_fused(spike_fn) -> bool:
    """The fused kernel needs a closed-form surrogate derivative (:class:`SurrogateSpike`) or TSSL-BP,
    whose backward it implements too."""
    return isinstance(spike_fn, SurrogateSpike)


def _sum_to_neuron(x: torch.Tensor) -> torch.Tensor:
    """Sum ``[T, M, B, v]`` over time and batch -> ``[M, 1, v]``."""
    return x.sum(dim=(0, 2)).unsqueeze(1)


class MotifLIFSequence(torch.autograd.Function):
    """``(x, leak, tau_inv, R, intra, lateral, v0, i0, a0, z0) -> (S, U, A, i_T)``, motif layout.

    ``x`` is the feed-forward current ``[T, M, B, v]``; per-neuron tensors are ``[M, 1, v]``; ``intra``
    ``[M, v, v]``; ``lateral`` ``[2, M, v]`` or None; states ``[M, B, v]``. Outputs: spikes, post-reset
    membranes and own PSCs ``[T, M, B, v]`` and the carried synaptic current after the last step.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: torch.Tensor,
        leak: torch.Tensor,
        tau_inv: torch.Tensor,
        resistance: torch.Tensor,
        intra: torch.Tensor,
        lateral: torch.Tensor | None,
        v0: torch.Tensor,
        i0: torch.Tensor,
        a0: torch.Tensor,
        z0: torch.Tensor,
        v_threshold: float,
        syn_decay: float,
        surrogate: SurrogateSpike,
    ):
        ctx.set_materialize_grads(False)
        steps = x.shape[0]
        currents = x.clone()  # c[t] = x[t] + W s[t-1], completed in place step by step
        spikes = torch.empty_like(x)
        mems = torch.empty_like(x)  # post-reset membrane u[t]
        pre = torch.empty_like(x)  # pre-reset membrane p[t] = u-[t]
        syns = torch.empty_like(x)  # synaptic current I[t]
        pscs = torch.empty_like(x)
        tmp = torch.empty_like(v0)
        fired = torch.empty(v0.shape, dtype=torch.bool, device=v0.device)
        zero = v0.new_zeros(())
        v, i, a, z = v0, i0, a0, z0
        for t in range(steps):
            c = add_recurrent_(currents[t], z, intra, lateral)
            syn = synaptic_current(i, resistance, c, out=syns[t])
            p = membrane_update(syn, v, leak, tau_inv, out=pre[t], scratch=tmp)
            torch.gt(p, v_threshold, out=fired)
            z = spikes[t].copy_(fired)
            v = torch.where(fired, zero, p, out=mems[t])
            i = synaptic_decay(syn, syn_decay)
            a = psc_update(a, z, syn_decay, out=pscs[t])
        ctx.save_for_backward(
            leak, tau_inv, resistance, intra, lateral, v0, z0, spikes, mems, pre, syns, currents, pscs
        )
        ctx.v_threshold = v_threshold
        ctx.syn_decay = syn_decay
        ctx.surrogate = surrogate
        return spikes, mems, pscs, i

    @staticmethod
    def backward(ctx, g_spikes, g_mems, g_pscs, g_syn_last):  # type: ignore[override]
        (leak, tau_inv, resistance, intra, lateral, v0, z0, spikes, mems, pre, syns, currents, pscs) = (
            ctx.saved_tensors
        )
        needs = ctx.needs_input_grad
        decay, v_th, rule = ctx.syn_decay, ctx.v_threshold, ctx.surrogate
        tssl = getattr(rule, "uses_neuron_state", False)
        if tssl:
            check_incoming_gradient(rule, g_spikes)
        steps = spikes.shape[0]
        zeros = torch.zeros_like(v0)
        i_bar = g_syn_last if g_syn_last is not None else zeros  # dL/dI[t+1] = dL/di[t+1]
        a_bar = zeros  # dL/da[t+1]
        p_bar = zeros  # dL/dp[t+1]
        c_bar: torch.Tensor | None = None  # dL/dc[t+1]
        p_bars = torch.empty_like(spikes)
        i_bars = torch.empty_like(spikes)
        c_bars = torch.empty_like(spikes)  # = dL/dx
        g_intra = torch.zeros_like(intra) if needs[4] else None
        for t in range(steps - 1, -1, -1):
            if g_pscs is not None:
                a_bar = torch.add(g_pscs[t], a_bar, alpha=decay)
            if g_spikes is None:
                s_bar = a_bar.clone()
            else:
                s_bar = g_spikes[t] + a_bar if g_pscs is not None else g_spikes[t].clone()
            if c_bar is not None:
                add_recurrent_t_(s_bar, c_bar, intra, lateral)
            s_t, p_t = spikes[t], pre[t]
            if tssl:  # p_bar is TSSL-BP's delta, the carry is its theta (snn_motifs.tssl)
                theta_in = p_bar if g_mems is None else g_mems[t] + p_bar
                u_prev = mems[t - 1] if t > 0 else v0
                p_bar, carry = tssl_delta(
                    rule, s_bar, theta_in, p_t, u_prev, s_t, pscs[t], leak, tau_inv, v_th, out=p_bars[t]
                )
            else:
                u_bar = leak * p_bar if g_mems is None else torch.addcmul(g_mems[t], leak, p_bar)
                p_bar = torch.addcmul(u_bar, u_bar, s_t, value=-1.0, out=p_bars[t])
                s_bar.addcmul_(u_bar, p_t, value=-1.0)
                p_bar.addcmul_(s_bar, rule.derivative(p_t - v_th))
                carry = p_bar
            i_bar = torch.mul(tau_inv, p_bar, out=i_bars[t]).add_(i_bar, alpha=decay)
            c_bar = torch.mul(resistance, i_bar, out=c_bars[t])
            p_bar = carry
            if g_intra is not None and intra is not None:
                s_prev = spikes[t - 1] if t > 0 else z0
                g_intra.baddbmm_(c_bar.transpose(1, 2), s_prev)
        # gradients of what is constant over time: reductions over all steps, done once
        g_leak = g_tau_inv = g_res = g_lateral = None
        if needs[1]:
            g_leak = (p_bars[1:] * mems[:-1]).sum(dim=(0, 2)) + (p_bars[0] * v0).sum(dim=1)
            g_leak = g_leak.unsqueeze(1)
        if needs[2]:
            g_tau_inv = _sum_to_neuron(p_bars * syns)
        if needs[3]:
            g_res = _sum_to_neuron(i_bars * currents)
        if lateral is not None and needs[5] and lateral.dim() == 3:
            g_lateral = torch.zeros_like(lateral)
            if lateral.shape[1] > 1:
                for row, (post, pre_) in enumerate(
                    ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None)))
                ):
                    acc = (c_bars[1:, post] * spikes[:-1, pre_]).sum(dim=(0, 2))
                    g_lateral[row, post] = acc + (c_bars[0, post] * z0[pre_]).sum(dim=1)
        elif lateral is not None and needs[5]:  # full blocks: the same batched matmul as intra
            g_lateral = torch.zeros_like(lateral)
            if lateral.shape[1] > 1:
                for t in range(steps):
                    s_prev = spikes[t - 1] if t > 0 else z0
                    cb = c_bars[t].transpose(1, 2)
                    g_lateral[0, 1:].baddbmm_(cb[1:], s_prev[:-1])
                    g_lateral[1, :-1].baddbmm_(cb[:-1], s_prev[1:])
        g_v0 = (p_bar if tssl else leak * p_bar) if needs[6] else None
        g_i0 = i_bar if needs[7] else None
        g_a0 = decay * a_bar if needs[8] else None
        g_z0 = recurrent_current_t(c_bar, intra, lateral) if needs[9] else None
        return (
            c_bars if needs[0] else None,
            g_leak,
            g_tau_inv,
            g_res,
            g_intra,
            g_lateral,
            g_v0,
            g_i0,
            g_a0,
            g_z0,
            None,
            None,
            None,
        )
