"""Functional SC-ML recurrence in O(N v): the recurrent term of eq 15 for one fixed topology.

Weights are stored per edge: ``intra [M, v, v]`` (``[motif, post, pre]``) and ``lateral [2, M, v]``
(row 0: input from the same position of motif ``k-1``, row 1: from motif ``k+1``). The HRMAS mixed op
passes full off-diagonal blocks instead, ``lateral [2, M, v, v]`` (a block-tridiagonal matrix). The
recurrent current into neuron ``(k, p)`` is::

    r[k, p] = sum_q intra[k, p, q] s[k, q] + lateral[0, k, p] s[k-1, p] + lateral[1, k, p] s[k+1, p]

computed as one batched matmul over the motifs plus two shifted multiply-adds: ``O(B N v)`` work and
``O(N v)`` memory. The dense ``N x N`` matrix (:func:`dense_recurrent_matrix`) is only for plots and tests.
"""

from __future__ import annotations

import torch

from .topology import ConnectionType, MotifTopology

__all__ = [
    "effective_weights",
    "type_masks",
    "signed_from_masks",
    "lateral_types",
    "signed_weights",
    "add_recurrent_",
    "add_recurrent_t_",
    "recurrent_current",
    "recurrent_current_t",
    "dense_recurrent_matrix",
    "to_motif_layout",
    "from_motif_layout",
    "block_tridiagonal_index",
]


def type_masks(types: torch.Tensor) -> torch.Tensor:
    """``[3, ...]`` float masks (excitatory, inhibitory, free) of a tensor of connection types."""
    return torch.stack(
        [
            types == int(ConnectionType.EXCITATORY),
            types == int(ConnectionType.INHIBITORY),
            types == int(ConnectionType.FREE),
        ]
    ).to(torch.get_default_dtype())


def signed_from_masks(
    raw: torch.Tensor, masks: torch.Tensor, inhibitory: float | None = None
) -> torch.Tensor:
    """Signed weights from raw per-edge weights and :func:`type_masks` (the HRMAS paper section 3.1.3).

    Excitatory: ``|raw|`` (kept positive, trained); inhibitory: ``-|raw|`` (kept negative, trained), or
    the constant ``inhibitory`` when given (the paper's fixed -2 is
    :data:`~snn_motifs.topology.INHIBITORY_WEIGHT`; no gradient then); none: 0; free: ``raw``.
    """
    exc, inh, free = masks[0], masks[1], masks[2]
    if inhibitory is None:
        return (exc - inh) * raw.abs() + free * raw
    return exc * raw.abs() + free * raw + inh * float(inhibitory)


def signed_weights(raw: torch.Tensor, types: torch.Tensor, inhibitory: float | None = None) -> torch.Tensor:
    """:func:`signed_from_masks` for a tensor of connection types broadcasting against ``raw``."""
    return signed_from_masks(raw, type_masks(types.to(raw.device)).to(raw.dtype), inhibitory)


def lateral_types(topology: MotifTopology, n_motifs: int) -> torch.Tensor:
    """The lateral pattern repeated over ``n_motifs`` motifs ``[2, M, v]``, with the edges off the layer's
    ends (no left neighbour of the first motif, no right one of the last) set to none."""
    types = topology.lateral.unsqueeze(1).expand(2, n_motifs, topology.motif_size).clone()
    types[0, 0] = ConnectionType.NONE
    types[1, -1] = ConnectionType.NONE
    return types


