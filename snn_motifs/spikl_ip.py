"""SpiKL-IP (the HRMAS paper section 2.3.4, eqs 24-26): intrinsic plasticity that drives each neuron's
firing-rate
distribution toward an exponential one with mean ``mu``, as a reusable hook.

Per neuron and step, with the calcium trace as a running rate estimate::

    phi[t] = (1 - 1/tau_cal) phi[t-1] + s[t],   y = phi / tau_cal                      (eq 24)
    W      = V_th / (exp(1 / (tau y)) - 1)
    dR     = (2 y tau V_th - W - V_th - tau V_th y^2 / mu) / (R W)                      (eq 25)
    dtau   = (-1 + y / mu) / tau
    R     <- R + lr dR,   tau <- tau + lr_tau dtau                                      (eq 26)

**Sign.** The HRMAS paper prints ``R <- R - gamma dR``; the authors' code *adds*. In
``u = (1 - 1/tau) u + (R/tau) I`` a larger tau and a smaller R lower the rate, and ``dtau > 0``, ``dR < 0``
exactly when ``y > mu``: the added direction is the homeostatic one, so we add (and test that rates move
toward ``mu``).

**Silent neurons.** For small ``y`` (roughly ``2 y tau < 1``) the KL gradient for R points the wrong way
(it would silence a quiet neuron further). The authors' code replaces the rule below ``y = 0.01`` at their
``tau = 64`` by ``R += 0.5, tau -= 0.5``: here the threshold is ``silent_rate_tau / tau`` (default 0.64/tau,
their 0.01 at tau = 64) and the fallback is relative, ``R *= 1 + silent_step``, ``tau *= 1 - silent_step``
(default 0.5/64, their step at R = tau = 64).

**Scaling.** The authors' constants belong to their LSM units (V_th = 20, R = tau = 64, gamma = 5, R and tau
clipped to [32, 512], mu = 0.2). For the HRMAS neuron (V_th = 1, R = 1, tau = 16-64) we keep mu and tau_cal
(Table 1: 16), clip R and tau to the same factors of their initial values as the authors' [32, 512]
around 64 (``r_range = tau_range = (0.5, 8)``, tau never below 1 step), and use learning rates with
comparable relative steps (``lr`` on R, ``lr_tau`` on tau; see :class:`SpiKLIP`). Without the relative
lower clip, a neuron whose R is cut during a burst takes huge relative steps (``dR ~ 1/R``) and falls
silent. Everything runs under ``torch.no_grad()``; a step can never produce NaN or Inf.

Attachable to our adapters and layers (``tau_mem`` and ``resistance``), and to stock ``snntorch.Leaky`` /
``snntorch.Synaptic`` and Norse ``LIFCell`` / ``LIFBoxCell`` through an equivalent mapping (see
:meth:`SpiKLIP.attach`); those mappings live in the adapters package (``snntorch_interop``,
``norse_interop``), found through :func:`snn_motifs.adapters.registry.spikl_ip_target`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from ._checks import check_positive

__all__ = ["SpiKLIP", "IPHandle", "StockNeuronTarget", "spikl_ip_step", "rate_kl_to_exponential"]


def spikl_ip_step(
    rate: torch.Tensor,
    resistance: torch.Tensor,
    tau: torch.Tensor,
    *,
    mu: float,
    v_threshold: float,
    lr: float,
    lr_tau: float,
    silent_rate_tau: float = 0.64,
    silent_step: float = 0.5 / 64,
    r_bounds: tuple[torch.Tensor | float, torch.Tensor | float] = (0.05, 20.0),
    tau_bounds: tuple[torch.Tensor | float, torch.Tensor | float] = (2.0, 512.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SpiKL-IP update (eqs 25-26 with the authors' sign, fallback and clipping); returns new (R, tau).

    ``rate`` is ``y`` (spikes per step), all tensors ``[N]``; bounds are absolute (scalars or ``[N]``).
    Pure function, no in-place changes.
    """
    silent = rate < silent_rate_tau / tau
    y = torch.where(silent, torch.ones_like(rate), rate)  # a safe value where the rule is not used
    w = v_threshold / torch.expm1(1.0 / (tau * y))
    d_r = (2 * y * tau * v_threshold - w - v_threshold - tau * v_threshold * y * y / mu) / (resistance * w)
    d_tau = (-1.0 + y / mu) / tau
    new_r = torch.where(silent, resistance * (1 + silent_step), resistance + lr * d_r)
    new_tau = torch.where(silent, tau * (1 - silent_step), tau + lr_tau * d_tau)
    lo_r, hi_r = (torch.as_tensor(b, dtype=resistance.dtype) for b in r_bounds)
    lo_t, hi_t = (torch.as_tensor(b, dtype=tau.dtype) for b in tau_bounds)
    new_r = torch.minimum(torch.maximum(torch.nan_to_num(new_r, nan=1.0, posinf=1e30), lo_r), hi_r)
    new_tau = torch.minimum(torch.maximum(torch.nan_to_num(new_tau, nan=1.0, posinf=1e30), lo_t), hi_t)
    return new_r, new_tau


