"""Functional SC-ML recurrence in O(N v): the recurrent term of eq 15 for one fixed topology.

Weights are stored per edge: ``intra [M, v, v]`` (``[motif, post, pre]``) and ``lateral [2, M, v]``
(row 0: input from the same position of motif ``k-1``, row 1: from motif ``k+1``). The HRMAS mixed op
passes full off-diagonal blocks instead, ``lateral [2, M, v, v]`` (a block-tridiagonal matrix). The
recurrent current into neuron ``(k, p)`` is::

    r[k, p] = sum_q intra[k, p, q] s[k, q] + lateral[0, k, p] s[k-1, p] + lateral[1, k, p] s[k+1, p]

computed as one batched matmul over the motifs plus two shifted multiply-adds (:func:`recurrent_input`,
its transpose :func:`recurrent_input_t`, written once here for the step path and the sequence kernels):
``O(B N v)`` work and ``O(N v)`` memory. Activity is ``[B, M, v]``, the neuron axis of ``[B, N]`` viewed
as motifs (no copy). The dense ``N x N`` matrix (:func:`dense_recurrent_matrix`) is only for plots and tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .topology import ConnectionType, MotifTopology

__all__ = [
    "type_masks",
    "signed_from_masks",
    "lateral_types",
    "UNROLL_MAX",
    "block_matvec",
    "block_outer",
    "transposed_weights",
    "recurrent_input",
    "recurrent_input_t",
    "add_weight_grads",
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


def lateral_types(topology: MotifTopology, n_motifs: int) -> torch.Tensor:
    """The lateral pattern repeated over ``n_motifs`` motifs ``[2, M, v]``, with the edges off the layer's
    ends (no left neighbour of the first motif, no right one of the last) set to none."""
    types = topology.lateral.unsqueeze(1).expand(2, n_motifs, topology.motif_size).clone()
    types[0, 0] = ConnectionType.NONE
    types[1, -1] = ConnectionType.NONE
    return types


def to_motif_layout(x: torch.Tensor, motif_size: int) -> torch.Tensor:
    """``[..., B, N]`` -> ``[..., M, B, v]`` (contiguous), the layout of :func:`recurrent_current`."""
    *lead, b, n = x.shape
    m = n // motif_size
    return x.reshape(*lead, b, m, motif_size).transpose(-3, -2).contiguous()


def from_motif_layout(x: torch.Tensor) -> torch.Tensor:
    """``[..., M, B, v]`` -> ``[..., B, N]``."""
    *lead, m, b, v = x.shape
    return x.transpose(-3, -2).reshape(*lead, b, m * v)


#: motif sizes up to this are multiplied out term by term inside a compiled graph (see :func:`block_matvec`)
UNROLL_MAX = 32


def block_matvec(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``r[..., m, j] = sum_i z[..., m, i] w[m, i, j]`` for ``z`` ``[B, M, v]`` and ``w`` ``[M, v, v]``.

    Eagerly one batched matmul over the motifs. Inside a ``torch.compile`` graph small motifs are
    multiplied out as ``v`` broadcast multiply-adds of the rows ``w[:, i]`` (``w`` contiguous over ``j``):
    a pointwise expression the compiler vectorises over ``j`` and fuses with the neuron update (a reduction
    over ``i`` would cost a horizontal vector sum per neuron); larger blocks stay a batched matmul."""
    v = w.shape[-2]
    if v > UNROLL_MAX or not torch.compiler.is_compiling():
        return torch.bmm(z.transpose(0, 1), w).transpose(0, 1)  # = einsum("bmi,mij->bmj"), less overhead
    r = z[..., 0:1] * w[:, 0]
    for i in range(1, v):
        r = r + z[..., i : i + 1] * w[:, i]
    return r


