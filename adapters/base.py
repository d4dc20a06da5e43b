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
  neuron only; :attr:`equations_supported` lists the neuron equations the backend runs.
* **equations**: the parameters select the neuron: :class:`~snn_motifs.neuron.NeuronParameters` the
  papers' (eqs 1-4, every backend), :class:`~snn_motifs.neuron.LeakyParameters` snnTorch's ``Leaky``
  (``native``, ``snntorch``) and :class:`~snn_motifs.neuron.NorseLIFParameters` Norse's LIF (``native``,
  ``norse``). A backend asked for equations it does not run refuses them, saying why. The per-neuron
  tensors follow the equations: ``tau_mem`` and ``resistance`` (the papers'), ``beta`` and ``threshold``
  (snnTorch's, trained with ``learn_beta`` / ``learn_threshold``), ``tau_mem_inv`` (Norse's). SpiKL-IP,
  TSSL-BP, the fused kernels and NIR export are derived for the papers' neuron and need it.
* **step hooks**: ``register_step_hook(fn)`` calls ``fn(adapter, spikes, state)`` after every step (used by
  intrinsic plasticity); layers take the step-by-step path while hooks are registered.
* **saving**: the ``state_dict`` holds what the adapter owns (``tau_mem``, ``resistance`` and a backend's
  own parameters), never a simulator's internal buffers, so its keys are the same for every backend and a
  model saved with one loads strictly into another. Adapters hold no module objects and no per-step tensors
  in what ``copy.deepcopy`` and pickle copy.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from snn_motifs._checks import check_positive_int
from snn_motifs.neuron import LIFState, NeuronModel, NeuronParameters, zero_state
from snn_motifs.spike_fns import resolve_spike_fn

__all__ = ["NeuronAdapter", "StepHook"]

StepHook = Callable[["NeuronAdapter", torch.Tensor, LIFState], None]

#: Smallest value ``resistance`` is clamped to when used.
MIN_RESISTANCE = 1e-6

#: Keys that the ``snntorch`` backend saved before snnTorch's ``Leaky`` buffers became non-persistent: derived
#: from the configuration and ``tau_mem``, never trained. Every backend ignores them when loading.
LEGACY_KEYS = ("neuron.threshold", "neuron.graded_spikes_factor", "neuron.reset_mechanism_val", "neuron.beta")

#: what each set of equations is, for messages
EQUATIONS = {
    "hrmas": "the papers' neuron (the HRMAS paper eqs 1-4)",
    "snntorch": "snnTorch's Leaky equations",
    "norse": "Norse's LIF equations",
}

#: the per-neuron tensors of the papers' neuron, named when another neuron is asked for them
_HRMAS_TENSORS = ("tau_mem", "resistance")


class NeuronAdapter(nn.Module):
    """Base class of the neuron backends (``native``, ``snntorch``, ``norse``).

    Args:
        n_neurons: population size ``N``.
        params: the neuron's parameters, which also select its equations:
            :class:`~snn_motifs.neuron.NeuronParameters` (the papers', default: tau_mem, tau_syn, R, V_th),
            :class:`~snn_motifs.neuron.LeakyParameters` (snnTorch's ``Leaky``) or
            :class:`~snn_motifs.neuron.NorseLIFParameters` (Norse's LIF).
        spike_fn: spike function (name, callable or None for the default arc-tangent surrogate).
        learn_leak: train each neuron's leak, ``nn.Parameter`` (BIP, the ScSr-SNN paper eqs 20-21):
            ``tau_mem``, snnTorch's ``beta`` or Norse's ``tau_mem_inv``.
        learn_gain: make ``resistance`` a trained ``nn.Parameter`` (the papers' neuron only).
    """

    #: Name under which :func:`snn_motifs.get_adapter` finds this backend.
    backend: str = "base"
    #: Reset after a spike: ``"zero"`` for the papers' neuron (the HRMAS paper eq 3) and Norse's with
    #: ``v_reset = 0``, snnTorch's ``reset_mechanism`` for its Leaky. TSSL-BP checks it.
    reset_mechanism: str = "zero"
    #: The fused kernel reproduces this adapter's step exactly, so layers may run sequences through it.
    supports_fused_kernel: bool = False
    #: The neuron equations this backend runs (``params.equations``): "hrmas", "snntorch", "norse".
    equations_supported: tuple[str, ...] = ("hrmas",)
    #: Why this backend refuses the equations it does not run (equations -> reason).
    equations_refused: dict[str, str] = {}

    def __init__(
        self,
        n_neurons: int,
        params: NeuronModel | None = None,
        spike_fn: str | Callable | None = None,
        learn_leak: bool = False,
        learn_gain: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int("n_neurons", n_neurons)
        self.n_neurons = n_neurons
        self.params = params if params is not None else NeuronParameters()
        equations = getattr(type(self.params), "equations", None)
        if equations not in EQUATIONS:
            raise TypeError(
                "params must be NeuronParameters, LeakyParameters or NorseLIFParameters "
                f"(snn_motifs.neuron), got {type(self.params).__name__}"
            )
        if equations not in self.equations_supported:
            why = self.equations_refused.get(equations, "")
            able = [name for name in ("native", "snntorch", "norse") if name != self.backend]
            raise ValueError(
                f"the {self.backend!r} backend does not run {EQUATIONS[equations]}"
                + (f": {why}" if why else "")
                + f"; use backend='native' or another backend that runs them ({', '.join(able)})"
            )
        self.equations = equations
        self.spike_fn = resolve_spike_fn(spike_fn)
        if equations != "hrmas":
            if getattr(self.spike_fn, "uses_neuron_state", False):
                raise ValueError(
                    f"spike function {self.spike_fn!r} (TSSL-BP) has a backward derived for the papers' "
                    f"neuron (the HRMAS paper eqs 1-4), not for {EQUATIONS[equations]}; use a surrogate "
                    "(e.g. 'atan') or this library's neuron (neuron=NeuronParameters(...))"
                )
            if learn_gain:
                raise ValueError(
                    f"learn_gain trains the input resistance R of the papers' neuron; "
                    f"{EQUATIONS[equations]} have no R"
                )
            self.supports_fused_kernel = False  # the fused kernels reproduce the papers' neuron only
        self._step_hooks: OrderedDict[int, StepHook] = OrderedDict()
        p = self.params
        if equations == "hrmas":
            tau = torch.full((n_neurons,), float(p.tau_mem))
            res = torch.full((n_neurons,), float(p.resistance))
            self._register("tau_mem", tau, learn_leak)
            self._register("resistance", res, learn_gain)
        elif equations == "snntorch":
            self.reset_mechanism = p.reset_mechanism
            self.reset_delay = p.reset_delay
            self._register("beta", self._per_neuron("beta", p.beta), learn_leak or p.learn_beta)
            self._register("threshold", torch.tensor(p.threshold), p.learn_threshold)
            self.register_buffer(
                "graded_spikes_factor", torch.tensor(p.graded_spikes_factor), persistent=False
            )
        else:  # norse
            self.reset_mechanism = "zero" if p.v_reset == 0.0 else "v_reset"
            self._register("tau_mem_inv", self._per_neuron("tau_mem_inv", p.tau_mem_inv), learn_leak)
            # configuration, not trained: not saved. The potentials stay Python numbers, which torch rounds
            # to the layer's dtype in each operation (as Norse's 0-dim tensors are), exact in float64 too
            tau_syn_inv = self._per_neuron("tau_syn_inv", p.tau_syn_inv)
            self.register_buffer("tau_syn_inv", tau_syn_inv, persistent=False)
            self.v_leak, self.v_th, self.v_reset = p.v_leak, p.v_th, p.v_reset

    def _per_neuron(self, name: str, value: float | tuple[float, ...]) -> torch.Tensor:
        """``[N]`` tensor of a per-neuron parameter given as one number or one value per neuron."""
        if isinstance(value, tuple):
            if len(value) != self.n_neurons:
                raise ValueError(f"{name} has {len(value)} values, the layer has {self.n_neurons} neurons")
            return torch.tensor(value, dtype=torch.get_default_dtype())
        return torch.full((self.n_neurons,), float(value))

    def __getattr__(self, name: str):
        """``nn.Module``'s lookup; asking a population of another neuron for the papers' ``tau_mem`` or
        ``resistance`` (as SpiKL-IP and NIR export do) names the neuron it runs instead."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            equations = self.__dict__.get("equations", "hrmas")
            if name in _HRMAS_TENSORS and equations != "hrmas":
                raise AttributeError(
                    f"{type(self).__name__} runs {EQUATIONS[equations]}, which have no {name} (a parameter "
                    "of the papers' neuron, the HRMAS paper eq 2, which SpiKL-IP, TSSL-BP, the fused "
                    "kernels and NIR export are derived for); build the layer with "
                    "neuron=NeuronParameters(...) for those"
                ) from None
            raise

    def _register(self, name: str, value: torch.Tensor, trainable: bool) -> None:
        if trainable:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    # -- derived per-neuron quantities (computed where used, so in-place edits are seen) ---------
    @property
    def v_threshold(self) -> float:
        """The firing threshold as a number (its initial value where snnTorch's is trained)."""
        name = {"hrmas": "v_threshold", "snntorch": "threshold", "norse": "v_th"}[self.equations]
        return float(getattr(self.params, name))

    @property
    def syn_decay(self) -> float:
        """``1 - 1/tau_s`` (eq 1); 0 for snnTorch's Leaky, which has no synaptic filter."""
        if self.equations == "snntorch":
            return 0.0
        if self.equations == "norse":
            p = self.params
            if isinstance(p.tau_syn_inv, tuple):
                raise TypeError("this population's synaptic decay is per neuron: use psc_decay()")
            return 1.0 - p.dt * p.tau_syn_inv
        return self.params.syn_decay

    def membrane_decay(self) -> torch.Tensor:
        """The membrane's decay per step, ``[N]``: ``1 - 1/tau`` (the papers' neuron), snnTorch's ``beta``
        itself (the tensor the neurons use, a Parameter with ``learn_beta``) or ``1 - dt tau_mem_inv``
        (Norse's)."""
        if self.equations == "snntorch":
            return self.beta
        if self.equations == "norse":
            return 1.0 - self.params.dt * self.tau_mem_inv
        return self.leak()

    def firing_threshold(self) -> torch.Tensor:
        """The firing threshold as a tensor (snnTorch's ``threshold`` itself, a Parameter with
        ``learn_threshold``)."""
        if self.equations == "snntorch":
            return self.threshold
        reference = self.membrane_decay()
        return torch.tensor(self.v_threshold, dtype=reference.dtype, device=reference.device)

    def psc_decay(self) -> torch.Tensor | float:
        """Per-step decay of the neuron's own PSC trace ``state.a``: the synaptic filter's (eq 1), Norse's
        ``1 - dt tau_syn_inv``, or 0 where there is no filter (snnTorch's Leaky: ``a`` is the spikes)."""
        if self.equations == "norse":
            return 1.0 - self.params.dt * self.tau_syn_inv
        return self.syn_decay

    def tau_inv(self) -> torch.Tensor:
        """``1/tau`` per neuron (eq 2), with tau clamped to >= 1 step."""
        return 1.0 / self.tau_mem.clamp(min=1.0)

    def leak(self) -> torch.Tensor:
        """``1 - 1/tau`` per neuron (eq 2), in ``[0, 1)``."""
        return 1.0 - self.tau_inv()

    def effective_resistance(self) -> torch.Tensor:
        """``R`` per neuron (eq 2) as the step uses it: ``resistance`` clamped to stay positive. (Not to be
        confused with a classifier's ``input_gain``, the scale of its input.)"""
        return self.resistance.clamp(min=MIN_RESISTANCE)

    def gain(self) -> torch.Tensor:
        """Deprecated name of :meth:`effective_resistance`."""
        warnings.warn(
            "NeuronAdapter.gain() is deprecated; use effective_resistance() (R of eq 2)",
            DeprecationWarning,
            2,
        )
        return self.effective_resistance()

    # -- state -------------------------------------------------------------------------------------
    def init_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> LIFState:
        """Zero state for ``batch_size`` samples, on the module's device/dtype unless given."""
        check_positive_int("batch_size", batch_size)
        reference = self.membrane_decay()
        device = device if device is not None else reference.device
        dtype = dtype if dtype is not None else reference.dtype
        state = zero_state(batch_size, self.n_neurons, device, dtype)
        if self.equations == "norse":  # Norse's membrane starts at v_leak
            state = state._replace(v=state.v + self.v_leak)
        return state

    def state_from_membrane(self, mem: torch.Tensor, recurrent: bool) -> LIFState:
        """The full state behind a bare membrane tensor (snnTorch's ``spk, mem = lif(x, mem)``).

        snnTorch's Leaky has no other state: the reset signal is recomputed from ``mem`` (as ``snn.Leaky``
        does), and so are the last spikes a recurrent layer reads, which is exact when ``mem`` is returned
        before its reset (``reset_delay=True``). Every other case carries state a membrane cannot hold, and
        is refused with the way out.
        """
        if self.equations != "snntorch":
            carried = "a synaptic current, the neuron's PSC and its last spikes"
            raise TypeError(
                f"a bare membrane tensor cannot be the state of {EQUATIONS[self.equations]}: it also carries "
                f"{carried}. Pass the LIFState back (spk, state = layer(x, state); the membrane is state.v, "
                "or spk, mem, state = layer(x, state, return_mem=True)); snnTorch's names (beta=...) give "
                "snnTorch's Leaky, whose state is its membrane"
            )
        zeros = torch.zeros_like(mem)
        if not recurrent:
            return LIFState(mem, zeros, zeros, zeros)
        if not self.reset_delay:
            raise TypeError(
                "with reset_delay=False the membrane is returned after its reset, so the last spikes that "
                "the recurrent connections read cannot be recovered from it (snnTorch's RLeaky takes spk "
                "and mem for this reason): pass the LIFState back (spk, state = layer(x, state))"
            )
        spikes = self.spike_fn(mem - self.threshold) * self.graded_spikes_factor  # what the step fired
        return LIFState(mem, zeros, spikes, spikes)

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
    def __setstate__(self, state: dict) -> None:
        """Restore a copy or pickle; adapters pickled before other neurons existed ran the papers' one."""
        state.setdefault("equations", "hrmas")
        super().__setstate__(state)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args) -> None:
        """Load as ``nn.Module`` does, ignoring the :data:`LEGACY_KEYS` of checkpoints written by earlier
        versions of the ``snntorch`` backend, so that they load strictly into any backend."""
        for key in LEGACY_KEYS:
            state_dict.pop(prefix + key, None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    # -- misc -------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        p = self.params
        if self.equations == "snntorch":
            return (
                f"n_neurons={self.n_neurons}, snnTorch Leaky: beta={p.beta}, threshold={p.threshold:g}, "
                f"reset_mechanism={p.reset_mechanism!r}, reset_delay={p.reset_delay}, "
                f"spike_fn={self.spike_fn!r}"
            )
        if self.equations == "norse":
            return (
                f"n_neurons={self.n_neurons}, Norse LIF: tau_mem_inv={p.tau_mem_inv}, "
                f"tau_syn_inv={p.tau_syn_inv}, v_leak={p.v_leak:g}, v_th={p.v_th:g}, v_reset={p.v_reset:g}, "
                f"dt={p.dt:g}, spike_fn={self.spike_fn!r}"
            )
        return (
            f"n_neurons={self.n_neurons}, tau_mem={p.tau_mem:g}, tau_syn={p.tau_syn:g}, "
            f"R={p.resistance:g}, V_th={p.v_threshold:g}, spike_fn={self.spike_fn!r}"
        )
