"""Fused sequence kernel for SC-ML with the native neuron: the whole time loop in one autograd Function.

Eager autograd records ~20 small ops per step; at the paper's size (N = 800, B = 50, T = 100) that
bookkeeping, not the O(N v) recurrence, dominates. :class:`MotifLIFSequence` runs the forward loop of
:func:`snn_motifs.neuron.lif_step` plus the recurrence (:func:`snn_motifs.recurrence.recurrent_current`)
without recording a graph, with the *same elementary operations in the same order* as the step path, so
spikes and membranes are bit-for-bit those of the step API. Its backward is back-propagation through time
written out by hand::

    a_bar[t] = gA[t] + tau_s' a_bar[t+1]                         (a[t+1] = tau_s' a[t] + s[t+1])
    s_bar[t] = gS[t] + a_bar[t] + W^T c_bar[t+1]                 (c[t+1] = x[t+1] + W s[t])
    u_bar[t] = gU[t] + leak p_bar[t+1]                           (p[t+1] = leak u[t] + tau_inv I[t+1])
    p_bar[t] = u_bar[t] (1 - s[t]) + (s_bar[t] - u_bar[t] p[t]) f'(p[t] - V_th)   (u = p - s p)
    I_bar[t] = tau_inv p_bar[t] + tau_s' I_bar[t+1]             (i[t+1] = tau_s' I[t])
    c_bar[t] = R I_bar[t]

with ``tau_s' = 1 - 1/tau_s`` and ``f'`` the surrogate derivative. Only the four carried adjoints live in
the loop; the weight, leak and gain gradients are reductions over all steps done once afterwards (one
batched matmul for the motif weights). The tests check it against autograd through the step path.
"""

from __future__ import annotations

import torch

from .recurrence import recurrent_current, recurrent_current_t
from .surrogate import SurrogateSpike

__all__ = ["MotifLIFSequence", "supports_fused"]


def supports_fused(spike_fn) -> bool:
    """The fused kernel needs a closed-form surrogate derivative (:class:`SurrogateSpike`)."""
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
        steps = x.shape[0]
        spikes = torch.empty_like(x)
        mems = torch.empty_like(x)  # post-reset membrane u[t]
        pre = torch.empty_like(x)  # pre-reset membrane p[t] = u-[t]
        syns = torch.empty_like(x)  # synaptic current I[t]
        currents = torch.empty_like(x)  # c[t] = x[t] + W s[t-1]
        pscs = torch.empty_like(x)
        tmp = torch.empty_like(v0)
        v, i, a, z = v0, i0, a0, z0
        for t in range(steps):
            c = recurrent_current(z, intra, lateral, out=x[t])
            currents[t] = c
            torch.mul(resistance, c, out=tmp)
            syn = torch.add(i, tmp, out=syns[t])
            p = torch.mul(leak, v, out=pre[t])
            torch.mul(tau_inv, syn, out=tmp)
            p.add_(tmp)
            fired = torch.gt(p, v_threshold)
            z = spikes[t].copy_(fired)
            v = mems[t].copy_(p)
            v.masked_fill_(fired, 0.0)
            i = syn_decay * syn
            torch.mul(a, syn_decay, out=tmp)
            a = torch.add(tmp, z, out=pscs[t])
        ctx.save_for_backward(
            leak, tau_inv, resistance, intra, lateral, v0, z0, spikes, mems, pre, syns, currents
        )
        ctx.has_lateral = lateral is not None
        ctx.v_threshold = v_threshold
        ctx.syn_decay = syn_decay
        ctx.surrogate = surrogate
        return spikes, mems, pscs, i

    @staticmethod
    def backward(ctx, g_spikes, g_mems, g_pscs, g_syn_last):  # type: ignore[override]
        (leak, tau_inv, resistance, intra, lateral, v0, z0, spikes, mems, pre, syns, currents) = (
            ctx.saved_tensors
        )
        decay, theta = ctx.syn_decay, ctx.v_threshold
        steps = spikes.shape[0]
        zeros = torch.zeros_like(v0)
        g_spikes = g_spikes if g_spikes is not None else torch.zeros_like(spikes)
        g_mems = g_mems if g_mems is not None else torch.zeros_like(spikes)
        i_bar = g_syn_last if g_syn_last is not None else zeros
        a_bar = zeros
        p_bar_next = zeros
        c_bar_next: torch.Tensor | None = None
        p_bars = torch.empty_like(spikes)
        i_bars = torch.empty_like(spikes)
        surrogate_grad = ctx.surrogate.derivative(pre - theta)
        for t in range(steps - 1, -1, -1):
            if g_pscs is not None:
                a_bar = g_pscs[t] + decay * a_bar
            s_bar = g_spikes[t] + a_bar
            if c_bar_next is not None:
                s_bar = recurrent_current_t(c_bar_next, intra, lateral, out=s_bar)
            u_bar = torch.addcmul(g_mems[t], leak, p_bar_next)
            s_t, p_t = spikes[t], pre[t]
            p_bar = torch.mul(u_bar, 1.0 - s_t, out=p_bars[t])
            p_bar.addcmul_(s_bar - u_bar * p_t, surrogate_grad[t])
            i_bar = torch.addcmul(decay * i_bar, tau_inv, p_bar, out=i_bars[t])
            c_bar_next = resistance * i_bar
            p_bar_next = p_bar
        g_x = resistance * i_bars
        # gradients of everything that is constant over time: reductions over all steps at once
        mems_prev = torch.cat([v0.unsqueeze(0), mems[:-1]])
        spikes_prev = torch.cat([z0.unsqueeze(0), spikes[:-1]])
        g_leak = _sum_to_neuron(p_bars * mems_prev)
        g_tau_inv = _sum_to_neuron(p_bars * syns)
        g_res = _sum_to_neuron(i_bars * currents)
        m, _, v = intra.shape
        if v == 1:
            g_intra = (g_x * spikes_prev).sum(dim=(0, 2)).view(m, 1, 1)
        else:
            cb = g_x.permute(1, 3, 0, 2).reshape(m, v, -1)  # [M, v_post, T*B]
            sp = spikes_prev.permute(1, 0, 2, 3).reshape(m, -1, v)  # [M, T*B, v_pre]
            g_intra = torch.bmm(cb, sp)
        g_lateral = None
        if ctx.has_lateral:
            g_lateral = torch.zeros_like(lateral)
            if m > 1:
                g_lateral[0, 1:] = (g_x[:, 1:] * spikes_prev[:, :-1]).sum(dim=(0, 2))
                g_lateral[1, :-1] = (g_x[:, :-1] * spikes_prev[:, 1:]).sum(dim=(0, 2))
        g_v0 = leak * p_bar_next
        g_i0 = i_bar
        g_a0 = decay * a_bar
        g_z0 = recurrent_current_t(c_bar_next, intra, lateral) if c_bar_next is not None else zeros
        return (
            g_x,
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
