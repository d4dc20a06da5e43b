"""TSSL-BP (Zhang & Li, NeurIPS 2020) as a spike gradient: the faithful rule and its stateless approximation.

The papers train with TSSL-BP; the ScSr-SNN paper (eqs 13-19) and the HRMAS paper (eq 22) extend it through
self-recurrent, recurrent and skip connections. What the authors' code computes (their public TSSL-BP
repository), per neuron, walking ``t = T-1 ... 0``, with ``g_s[t]`` the gradient reaching the spike
``s[t]`` through the PSC kernel and ``theta`` a value carried backwards in time::

    q      = clamp(1/du[t], 0, bound) * s[t]          inter-neuron (spike-timing) term, du = u-[t] - u[t-1]
    tssl   = q g_s[t] + theta (u-[t] q / tau_m + (1 - 1/tau_m)(1 - s[t]))   intra-neuron term
    theta <- tssl s[t] + theta (1 - s[t]) (1 - 1/tau_m)
    delta[t] = f(u-[t]) g_s[t]  where the neuron's own PSC a[t] < warm-up threshold, else tssl
    f      = sigmoid'((u - V_th) / width) / width, exponent clamped to +-8   (warm-up surrogate)

``delta[t]`` is the gradient with respect to the membrane update; ``dL/dI[t] = delta[t] / tau_m`` in our
neuron (:mod:`snn_motifs.neuron` puts the ``1/tau`` gain on the current; the authors' has gain 1).

**Step-wise form.** The PSC filter stays in ordinary autograd, which delivers ``g_s[t]`` as the gradient
of the step's spike output: through the next layer, the SC-ML recurrence (one step late), self-recurrence
and skip connections alike, so the papers' extended TSSL-BP needs no special case. One fused neuron step
``(I[t], u[t-1], a[t-1]) -> (s[t], u[t])`` (:class:`TSSLNeuronStep`) does the rest in its backward: it
receives ``g_s[t]`` and ``theta`` (the gradient of its membrane output, i.e. what step ``t+1`` passed back)
and returns ``dL/dI[t]`` and the new ``theta`` as the gradient of ``u[t-1]``. These two differ, which is
why TSSL-BP cannot be a plain ``spike_grad(u - V_th)`` callable.

**PSC convention.** Our PSC follows the HRMAS paper eq 1, ``a[t] = (1 - 1/tau_s) a[t-1] + s[t]`` (no gain);
the authors' code scales it by ``1/tau_s``. Their warm-up threshold ``1/(4 tau_s)`` on their PSC is
therefore ``1/4`` on ours: :attr:`TSSLBP.warmup_threshold` defaults to ``0.25`` (a neuron counts as
"warm" for about ``1.4 tau_s`` steps after a spike). ``g_s`` is ``tau_s`` times the authors' for the
same weights, a constant factor absorbed by the learning rate.

**Stability through recurrence (the default ``bound``).** Through a recurrent edge the backward pass
carries ``delta`` of a post-synaptic neuron back to the spikes of its pre-synaptic ones, where, at spike
steps, it is multiplied by ``q = clamp(1/du, 0, bound)`` again. Per recurrent hop the gradient is scaled by
about ``q * sum_j |w_ij| * R tau_s / tau_m``. A spike is usually triggered by a small increment (``du`` a
fraction of ``V_th``), so ``q`` sits at its clamp: with the authors' ``bound = 8`` the loop gain exceeds 1
as soon as a neuron's recurrent weights sum to ~0.25, and the gradient grows geometrically with the number
of hops, i.e. with time (measured on TI46-Alpha, SC-ML-200 after 6 epochs: input-weight gradient norm
6.6e6 with ``bound = 8``, 1.1 with ``bound = 1``, 0.87 for the arc-tangent surrogate, 1.9 for TSSL-BP
with the recurrent weights zeroed). A surrogate's derivative peaks at about 1, which is why surrogates
stay stable. The default ``bound = 1`` caps TSSL-BP's per-spike gain at that level and keeps the rest of
the rule (timing term for ``du > 1``, intra-neuron term, warm-up switch); :meth:`TSSLBP.authors` (name
``"tssl_authors"``) is the authors' exact recipe, fine for feed-forward networks.

**This module owns the rule.** :func:`tssl_delta` is the one implementation of the backward recursion
above; :class:`TSSLNeuronStep` (the step-by-step path, every backend) and the fused kernel
(:mod:`snn_motifs.fused_kernel`) both call it. :class:`TSSLStateless` / :func:`tssl_bp` is the
approximation for simulators that pass a spike function only ``u - V_th`` (snnTorch's ``spike_grad``,
Norse's ``method``); ``snn_motifs.register_norse_tssl`` (:mod:`snn_motifs.adapters.norse_methods`)
registers it as a Norse ``method``.
"""

