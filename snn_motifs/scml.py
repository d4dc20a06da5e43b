"""SC-ML, the Sparsely-Connected Recurrent Motif Layer (the HRMAS paper, section 2.2, eqs 15-17), and the
self-recurrent layer of ScSr-SNN (the ScSr-SNN paper, eq 8) as its ``v = 1`` special case.

The recurrent term ``W_rec s[t-1]`` of :mod:`snn_motifs.layers` (one-step delay) has the SC-ML structure
of :mod:`snn_motifs.topology` and is applied in O(N v) (:mod:`snn_motifs.recurrence`); through the
neuron's synaptic filter ``W_rec s[t-1]`` becomes ``W_rec a[t-1]``, the PSC form of eq 15.

:class:`MotifRecurrentLayer` holds what every motif-structured recurrent layer shares (the block layout,
the recurrent current of a step, the step API's weight cache); :class:`SCML` adds the topology and its
sign constraint, the HRMAS search space (:class:`snn_motifs.search.MixedMotifLayer`) the mixed operation.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .aliases import layer_sizes
from .layers import SpikingLayer
from .neuron import LIFState
from .recurrence import (
    dense_recurrent_matrix,
    lateral_types,
    recurrent_input,
    signed_from_masks,
    transposed_weights,
    type_masks,
)
from .topology import EXCITATORY_INIT, ConnectionType, MotifTopology, check_motif_size, initial_weights

__all__ = ["MotifRecurrentLayer", "SCML", "SelfRecurrent"]


class MotifRecurrentLayer(SpikingLayer):
    """A :class:`~snn_motifs.layers.SpikingLayer` with a recurrence of motif blocks (the HRMAS paper, eq 15):
    ``W_rec`` is block-tridiagonal over blocks of :attr:`block_size` neurons, held as intra-block weights
    ``[N/b, b, b]`` and lateral weights ``[2, N/b, b]`` (:meth:`recurrent_weights`, which a subclass
    defines) and applied in O(N b) by :mod:`snn_motifs.recurrence`, in the step API as in the sequence
    kernel.

    The step API builds the signed weights once per sequence: they are reused while the state passed in
    is the one this layer returned last and no parameter changed in place (an optimiser step,
    ``load_state_dict``), and rebuilt for a new sequence (``state`` None, a fresh ``init_state``, a
    detached state), so separate forwards never share an autograd graph.
    """

    has_recurrence = True

    @property
    def block_size(self) -> int:  # pragma: no cover - every subclass defines its block
        raise NotImplementedError

    def _step_weights(self, weights: tuple) -> tuple:
        return transposed_weights(*weights)

    def _step(
        self, ff: torch.Tensor, state: LIFState, weights: tuple | None
    ) -> tuple[torch.Tensor, LIFState]:
        """One step (eq 15): ``ff`` ``[B, N]`` plus the recurrent current of last step's PSC through the
        transposed block weights (:func:`~snn_motifs.recurrence.transposed_weights`)."""
        z = state.z.unflatten(-1, (self.n_neurons // self.block_size, self.block_size))
        current = ff + recurrent_input(z, *weights).flatten(-2)
        return self.neurons.step(current, state)

    def _weights_key(self) -> tuple:
        return torch.is_grad_enabled(), tuple(p._version for p in self.parameters())

    def _weights_for_step(self, state: LIFState) -> tuple[tuple, tuple]:
        key = self._weights_key()  # once per step
        cache = self.__dict__.get("_step_cache")
        fresh = cache is None or torch.compiler.is_compiling()
        weights = cache[2] if not fresh and cache[0] is state.v and cache[1] == key else None
        if weights is None:
            weights = self._step_weights(self.recurrent_weights())
        return weights, (key, weights)

    def _after_step(self, state: LIFState, kept: tuple) -> None:
        # kept out of the module's attributes: the weights are non-leaf tensors of this sequence's graph
        self.__dict__["_step_cache"] = (state.v, *kept)

    def _forget_sequence(self) -> None:
        self.__dict__.pop("_step_cache", None)

    def __getstate__(self) -> dict:
        """A copy (deepcopy, pickle) leaves the step cache behind: its tensors belong to an autograd graph,
        which deepcopy refuses; a copy builds it again on its first step."""
        state = super().__getstate__()
        state.pop("_step_cache", None)
        return state

    def recurrent_matrix(self) -> torch.Tensor:
        """Dense ``[N, N]`` ``[post, pre]`` recurrent matrix, for plots and tests only (O(N^2))."""
        intra, lateral = self.recurrent_weights()
        return dense_recurrent_matrix(intra.detach(), None if lateral is None else lateral.detach())


class SCML(MotifRecurrentLayer):
    """Sparsely-connected recurrent motif layer (the HRMAS paper), a :class:`~snn_motifs.layers.SpikingLayer`
    with the motif recurrence of eq 15.

    Args:
        in_features: size ``F`` of each input vector (Norse: ``input_size``).
        n_neurons: layer size ``N`` (Norse: ``hidden_size``).
        motif_size: motif size ``v``, must divide ``N``. Optional when ``topology`` is given.
        topology: shared :class:`~snn_motifs.topology.MotifTopology`; default: every intra-motif and
            lateral edge free-sign (trained, any sign), which learns best without a search
            (docs/results.md, "Accuracy"); an HRMAS genotype or ``MotifTopology.uniform(v)`` gives
            excitatory / inhibitory / absent edge types.
        recurrent_init: one initial value for every recurrent edge (the paper's 0.2). Default None: the
            fan-in aware initialisation of :func:`~snn_motifs.topology.initial_weights` (excitatory and
            inhibitory edges start at 0.2/fan_in in magnitude, free-sign edges ``N(0, 1/fan_in)``).
        inhibitory_weight: None (default): inhibitory edges are trained and kept negative (``-|w|``);
            a number fixes them at that value, untrained (the paper's -2, sec 3.1.3, is
            :data:`~snn_motifs.topology.INHIBITORY_WEIGHT`; on this neuron's eq-1 PSC it is far stronger
            than on the authors', whose PSC carries a ``1/tau_s`` gain).
        **kwargs: neuron and API options of :class:`~snn_motifs.layers.SpikingLayer` (``backend``,
            ``neuron``, ``spike_fn``, ``learn_leak``, ``learn_gain``, ``bias``, ``batch_first``,
            ``check_inputs``, ``fused``, ``compile``) and snnTorch's and Norse's names
            (:mod:`snn_motifs.aliases`): ``SCML(F, N, v, beta=0.9)`` is snnTorch's Leaky with the motif
            recurrence (as ``snn.RLeaky``, the spikes of the last step through the recurrent weights),
            ``SCML(input_size=F, hidden_size=N, motif_size=v, p=LIFParameters(...))`` Norse's LIF (as
            ``LIFRecurrentCell``).

    Recurrent weights are per edge, ``intra_weight`` ``[N/v, v, v]`` and ``lateral_weight`` ``[2, N/v, v]``:
    O(N v) storage and compute. Excitatory edges stay positive and inhibitory ones negative (sec 3.1.3).
    Step and sequence APIs as in :class:`~snn_motifs.layers.SpikingLayer`.

    The ``state_dict`` also holds the topology's connection types, ``topology_intra`` ``[v, v]`` and
    ``topology_lateral`` ``[2, v]`` (:class:`~snn_motifs.topology.ConnectionType` codes, ``uint8``):
    loading weights saved from a layer of another topology raises ``RuntimeError`` naming both, before
    any of the layer's tensors is overwritten. A ``state_dict`` without these keys (written before they
    existed) loads as before, unchecked.
    """

    def __init__(
        self,
        in_features: int | None = None,
        n_neurons: int | None = None,
        motif_size: int | None = None,
        *,
        topology: MotifTopology | None = None,
        recurrent_init: float | None = None,
        inhibitory_weight: float | None = None,
        **kwargs,
    ) -> None:
        in_features, n_neurons = layer_sizes(in_features, n_neurons, kwargs)
        if inhibitory_weight is not None and not (
            isinstance(inhibitory_weight, (int, float)) and math.isfinite(inhibitory_weight)
        ):
            raise ValueError(f"inhibitory_weight must be a finite number or None, got {inhibitory_weight!r}")
        if topology is None:
            if motif_size is None:
                raise ValueError("give motif_size (v) or a topology")
            check_motif_size(n_neurons, motif_size)
            topology = MotifTopology.uniform(motif_size, ConnectionType.FREE, ConnectionType.FREE)
        elif not isinstance(topology, MotifTopology):
            raise TypeError(f"topology must be a MotifTopology, got {type(topology).__name__}")
        elif motif_size is not None and motif_size != topology.motif_size:
            raise ValueError(f"motif_size={motif_size} disagrees with the topology's v={topology.motif_size}")
        check_motif_size(n_neurons, topology.motif_size)
        super().__init__(in_features, n_neurons, **kwargs)
        self.topology = topology
        self.inhibitory_weight = None if inhibitory_weight is None else float(inhibitory_weight)
        n_motifs = n_neurons // topology.motif_size
        intra, lateral = initial_weights(topology, n_motifs, recurrent_init)
        self.intra_weight = nn.Parameter(intra)
        # the topology in the state_dict (type codes, one byte per edge of one motif), so that weights never
        # load into a layer of another topology
        self.register_buffer("topology_intra", topology.intra.to(torch.uint8))
        self.register_buffer("topology_lateral", topology.lateral.to(torch.uint8))
        # the types as float masks, built once (buffers follow .to(); tracing and compiling see tensors)
        self.register_buffer("_intra_masks", type_masks(topology.intra.unsqueeze(0)), persistent=False)
        if topology.has_lateral and n_neurons > topology.motif_size:
            self.lateral_weight = nn.Parameter(lateral)
            masks = type_masks(lateral_types(topology, n_motifs))
            self.register_buffer("_lateral_masks", masks, persistent=False)
        else:
            self.register_parameter("lateral_weight", None)
            self.register_buffer("_lateral_masks", None, persistent=False)

    # -- structure --------------------------------------------------------------------------------
    @property
    def motif_size(self) -> int:
        """The motif size ``v`` of the topology."""
        return self.topology.motif_size

    @property
    def n_motifs(self) -> int:
        """``N / v``."""
        return self.n_neurons // self.motif_size

    @property
    def block_size(self) -> int:
        """The kernel's layout block: one motif."""
        return self.motif_size

    def recurrent_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Signed weights after the types: intra ``[M, v, v]`` and lateral ``[2, M, v]`` (or None)."""
        inhibitory = self.inhibitory_weight
        intra = signed_from_masks(self.intra_weight, self._intra_masks, inhibitory)
        if self.lateral_weight is None:
            return intra, None
        return intra, signed_from_masks(self.lateral_weight, self._lateral_masks, inhibitory)

    # -- saving -----------------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args) -> None:
        """Refuse weights saved from a layer of another topology; accept old state dicts without types."""
        keys = (f"{prefix}topology_intra", f"{prefix}topology_lateral")
        saved = [state_dict.get(k) for k in keys]
        if saved[0] is None and saved[1] is None:  # written before the types were saved: nothing to check
            state_dict[keys[0]] = self.topology_intra
            state_dict[keys[1]] = self.topology_lateral
        elif saved[0] is not None and saved[1] is not None:
            self._check_saved_topology(saved[0], saved[1], prefix)
        super()._load_from_state_dict(state_dict, prefix, *args)  # one key alone: torch reports it missing

    def _check_saved_topology(self, intra: torch.Tensor, lateral: torch.Tensor, prefix: str) -> None:
        where = f"{type(self).__name__}" + (f" '{prefix[:-1]}'" if prefix else "")
        try:
            saved = MotifTopology(int(intra.shape[0]) if intra.dim() else 0, intra, lateral)
        except (TypeError, ValueError) as exc:
            raise RuntimeError(
                f"cannot load the state_dict into {where}: its saved topology is invalid ({exc})"
            ) from None
        difference = saved.difference(self.topology)
        if difference:
            raise RuntimeError(
                f"cannot load the state_dict into {where}: it was saved from a layer with topology "
                f"{saved.summary()}, this layer has {self.topology.summary()} ({difference}). Weights "
                f"mean nothing under another topology: {self._topology_hint(saved)}."
            )

    def _topology_hint(self, saved: MotifTopology) -> str:
        """How to build a layer that a state_dict saved with topology ``saved`` loads into."""
        return (
            "build the layer with the saved topology, e.g. from the genotype "
            "(SCML(..., topology=genotype.topology)) or from the saved types "
            "(MotifTopology(v, state_dict[...topology_intra], state_dict[...topology_lateral]))"
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, n_neurons={self.n_neurons}, "
            f"motif_size={self.motif_size}, lateral={self.lateral_weight is not None}, "
            f"backend={self.backend!r}"
        )


class SelfRecurrent(SCML):
    """Self-recurrent spiking layer of ScSr-SNN (the ScSr-SNN paper, eq 8): SC-ML with ``v = 1``, no lateral.

    Each neuron feeds its own PSC back to itself through one trained weight ``w_s,i`` (init 0.2, the
    papers' value; ``recurrent_init`` changes it). By
    default the weight's sign is free, as in eq 8; ``kind="excitatory"`` keeps it positive and
    ``kind="inhibitory"`` negative, like SC-ML's edges of those types.
    """

    def __init__(
        self,
        in_features: int | None = None,
        n_neurons: int | None = None,
        *,
        kind: ConnectionType | str = ConnectionType.FREE,
        **kwargs,
    ) -> None:
        if "topology" in kwargs or "motif_size" in kwargs:
            raise TypeError("SelfRecurrent fixes the topology (v = 1, no lateral edges)")
        kwargs.setdefault("recurrent_init", EXCITATORY_INIT)
        super().__init__(in_features, n_neurons, topology=MotifTopology.self_recurrent(kind), **kwargs)

    def _topology_hint(self, saved: MotifTopology) -> str:
        if saved.motif_size != 1 or saved.has_lateral:  # saved from an SC-ML layer, not a self-recurrent one
            return super()._topology_hint(saved)
        kind = ConnectionType(int(saved.intra[0, 0])).name.lower()
        return f"build the layer with the saved connection type, SelfRecurrent(..., kind={kind!r})"

    @property
    def self_weight(self) -> torch.Tensor:
        """The signed self-recurrent weights ``W_s`` of eq 8, ``[N]``."""
        return self.recurrent_weights()[0].view(self.n_neurons)