def rate_kl_to_exponential(rates: torch.Tensor, mu: float, bins: int = 20, max_rate: float = 1.0) -> float:
    """KL(empirical || exponential with mean ``mu``) of a population's firing rates, by histogram.

    The exponential is truncated to ``[0, max_rate]`` and renormalised over the same bins.
    """
    edges = torch.linspace(0, max_rate, bins + 1, dtype=torch.float64)
    hist = torch.histc(rates.double().clamp(0, max_rate), bins=bins, min=0, max=max_rate)
    p = hist / hist.sum()
    cdf = 1 - torch.exp(-edges / mu)
    q = (cdf[1:] - cdf[:-1]) / (cdf[-1] - cdf[0])
    mask = p > 0
    return float((p[mask] * torch.log(p[mask] / q[mask])).sum())


class _Target:
    """How to read and write tau and R of one attached module, and how it reports spikes."""

    def __init__(self, module: nn.Module, ip: SpiKLIP) -> None:
        self.module = module
        self.ip = ip
        self.hooks: list = []
        self.gain: torch.Tensor | None = None
        self.phi: torch.Tensor | None = None
        self.initial: tuple[torch.Tensor, torch.Tensor] | None = None
        self.frozen = False

    # overridden per kind
    def tau(self) -> torch.Tensor:
        raise NotImplementedError

    def resistance(self) -> torch.Tensor:
        raise NotImplementedError

    def write(self, resistance: torch.Tensor, tau: torch.Tensor) -> None:
        raise NotImplementedError

    def v_threshold(self) -> float:
        raise NotImplementedError

    def observe(self, spikes: torch.Tensor) -> None:
        """Called with the spikes of one step; updates trace, R and tau inside the IP window."""
        if self.frozen or not self.ip.active:
            return
        with torch.no_grad():
            s = spikes.detach()
            s = s.reshape(-1, s.shape[-1]).float().mean(0) if s.dim() > 1 else s.float()
            if self.phi is None or self.phi.shape != s.shape:
                self.phi = torch.zeros_like(s)
                self.initial = (self.resistance().detach().clone(), self.tau().detach().clone())
            ip = self.ip
            self.phi.mul_(1 - 1 / ip.tau_cal).add_(s)
            rate = self.phi / ip.tau_cal
            r, tau = self.resistance().detach(), self.tau().detach()
            new_r, new_tau = spikl_ip_step(
                rate.to(r.dtype),
                r,
                tau,
                mu=ip.mu,
                v_threshold=self.v_threshold(),
                lr=ip.lr,
                lr_tau=ip.lr_tau,
                silent_rate_tau=ip.silent_rate_tau,
                silent_step=ip.silent_step,
                r_bounds=(self.initial[0] * ip.r_range[0], self.initial[0] * ip.r_range[1]),
                tau_bounds=(
                    (self.initial[1] * ip.tau_range[0]).clamp(min=1.0),
                    self.initial[1] * ip.tau_range[1],
                ),
            )
            self.write(new_r, new_tau)

    def new_sample(self) -> None:
        if self.phi is not None:
            self.phi.zero_()
        if self.ip.per_sample and self.initial is not None:
            with torch.no_grad():
                self.write(*self.initial)


class _AdapterTarget(_Target):
    """Our :class:`~snn_motifs.adapters.NeuronAdapter`: ``tau_mem`` and ``resistance`` in paper units."""

    def __init__(self, adapter, ip: SpiKLIP) -> None:
        super().__init__(adapter, ip)
        hook = _StepHook(self)
        self.hooks.append(adapter.register_step_hook(hook))

    def tau(self):
        return self.module.tau_mem

    def resistance(self):
        return self.module.resistance

    def write(self, resistance, tau):
        self.module.resistance.copy_(resistance)
        self.module.tau_mem.copy_(tau)

    def v_threshold(self):
        return self.module.v_threshold