from __future__ import annotations

import torch

from ._checks import check_positive
from .neuron import LIFState, membrane_update, psc_update, synaptic_current, synaptic_decay
from .surrogate import SurrogateSpike

__all__ = [
    "TSSLBP",
    "TSSLStateless",
    "TSSLNeuronStep",
    "tssl_bp",
    "tssl_delta",
    "warmup_surrogate",
    "check_incoming_gradient",
]


def warmup_surrogate(x: torch.Tensor, width: float = 0.2, exp_clamp: float = 8.0) -> torch.Tensor:
    """TSSL-BP's warm-up surrogate: ``d/dx sigmoid(x / width)`` with the exponent clamped to
    ``+-exp_clamp`` (as the authors' code does), ``x = u - V_th``."""
    e = torch.exp(torch.clamp(-x / width, -exp_clamp, exp_clamp))
    return e / ((1 + e) * (1 + e) * width)


class TSSLStateless(SurrogateSpike):
    """The stateless approximation of TSSL-BP for simulators that only pass ``x = u - V_th``.

    snnTorch calls ``spike_grad(mem - threshold)`` and Norse ``threshold(v - v_th, method, alpha)``:
    neither lets a spike function see the membrane increment ``du`` or the neuron's PSC trace, which the
    faithful rule (:class:`TSSLBP`) needs. This variant keeps and drops:

    * **kept**, at spike steps (``x > 0``): the inter-neuron spike-timing term ``clamp(1/du, 0, bound)``
      with ``du = u- - u[t-1]`` estimated as ``u- = x + V_th``, i.e. exact for a neuron that rises from
      0 (just reset, or at rest) and a lower estimate when the previous membrane was positive. This choice
      also keeps the simulator's own back-propagation through the hard reset stable: the reset multiplies
      the membrane gradient by ``-u- h(x)``, which is ``-1`` here, whereas the upper estimate ``1/x``
      (up to ``bound`` = 8) makes that factor ``-8`` per spike and the gradients explode (measured: an
      SC-ML classifier on MNIST-1D falls to chance with ``1/x``).
    * **kept**, at silent steps (``x <= 0``): the warm-up surrogate ``sigmoid'(x / width) / width``.
    * **dropped**: the trace-based switch (the faithful rule uses the sigmoid only where the neuron has not
      fired recently, and otherwise passes the intra-neuron term), and the intra-neuron term itself: the
      reset's effect on later spikes is left to the simulator's own back-propagation through the reset and
      the leak, which is ordinary BPTT rather than TSSL-BP's closed form.
    """

    name = "tssl_stateless"

    def __init__(
        self, bound: float = 8.0, width: float = 0.2, exp_clamp: float = 8.0, v_threshold: float = 1.0
    ) -> None:
        self.bound = check_positive("bound", bound, "surrogate parameter")
        self.width = check_positive("width", width, "surrogate parameter")
        self.exp_clamp = check_positive("exp_clamp", exp_clamp, "surrogate parameter")
        self.v_threshold = check_positive("v_threshold", v_threshold, "surrogate parameter")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        rise = (x + self.v_threshold).clamp(min=1.0 / self.bound)  # du estimate, clipped as 1/du is
        return torch.where(x > 0, 1.0 / rise, warmup_surrogate(x, self.width, self.exp_clamp))


