"""Spike functions: the Heaviside step of eq 4 with a surrogate derivative for back-propagation.

A spike function is any callable ``f(x) -> spikes`` with ``x = u - V_th``, the convention of snnTorch's
``spike_grad``; so snnTorch surrogates (``snntorch.surrogate.atan()``) can be passed to our layers, and ours
can be passed to snnTorch neurons. The classes here also expose :meth:`SurrogateSpike.derivative`, the
closed-form surrogate derivative, which the fused sequence kernel (:mod:`snn_motifs.fused_kernel`) uses in its
hand-written backward pass; a plain callable without it makes layers fall back to the step-by-step path.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "SurrogateSpike",
    "ATan",
    "FastSigmoid",
    "Sigmoid",
    "Triangle",
    "TSSLStateless",
    "tssl_bp",
    "warmup_surrogate",
    "heaviside",
    "resolve_spike_fn",
    "SPIKE_FUNCTIONS",
]


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """``H(x)``: 1 where ``x > 0`` (strictly, eq 3 fires when ``u- > V_th``), else 0, in ``x``'s dtype."""
    return (x > 0).to(x.dtype)


class _SurrogateHeaviside(torch.autograd.Function):
    """Heaviside forward, ``grad * surrogate.derivative(x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: SurrogateSpike) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


class SurrogateSpike:
    """Base class: Heaviside forward, a smooth function's derivative backward.

    Subclasses implement :meth:`derivative`; ``name`` identifies the function (Norse registration uses it).
    """

    name = "surrogate"

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SurrogateHeaviside.apply(x, self)

    def _params(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self._params().items()))))


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"surrogate parameter {name} must be finite and > 0, got {value!r}")
    return value


class ATan(SurrogateSpike):
    """Arc-tangent surrogate (snnTorch's default): derivative of ``atan(pi/2 alpha x)/pi + 1/2``."""

    name = "atan"

    def __init__(self, alpha: float = 2.0) -> None:
        self.alpha = _positive("alpha", alpha)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x).pow(2))


class FastSigmoid(SurrogateSpike):
    """Fast sigmoid / SuperSpike (Zenke & Ganguli 2018): derivative ``1 / (slope |x| + 1)^2``."""

    name = "fast_sigmoid"

    def __init__(self, slope: float = 25.0) -> None:
        self.slope = _positive("slope", slope)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (self.slope * x.abs() + 1.0).pow(2)


class Sigmoid(SurrogateSpike):
    """Logistic surrogate: derivative of ``sigmoid(slope x)``.

    With ``slope = 1/0.2`` this is the sigmoid TSSL-BP's warm-up uses (the authors' code), up to its clamp.
    """

    name = "sigmoid"

    def __init__(self, slope: float = 5.0) -> None:
        self.slope = _positive("slope", slope)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(self.slope * x)
        return self.slope * sig * (1 - sig)


class Triangle(SurrogateSpike):
    """Piecewise-linear surrogate (Esser 2016, Bellec 2020): ``max(0, 1 - |x|/width) / width``."""

    name = "triangle"

    def __init__(self, width: float = 1.0) -> None:
        self.width = _positive("width", width)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1.0 - x.abs() / self.width, min=0.0) / self.width


def warmup_surrogate(x: torch.Tensor, width: float = 0.2, exp_clamp: float = 8.0) -> torch.Tensor:
    """TSSL-BP's warm-up surrogate: ``d/dx sigmoid(x / width)`` with the exponent clamped to
    ``+-exp_clamp`` (as the authors' code does), ``x = u - V_th``."""
    e = torch.exp(torch.clamp(-x / width, -exp_clamp, exp_clamp))
    return e / ((1 + e) * (1 + e) * width)


class TSSLStateless(SurrogateSpike):
    """The stateless approximation of TSSL-BP for simulators that only pass ``x = u - V_th``.

    snnTorch calls ``spike_grad(mem - threshold)`` and Norse ``threshold(v - v_th, method, alpha)``:
    neither lets a spike function see the membrane increment ``du`` or the neuron's PSC trace, which the
    faithful rule (:class:`snn_motifs.tssl.TSSLBP`) needs. This variant keeps and drops:

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
        self.bound = _positive("bound", bound)
        self.width = _positive("width", width)
        self.exp_clamp = _positive("exp_clamp", exp_clamp)
        self.v_threshold = _positive("v_threshold", v_threshold)

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


SPIKE_FUNCTIONS: dict[str, type[SurrogateSpike]] = {
    cls.name: cls for cls in (ATan, FastSigmoid, Sigmoid, Triangle, TSSLStateless)
}


def resolve_spike_fn(spike_fn: str | Callable[[torch.Tensor], torch.Tensor] | None) -> Callable:
    """Turn ``None`` (default :class:`ATan`), a registered name or a callable into a spike function.

    ``"tssl"`` gives the TSSL-BP rule (:class:`snn_motifs.tssl.TSSLBP`, stable default bound) and
    ``"tssl_authors"`` the authors' constants (:meth:`~snn_motifs.tssl.TSSLBP.authors`).
    """
    if spike_fn is None:
        return ATan()
    if isinstance(spike_fn, str):
        if spike_fn in ("tssl", "tssl_authors"):
            from .tssl import TSSLBP

            return TSSLBP() if spike_fn == "tssl" else TSSLBP.authors()
        try:
            return SPIKE_FUNCTIONS[spike_fn]()
        except KeyError:
            raise ValueError(
                f"unknown spike function {spike_fn!r}; available: "
                f"{sorted([*SPIKE_FUNCTIONS, 'tssl', 'tssl_authors'])}, "
                "or pass a callable f(u - V_th) -> spikes (e.g. snntorch.surrogate.atan())"
            ) from None
    if not callable(spike_fn):
        raise TypeError(f"spike_fn must be a name, a callable or None, got {type(spike_fn).__name__}")
    return spike_fn