def effective_weights(
    intra_raw: torch.Tensor,
    lateral_raw: torch.Tensor | None,
    topology: MotifTopology,
    inhibitory: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Signed intra ``[M, v, v]`` and lateral ``[2, M, v]`` weights, boundary lateral edges zeroed
    (``inhibitory`` as in :func:`signed_from_masks`)."""
    intra = signed_weights(intra_raw, topology.intra.unsqueeze(0), inhibitory)
    if lateral_raw is None:
        return intra, None
    return intra, signed_weights(lateral_raw, lateral_types(topology, lateral_raw.shape[1]), inhibitory)


def to_motif_layout(x: torch.Tensor, motif_size: int) -> torch.Tensor:
    """``[..., B, N]`` -> ``[..., M, B, v]`` (contiguous), the layout the batched matmul wants."""
    *lead, b, n = x.shape
    m = n // motif_size
    return x.reshape(*lead, b, m, motif_size).transpose(-3, -2).contiguous()


def from_motif_layout(x: torch.Tensor) -> torch.Tensor:
    """``[..., M, B, v]`` -> ``[..., B, N]``."""
    *lead, m, b, v = x.shape
    return x.transpose(-3, -2).reshape(*lead, b, m * v)


def add_recurrent_(
    out: torch.Tensor, s: torch.Tensor, intra: torch.Tensor | None, lateral: torch.Tensor | None
) -> torch.Tensor:
    """In place: ``out += W s`` for activity ``s`` in motif layout ``[M, B, v]`` (``s[t-1]``: one-step delay).

    Args:
        out: ``[M, B, v]`` tensor the recurrent current is added to (e.g. the feed-forward current).
        s: presynaptic spikes or PSCs ``[M, B, v]``.
        intra: signed intra weights ``[M, v, v]`` ``[motif, post, pre]``.
        lateral: signed lateral weights ``[2, M, v]``, or None when the topology has no lateral edges.
    """
    if intra is None:  # no recurrence
        return out
    if intra.shape[-1] == 1:  # self-recurrence (eq 8): a per-neuron scale, no matmul
        out.addcmul_(s, intra.view(intra.shape[0], 1, 1))
    else:
        out.baddbmm_(s, intra.transpose(1, 2))
    if lateral is not None and s.shape[0] > 1:
        if lateral.dim() == 4:  # full off-diagonal blocks [2, M, v, v] (the HRMAS mixed op)
            out[1:].baddbmm_(s[:-1], lateral[0, 1:].transpose(1, 2))
            out[:-1].baddbmm_(s[1:], lateral[1, :-1].transpose(1, 2))
        else:
            out[1:].addcmul_(lateral[0, 1:].unsqueeze(1), s[:-1])
            out[:-1].addcmul_(lateral[1, :-1].unsqueeze(1), s[1:])
    return out


def add_recurrent_t_(
    out: torch.Tensor, g: torch.Tensor, intra: torch.Tensor | None, lateral: torch.Tensor | None
) -> torch.Tensor:
    """In place: ``out += W^T g``, the transpose of :func:`add_recurrent_` (the backward pass)."""
    if intra is None:
        return out
    if intra.shape[-1] == 1:
        out.addcmul_(g, intra.view(intra.shape[0], 1, 1))
    else:
        out.baddbmm_(g, intra)
    if lateral is not None and g.shape[0] > 1:
        if lateral.dim() == 4:
            out[:-1].baddbmm_(g[1:], lateral[0, 1:])
            out[1:].baddbmm_(g[:-1], lateral[1, :-1])
        else:
            out[:-1].addcmul_(lateral[0, 1:].unsqueeze(1), g[1:])
            out[1:].addcmul_(lateral[1, :-1].unsqueeze(1), g[:-1])
    return out


def recurrent_current(
    s: torch.Tensor, intra: torch.Tensor, lateral: torch.Tensor | None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``out + W s`` (or ``W s``) as a new tensor; see :func:`add_recurrent_`. Differentiable."""
    base = torch.zeros_like(s) if out is None else out.clone()
    return add_recurrent_(base, s, intra, lateral)


def recurrent_current_t(
    g: torch.Tensor, intra: torch.Tensor, lateral: torch.Tensor | None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``out + W^T g`` (or ``W^T g``) as a new tensor; see :func:`add_recurrent_t_`."""
    base = torch.zeros_like(g) if out is None else out.clone()
    return add_recurrent_t_(base, g, intra, lateral)


def dense_recurrent_matrix(intra: torch.Tensor, lateral: torch.Tensor | None) -> torch.Tensor:
    """Materialise the ``[N, N]`` ``[post, pre]`` matrix from signed motif weights (plots/tests only)."""
    m, v, _ = intra.shape
    n = m * v
    dense = torch.block_diag(*intra.unbind(0)) if m > 1 else intra[0].clone()
    if lateral is not None and m > 1 and lateral.dim() == 4:
        for k in range(1, m):
            dense[k * v : (k + 1) * v, (k - 1) * v : k * v] += lateral[0, k]
        for k in range(m - 1):
            dense[k * v : (k + 1) * v, (k + 1) * v : (k + 2) * v] += lateral[1, k]
    elif lateral is not None and m > 1:
        idx = torch.arange(n, device=intra.device)
        left = lateral[0].reshape(n)
        right = lateral[1].reshape(n)
        dense = dense.index_put((idx[v:], idx[v:] - v), left[v:], accumulate=True)
        dense = dense.index_put((idx[:-v], idx[:-v] + v), right[:-v], accumulate=True)
    return dense


def block_tridiagonal_index(n: int, v: int, block: int, lateral: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices into a block-tridiagonal ``[N/block, 3, block, block]`` structure (blocks k-1, k,
    k+1 of every row block k) for the intra and lateral edges of motif size ``v`` (``v`` <= ``block``);
    the HRMAS mixed op scatters every option's edges into one such structure.

    Returns ``(intra_idx [N/v * v * v], lateral_idx [2 * N/v * v])``; lateral edges that would wrap
    around get index -1.
    """

    def flat(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
        k = post // block
        d = pre // block - k + 1  # 0: block k-1, 1: block k, 2: block k+1
        return ((k * 3 + d) * block + post % block) * block + pre % block

    m = n // v
    k = torch.arange(m).view(m, 1, 1)
    p = torch.arange(v).view(1, v, 1)
    q = torch.arange(v).view(1, 1, v)
    intra = flat((k * v + p).expand(m, v, v), (k * v + q).expand(m, v, v)).reshape(-1)
    if not lateral:
        return intra, torch.empty(0, dtype=torch.long)
    post = (torch.arange(m).view(m, 1) * v + torch.arange(v).view(1, v)).reshape(-1)
    left, right = post - v, post + v
    lat_left = torch.where(left >= 0, flat(post, left.clamp(min=0)), torch.full_like(post, -1))
    lat_right = torch.where(right < n, flat(post, right.clamp(max=n - 1)), torch.full_like(post, -1))
    return intra, torch.stack([lat_left, lat_right]).reshape(-1)
