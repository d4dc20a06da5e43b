"""Surrogate spike functions: the Heaviside step of eq 4 with a smooth derivative for back-propagation.

A spike function is any callable ``f(x) -> spikes`` with ``x = u - V_th``, the convention of snnTorch's
``spike_grad``; so snnTorch surrogates (``snntorch.surrogate.atan()``) can be passed to our layers, and ours
can be passed to snnTorch neurons. The classes here also expose :meth:`SurrogateSpike.derivative`, the
closed-form surrogate derivative, which the fused kernel (:mod:`snn_motifs.fused_kernel`) uses in its
hand-written backward pass; a plain callable without it makes layers fall back to the step-by-step path.

TSSL-BP (the faithful rule and its stateless approximation) lives in :mod:`snn_motifs.tssl`; names such as
``"atan"`` or ``"tssl"`` are resolved in :mod:`snn_motifs.spike_fns`.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_positive

__all__ = ["SurrogateSpike", "ATan", "FastSigmoid", "Sigmoid", "Triangle", "heaviside"]


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


class ATan(SurrogateSpike):
    """Arc-tangent surrogate (snnTorch's default): derivative of ``atan(pi/2 alpha x)/pi + 1/2``."""

    name = "atan"

    def __init__(self, alpha: float = 2.0) -> None:
        self.alpha = check_positive("alpha", alpha, "surrogate parameter")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x).pow(2))


class FastSigmoid(SurrogateSpike):
    """Fast sigmoid / SuperSpike (Zenke & Ganguli 2018): derivative ``1 / (slope |x| + 1)^2``."""

    name = "fast_sigmoid"

    def __init__(self, slope: float = 25.0) -> None:
        self.slope = check_positive("slope", slope, "surrogate parameter")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (self.slope * x.abs() + 1.0).pow(2)


class Sigmoid(SurrogateSpike):
    """Logistic surrogate: derivative of ``sigmoid(slope x)``.

    With ``slope = 1/0.2`` this is the sigmoid TSSL-BP's warm-up uses (the authors' code), up to its clamp.
    """

    name = "sigmoid"

    def __init__(self, slope: float = 5.0) -> None:
        self.slope = check_positive("slope", slope, "surrogate parameter")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(self.slope * x)
        return self.slope * sig * (1 - sig)


class Triangle(SurrogateSpike):
    """Piecewise-linear surrogate (Esser 2016, Bellec 2020): ``max(0, 1 - |x|/width) / width``."""

    name = "triangle"

    def __init__(self, width: float = 1.0) -> None:
        self.width = check_positive("width", width, "surrogate parameter")

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1.0 - x.abs() / self.width, min=0.0) / self.width
