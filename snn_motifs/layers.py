"""Spiking layers: the shared machinery (feed-forward weights, a neuron adapter, explicit state, input
checks, the step and sequence APIs) and the plain feed-forward spiking layer.

Per step ``t``, for input ``x[t]`` ``[B, F]``::

    c[t] = W_ff x[t] + W_rec s[t-1]          feed-forward without delay, recurrence one step late (eq 15)
    s[t], state = neurons.step(c[t], state)  eqs 1-4 in the chosen backend

:class:`SpikingLayer` has no recurrence (``W_rec = 0``); :class:`snn_motifs.SCML` adds the motif recurrence.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_positive_int
from .adapters import get_adapter
from .aliases import apply_aliases, layer_sizes
from .compiled_kernel import CompiledMotifSequence, compiler_available
from .fused_kernel import MotifLIFSequence, supports_fused
from .neuron import LIFState, NeuronModel
from .recurrence import from_motif_layout, recurrent_current, to_motif_layout

__all__ = ["SpikingLayer", "SpikingLinear", "Record"]


class Record(NamedTuple):
    """Per-step records of :meth:`SCML.run` with ``record=True``: membrane and own PSC, ``[T, B, N]``."""

    mem: torch.Tensor
    psc: torch.Tensor


def _check_float_tensor(x: object, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{what} must be a floating-point tensor, got dtype {x.dtype}; "
            "convert it with x.float() (spikes as 0./1. floats)"
        )
    return x


def add_extra_current(current: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    """``current + extra`` for a time-first extra input current (e.g. a skip connection, the ScSr-SNN paper eq
    19), with an error naming both shapes when they differ."""
    if extra is None:
        return current
    if extra.shape != current.shape:
        raise ValueError(
            f"extra_current must have shape {list(current.shape)} (time-first), got {list(extra.shape)}"
        )
    return current + extra


class SpikingLayer(nn.Module):
    """A layer of spiking neurons fed through a linear map, with explicit state.

    Args:
        in_features: size ``F`` of each input vector (Norse: ``input_size``).
        n_neurons: layer size ``N`` (Norse: ``hidden_size``).
        backend: ``"native"``, ``"snntorch"``, ``"norse"`` or a :class:`NeuronAdapter` instance.
        neuron: the neuron: :class:`~snn_motifs.neuron.NeuronParameters` (default: the papers' neuron,
            tau_mem, tau_syn, R, V_th), :class:`~snn_motifs.neuron.LeakyParameters` (snnTorch's Leaky) or
            :class:`~snn_motifs.neuron.NorseLIFParameters` (Norse's LIF).
        spike_fn: spike function (name such as ``"atan"`` or ``"tssl"``, a callable ``f(u - V_th)``, or
            None for arc-tangent).
        learn_leak / learn_gain: train each neuron's leak (BIP: tau; snnTorch's beta, Norse's
            tau_mem_inv) / input resistance R (the papers' neuron).
        bias: feed-forward bias (the papers use none).
        batch_first: :meth:`run` takes and returns ``[B, T, ...]`` instead of ``[T, B, ...]``.
        check_inputs: validate shapes, dtypes and finiteness on every call (one cheap reduction per
            call); set False (or ``layer.check_inputs = False``) for speed once the pipeline is trusted.
        fused: let :meth:`run` use the fused sequence kernel when possible (native backend, a
            :class:`~snn_motifs.surrogate.SurrogateSpike`, no step hooks). Results are identical.
        compile: use ``torch.compile`` (Inductor: C++/OpenMP on CPU, Triton on GPU). :meth:`run` takes the
            compiled sequence kernel (:mod:`snn_motifs.compiled_kernel`, ~2x faster than the fused one
            on CPU) wherever it would take the fused kernel, and the compiled step
            (``fullgraph=True``) otherwise; the step API compiles each step. Compiled once per shape
            (seconds to a minute the first time, then cached by torch, also on disk); equal to the eager
            kernels in float64 (tested). Without a C++ compiler a warning says so and the eager kernels run.
        **names: snnTorch's and Norse's names (:mod:`snn_motifs.aliases` has the table). snnTorch's
            ``beta``, ``threshold``, ``reset_mechanism``, ``reset_delay``, ``learn_beta``,
            ``learn_threshold``, ``graded_spikes_factor`` give snnTorch's Leaky neuron; Norse's ``p``,
            ``tau_mem_inv``, ``tau_syn_inv``, ``dt`` give Norse's LIF neuron; ``spike_grad`` / ``method``
            name the spike function, ``output=True`` makes the step return the membrane,
            ``input_size`` / ``hidden_size`` are the sizes; ``init_hidden=True`` is refused (the state is
            explicit).

    Feed-forward weights use He-normal initialisation (the HRMAS paper, sec 3.1.3).

    Step API (snnTorch-tutorial style)::

        state = layer.init_state(batch_size)         # or layer.init_leaky(): zero-filled at step 0
        for t in range(num_steps):
            spk, state = layer(x[t], state)
            # spk, mem, state = layer(x[t], state, return_mem=True)

    The step returns the state in the form it was given: a :class:`~snn_motifs.neuron.LIFState` (or None)
    gives a LIFState back; with snnTorch's Leaky (``beta=...``) a membrane tensor gives a membrane tensor
    back, as ``spk, mem = lif(x, mem)`` (``init_leaky()`` and ``reset_mem()`` then return an empty
    membrane, zero-filled at the first step).

    Sequence API: ``spikes, state = layer.run(x)`` with ``x`` ``[T, B, F]``; with Norse's LIF (Norse's
    names) ``layer(x)`` with a 3-D ``x`` does the same (as Norse's ``LIFRecurrent``, so
    ``norse.torch.SequentialState`` can hold the layer).
    """

    def __init__(
        self,
        in_features: int | None = None,
        n_neurons: int | None = None,
        *,
        backend="native",
        neuron: NeuronModel | None = None,
        spike_fn: str | Callable | None = None,
        learn_leak: bool = False,
        learn_gain: bool = False,
        bias: bool = False,
        batch_first: bool = False,
        check_inputs: bool = True,
        fused: bool = True,
        compile: bool = False,
        **names,
    ) -> None:
        super().__init__()
        in_features, n_neurons = layer_sizes(in_features, n_neurons, names)
        options = apply_aliases(neuron, spike_fn, **names)
        neuron, spike_fn = options.neuron, options.spike_fn
        #: the step's default for ``return_mem`` (snnTorch's ``output=True``)
        self.output = options.output
        check_positive_int("in_features", in_features)
        check_positive_int("n_neurons", n_neurons)
        self.in_features = in_features
        self.n_neurons = n_neurons
        self.batch_first = batch_first
        self.check_inputs = check_inputs
        self.fused = fused
        if compile and not compiler_available():
            warnings.warn(
                "compile=True but torch.compile has no C++ compiler here (Inductor needs one, e.g. "
                "apt install g++); running the eager kernels instead",
                RuntimeWarning,
                stacklevel=2,
            )
            compile = False
        self.compile = compile
        self.__dict__["_compiled_step"] = None  # built on first use, not a module attribute
        self.fc = nn.Linear(in_features, n_neurons, bias=bias)
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_in", nonlinearity="relu")  # He normal
        if bias:
            nn.init.zeros_(self.fc.bias)
        self.neurons = get_adapter(
            backend, n_neurons, neuron, spike_fn, learn_leak=learn_leak, learn_gain=learn_gain
        )
        #: mean firing rate of the last :meth:`run` (a detached scalar tensor; None before the first run)
        self.last_rate: torch.Tensor | None = None

    def __getstate__(self) -> dict:
        """What ``copy.deepcopy`` and pickle (``torch.save`` of the whole model) copy: everything but the
        per-sequence caches. The step cache holds the last step's membrane and signed recurrent weights,
        non-leaf tensors of the autograd graph that deepcopy refuses; the compiled step is bound to this
        layer (a copy would step the original). A copy builds both again on first use."""
        state = super().__getstate__()
        state.pop("_step_cache", None)
        state["_compiled_step"] = None
        return state

    @property
    def backend(self) -> str:
        return self.neurons.backend

    @property
    def motif_size(self) -> int:
        """Block size of the recurrent matmul layout (the whole layer when there is no recurrence)."""
        return self.n_neurons

    @property
    def n_motifs(self) -> int:
        return self.n_neurons // self.motif_size

    def recurrent_weights(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Signed recurrent weights ``(intra, lateral)``; ``(None, None)`` without recurrence."""
        return None, None

    # -- state ------------------------------------------------------------------------------------
    def init_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> LIFState:
        """Zero state for ``batch_size`` samples (defaults: the layer's device and dtype)."""
        device = device if device is not None else self.fc.weight.device
        dtype = dtype if dtype is not None else self.fc.weight.dtype
        return self.neurons.init_state(batch_size, device, dtype)

    def init_leaky(self) -> torch.Tensor | None:
        """snnTorch's ``mem = lif.init_leaky()``: the state that starts a sequence, which the first step
        fills with zeros for the input's batch size. With snnTorch's Leaky (``beta=...``) it is an empty
        membrane tensor, as snnTorch's, so ``spk, mem = layer(x[t], mem)`` keeps returning membrane tensors;
        with the other neurons, whose state is more than a membrane, it is None (the step returns a
        :class:`~snn_motifs.neuron.LIFState`)."""
        if self.neurons.equations == "snntorch":
            return self.fc.weight.new_zeros(0)
        return None

    def reset_mem(self) -> torch.Tensor | None:
        """snnTorch's ``mem = lif.reset_mem()``: this layer keeps no membrane between calls (the state is
        explicit, passed in and returned by every step), so nothing inside it is zeroed; it returns the
        state that starts a new sequence (:meth:`init_leaky`) and drops the cached recurrent weights of the
        last step."""
        self.__dict__.pop("_step_cache", None)
        return self.init_leaky()

    # -- the neuron's parameters, by snnTorch's names ---------------------------------------------------
    @property
    def beta(self) -> torch.Tensor:
        """Membrane decay per step, ``[N]``: snnTorch's ``beta`` itself with snnTorch's Leaky (an
        ``nn.Parameter`` with ``learn_beta=True``), else derived (``1 - 1/tau``; Norse's
        ``1 - dt tau_mem_inv``)."""
        return self.neurons.membrane_decay()

    @property
    def threshold(self) -> torch.Tensor:
        """Firing threshold as a tensor: snnTorch's ``threshold`` itself with snnTorch's Leaky (an
        ``nn.Parameter`` with ``learn_threshold=True``), Norse's ``v_th``, or ``V_th``."""
        return self.neurons.firing_threshold()

    # -- validation -------------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor, rank: int, what: str, batch_first: bool = False) -> None:
        _check_float_tensor(x, what)
        layout = {2: "[B, F]", 3: "[B, T, F]" if batch_first else "[T, B, F]"}[rank]
        if x.dim() != rank or x.shape[-1] != self.in_features:
            hint = "; a whole sequence [T, B, F] runs with layer.run(x)" if rank == 2 and x.dim() == 3 else ""
            raise ValueError(
                f"{what} must have shape {layout} with F = in_features = {self.in_features}, "
                f"got {list(x.shape)}{hint}"
            )
        if x.dtype != self.fc.weight.dtype:
            raise TypeError(
                f"{what} has dtype {x.dtype} but the layer's weights are {self.fc.weight.dtype}; "
                f"convert one of them (x.to({self.fc.weight.dtype}) or layer.to({x.dtype}))"
            )
        if torch.compiler.is_compiling():  # a data-dependent check would break the graph: skipped
            return
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(
                f"{what} contains {bad} NaN/Inf value(s); clean the input, or set "
                "check_inputs=False to skip this check"
            )

    def _state_in(self, state: object, batch: int, like: torch.Tensor) -> tuple[LIFState, bool]:
        """The state to step from and whether it came as a bare membrane tensor (snnTorch's ``mem``),
        which the step then returns in the same form."""
        if state is None:
            return self.init_state(batch, like.device, like.dtype), False
        if isinstance(state, torch.Tensor):
            if state.numel() == 0:  # init_leaky() / reset_mem(): zeros of the input's batch size
                return self.init_state(batch, like.device, like.dtype), True
            if self.check_inputs and tuple(state.shape) != (batch, self.n_neurons):
                raise ValueError(
                    f"membrane must have shape [B, N] = {[batch, self.n_neurons]}, got {list(state.shape)}; "
                    "start a new sequence with layer.init_leaky()"
                )
            recurrent = type(self).recurrent_weights is not SpikingLayer.recurrent_weights
            return self.neurons.state_from_membrane(state, recurrent), True
        if self.check_inputs:
            self._check_state(state, batch)
        return state, False

    def _check_state(self, state: object, batch: int) -> LIFState:
        if not isinstance(state, LIFState):
            raise TypeError(
                f"state must be the LIFState returned by init_state() or a previous call (or, with "
                f"snnTorch's Leaky, a membrane tensor), got {type(state).__name__}"
            )
        if state.v.dim() != 2 or state.v.shape[1] != self.n_neurons:
            raise ValueError(
                f"state is for {list(state.v.shape)} neurons, this layer has N = {self.n_neurons}"
            )
        if state.v.shape[0] != batch:
            raise ValueError(
                f"state has batch size {state.v.shape[0]} but the input has {batch}; "
                f"start a new sequence with layer.init_state({batch})"
            )
        return state

    # -- step API ---------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        state: LIFState | torch.Tensor | None = None,
        return_mem: bool | None = None,
    ):
        """One time step: ``x`` ``[B, F]`` -> spikes ``[B, N]`` and the new state; with ``return_mem``
        (default: snnTorch's ``output``) ``(spikes, membrane [B, N], state)`` (the membrane the neuron
        returns, ``state.v``: after the reset, or before it with snnTorch's ``reset_delay=True``).

        The state comes back in the form it was given: a LIFState (or None) as a LIFState, a membrane
        tensor (snnTorch's Leaky) as a membrane tensor, so ``spk, mem = layer(x, mem)`` reads as snnTorch's.

        With Norse's LIF (a layer built with Norse's names) a 3-D ``x`` ``[T, B, F]`` runs the whole
        sequence (:meth:`run`), as Norse's ``LIFRecurrent``: ``(spikes [T, B, N], state)``, so
        ``norse.torch.SequentialState`` can hold the layer. The other neurons keep the step strict (a 3-D
        input is refused, naming :meth:`run`), so that a sequence is never mistaken for a batch.
        """
        if isinstance(x, torch.Tensor) and x.dim() == 3 and self.neurons.equations == "norse":
            return self.run(x, state)
        return_mem = self.output if return_mem is None else return_mem
        if self.check_inputs:
            self._check_input(x, 2, "input x[t]")
        state, as_membrane = self._state_in(state, x.shape[0], x)
        key = self._weights_key()
        intra, lateral = self._weights_for_step(state, key)
        ff = to_motif_layout(self.fc(x), self.motif_size)
        spikes, state = self._step_fn()(ff, state, intra, lateral)
        if not torch.compiler.is_compiling():
            self.__dict__["_step_cache"] = (state.v, key, (intra, lateral))
        out = state.v if as_membrane else state
        return (spikes, state.v, out) if return_mem else (spikes, out)

    def _step(
        self,
        ff: torch.Tensor,
        state: LIFState,
        intra: torch.Tensor | None,
        lateral: torch.Tensor | None,
    ) -> tuple[torch.Tensor, LIFState]:
        if intra is None:  # no recurrence: ff is the whole current
            return self.neurons.step(from_motif_layout(ff), state)
        z = to_motif_layout(state.z, self.motif_size)
        current = from_motif_layout(recurrent_current(z, intra, lateral, out=ff))
        return self.neurons.step(current, state)

    # -- sequence API -----------------------------------------------------------------------------
    def run(
        self,
        x: torch.Tensor,
        state: LIFState | torch.Tensor | None = None,
        *,
        record: bool = False,
        batch_first: bool | None = None,
        extra_current: torch.Tensor | None = None,
    ):
        """Run a whole sequence ``x`` ``[T, B, F]`` (``[B, T, F]`` with ``batch_first``).

        ``extra_current`` ``[T, B, N]`` (same layout as ``x``) is added to the feed-forward current, e.g. a
        skip connection from an earlier layer (ScSr-SNN, the ScSr-SNN paper eq 19).

        Returns ``(spikes, state)`` with spikes ``[T, B, N]``, or ``(spikes, state, Record(mem, psc))``
        when ``record=True`` (membrane after reset and own PSC at every step, same layout as spikes). The
        state comes back in the form it was given (a membrane tensor for a membrane tensor, see
        :meth:`forward`).
        """
        batch_first = self.batch_first if batch_first is None else batch_first
        if self.check_inputs:
            self._check_input(x, 3, "input sequence x", batch_first)
        if batch_first:
            x = x.transpose(0, 1)
            extra_current = None if extra_current is None else extra_current.transpose(0, 1)
        state, as_membrane = self._state_in(state, x.shape[1], x)
        self.neurons.notify_sequence_start()
        intra, lateral = self.recurrent_weights()
        ff = add_extra_current(self.fc(x), extra_current)  # feed-forward hoisted out of the loop
        if self.fused and self.compile and self._fusable() and not torch.compiler.is_compiling():
            spikes, mem, psc, state = self._run_compiled(ff, state, intra, lateral, record)
        elif self.fused and self._fusable():
            ff = to_motif_layout(ff, self.motif_size)
            spikes, mem, psc, state = self._run_fused(ff, state, intra, lateral, record)
        else:
            ff = to_motif_layout(ff, self.motif_size)
            spikes, mem, psc, state = self._run_steps(ff, state, intra, lateral, record)
        self.last_rate = spikes.detach().mean()
        if as_membrane:
            state = state.v
        if batch_first:
            spikes = spikes.transpose(0, 1)
            if record:
                mem, psc = mem.transpose(0, 1), psc.transpose(0, 1)
        if record:
            return spikes, state, Record(mem, psc)
        return spikes, state

    def _fusable(self) -> bool:
        """The fused kernel reproduces the native backend's papers' neuron (hard reset, eqs 1-4) with a known
        spike function; snnTorch's and Norse's equations take the step path."""
        neurons = self.neurons
        return (
            neurons.supports_fused_kernel
            and getattr(neurons, "equations", "hrmas") == "hrmas"
            and neurons.reset_mechanism == "zero"
            and supports_fused(neurons.spike_fn)
            and not neurons.has_step_hooks
        )

    def _run_compiled(self, ff, state, intra, lateral, record: bool):
        """The whole sequence through :class:`~snn_motifs.compiled_kernel.CompiledMotifSequence`, in the
        layer's own layout (``[T, B, N]`` viewed as ``[T, B, M, v]``: no layout copies)."""
        neurons, m, v = self.neurons, self.n_motifs, self.motif_size
        tau_inv = neurons.tau_inv()
        spikes, v_t, i_t, a_t, mem, psc = CompiledMotifSequence.apply(
            ff.unflatten(-1, (m, v)),
            (1.0 - tau_inv).view(m, v),
            tau_inv.view(m, v),
            neurons.gain().view(m, v),
            intra,
            lateral,
            *(s.unflatten(-1, (m, v)) for s in state),
            neurons.v_threshold,
            neurons.syn_decay,
            neurons.spike_fn,
            record,
        )
        spikes = spikes.flatten(-2)
        final = LIFState(v_t.flatten(-2), i_t.flatten(-2), a_t.flatten(-2), spikes[-1])
        if not record:
            return spikes, None, None, final
        return spikes, mem.flatten(-2), psc.flatten(-2), final

    def _run_fused(self, ff, state, intra, lateral, record: bool):
        neurons, v = self.neurons, self.motif_size
        tau_inv = neurons.tau_inv()
        shape = (self.n_motifs, 1, v)
        spikes, mem, psc, syn = MotifLIFSequence.apply(
            ff,
            (1.0 - tau_inv).view(shape),
            tau_inv.view(shape),
            neurons.gain().view(shape),
            intra,
            lateral,
            *(to_motif_layout(s, v) for s in (state.v, state.i, state.a, state.z)),
            neurons.v_threshold,
            neurons.syn_decay,
            neurons.spike_fn,
        )
        final = LIFState(*(from_motif_layout(t) for t in (mem[-1], syn, psc[-1], spikes[-1])))
        spikes = from_motif_layout(spikes)
        if not record:  # skip two [T, B, N] layout copies nobody asked for
            return spikes, None, None, final
        return spikes, from_motif_layout(mem), from_motif_layout(psc), final

    def _weights_key(self) -> tuple:
        return torch.is_grad_enabled(), tuple(p._version for p in self.parameters())

    def _weights_for_step(self, state: LIFState, key: tuple):
        """The signed recurrent weights, built once per sequence in the step API: reused while ``state`` is
        the one this layer returned last (the same sequence) and no parameter changed in place (an
        optimiser step, ``load_state_dict``); rebuilt for a new sequence (``state`` None, a fresh
        ``init_state``, a detached state), so separate forwards never share an autograd graph."""
        cache = self.__dict__.get("_step_cache")
        if (
            cache is not None
            and not torch.compiler.is_compiling()
            and cache[0] is state.v
            and cache[1] == key
        ):
            return cache[2]
        return self.recurrent_weights()

    def _step_fn(self):
        """The step: eager, or compiled once (``compile=True``)."""
        if not self.compile:
            return self._step
        if self.__dict__.get("_compiled_step") is None:
            self.__dict__["_compiled_step"] = torch.compile(self._step, fullgraph=True, dynamic=False)
        return self.__dict__["_compiled_step"]

    def _run_steps(self, ff, state, intra, lateral, record: bool):
        spikes, mems, pscs = [], [], []
        step = self._step_fn()
        # unbind: one backward node for all steps (indexing ff[t] would cost a [T, ...] gradient per step)
        for ff_t in ff.unbind(0):
            spk, state = step(ff_t, state, intra, lateral)
            spikes.append(spk)
            if record:
                mems.append(state.v)
                pscs.append(state.a)
        mem = torch.stack(mems) if record else None
        psc = torch.stack(pscs) if record else None
        return torch.stack(spikes), mem, psc, state

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, n_neurons={self.n_neurons}, backend={self.backend!r}"

    def __setstate__(self, state: dict) -> None:
        """Restore a copy or pickle; layers saved before ``output`` existed get its default."""
        super().__setstate__(state)
        self.__dict__.setdefault("output", False)


class SpikingLinear(SpikingLayer):
    """Feed-forward spiking layer (``nn.Linear`` + LIF neurons, eqs 1-4): the papers' output layer and
    the plain feed-forward SNN baseline."""
