"""The HRMAS search space: a DARTS mixed-op recurrent connection over motif sizes and connection types
(the HRMAS paper, eqs 11 and 15, Figure 5), and the network searched with it.

For motif-size options ``V`` (each dividing N) and the three connection types ``C = {none, excitatory,
inhibitory}``, the recurrent weight from neuron ``r`` to neuron ``i`` is (eq 15)::

    W_ir = sum_v softmax(alpha^v)_v  sum_c softmax(alpha^c_{v,ir})_c  w^c_{v,ir}     (r in I_i^v)

with ``w^exc = |w_v,ir|``, ``w^inh = -|w_v,ir|`` and ``w^none = 0``: one trained magnitude per edge, its
sign set by the type. The type logits ``alpha^c`` of an option are shared by all its motifs (a ``v x v``
intra pattern and a ``2 x v`` lateral pattern); the weights are per edge.

**A working regime from the first step.** The paper fixes ``w^inh = -2`` and starts ``w^exc`` at 0.2. On
this neuron (eq-1 PSC without the authors' ``1/tau_s`` gain, ``V_th = 1``) that makes every mixed edge
``(0.2 - 2)/3`` at a neutral ``alpha``, and the searched layer falls nearly silent (hidden rates
0.04-0.10 against ~0.25 for a discretised SC-ML), so ``alpha`` gets almost no signal. Here the magnitudes
start fan-in aware, ``0.2 / (v + 2)`` (what :func:`~snn_motifs.topology.initial_weights` gives an
SC-ML's edges), and excitatory and inhibitory share them: at a neutral ``alpha`` the recurrence is
balanced and the layer fires at the rate its input sets. ``inhibitory_weight=-2.0`` and
``weight_init=0.2`` restore the paper's constants.

**Memory O(N max v), built once per forward pass.** Every edge of every option joins neurons at most
``v_max`` apart (intra: ``|i - r| < v``, lateral: ``|i - r| = v``), so the mixed matrix is
block-tridiagonal with blocks of ``v_max``: ``3 N v_max`` numbers. :meth:`MixedMotifLayer.recurrent_weights`
scatters every option's weighted edges into that structure once per forward call (the recurrence is
linear in ``s[t-1]``, so it does not change within a pass), and the layer then runs through the same
fused kernel as :class:`~snn_motifs.SCML` (three batched matmuls per step).

The searched network is an :class:`~snn_motifs.SCMLClassifier` whose hidden layer is the mixed op
(:func:`search_network`); :func:`arch_parameters` and :func:`weight_parameters` split its parameters
between the architect's optimiser and the weights' one. What optimises ``alpha`` lives in
:mod:`snn_motifs.search.architect`, as DARTS keeps ``model_search`` apart from ``architect``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from ..models import SCMLClassifier
from ..recurrence import block_tridiagonal_index
from ..scml import MotifRecurrentLayer
from ..topology import EXCITATORY_INPUT, ConnectionType, MotifTopology, check_motif_size
from .config import HRMASConfig

__all__ = [
    "MixedMotifLayer",
    "TYPE_ORDER",
    "RENAMED_PARAMETERS",
    "check_options",
    "search_network",
    "arch_parameters",
    "weight_parameters",
]

#: order of the type logits in ``alpha^c``
TYPE_ORDER = (ConnectionType.NONE, ConnectionType.EXCITATORY, ConnectionType.INHIBITORY)


def check_options(n_neurons: int, motif_sizes: Sequence[int]) -> list[int]:
    """The motif-size options sorted, each checked to divide ``n_neurons`` (a ValueError names a bad one)."""
    options = list(motif_sizes)
    if not options:
        raise ValueError("motif_sizes is empty: give at least one motif-size option, e.g. [2, 4, 8, 16, 32]")
    for v in options:
        try:
            check_motif_size(n_neurons, v)
        except ValueError as exc:
            raise ValueError(f"motif-size option {v!r} is invalid for N={n_neurons}: {exc}") from None
    if len(set(options)) != len(options):
        raise ValueError(f"motif-size options must be distinct, got {options}")
    return sorted(options)


class MixedMotifLayer(MotifRecurrentLayer):
    """A spiking layer whose recurrence is the HRMAS mixed op (same interface as :class:`~snn_motifs.SCML`).

    Args:
        in_features, n_neurons: sizes.
        motif_sizes: the options ``V`` (each must divide ``n_neurons``), e.g. ``[2, 4, 8, 16, 32]``.
        lateral: include the lateral (inter-motif) edges (False: the "without lateral" ablation).
        inhibitory_weight: None (default): ``w^inh = -|w|``, trained; a number fixes ``w^inh`` (paper: -2).
        weight_init: initial ``|w|`` of every edge; None (default): ``0.2 / fan_in`` per option.
        **kwargs: neuron and API options of :class:`~snn_motifs.layers.SpikingLayer`.

    ``arch_parameters()`` returns the architecture logits (``alpha^v`` and every option's ``alpha^c``);
    ``weight_parameters()`` everything else, so two optimizers can own them. :meth:`fix_motif_size`
    freezes ``alpha^v`` to one option (the second search phase); :meth:`genotype` discretises.
    """

    def __init__(
        self,
        in_features: int,
        n_neurons: int,
        motif_sizes: Sequence[int] = (2, 4, 8, 16, 32),
        *,
        lateral: bool = True,
        inhibitory_weight: float | None = None,
        weight_init: float | None = None,
        **kwargs,
    ) -> None:
        options = check_options(n_neurons, motif_sizes)
        super().__init__(in_features, n_neurons, **kwargs)
        self.options = options
        self.block = max(options)
        self.lateral = lateral
        self.fixed_size: int | None = None
        self.inhibitory_weight = None if inhibitory_weight is None else float(inhibitory_weight)
        self.intra_weight = nn.ParameterList()
        self.lateral_weight = nn.ParameterList()
        self.arch = nn.ParameterDict({"size": nn.Parameter(torch.zeros(len(options)))})
        for v in options:
            m = n_neurons // v
            init = EXCITATORY_INPUT / (v + 2 * lateral) if weight_init is None else float(weight_init)
            self.intra_weight.append(nn.Parameter(torch.full((m, v, v), init)))
            self.arch[f"intra_{v}"] = nn.Parameter(torch.zeros(v, v, len(TYPE_ORDER)))
            if lateral:
                self.lateral_weight.append(nn.Parameter(torch.full((2, m, v), init)))
                self.arch[f"lateral_{v}"] = nn.Parameter(torch.zeros(2, v, len(TYPE_ORDER)))
            intra_idx, lat_idx = block_tridiagonal_index(n_neurons, v, self.block, lateral)
            self.register_buffer(f"_idx_intra_{v}", intra_idx, persistent=False)
            self.register_buffer(f"_idx_lateral_{v}", lat_idx, persistent=False)
        self.register_load_state_dict_pre_hook(_renamed_weights)  # old checkpoints' weights_intra.*
        #: spikes per sample each neuron sent across the recurrence in the last :meth:`run` (steps
        #: ``0 .. T-2``), ``[N]``, detached: what a cost-aware search weights the synapses with
        #: (:mod:`snn_motifs.search.cost`)
        self.last_crossing_spikes: torch.Tensor | None = None

    def run(self, x: torch.Tensor, state=None, **kwargs):
        """:meth:`SpikingLayer.run <snn_motifs.layers.SpikingLayer.run>`, also recording
        :attr:`last_crossing_spikes`."""
        out = super().run(x, state, **kwargs)
        batch_first = kwargs.get("batch_first")
        spikes = out[0].detach()
        if self.batch_first if batch_first is None else batch_first:
            spikes = spikes.transpose(0, 1)
        self.last_crossing_spikes = spikes[:-1].sum((0, 1)) / spikes.shape[1]
        return out

    # -- parameters ----------------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.arch.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    @property
    def weights_intra(self) -> nn.ParameterList:
        """Deprecated name of ``intra_weight`` (one ``[N/v, v, v]`` magnitude tensor per option)."""
        warnings.warn("MixedMotifLayer.weights_intra is deprecated; use intra_weight", DeprecationWarning, 2)
        return self.intra_weight

    @property
    def weights_lateral(self) -> nn.ParameterList:
        """Deprecated name of ``lateral_weight`` (one ``[2, N/v, v]`` magnitude tensor per option)."""
        message = "MixedMotifLayer.weights_lateral is deprecated; use lateral_weight"
        warnings.warn(message, DeprecationWarning, 2)
        return self.lateral_weight

    @property
    def largest_option(self) -> int:
        """The largest motif-size option: the block of the recurrent matmuls' layout (every option's edges
        are scattered into blocks of this size, :meth:`recurrent_weights`)."""
        return self.block

    @property
    def block_size(self) -> int:
        """The kernel's layout block: :attr:`largest_option`."""
        return self.block

    @property
    def motif_size(self) -> int:
        """Deprecated: a mixed layer has no one motif size. This returned the layout block,
        :attr:`largest_option`; the searched size is :attr:`fixed_size` once fixed, :meth:`leading_size`
        the most likely one."""
        warnings.warn(
            "MixedMotifLayer.motif_size is deprecated (it was the largest option, the layout block); use "
            "largest_option, leading_size() (the most likely size) or fixed_size",
            DeprecationWarning,
            2,
        )
        return self.block

    def size_probabilities(self) -> torch.Tensor:
        """``softmax(alpha^v)``, or one-hot once the size is fixed."""
        if self.fixed_size is not None:
            out = torch.zeros(len(self.options), device=self.arch["size"].device)
            out[self.options.index(self.fixed_size)] = 1.0
            return out
        return torch.softmax(self.arch["size"], dim=0)

    def fix_motif_size(self, v: int | None = None) -> int:
        """Phase 2 of the incremental schedule: fix the motif size (default: argmax ``alpha^v``)."""
        if v is None:
            v = self.options[int(self.arch["size"].argmax())]
        if v not in self.options:
            raise ValueError(f"motif size {v} is not one of the options {self.options}")
        self.fixed_size = v
        self.arch["size"].requires_grad_(False)
        return v

    # -- the mixed recurrent matrix (eq 15) ------------------------------------------------------------
    def _option_edges(self, j: int, v: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Type-mixed edge weights of option ``v``: intra ``[M_v, v, v]``, lateral ``[2, M_v, v]``."""
        p = torch.softmax(self.arch[f"intra_{v}"], dim=-1)
        intra = self._mix(p, self.intra_weight[j])
        lateral = None
        if self.lateral:
            pl = torch.softmax(self.arch[f"lateral_{v}"], dim=-1).unsqueeze(1)  # [2, 1, v, 3]
            lateral = self._mix(pl, self.lateral_weight[j])
        return intra, lateral

    def _mix(self, p: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """``p_exc w^exc + p_inh w^inh`` per edge (``p_none`` contributes 0)."""
        magnitude = raw.abs()
        if self.inhibitory_weight is None:
            return (p[..., 1] - p[..., 2]) * magnitude
        return p[..., 1] * magnitude + p[..., 2] * self.inhibitory_weight

    def recurrent_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed matrix as blocks: intra ``[M, B, B]`` and lateral ``[2, M, B, B]``, ``B = max V``."""
        n, block = self.n_neurons, self.block
        m = n // block
        probs = self.size_probabilities()
        ref = self.intra_weight[0]
        flat = ref.new_zeros(m * 3 * block * block)
        for j, v in enumerate(self.options):
            if self.fixed_size is not None and v != self.fixed_size:
                continue
            intra, lateral = self._option_edges(j, v)
            flat = flat.index_add(0, getattr(self, f"_idx_intra_{v}"), (probs[j] * intra).reshape(-1))
            if lateral is not None:
                idx = getattr(self, f"_idx_lateral_{v}")
                keep = idx >= 0
                flat = flat.index_add(0, idx[keep], (probs[j] * lateral).reshape(-1)[keep])
        blocks = flat.view(m, 3, block, block)
        return blocks[:, 1], torch.stack([blocks[:, 0], blocks[:, 2]])

    # -- discretisation -----------------------------------------------------------------------------
    def leading_size(self) -> int:
        """The fixed motif size, or the most likely one."""
        return (
            self.fixed_size if self.fixed_size is not None else self.options[int(self.arch["size"].argmax())]
        )

    def type_confidence(self) -> float:
        """Mean over the leading option's connections of the largest type probability (1/3: undecided)."""
        v = self.leading_size()
        names = [f"intra_{v}", *([f"lateral_{v}"] if self.lateral else [])]
        probs = [torch.softmax(self.arch[k].detach(), -1).amax(-1).reshape(-1) for k in names]
        return float(torch.cat(probs).mean())

    def genotype_topology(self) -> MotifTopology:
        """Argmax of the architecture: motif size, then per connection the most likely type ('none'
        removes the edge)."""
        v = self.leading_size()
        to_type = torch.tensor([int(t) for t in TYPE_ORDER])
        intra = to_type[self.arch[f"intra_{v}"].detach().argmax(-1).cpu()]
        if self.lateral:
            lateral = to_type[self.arch[f"lateral_{v}"].detach().argmax(-1).cpu()]
        else:
            lateral = torch.zeros(2, v, dtype=torch.long)
        return MotifTopology(v, intra, lateral)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, n_neurons={self.n_neurons}, options={self.options}, "
            f"lateral={self.lateral}, fixed_size={self.fixed_size}, backend={self.backend!r}"
        )