def tssl_bp(
    bound: float = 8.0, width: float = 0.2, exp_clamp: float = 8.0, v_threshold: float = 1.0
) -> TSSLStateless:
    """TSSL-BP as a ``spike_grad`` for any snnTorch neuron (``snn.Leaky(spike_grad=tssl_bp())``).

    This is the stateless approximation :class:`TSSLStateless` (see there for what it keeps and drops).
    Our own layers run the faithful rule with ``spike_fn="tssl"``. ``v_threshold`` must be the neuron's.
    """
    return TSSLStateless(bound, width, exp_clamp, v_threshold)


def tssl_delta(
    spike_fn: TSSLBP,
    g_s: torch.Tensor,
    theta: torch.Tensor,
    mem: torch.Tensor,
    u_prev: torch.Tensor,
    spikes: torch.Tensor,
    psc: torch.Tensor,
    leak: torch.Tensor,
    tau_inv: torch.Tensor,
    v_threshold: float,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TSSL-BP at one step ``t`` of the backward walk (module docstring): ``(delta[t], theta for t-1)``.

    Args:
        spike_fn: the :class:`TSSLBP` instance (``bound``, ``width``, ``exp_clamp``, ``warmup_threshold``).
        g_s: gradient reaching the spike ``s[t]`` (through the PSC, the next layer and the recurrence).
        theta: the value carried back from step ``t+1`` (plus any direct gradient of the membrane ``u[t]``).
        mem: the pre-reset membrane ``u-[t]``; u_prev: the membrane ``u[t-1]``; spikes: ``s[t]``.
        psc: the neuron's own PSC ``a[t]`` after this step (eq 1), for the warm-up switch.
        leak, tau_inv: ``1 - 1/tau`` and ``1/tau`` per neuron; v_threshold: ``V_th``.
        out: optional buffer for ``delta`` (the fused kernel writes it into its per-step storage).

    ``delta[t]`` is the gradient with respect to the membrane update (``dL/dI[t] = tau_inv delta[t]``).
    """
    du = mem - u_prev
    q = torch.where(du > 0, 1.0 / du.clamp(min=1.0 / spike_fn.bound), 0.0) * spikes
    silent = 1.0 - spikes
    tssl = q * g_s + theta * (mem * tau_inv * q + leak * silent)
    theta_prev = tssl * spikes + theta * silent * leak
    surrogate = warmup_surrogate(mem - v_threshold, spike_fn.width, spike_fn.exp_clamp)
    if getattr(spike_fn, "warmup", "neuron") == "layer":  # the authors' older switch: the whole layer at once
        cold = torch.tensor(spike_fn.layer_rate() < spike_fn.warmup_rate, device=psc.device)
    else:  # per neuron: not fired recently (own PSC below the threshold)
        cold = psc < spike_fn.warmup_threshold
    delta = torch.where(cold, surrogate * g_s, tssl, out=out)
    return delta, theta_prev


def check_incoming_gradient(
    spike_fn: TSSLBP, *grads: torch.Tensor | None, source: str = "the layers above"
) -> None:
    """Raise ``FloatingPointError`` if ``spike_fn.check_finite`` and an incoming gradient holds NaN/Inf,
    before TSSL-BP would write it into the weights (``None`` gradients are skipped). Skipped inside a compiled
    graph, where the data-dependent check cannot be traced."""
    if torch.compiler.is_compiling():
        return
    if spike_fn.check_finite and not all(g is None or torch.isfinite(g).all() for g in grads):
        raise FloatingPointError(
            f"TSSL-BP received a NaN/Inf gradient from {source}; refusing to write it into the weights. "
            "Check the loss and learning rate, or pass TSSLBP(check_finite=False) to disable this check."
        )


class TSSLNeuronStep(torch.autograd.Function):
    """Fused LIF step with the TSSL-BP backward.

    ``forward(I, u_prev, a_prev, leak, tau_inv, s_fwd, u_fwd, V_th, tau_s_decay, spike_fn) -> (s, u)``:
    ``u- = leak u_prev + tau_inv I``, ``s = H(u- - V_th)``, ``u = u- (1 - s)``. If a backend already
    computed ``s_fwd`` and ``u_fwd`` (snnTorch, Norse), those are returned and only the backward is ours.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        syn: torch.Tensor,
        u_prev: torch.Tensor,
        a_prev: torch.Tensor,
        leak: torch.Tensor,
        tau_inv: torch.Tensor,
        s_fwd: torch.Tensor | None,
        u_fwd: torch.Tensor | None,
        v_threshold: float,
        syn_decay: float,
        spike_fn: TSSLBP,
    ):
        mem = membrane_update(syn, u_prev, leak, tau_inv)  # u-[t], as in lif_step
        if s_fwd is None:
            spikes = (mem > v_threshold).to(mem.dtype)
            u_post = mem - spikes * mem
        else:
            spikes, u_post = s_fwd.clone(), u_fwd.clone()
        ctx.save_for_backward(syn, u_prev, a_prev, leak, tau_inv, mem, spikes)
        ctx.v_threshold, ctx.syn_decay, ctx.spike_fn = v_threshold, syn_decay, spike_fn
        return spikes, u_post

    @staticmethod
    def backward(ctx, g_s: torch.Tensor, theta: torch.Tensor):  # type: ignore[override]
        syn, u_prev, a_prev, leak, tau_inv, mem, spikes = ctx.saved_tensors
        spike_fn: TSSLBP = ctx.spike_fn
        check_incoming_gradient(spike_fn, g_s, theta, source="the layers above (loss or later time steps)")
        psc = psc_update(a_prev, spikes, ctx.syn_decay)
        delta, theta_prev = tssl_delta(
            spike_fn, g_s, theta, mem, u_prev, spikes, psc, leak, tau_inv, ctx.v_threshold
        )
        g_syn = tau_inv * delta
        batch_dims = tuple(range(delta.dim() - leak.dim()))
        g_leak = (u_prev * delta).sum(batch_dims) if ctx.needs_input_grad[3] else None
        g_tau_inv = (syn * delta).sum(batch_dims) if ctx.needs_input_grad[4] else None
        return g_syn, theta_prev, None, g_leak, g_tau_inv, None, None, None, None, None