class _StepHook:
    """Adapter step hook that is 'active' only while the IP rule adapts (so layers keep their fast path)."""

    def __init__(self, target: _Target) -> None:
        self.target = target

    @property
    def active(self) -> bool:
        return self.target.ip.active and not self.target.frozen

    def __call__(self, adapter, spikes, state) -> None:
        self.target.observe(spikes)

    def on_sequence_start(self) -> None:
        if self.target.ip.per_sample:
            self.target.new_sample()


class StockNeuronTarget(_Target):
    """A simulator's stock neuron: tau via its leak, R as an input gain applied by a pre-hook.

    The gain starts at the identity (``R / tau = 1`` for snnTorch, whose membrane adds the input unscaled;
    ``R = 1`` for Norse), so attaching changes nothing until the rule adapts it. Each simulator's subclass
    (``read_tau``, ``initial_r``, ``input_gain``, ``write``, ``v_threshold``) lives in its adapters module
    (``snn_motifs.adapters.snntorch_interop``, ``snn_motifs.adapters.norse_interop``).
    """

    def __init__(self, module: nn.Module, ip: SpiKLIP) -> None:
        super().__init__(module, ip)
        self.hooks.append(module.register_forward_pre_hook(self._pre))
        self.hooks.append(module.register_forward_hook(self._post))
        self._tau: torch.Tensor | None = None
        self._r: torch.Tensor | None = None

    def _lazy(self, n: int, like: torch.Tensor) -> None:
        if self._tau is None:
            self._tau = self.read_tau(n, like).clone()
            self._r = self.initial_r(self._tau)
            self.write(self._r, self._tau)

    def _pre(self, module, args):
        x = args[0]
        self._lazy(x.shape[-1], x)
        return (x * self.input_gain(), *args[1:])

    def _post(self, module, args, output):
        spikes = output[0] if isinstance(output, tuple) else output
        self.observe(spikes)

    # what each simulator's subclass provides (besides ``write`` and ``v_threshold``)
    def read_tau(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """The neuron's membrane time constant in steps, ``[n]``, on ``like``'s device and dtype."""
        raise NotImplementedError

    def initial_r(self, tau: torch.Tensor) -> torch.Tensor:
        """The R that makes the input gain the identity."""
        raise NotImplementedError

    def input_gain(self) -> torch.Tensor:
        """The factor the pre-hook applies to the neuron's input."""
        raise NotImplementedError

    def tau(self):
        return self._tau

    def resistance(self):
        return self._r


class IPHandle:
    """Returned by :meth:`SpiKLIP.attach`: ``remove()`` undoes the attachment, ``freeze()`` stops adapting
    but keeps the adapted gain in place (for stock neurons, R lives in a pre-hook)."""

    def __init__(self, ip: SpiKLIP, target: _Target) -> None:
        self.ip, self.target = ip, target

    def freeze(self) -> None:
        """Stop adapting (trace, R and tau stay as they are; stock neurons keep their gain)."""
        self.target.frozen = True

    def unfreeze(self) -> None:
        """Resume adapting after :meth:`freeze`."""
        self.target.frozen = False

    def remove(self) -> None:
        for hook in self.target.hooks:
            hook.remove()
        self.target.hooks.clear()
        self.ip._targets.pop(id(self.target.module), None)

    @property
    def rates(self) -> torch.Tensor | None:
        """The current calcium-trace rate estimate ``y`` per neuron (None before the first step)."""
        t = self.target
        return None if t.phi is None else t.phi / self.ip.tau_cal

    @property
    def tau(self) -> torch.Tensor:
        return self.target.tau()

    @property
    def resistance(self) -> torch.Tensor:
        return self.target.resistance()


class SpiKLIP:
    """SpiKL-IP as a hook object.

    Args:
        mu: target mean firing rate in spikes per step, ``0 < mu < 1`` (the authors: 0.2).
        lr: learning rate of R (eq 26). The authors' ``gamma = 5`` at ``R = 64`` is a relative step of
            about ``5 / 64^2 = 0.0012`` per unit of the rule; at our ``R = 1`` the default 0.01 is 8x that,
            so that IP windows of a few thousand steps suffice.
        lr_tau: learning rate of tau; default 0.3, the authors' relative step ``5 / 64^2`` at ``tau = 16``.
        tau_cal: calcium time constant in steps (Table 1: 16).
        per_sample: reset R, tau and the trace at every new sample (the authors' LSM); default False:
            persistent adaptation across samples (HRMAS).
        window_only: adapt only inside :meth:`window` (HRMAS's IP window); default False: always.
        silent_rate_tau, silent_step, r_range, tau_range: see the module docstring.

    Usage::

        ip = SpiKLIP(mu=0.2, tau_cal=16)
        handle = ip.attach(layer)            # SCML / SelfRecurrent / adapter / snn.Leaky / norse LIFCell
        with ip.window():                    # with window_only=True, adaptation happens only in here
            layer.run(x)
        handle.remove()

    The calcium trace is one value per neuron, fed with the batch-mean spikes of each step. Attaching the
    same module twice raises ``ValueError`` (remove the first handle first).
    """

    def __init__(
        self,
        mu: float = 0.2,
        lr: float = 0.01,
        tau_cal: float = 16.0,
        *,
        lr_tau: float | None = None,
        per_sample: bool = False,
        window_only: bool = False,
        silent_rate_tau: float = 0.64,
        silent_step: float = 0.5 / 64,
        r_range: tuple[float, float] = (0.5, 8.0),
        tau_range: tuple[float, float] = (0.5, 8.0),
    ) -> None:
        mu = float(mu)
        if not (0 < mu < 1):
            raise ValueError(f"SpiKLIP mu is a rate per step and must lie in (0, 1), got {mu!r}")
        lr = float(lr)
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"SpiKLIP lr must be >= 0, got {lr!r}")
        lr_tau = 0.3 if lr_tau is None else float(lr_tau)
        if not math.isfinite(lr_tau) or lr_tau < 0:
            raise ValueError(f"SpiKLIP lr_tau must be >= 0, got {lr_tau!r}")
        tau_cal = check_positive("tau_cal", tau_cal, "SpiKLIP")
        if tau_cal < 1:
            raise ValueError(f"SpiKLIP tau_cal must be >= 1 step, got {tau_cal!r}")
        if not (0 < r_range[0] <= 1 <= r_range[1]) or not (0 < tau_range[0] <= 1 <= tau_range[1]):
            raise ValueError(
                f"r_range and tau_range are factors around the initial values (lo <= 1 <= hi), "
                f"got r_range={r_range}, tau_range={tau_range}"
            )
        self.mu, self.lr, self.lr_tau, self.tau_cal = mu, lr, lr_tau, tau_cal
        self.per_sample, self.window_only = per_sample, window_only
        self.silent_rate_tau = check_positive("silent_rate_tau", silent_rate_tau, "SpiKLIP")
        self.silent_step = float(silent_step)
        self.r_range, self.tau_range = tuple(map(float, r_range)), tuple(map(float, tau_range))
        self._in_window = 0
        self._targets: dict[int, _Target] = {}

    @property
    def active(self) -> bool:
        return self._in_window > 0 or not self.window_only

    @contextlib.contextmanager
    def window(self) -> Iterator[SpiKLIP]:
        """The IP window: adaptation is on inside (nestable)."""
        self._in_window += 1
        try:
            yield self
        finally:
            self._in_window -= 1

    def new_sample(self) -> None:
        """Start a new sample: clears the calcium traces (and, with ``per_sample``, restores R and tau)."""
        for target in self._targets.values():
            target.new_sample()

    def attach(self, module: nn.Module) -> IPHandle:
        """Attach to a layer, an adapter, ``snn.Leaky`` / ``snn.Synaptic`` or a Norse LIF cell."""
        from snn_motifs.adapters import NeuronAdapter
        from snn_motifs.adapters.registry import spikl_ip_target

        neurons = getattr(module, "neurons", None)
        if isinstance(neurons, NeuronAdapter):
            module = neurons
        if id(module) in self._targets:
            raise ValueError(
                f"SpiKLIP is already attached to this {type(module).__name__}; remove() it first"
            )
        if isinstance(module, NeuronAdapter):
            target: _Target | None = _AdapterTarget(module, self)
        else:  # a simulator's stock neuron: the adapters package knows how to adapt it
            target = spikl_ip_target(module, self)
        if target is None:
            raise TypeError(
                f"SpiKLIP cannot adapt a {type(module).__module__}.{type(module).__name__}: it has no leak / "
                "gain to adapt. Supported: snn_motifs layers and adapters, snntorch.Leaky / Synaptic, "
                "norse LIFCell / LIFBoxCell"
            )
        self._targets[id(module)] = target
        return IPHandle(self, target)
