"""Spiking layers: the shared machinery (feed-forward weights, a neuron adapter, explicit state, input
checks, the step and sequence APIs) and the plain feed-forward spiking layer.

Per step ``t``, for input ``x[t]`` ``[B, F]``::

    c[t] = W_ff x[t] + W_rec s[t-1]          feed-forward without delay, recurrence one step late (eq 15)
    s[t], state = neurons.step(c[t], state)  eqs 1-4 in the chosen backend

:class:`SpikingLayer` has no recurrence (``W_rec = 0``); :class:`snn_motifs.SCML` adds the motif recurrence.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_positive_int
from .adapters import get_adapter
from .aliases import apply_aliases, layer_sizes
from .fused_kernel import MotifLIFSequence, compiler_available, supports_fused
from .neuron import LIFState, NeuronModel

__all__ = ["spiking_layers", "use_kernel", "SpikingLayer", "SpikingLinear", "Record", "KERNELS"]

#: the kernel choices of :class:`SpikingLayer` (``kernel=``)
KERNELS = ("auto", "step", "fused", "compiled")


def _deprecated(name: str) -> None:
    """Warn that ``name`` is deprecated, attributed to the first caller outside this package (and outside
    ``nn.Module.__setattr__``, through which an attribute assignment reaches the setter)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(0), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    if frame is not None and frame.f_code.co_filename == sys.modules[nn.Module.__module__].__file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(
        f"SpikingLayer's {name}= is deprecated; use kernel='auto' | 'step' | 'fused' | 'compiled' "
        "(fused=False is kernel='step', compile=True is kernel='compiled')",
        DeprecationWarning,
        stacklevel=level,
    )


