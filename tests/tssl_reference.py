"""Sequence-mode TSSL-BP, written from the description of what the authors' code computes (the module
docstring of snn_motifs.tssl, read from their public TSSL-BP repository), for the tests only: whole time
axis at once, explicit kernel sums, no autograd.

Our neuron (snn_motifs.neuron): u-[t] = leak u[t-1] + tau_inv I[t]; the authors' has gain 1 on I, so
dL/dI = tau_inv * delta. PSC without gain (eq 1); warm-up threshold on that PSC.
"""

from __future__ import annotations

import torch


def warmup(x: torch.Tensor, width: float, exp_clamp: float) -> torch.Tensor:
    e = torch.exp(torch.clamp((-x) / width, -exp_clamp, exp_clamp))
    return e / ((1 + e) ** 2 * width)


def tssl_reference(
    syn: torch.Tensor,  # I[t], [T, B, N]
    grad_psc: torch.Tensor,  # dL/da[t], [T, B, N]
    tau_mem: torch.Tensor,  # [N]
    tau_syn: float,
    v_th: float,
    bound: float = 8.0,
    width: float = 0.2,
    exp_clamp: float = 8.0,
    warmup_threshold: float = 0.25,
):
    """Returns (spikes, dL/dI) for a feed-forward layer driven by synaptic currents ``syn``."""
    steps = syn.shape[0]
    leak, tau_inv, decay = 1 - 1 / tau_mem, 1 / tau_mem, 1 - 1 / tau_syn
    u = torch.zeros_like(syn[0])
    a = torch.zeros_like(syn[0])
    mems, prevs, spikes, pscs = [], [], [], []
    for t in range(steps):
        m = leak * u + tau_inv * syn[t]
        s = (m > v_th).to(syn.dtype)
        prevs.append(u)
        mems.append(m)
        spikes.append(s)
        u = m * (1 - s)
        a = decay * a + s
        pscs.append(a)
    # g_s[t] = sum_{k >= t} kappa[k - t] dL/da[k], kappa[j] = decay^j (eq 1 PSC of a unit spike)
    g_s = torch.zeros_like(syn)
    for t in range(steps):
        for k in range(t, steps):
            g_s[t] += decay ** (k - t) * grad_psc[k]
    grad_syn = torch.zeros_like(syn)
    theta = torch.zeros_like(syn[0])
    for t in range(steps - 1, -1, -1):
        s, m = spikes[t], mems[t]
        du = m - prevs[t]
        inv = torch.where(du > 0, 1 / du, torch.zeros_like(du))
        q = torch.clamp(inv, 0, bound) * s
        tssl = q * g_s[t]
        if t < steps - 1:
            tssl = tssl + theta * m * tau_inv * q + theta * (1 - tau_inv) * (1 - s)
        theta = tssl * s + theta * (1 - s) * (1 - tau_inv)
        delta = torch.where(pscs[t] < warmup_threshold, warmup(m - v_th, width, exp_clamp) * g_s[t], tssl)
        grad_syn[t] = tau_inv * delta
    return torch.stack(spikes), grad_syn