#: old parameter names of :class:`MixedMotifLayer` -> the names now (SC-ML's ``intra_weight`` /
#: ``lateral_weight``); a state dict with the old keys still loads (``CHANGELOG.md``, "Renamed")
RENAMED_PARAMETERS = {"weights_intra": "intra_weight", "weights_lateral": "lateral_weight"}


def _renamed_weights(module, state_dict, prefix, *args) -> None:
    """``load_state_dict`` pre-hook: a checkpoint saved before the rename (``<prefix>weights_intra.<j>``)
    loads into ``<prefix>intra_weight.<j>``."""
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        head, _, rest = key[len(prefix) :].partition(".")
        if head in RENAMED_PARAMETERS and rest:
            state_dict[f"{prefix}{RENAMED_PARAMETERS[head]}.{rest}"] = state_dict.pop(key)


def search_network(cfg: HRMASConfig, in_features: int, classes: int) -> SCMLClassifier:
    """Input -> :class:`MixedMotifLayer` (the search space) -> the readout of ``cfg.readout``."""
    common = dict(backend=cfg.backend, neuron=cfg.neuron(), spike_fn=cfg.spike_fn)
    layer = MixedMotifLayer(
        in_features,
        cfg.hidden,
        cfg.effective_options(),
        lateral=cfg.searches_lateral,
        inhibitory_weight=cfg.inhibitory_weight,
        kernel=cfg.kernel,
        **common,
    )
    return SCMLClassifier(
        in_features,
        cfg.hidden,
        classes,
        hidden_layer=layer,
        input_gain=cfg.input_gain or 1.0,
        readout=cfg.readout,
        **common,
    )


def _mixed_layers(model: nn.Module) -> list[MixedMotifLayer]:
    return [m for m in model.modules() if isinstance(m, MixedMotifLayer)]


def arch_parameters(model: nn.Module, trainable: bool = False) -> list[nn.Parameter]:
    """The architecture logits of every mixed layer in ``model`` (only the unfrozen ones if
    ``trainable``: a fixed motif size freezes ``alpha^v``)."""
    params = [p for layer in _mixed_layers(model) for p in layer.arch_parameters()]
    return [p for p in params if p.requires_grad] if trainable else params


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter of ``model`` that is not an architecture logit."""
    arch = {id(p) for p in arch_parameters(model)}
    return [p for p in model.parameters() if id(p) not in arch]
