"""The adapter contract: one small interface every neuron backend implements.

An adapter is an ``nn.Module`` holding a population of ``N`` LIF neurons (the HRMAS paper, eqs 1-4; see
:mod:`snn_motifs.neuron`). Layers (SC-ML, self-recurrent, the HRMAS mixed op) compute the weighted input
current of a step and hand it to the adapter; the adapter owns everything per neuron:

* **explicit state**: :meth:`init_state` returns a :class:`~snn_motifs.neuron.LIFState` ``(v, i, a, z)``;
  :meth:`step` takes a state and returns a new one. Nothing is stored on the module between steps (no
  snnTorch-style hidden state or global instance list).
* **one step**: ``step(current, state) -> (spikes, state)``; ``state.v`` is the membrane and ``state.a``
  the neuron's own PSC, for losses and plasticity.
* **per-neuron parameters** as ``[N]`` tensors in paper units: :attr:`tau_mem` (tau, eq 2) and
  :attr:`resistance` (R, eq 2). Hooks (SpiKL-IP) may change them in place under ``torch.no_grad()``;
  ``learn_leak=True`` / ``learn_gain=True`` make them ``nn.Parameter`` (BIP). Backends derive their own
  parameters (snnTorch's beta, Norse's ``tau_mem_inv``) from these at every step, so an in-place change is
  seen at once. ``tau_mem`` is clamped to ``>= 1`` and ``resistance`` to ``> 0`` when used, so a trained
  value can never make the leak leave ``[0, 1)``.
* **a pluggable spike function** ``spike_fn(u - V_th)`` (names resolved by :mod:`snn_motifs.spike_fns`).
  Spike functions that need more than ``u - V_th`` (TSSL-BP needs the previous membrane and the neuron's
  own PSC trace) set ``uses_neuron_state`` and take over :meth:`step` through their ``neuron_step``; they
  get the simulator's own forward pass from :meth:`forward_only_step` and supply the backward.
* **capabilities** instead of backend names: :attr:`supports_fused_kernel` says whether layers may run
  whole sequences through the fused kernel (:mod:`snn_motifs.fused_kernel`), which reproduces the native
  neuron only.
* **step hooks**: ``register_step_hook(fn)`` calls ``fn(adapter, spikes, state)`` after every step (used by
  intrinsic plasticity); layers take the step-by-step path while hooks are registered.
* **saving**: the ``state_dict`` holds what the adapter owns (``tau_mem``, ``resistance`` and a backend's
  own parameters), never a simulator's internal buffers, so its keys are the same for every backend and a
  model saved with one loads strictly into another. Adapters hold no module objects and no per-step tensors
  in what ``copy.deepcopy`` and pickle copy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from snn_motifs._checks import check_positive_int
from snn_motifs.neuron import LIFState, NeuronParameters, zero_state
from snn_motifs.spike_fns import resolve_spike_fn

__all__ = ["NeuronAdapter", "StepHook"]

StepHook = Callable[["NeuronAdapter", torch.Tensor, LIFState], None]

#: Smallest value ``resistance`` is clamped to when used.
MIN_RESISTANCE = 1e-6

#: Keys that the ``snntorch`` backend saved before snnTorch's ``Leaky`` buffers became non-persistent: derived
#: from the configuration and ``tau_mem``, never trained. Every backend ignores them when loading.
LEGACY_KEYS = ("neuron.threshold", "neuron.graded_spikes_factor", "neuron.reset_mechanism_val", "neuron.beta")


class NeuronAdapter(nn.Module):
    """Base class of the neuron backends (``native``, ``snntorch``, ``norse``).

    Args:
        n_neurons: population size ``N``.
        params: :class:`~snn_motifs.neuron.NeuronParameters` (tau_mem, tau_syn, R, V_th).
        spike_fn: spike function (name, callable or None for the default arc-tangent surrogate).
        learn_leak: make ``tau_mem`` a trained ``nn.Parameter`` (BIP, the ScSr-SNN paper eqs 20-21).
        learn_gain: make ``resistance`` a trained ``nn.Parameter``.
    """

    #: Name under which :func:`snn_motifs.get_adapter` finds this backend.
    backend: str = "base"
    #: Reset after a spike; all our backends reset to 0 (the HRMAS paper eq 3). TSSL-BP checks it.
    reset_mechanism: str = "zero"
    #: The fused kernel reproduces this adapter's step exactly, so layers may run sequences through it.
    supports_fused_kernel: bool = False

    def __init__(
        self,
        n_neurons: int,
        params: NeuronParameters | None = None,
        spike_fn: str | Callable | None = None,
        learn_leak: bool = False,
        learn_gain: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int("n_neurons", n_neurons)
        self.n_neurons = n_neurons
        self.params = params if params is not None else NeuronParameters()
        self.spike_fn = resolve_spike_fn(spike_fn)
        tau = torch.full((n_neurons,), float(self.params.tau_mem))
        res = torch.full((n_neurons,), float(self.params.resistance))
        self._register("tau_mem", tau, learn_leak)
        self._register("resistance", res, learn_gain)
        self._step_hooks: OrderedDict[int, StepHook] = OrderedDict()

    def _register(self, name: str, value: torch.Tensor, trainable: bool) -> None:
        if trainable:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    # -- derived per-neuron quantities (computed where used, so in-place edits are seen) ---------
    @property
    def v_threshold(self) -> float:
        return float(self.params.v_threshold)

    @property
    def syn_decay(self) -> float:
        """``1 - 1/tau_s`` (eq 1)."""
        return self.params.syn_decay

    def tau_inv(self) -> torch.Tensor:
        """``1/tau`` per neuron (eq 2), with tau clamped to >= 1 step."""
        return 1.0 / self.tau_mem.clamp(min=1.0)

    def leak(self) -> torch.Tensor:
        """``1 - 1/tau`` per neuron (eq 2), in ``[0, 1)``."""
        return 1.0 - self.tau_inv()

    def gain(self) -> torch.Tensor:
        """``R`` per neuron (eq 2), clamped to stay positive."""
        return self.resistance.clamp(min=MIN_RESISTANCE)

    # -- state -------------------------------------------------------------------------------------
    def init_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> LIFState:
        """Zero state for ``batch_size`` samples, on the module's device/dtype unless given."""
        check_positive_int("batch_size", batch_size)
        device = device if device is not None else self.tau_mem.device
        dtype = dtype if dtype is not None else self.tau_mem.dtype
        return zero_state(batch_size, self.n_neurons, device, dtype)

    # -- stepping ---------------------------------------------------------------------------------
    def step(self, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        """Advance one step: ``current`` ``[B, N]`` is the weighted input ``c[t]``; returns spikes, state."""
        if getattr(self.spike_fn, "uses_neuron_state", False):  # e.g. TSSL-BP: needs u[t-1] and a[t-1]
            spikes, new_state = self.spike_fn.neuron_step(self, current, state)
        else:
            spikes, new_state = self._step(current, state)
        for hook in list(self._step_hooks.values()):
            hook(self, spikes, new_state)
        return spikes, new_state

    def _step(self, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        """The backend's plain step, its spike function's surrogate in the backward; each backend's own."""
        raise NotImplementedError

    def forward_only_step(
        self, current: torch.Tensor, state: LIFState
    ) -> tuple[torch.Tensor, LIFState] | None:
        """The simulator's own forward step, without a graph (``no_grad``, detached inputs).

        For spike functions that supply their own backward (TSSL-BP): they take the spikes and membrane of
        the simulator's neuron from here. Returns ``(spikes, state)``, or None where the adapter's forward
        pass is :func:`~snn_motifs.neuron.lif_step` itself (the native backend), which the caller then
        computes alongside its backward.
        """
        with torch.no_grad():
            return self._step(current.detach(), LIFState(*(t.detach() for t in state)))

    def forward(self, current: torch.Tensor, state: LIFState | None = None):
        """``nn.Module`` entry point: :meth:`step`, with a zero state when ``state`` is None."""
        if state is None:
            state = self.init_state(current.shape[0], current.device, current.dtype)
        return self.step(current, state)

    # -- hooks ------------------------------------------------------------------------------------
    def register_step_hook(self, hook: StepHook) -> RemovableHandle:
        """Call ``hook(adapter, spikes, state)`` after every step; returns a handle with ``.remove()``."""
        handle = RemovableHandle(self._step_hooks)
        self._step_hooks[handle.id] = hook
        return handle

    @property
    def has_step_hooks(self) -> bool:
        """True if a registered hook wants to see steps now (hooks may expose an ``active`` flag)."""
        return any(getattr(h, "active", True) for h in self._step_hooks.values())

    def notify_sequence_start(self) -> None:
        """Tell hooks a new sequence (sample batch) begins; layers call it at the start of ``run()``."""
        for hook in list(self._step_hooks.values()):
            start = getattr(hook, "on_sequence_start", None)
            if start is not None:
                start()

    # -- saving -----------------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args) -> None:
        """Load as ``nn.Module`` does, ignoring the :data:`LEGACY_KEYS` of checkpoints written by earlier
        versions of the ``snntorch`` backend, so that they load strictly into any backend."""
        for key in LEGACY_KEYS:
            state_dict.pop(prefix + key, None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    # -- misc -------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        p = self.params
        return (
            f"n_neurons={self.n_neurons}, tau_mem={p.tau_mem:g}, tau_syn={p.tau_syn:g}, "
            f"R={p.resistance:g}, V_th={p.v_threshold:g}, spike_fn={self.spike_fn!r}"
        )