def block_outer(g: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``sum_b g[b, m, p] s[b, m, q]`` -> ``[M, p, q]``: the gradient of :func:`block_matvec`'s weights
    over the batch (a batched matmul eagerly, a pointwise product and sum inside a compiled graph)."""
    if g.shape[-1] > UNROLL_MAX or not torch.compiler.is_compiling():
        return torch.bmm(g.permute(1, 2, 0), s.transpose(0, 1))  # = einsum("bmp,bmq->mpq")
    return (g.unsqueeze(-1) * s.unsqueeze(-2)).sum(0)


def _pad_motifs(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Zero-pad the motif axis (dim -2) of ``[..., M-1, v]`` to ``[..., M, v]``."""
    return F.pad(x, (0, 0, before, after))


Shifted = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _add_shifted(r: torch.Tensor, from_left: Shifted, from_right: Shifted) -> torch.Tensor:
    """``r`` ``[B, M, v]`` plus ``from_left`` ``[B, M-1, v]`` into motifs ``1..M-1`` and ``from_right`` into
    motifs ``0..M-2``; a pair ``(w, z)`` stands for the product ``w * z``. Inside a compiled graph a
    pointwise sum of zero-padded terms (fused by the compiler); eagerly, multiply-adds in place into the
    fresh ``r`` (two passes instead of six)."""
    if torch.compiler.is_compiling():
        terms = [t[0] * t[1] if isinstance(t, tuple) else t for t in (from_left, from_right)]
        return r + _pad_motifs(terms[0], 1, 0) + _pad_motifs(terms[1], 0, 1)
    for part, term in ((r[:, 1:], from_left), (r[:, :-1], from_right)):
        if isinstance(term, tuple):
            part.addcmul_(*term)
        else:
            part.add_(term)
    return r


def transposed_weights(
    intra: torch.Tensor | None, lateral: torch.Tensor | None
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``[motif, pre, post]`` copies of ``[motif, post, pre]`` weights (per-neuron lateral weights need
    none): what :func:`recurrent_input` takes, made once per sequence."""
    intra_t = None if intra is None else intra.transpose(-1, -2).contiguous()
    lateral_t = lateral
    if lateral is not None and lateral.dim() == 4:
        lateral_t = lateral.transpose(-1, -2).contiguous()
    return intra_t, lateral_t


def recurrent_input(
    z: torch.Tensor, intra_t: torch.Tensor | None, lateral_t: torch.Tensor | None
) -> torch.Tensor:
    """``W s``: the recurrent current (eq 15) for activity ``z`` ``[B, M, v]`` (the neuron axis of
    ``[B, N]`` viewed as motifs), from :func:`transposed_weights`.

    ``r[k, p] = sum_q intra[k, p, q] z[k, q] + lateral[0, k, p] z[k-1, p] + lateral[1, k, p] z[k+1, p]``
    (module docstring); full off-diagonal blocks ``[2, M, v, v]`` (the HRMAS mixed op) are block matvecs
    too. The one implementation of ``W s``: the step path, the kernels' chunks and the tests use it."""
    if intra_t is None:  # no recurrence
        return torch.zeros_like(z)
    r = block_matvec(z, intra_t)
    if lateral_t is None or z.shape[-2] == 1:
        return r
    if lateral_t.dim() == 4:  # full off-diagonal blocks (the HRMAS mixed op)
        left = block_matvec(z[:, :-1], lateral_t[0, 1:])
        right = block_matvec(z[:, 1:], lateral_t[1, :-1])
        return _add_shifted(r, left, right)
    return _add_shifted(r, (lateral_t[0, 1:], z[:, :-1]), (lateral_t[1, :-1], z[:, 1:]))


def recurrent_input_t(
    g: torch.Tensor, intra: torch.Tensor | None, lateral: torch.Tensor | None
) -> torch.Tensor:
    """``W^T g``, the transpose of :func:`recurrent_input` (the backward pass), from the weights as
    stored (``[motif, post, pre]``); ``g`` ``[B, M, v]``."""
    if intra is None:
        return torch.zeros_like(g)
    r = block_matvec(g, intra)
    if lateral is None or g.shape[-2] == 1:
        return r
    if lateral.dim() == 4:
        to_right = block_matvec(g[:, :-1], lateral[1, :-1])  # into motif k+1 from the one before it
        to_left = block_matvec(g[:, 1:], lateral[0, 1:])
        return _add_shifted(r, to_right, to_left)
    return _add_shifted(r, (lateral[1, :-1], g[:, :-1]), (lateral[0, 1:], g[:, 1:]))


def add_weight_grads(
    grads: tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None],
    g: torch.Tensor,
    s: torch.Tensor,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Accumulate the weight gradients of one :func:`recurrent_input` ``r = W s``, given ``g = dL/dr``
    and ``s`` (``[B, M, v]``), into ``grads = (intra, lateral_left, lateral_right)`` (None: not needed).
    Intra ``[M, v, v]``; lateral rows ``[M, v]`` per neuron or ``[M, v, v]`` full blocks, the edges off
    the layer's ends left at zero."""
    g_intra, g_left, g_right = grads
    if g_intra is not None:
        g_intra = g_intra + block_outer(g, s)
    if g_left is not None and s.shape[-2] > 1:
        if g_left.dim() == 3:  # full blocks [M, v, v]
            g_left = g_left + F.pad(block_outer(g[:, 1:], s[:, :-1]), (0, 0, 0, 0, 1, 0))
            g_right = g_right + F.pad(block_outer(g[:, :-1], s[:, 1:]), (0, 0, 0, 0, 0, 1))
        else:
            g_left = g_left + _pad_motifs((g[:, 1:] * s[:, :-1]).sum(0), 1, 0)
            g_right = g_right + _pad_motifs((g[:, :-1] * s[:, 1:]).sum(0), 0, 1)
    return g_intra, g_left, g_right


def recurrent_current(
    s: torch.Tensor, intra: torch.Tensor | None, lateral: torch.Tensor | None
) -> torch.Tensor:
    """``W s`` for activity in the motif-first layout ``[M, B, v]`` (:func:`to_motif_layout`), with the
    weights as stored: :func:`recurrent_input` for plots, metrics and tests. Differentiable."""
    r = recurrent_input(s.transpose(0, 1), *transposed_weights(intra, lateral))
    return r.transpose(0, 1)


def recurrent_current_t(
    g: torch.Tensor, intra: torch.Tensor | None, lateral: torch.Tensor | None
) -> torch.Tensor:
    """``W^T g`` in the motif-first layout ``[M, B, v]``: :func:`recurrent_input_t`."""
    return recurrent_input_t(g.transpose(0, 1), intra, lateral).transpose(0, 1)


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