class TSSLBP(TSSLStateless):
    """Faithful TSSL-BP for our layers: ``SCML(..., spike_fn="tssl")`` or ``spike_fn=TSSLBP(...)``.

    Args:
        bound: clamp of ``1/du``; default 1, stable through recurrent connections (module docstring);
            the authors use 8 (:meth:`authors`).
        width: width of the warm-up sigmoid (0.2).
        exp_clamp: clamp of the sigmoid's exponent (8).
        warmup_threshold: PSC level below which a neuron counts as not recently active and gets the
            warm-up surrogate; 0.25 on our eq-1 PSC equals the authors' ``1/(4 tau_s)`` on theirs.
        check_finite: raise on a NaN/Inf incoming gradient instead of writing NaN into the weights.
        warmup: ``"neuron"`` (default, the authors' current code): each neuron gets the warm-up
            surrogate where its own PSC is below ``warmup_threshold``; ``"layer"`` (their older code): the
            whole layer gets it while the layer's mean firing rate in the forward pass is below
            ``warmup_rate``, and the TSSL-BP terms otherwise (silent neurons then get no gradient). A
            ``"layer"`` rule must know its layer (:meth:`bind`; :func:`~snn_motifs.training.fit` binds it).
        warmup_rate: the layer rate of ``warmup="layer"`` (0.05, the authors' last value; 0.1 before).

    Works on every backend: the native one computes the step itself; with snnTorch and Norse the
    simulator's neuron computes the forward pass (under ``no_grad``) and this rule supplies the
    gradient, while the synaptic and PSC filters stay in autograd. Requires a hard reset to 0 (eq 3).
    Handed directly to a simulator (``snn.Leaky(spike_grad=TSSLBP())``) it acts as the stateless
    approximation :class:`TSSLStateless`.
    """

    name = "tssl"
    #: adapters call :meth:`neuron_step` instead of their plain step
    uses_neuron_state = True

    def __init__(
        self,
        bound: float = 1.0,
        width: float = 0.2,
        exp_clamp: float = 8.0,
        warmup_threshold: float = 0.25,
        check_finite: bool = True,
        *,
        warmup: str = "neuron",
        warmup_rate: float = 0.05,
    ) -> None:
        super().__init__(bound, width, exp_clamp)
        if not warmup_threshold >= 0:
            raise ValueError(f"warmup_threshold must be >= 0, got {warmup_threshold!r}")
        if warmup not in ("neuron", "layer"):
            raise ValueError(
                f"warmup must be 'neuron' (the authors' current switch, on each neuron's PSC) or 'layer' "
                f"(their older one, on the layer's mean rate), got {warmup!r}"
            )
        if not 0 <= warmup_rate <= 1:
            raise ValueError(f"warmup_rate must be a firing rate in [0, 1], got {warmup_rate!r}; e.g. 0.05")
        self.warmup_threshold = float(warmup_threshold)
        self.check_finite = bool(check_finite)
        self.warmup = warmup
        self.warmup_rate = float(warmup_rate)

    def bind(self, layer) -> TSSLBP:
        """Give a ``warmup="layer"`` rule the layer whose mean rate (``layer.last_rate``, set by every
        :meth:`~snn_motifs.layers.SpikingLayer.run`, read when the backward pass runs) switches it;
        :func:`~snn_motifs.training.fit` binds the rules of the model's layers itself. One rule serves one
        layer; the eager paths only (not ``kernel="compiled"``). Returns ``self``."""
        import weakref

        if getattr(layer, "kernel", None) == "compiled" or getattr(layer, "compile", False) is True:
            raise ValueError(
                "TSSLBP(warmup='layer') runs on the eager paths only (the layer rate is read at backward "
                "time); build the layer with kernel='auto', 'fused' or 'step', not 'compiled'"
            )
        bound_to = self._layer() if getattr(self, "_layer", None) is not None else None
        if bound_to is not None and bound_to is not layer:
            raise ValueError(
                "this TSSLBP(warmup='layer') rule is already bound to another layer; give every layer its "
                "own rule (spike_fn=TSSLBP(warmup='layer') per layer)"
            )
        self._layer = weakref.ref(layer)
        return self

    def layer_rate(self) -> float:
        """The bound layer's mean firing rate in its last forward pass (``warmup="layer"``)."""
        layer = self._layer() if getattr(self, "_layer", None) is not None else None
        if layer is None or layer.last_rate is None:
            raise RuntimeError(
                "TSSLBP(warmup='layer') needs its layer's firing rate: call its bind(layer) (fit does it) "
                "and run the layer forward before backward"
            )
        return float(layer.last_rate)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_layer", None)  # a weak reference cannot be pickled or deep-copied; bind again
        return state

    @classmethod
    def authors(cls, **kwargs) -> TSSLBP:
        """The TSSL-BP authors' constants (``bound = 8``): spike function name ``"tssl_authors"``."""
        return cls(**{"bound": 8.0, **kwargs})

    def neuron_step(self, adapter, current: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        """One step of ``adapter``'s neurons with the TSSL-BP backward (see the module docstring)."""
        reset = getattr(adapter, "reset_mechanism", "zero")
        if reset != "zero":
            raise ValueError(
                f"TSSL-BP assumes a hard reset to 0 (the HRMAS paper eq 3), but {type(adapter).__name__} "
                f"uses reset_mechanism={reset!r}; use a zero-reset neuron or another spike function"
            )
        tau_inv = adapter.tau_inv()
        decay = adapter.syn_decay
        syn = synaptic_current(state.i, adapter.effective_resistance(), current)
        simulated = adapter.forward_only_step(current, state)  # the simulator's own forward pass, if any
        s_fwd, u_fwd = (None, None) if simulated is None else (simulated[0], simulated[1].v)
        spikes, mem = TSSLNeuronStep.apply(
            syn, state.v, state.a, 1.0 - tau_inv, tau_inv, s_fwd, u_fwd, adapter.v_threshold, decay, self
        )
        return spikes, LIFState(mem, synaptic_decay(syn, decay), psc_update(state.a, spikes, decay), spikes)