def _kernel_from_aliases(kernel: str, fused: bool | None, compile: bool | None) -> str:
    """``kernel`` after the deprecated ``fused``/``compile`` keywords (only values other than their old
    defaults, ``fused=True`` and ``compile=False``, change anything or warn)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")
    for name, value in (("fused", fused), ("compile", compile)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}; better, use kernel=")
    wanted = "compiled" if compile else ("step" if fused is False else None)
    if wanted is None:
        return kernel
    if kernel != "auto" and kernel != wanted:
        raise ValueError(
            f"kernel={kernel!r} contradicts the deprecated fused={fused}/compile={compile}; give kernel= only"
        )
    _deprecated("compile" if compile else "fused")
    return wanted


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
        kernel: how :meth:`run` and the step API compute (:attr:`supported_kernels` lists what this layer
            can run): ``"step"``, one step at a time under autograd (any backend, step hooks, snnTorch's
            and Norse's neurons); ``"fused"``, :meth:`run` through the sequence kernel
            (:mod:`snn_motifs.fused_kernel`: the native backend's papers' neuron with a
            :class:`~snn_motifs.surrogate.SurrogateSpike` or TSSL-BP, no step hooks; results identical to
            the step path); ``"compiled"``, the same kernel through ``torch.compile`` (Inductor: C++/OpenMP
            on CPU, Triton on GPU; ~2x faster than ``"fused"`` on CPU, equal to it in float64 up to
            rounding; compiled once per shape, seconds to a minute the first time, then cached by torch,
            also on disk), and every step of the step API compiled too; ``"auto"`` (default),
            ``"fused"`` where supported, else ``"step"``, never compiling. An explicit choice the layer
            cannot run is an error naming why and what to use instead (no silent fallback).
        fused / compile: deprecated, use ``kernel``: ``fused=False`` is ``kernel="step"``,
            ``compile=True`` is ``kernel="compiled"`` (where this layer cannot compile, a warning says why
            and ``"auto"`` runs, as before).
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
        kernel: str = "auto",
        fused: bool | None = None,
        compile: bool | None = None,
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
        self.kernel = _kernel_from_aliases(kernel, fused, compile)
        if self.kernel == "compiled" and compile is not None and "compiled" not in self.supported_kernels:
            warnings.warn(  # the deprecated compile=True fell back, with a warning, before kernel= existed
                f"compile=True but {self._unsupported_reason('compiled')}; running kernel='auto' instead",
                RuntimeWarning,
                stacklevel=2,
            )
            self.kernel = "auto"
        elif self.kernel != "auto":
            self._check_kernel()

    # -- kernel choice ----------------------------------------------------------------------------
    @property
    def supported_kernels(self) -> tuple[str, ...]:
        """The kernels this layer can run now, from its backend, neuron, spike function, step hooks and
        this machine (``"compiled"`` needs a C++ compiler on CPU): a subset of :data:`KERNELS`."""
        return tuple(k for k in KERNELS if k == "auto" or self._unsupported_reason(k) is None)

    def _unsupported_reason(self, kernel: str) -> str | None:
        """Why this layer cannot run ``kernel`` (None: it can)."""
        if kernel in ("auto", "step"):
            return None
        neurons = self.neurons
        if not neurons.supports_fused_kernel:
            return f"the {neurons.backend!r} backend runs its own step (no sequence kernel)"
        if getattr(neurons, "equations", "hrmas") != "hrmas":
            return "the sequence kernel runs the papers' neuron only, not snnTorch's or Norse's equations"
        if neurons.reset_mechanism != "zero":
            return f"the sequence kernel resets to 0, this neuron resets by {neurons.reset_mechanism!r}"
        if not supports_fused(neurons.spike_fn):
            return (
                f"the sequence kernel needs a closed-form surrogate (snn_motifs.surrogate.SurrogateSpike, "
                f"e.g. 'atan') or TSSL-BP, got {neurons.spike_fn!r}"
            )
        if neurons.has_step_hooks:
            return "the neurons have step hooks (e.g. SpiKL-IP), which only the step path calls"
        if kernel == "compiled" and not compiler_available():
            return "torch.compile has no C++ compiler here (Inductor needs one, e.g. apt install g++)"
        return None

    def _check_kernel(self) -> None:
        why = self._unsupported_reason(self.kernel)
        if why is not None:
            raise ValueError(
                f"kernel={self.kernel!r} cannot run on this layer: {why}; use kernel='auto' (the best of "
                f"{list(self.supported_kernels)}) or one of those, or run the hooked sequences inside "
                f"snn_motifs.layers.use_kernel(model, 'step')"
            )

    def _active_kernel(self) -> str:
        """The kernel :meth:`run` takes now: the explicit choice (checked), or ``"auto"``'s pick."""
        if self.kernel == "auto":
            return "fused" if self._unsupported_reason("fused") is None else "step"
        self._check_kernel()  # step hooks attached after construction, for instance
        return self.kernel

    def _fusable(self) -> bool:
        """Whether the sequence kernel can run this layer (``"fused"`` in :attr:`supported_kernels`)."""
        return self._unsupported_reason("fused") is None

    @property
    def fused(self) -> bool:
        """Deprecated (use :attr:`kernel`): whether :meth:`run` may take the sequence kernel."""
        return self.kernel != "step"

    @fused.setter
    def fused(self, value: bool) -> None:
        _deprecated("fused")
        self.kernel = "auto" if value else "step"

    @property
    def compile(self) -> bool:
        """Deprecated (use :attr:`kernel`): whether the layer compiles (``kernel == "compiled"``)."""
        return self.kernel == "compiled"

    @compile.setter
    def compile(self, value: bool) -> None:
        _deprecated("compile")
        self.kernel = "compiled" if value else ("auto" if self.kernel == "compiled" else self.kernel)

    def __getstate__(self) -> dict:
        """What ``copy.deepcopy`` and pickle (``torch.save`` of the whole model) copy: everything but the
        compiled step, which is bound to this layer (a copy would step the original) and is built again
        on first use."""
        state = super().__getstate__()
        state["_compiled_step"] = None
        return state

    @property
    def backend(self) -> str:
        return self.neurons.backend

    @property
    def block_size(self) -> int:
        """The block of the sequence kernel's ``[T, B, N / block, block]`` layout: the whole layer here (no
        recurrence); a motif layer's motif size (:class:`snn_motifs.scml.MotifRecurrentLayer`)."""
        return self.n_neurons

    #: whether the layer feeds its spikes back (a step from a bare membrane then needs last step's spikes)
    has_recurrence = False

    def recurrent_weights(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Signed recurrent weights ``(intra, lateral)``; ``(None, None)`` without recurrence."""
        return None, None

    def _step_weights(self, weights: tuple) -> tuple | None:
        """:meth:`recurrent_weights` in the form :meth:`_step` takes (None: no recurrence)."""
        return None

    def _weights_for_step(self, state: LIFState) -> tuple[tuple | None, object]:
        """The step API's recurrent weights for a step from ``state`` and what :meth:`_after_step` keeps of
        them (no recurrence here)."""
        return None, None

    def _after_step(self, state: LIFState, kept: object) -> None:
        """Called after every step of the step API with the new state (a motif layer caches its weights)."""

    def _forget_sequence(self) -> None:
        """Drop what the step API keeps between the steps of one sequence (nothing here)."""

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
        self._forget_sequence()
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
            return self.neurons.state_from_membrane(state, self.has_recurrence), True
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
        weights, kept = self._weights_for_step(state)
        spikes, state = self._step_fn()(self.fc(x), state, weights)
        if not torch.compiler.is_compiling():
            self._after_step(state, kept)
        out = state.v if as_membrane else state
        return (spikes, state.v, out) if return_mem else (spikes, out)

    def _step(
        self, ff: torch.Tensor, state: LIFState, weights: tuple | None
    ) -> tuple[torch.Tensor, LIFState]:
        """One step from the feed-forward current ``ff`` ``[B, N]`` (the whole current: no recurrence)."""
        return self.neurons.step(ff, state)

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
        weights = self.recurrent_weights()
        ff = add_extra_current(self.fc(x), extra_current)  # feed-forward hoisted out of the loop
        kernel = self._active_kernel()
        if kernel != "step":
            compiled = kernel == "compiled" and not torch.compiler.is_compiling()
            spikes, mem, psc, state = self._run_kernel(ff, state, *weights, record, compiled)
        else:
            spikes, mem, psc, state = self._run_steps(ff, state, self._step_weights(weights), record)
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

    def _run_kernel(self, ff, state, intra, lateral, record: bool, compiled: bool):
        """The whole sequence through :class:`~snn_motifs.fused_kernel.MotifLIFSequence`, eager or
        compiled, in the layer's own layout (``[T, B, N]`` viewed as ``[T, B, N / block, block]``, block
        :attr:`block_size`: no layout copies)."""
        neurons, v = self.neurons, self.block_size
        m = self.n_neurons // v
        tau_inv = neurons.tau_inv()
        spikes, v_t, i_t, a_t, mem, psc = MotifLIFSequence.apply(
            ff.unflatten(-1, (m, v)),
            (1.0 - tau_inv).view(m, v),
            tau_inv.view(m, v),
            neurons.effective_resistance().view(m, v),
            intra,
            lateral,
            *(s.unflatten(-1, (m, v)) for s in state),
            neurons.v_threshold,
            neurons.syn_decay,
            neurons.spike_fn,
            record,
            compiled,
        )
        spikes = spikes.flatten(-2)
        final = LIFState(v_t.flatten(-2), i_t.flatten(-2), a_t.flatten(-2), spikes[-1])
        if not record:
            return spikes, None, None, final
        return spikes, mem.flatten(-2), psc.flatten(-2), final

    def _step_fn(self):
        """The step: eager, or compiled once (``kernel="compiled"``)."""
        if self.kernel != "compiled":
            return self._step
        if self.__dict__.get("_compiled_step") is None:
            self.__dict__["_compiled_step"] = torch.compile(self._step, fullgraph=True, dynamic=False)
        return self.__dict__["_compiled_step"]

    def _run_steps(self, ff, state, weights, record: bool):
        spikes, mems, pscs = [], [], []
        step = self._step_fn()
        # unbind: one backward node for all steps (indexing ff[t] would cost a [T, ...] gradient per step)
        for ff_t in ff.unbind(0):
            spk, state = step(ff_t, state, weights)
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
        """Restore a copy or pickle; layers saved before ``output`` or ``kernel`` existed get their default
        (``kernel`` from the old ``fused``/``compile`` booleans)."""
        if "kernel" not in state:  # saved before kernel= (fused/compile booleans)
            fused, compile = state.pop("fused", True), state.pop("compile", False)
            state["kernel"] = "compiled" if compile else ("auto" if fused else "step")
        super().__setstate__(state)
        self.__dict__.setdefault("output", False)


class SpikingLinear(SpikingLayer):
    """Feed-forward spiking layer (``nn.Linear`` + LIF neurons, eqs 1-4): the papers' output layer and
    the plain feed-forward SNN baseline."""


def spiking_layers(model: nn.Module) -> dict[str, SpikingLayer]:
    """Every spiking layer of ``model`` by its module name (the model itself is called ``"model"``)."""
    return {name or "model": m for name, m in model.named_modules() if isinstance(m, SpikingLayer)}


@contextmanager
def use_kernel(model: nn.Module, kernel: str) -> Iterator[None]:
    """Run every spiking layer of ``model`` with ``kernel`` inside the block, then restore each layer's own
    choice. For a phase that needs another kernel for a while, e.g. a SpiKL-IP window, whose step hooks
    only the step path calls, on a model built with ``kernel="compiled"``::

        with use_kernel(model, "step"), ip.window():
            model(x)

    The kernel is checked as at construction: one a layer cannot run raises a ValueError naming the fix."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")
    layers = list(spiking_layers(model).values())
    saved = [layer.kernel for layer in layers]
    try:
        for layer in layers:
            layer.kernel = kernel
            if kernel != "auto":
                layer._check_kernel()
        yield
    finally:
        for layer, old in zip(layers, saved, strict=True):
            layer.kernel = old
