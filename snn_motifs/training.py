"""A small, explicit training loop for spiking classifiers (time-first data, the papers' losses).

Kept deliberately plain: one epoch is ``for x, y in batches: loss(model(x), y).backward(); step``. The
benchmarks, the ScSr-SNN builder and the HRMAS search share it. :func:`fit` holds the recommended recipe,
chosen by measurement on TI46-Alpha and MNIST-1D (docs/results.md, "Accuracy"): AdamW, a cosine learning-rate
schedule, gradient-norm clipping, and a data-driven input gain (:func:`calibrate_input_gain`) so that no
hand-set constant is needed to make the first layer fire. Each epoch logs every spiking layer's firing
rate and the gradient norms, and warns when a layer is silent or saturated. A non-finite loss, gradient
or weight stops training with :class:`NonFiniteError` (the epoch and the likely cause in one line) before
the optimiser step that would spread it.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from ._tensorboard import open_log
from .datasets import batches
from .layers import SpikingLayer, spiking_layers
from .losses import RateRegularizer, count_loss, decode_membrane, kernel_loss, membrane_loss, predict
from .readout import MEMBRANE_READOUTS, READOUTS

__all__ = [
    "LossConfig",
    "SpikingClassifier",
    "check_model",
    "objective_of",
    "make_loss",
    "make_predict",
    "train_epoch",
    "evaluate",
    "fit",
    "calibrate_input_gain",
    "firing_rates",
    "make_optimizer",
    "fit_optimizer",
    "fit_epoch",
    "calibrate_for_training",
    "batches_per_epoch",
    "data_parallel",
    "CLIP_GRAD",
    "distributed_info",
    "average_gradients",
    "average_scalar",
    "local_batches",
    "NonFiniteError",
    "nonfinite_tensors",
    "check_loss",
    "check_gradient",
    "check_parameters",
    "check_loaded",
    "epoch_context",
    "TimeFirstLoader",
    "clip_weights",
    "bind_spike_fns",
    "bind_layer_rules",
    "rate_penalty_tap",
]

#: training samples :func:`fit` calibrates the input gain on
CALIBRATION_SAMPLES = 256
#: a layer firing on fewer than this fraction of steps counts as silent, more than ``SATURATED`` as saturated
SILENT, SATURATED = 1e-3, 0.5


@dataclass(init=False)
class LossConfig:
    """Which output loss to use and its constants; ``readout`` names it
    (:data:`~snn_motifs.readout.READOUTS`): ``"mean"``/``"max"``/``"last"`` (cross-entropy on a
    leaky-integrator membrane, the default), ``"count"`` or ``"kernel"`` (the HRMAS paper eq 29, spiking
    output). The same name a model's ``readout`` attribute and a search config's ``readout`` key hold.

    ``LossConfig(kind=...)`` and the attribute ``kind`` are deprecated aliases of ``readout``
    (``CHANGELOG.md``, "Renamed")."""

    readout: str = "mean"
    tau_syn: float = 8.0
    #: count loss: the label neuron should fire on at least this fraction of the steps (padding included),
    #: the others on at most ``undesired_rate``; 0.2 / 0.02 beat the 0.5 / 0.05 used before (TI46-Alpha,
    #: docs/results.md "Accuracy"): a rate of 0.5 is out of reach for a tau_m = 16 neuron on short utterances
    desired_rate: float = 0.2
    undesired_rate: float = 0.02

    def __init__(
        self,
        readout: str | None = None,
        tau_syn: float = 8.0,
        desired_rate: float = 0.2,
        undesired_rate: float = 0.02,
        *,
        kind: str | None = None,
    ) -> None:
        if kind is not None:
            warnings.warn(
                "LossConfig(kind=...) is deprecated; use LossConfig(readout=...)", DeprecationWarning, 2
            )
            if readout is not None and readout != kind:
                raise ValueError(
                    f"LossConfig got readout={readout!r} and its old name kind={kind!r}; give one"
                )
            readout = kind
        self.readout = "mean" if readout is None else readout
        self.tau_syn, self.desired_rate, self.undesired_rate = tau_syn, desired_rate, undesired_rate

    @property
    def kind(self) -> str:
        """Deprecated name of :attr:`readout`."""
        warnings.warn("LossConfig.kind is deprecated; use LossConfig.readout", DeprecationWarning, 2)
        return self.readout


def make_loss(cfg: LossConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(outputs [T, B, C], labels [B]) -> scalar`` (mean over the batch)."""
    if cfg.readout in MEMBRANE_READOUTS:
        return lambda mem, y: membrane_loss(mem, y, cfg.readout)
    if cfg.readout == "kernel":
        return lambda s, y: kernel_loss(s, y, cfg.tau_syn, reduction="mean")
    if cfg.readout == "count":

        def loss(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            steps = s.shape[0]
            return count_loss(s, y, cfg.desired_rate * steps, cfg.undesired_rate * steps, reduction="mean")

        return loss
    raise ValueError(f"unknown readout {cfg.readout!r}; choose from {list(READOUTS)}")


def make_predict(cfg: LossConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """``predict(outputs [T, B, C]) -> classes [B]`` matching :func:`make_loss`'s readout."""
    if cfg.readout in MEMBRANE_READOUTS:
        return lambda mem: decode_membrane(mem.detach(), cfg.readout).argmax(-1)
    if cfg.readout in ("count", "kernel"):
        return lambda s: predict(s, cfg.tau_syn)
    raise ValueError(f"unknown readout {cfg.readout!r}; choose from {list(READOUTS)}")


class SpikingClassifier(Protocol):
    """What :func:`fit`, :func:`evaluate` and :func:`calibrate_input_gain` read from a model: the training
    loop's contract, written down (:class:`~snn_motifs.SCMLClassifier` and :class:`~snn_motifs.ScSrSNN`
    provide all of it; :func:`check_model` checks it).

    Required:
        ``__call__(x [T, B, C]) -> outputs [T, B, classes]``: an ``nn.Module`` (its ``parameters()`` are
        trained) mapping time-first inputs to the readout's output: membranes for a membrane readout,
        spikes for a spiking one.

    Optional (read with a default when absent):
        ``readout`` (``str``, one of :data:`~snn_motifs.readout.READOUTS`): which loss and prediction
        rule fit the outputs (:func:`objective_of`); absent: the spiking ``"count"`` loss (a plain stack
        of spiking layers).
        ``tau_syn`` (number > 0): the PSC constant of a spiking readout's kernel loss and prediction;
        absent: 8.
        ``input_gain`` (a 0-d tensor buffer multiplying the input): set by :func:`calibrate_input_gain`
        (``fit(..., calibrate=True)``); absent: no calibration. Calibration also needs a spiking layer
        (:class:`~snn_motifs.layers.SpikingLayer`) as the first one to fire.

    An attribute that is present but of the wrong kind is refused by :func:`check_model` with a
    ``TypeError`` naming it and the fix, never silently ignored.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


#: the optional attributes of :class:`SpikingClassifier` and their defaults
MODEL_DEFAULTS = {"readout": "count", "tau_syn": 8.0, "input_gain": None}


def check_model(model: object, check_readout: bool = True, what: str = "the model") -> None:
    """Refuse (``TypeError``, naming the attribute and the fix) a model that does not keep the
    :class:`SpikingClassifier` contract; ``check_readout=False`` skips ``readout`` and ``tau_syn`` (a loss is
    given, so they are not read)."""
    name = type(model).__name__
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{what} is a {name}, not a torch.nn.Module: fit trains an nn.Module mapping x [T, B, C] to "
            "outputs [T, B, classes] (snn_motifs.training.SpikingClassifier)"
        )
    if not check_readout:
        _check_gain(model, name)
        return
    readout = getattr(model, "readout", None)
    if readout is not None and not (isinstance(readout, str) and readout in READOUTS):
        raise TypeError(
            f"{name}.readout is {_short(readout)}: it names the loss, one of {list(READOUTS)}; set it to "
            "one of them (or delete it for the count loss), or pass fit(..., loss=LossConfig(readout=...))"
        )
    tau = getattr(model, "tau_syn", None)
    if isinstance(tau, torch.Tensor) and tau.numel() == 1:
        tau = float(tau)
    if tau is not None and not (
        isinstance(tau, (int, float)) and not isinstance(tau, bool) and math.isfinite(tau) and tau > 0
    ):
        raise TypeError(
            f"{name}.tau_syn is {_short(tau)}: it must be a PSC time constant > 0 (steps), e.g. 8.0"
        )
    _check_gain(model, name)


def _short(value: object) -> str:
    """``repr`` of a str or number, else its type (a module's repr spans lines)."""
    return repr(value) if isinstance(value, (str, int, float)) else f"a {type(value).__name__}"


def _check_gain(model: object, name: str) -> None:
    gain = getattr(model, "input_gain", None)
    if gain is not None and not (isinstance(gain, torch.Tensor) and gain.dim() == 0):
        raise TypeError(
            f"{name}.input_gain is {_short(gain)}: it must be a 0-d tensor buffer so calibration can set "
            "it and checkpoints keep it; use self.register_buffer('input_gain', torch.tensor(1.0)), or "
            "rename the attribute if it is not the input gain"
        )


def objective_of(model: nn.Module, loss: LossConfig | None = None) -> LossConfig:
    """The loss a model is trained with: ``loss`` if given, else the one its ``readout`` names (with its
    ``tau_syn``), else the spiking count loss (:class:`SpikingClassifier`: a plain stack of spiking
    layers has no ``readout``)."""
    if loss is not None:
        return loss
    check_model(model)
    readout = getattr(model, "readout", None)
    if readout is not None:
        return LossConfig(
            readout=readout, tau_syn=float(getattr(model, "tau_syn", MODEL_DEFAULTS["tau_syn"]))
        )
    return LossConfig(readout=MODEL_DEFAULTS["readout"])


def firing_rates(model: nn.Module) -> dict[str, float]:
    """Mean firing rate (spikes per neuron and step) of each spiking layer in its last :meth:`run`."""
    return {
        name: float(layer.last_rate)
        for name, layer in spiking_layers(model).items()
        if layer.last_rate is not None
    }


def distributed_info() -> tuple[int, int]:
    """``(rank, world_size)`` of an initialised ``torch.distributed`` process group, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def average_gradients(params) -> None:
    """Average the gradients of ``params`` over the ranks of ``torch.distributed`` (no-op alone)."""
    world = distributed_info()[1]
    if world == 1:
        return
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad.div_(world)


def average_scalar(value: float) -> float:
    """The mean of ``value`` over the ranks (itself alone)."""
    world = distributed_info()[1]
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return float(t) / world


_LAYOUT = {True: "batch-first [B, T, F]", False: "time-first [T, B, F]"}


def _shape(t) -> str:
    return str(list(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


class TimeFirstLoader:
    """A loader's batches as time-first ``(x [T, B, ...], y [B])``, whichever layout it yields.

    ``batch_first=None`` infers the layout from the label count: the batch axis is the one of axes 0 and 1
    whose length equals the number of labels, decided on the first batch and then kept (a later batch's
    ``T`` may equal its ``B``). When both axes match (``T == B``) the layout cannot be told and
    ``batch_first`` must be given; ``True``/``False`` is checked against every batch's label count. The
    errors name the shapes seen and the argument to pass. A stock ``DataLoader`` over an ``[n, T, F]``
    dataset (tonic's, most users') is batch-first; :mod:`snn_motifs.loaders` is time-first.
    """

    def __init__(self, loader: Iterable, batch_first: bool | None = None, what: str = "the loader") -> None:
        if batch_first not in (None, True, False):
            raise ValueError(f"batch_first must be None, True or False, got {batch_first!r}")
        self.loader, self.batch_first, self.what = loader, batch_first, what
        self._layout: bool | None = batch_first  # decided on the first batch when not given

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            xb, yb = self._split(batch)
            if self._resolve(xb, yb):
                xb = xb.transpose(0, 1)
            yield xb, yb

    def _split(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"{self.what} must yield (x, labels) pairs, got a {type(batch).__name__}")
        xb, yb = batch
        if not isinstance(xb, torch.Tensor) or xb.dim() < 2:
            raise ValueError(
                f"{self.what} gives x of shape {_shape(xb)}: a batch must be time-first [T, B, F] or "
                "batch-first [B, T, F]"
            )
        yb = torch.as_tensor(yb)
        if yb.dim() != 1:
            raise ValueError(f"{self.what} gives labels of shape {_shape(yb)}: need [B] class indices")
        return xb, yb

    def _resolve(self, xb: torch.Tensor, yb: torch.Tensor) -> bool:
        """Whether this batch is batch-first (deciding the layout on the first batch when inferred)."""
        n, first, second = len(yb), xb.shape[0], xb.shape[1]
        seen = f"{self.what} gives x of shape {_shape(xb)} and {n} labels"
        if self._layout is None:  # the first batch, layout not given: infer it
            if first == n and second == n:
                raise ValueError(
                    f"{seen}: the layout is ambiguous (time-first [T, B, F] or batch-first [B, T, F], T = B "
                    f"= {n}); pass batch_first=True (a stock DataLoader over [n, T, F] samples) or "
                    "batch_first=False (snn_motifs.loaders)"
                )
            if first != n and second != n:
                raise ValueError(
                    f"{seen}: neither axis 0 nor axis 1 has one entry per label, so it is neither time-first "
                    "[T, B, F] nor batch-first [B, T, F]"
                )
            self._layout = first == n
            return self._layout
        axis = 0 if self._layout else 1
        if xb.shape[axis] == n:
            return self._layout
        expected = _LAYOUT[self._layout]
        why = (
            f"as batch_first={self._layout} says"
            if self.batch_first is not None
            else "as its first batch was"
        )
        if xb.shape[1 - axis] == n:
            given = self.batch_first is not None
            advice = f"pass batch_first={not self._layout}" if given else "the loader mixes layouts"
            raise ValueError(f"{seen}: that is {_LAYOUT[not self._layout]}, not {expected} {why}; {advice}")
        raise ValueError(
            f"{seen}: axis {axis} should hold the batch ({expected}, {why}) but neither axis 0 nor axis 1 "
            "has one entry per label"
        )


def _sample_first(x: torch.Tensor, y: torch.Tensor, what: str = "x") -> None:
    """Refuse tensors that are not sample-first ``x [n, T, F]`` with ``y [n]``, naming the layout."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        return
    if x.dim() >= 2 and y.dim() == 1 and len(x) != len(y) and x.shape[1] == len(y):
        raise ValueError(
            f"{what} has shape {list(x.shape)} and {len(y)} labels: that is time-first [T, n, F]; tensors "
            f"must be sample-first [n, T, F]: pass {what}.transpose(0, 1)"
        )
    if x.dim() < 2 or y.dim() != 1 or len(x) != len(y):
        raise ValueError(
            f"{what} has shape {list(x.shape)} and the labels {list(y.shape)}: tensors must be sample-first "
            "x [n, T, F] with labels [n]"
        )


def _batches(x, y, batch_size: int, shuffle: bool, generator, shard: bool = False, batch_first=None):
    """Time-first batches from sample-first tensors, or the batches of a loader (``y`` None) in either
    layout (:class:`TimeFirstLoader`, ``batch_first``). With ``shard`` under ``torch.distributed`` every
    rank draws the same global batches (same generator) and keeps its slice ``rank::world`` (a loader
    brings its own ``DistributedSampler`` instead)."""
    if y is None:
        return iter(x if isinstance(x, TimeFirstLoader) else TimeFirstLoader(x, batch_first))
    rank, world = distributed_info() if shard else (0, 1)
    if world == 1:
        return batches(x, y, batch_size, shuffle=shuffle, generator=generator)
    return ((xb[:, rank::world], yb[rank::world]) for xb, yb in batches(x, y, batch_size, shuffle, generator))


def local_batches(x, y, batch_size: int, generator):
    """Shuffled time-first batches; under ``torch.distributed`` this rank's slice of each global batch."""
    return _batches(x, y, batch_size, True, generator, shard=True)


class NonFiniteError(ValueError):
    """Training met a NaN or Inf loss, gradient or weight, or a loaded model holds one. The message is one
    line naming where (the epoch, or the file and parameter) and the likely cause. A ``ValueError``, so
    ``snn-motifs`` prints it as one line and exits with status 2."""


def nonfinite_tensors(obj, prefix: str = "") -> list[tuple[str, str]]:
    """``(name, "NaN" | "Inf" | "NaN and Inf")`` for every floating-point tensor holding a non-finite
    value in ``obj``: a module (its parameters and buffers), a tensor, or dicts and lists of them (a state
    dict, a checkpoint); names are dotted paths from ``prefix``."""
    if isinstance(obj, nn.Module):
        obj = {**dict(obj.named_parameters()), **dict(obj.named_buffers())}
    if isinstance(obj, torch.Tensor):
        if not (obj.is_floating_point() or obj.is_complex()) or bool(torch.isfinite(obj).all()):
            return []
        nan, inf = bool(torch.isnan(obj).any()), bool(torch.isinf(obj).any())
        return [(prefix, "NaN and Inf" if nan and inf else "NaN" if nan else "Inf")]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    found: list[tuple[str, str]] = []
    for key, value in items:
        found += nonfinite_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    return found


def _listing(bad: list[tuple[str, str]], shown: int = 3) -> str:
    """``"parameter 'w' holds NaN"`` / ``"parameters 'w' (NaN), 'b' (Inf) and 2 more hold NaN or Inf"``."""
    if len(bad) == 1:
        return f"parameter {bad[0][0]!r} holds {bad[0][1]}"
    names = ", ".join(f"{name!r} ({kind})" for name, kind in bad[:shown])
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    return f"parameters {names}{more} hold NaN or Inf"


def _likely_cause(model: nn.Module, optimizer: torch.optim.Optimizer | None, inputs=None) -> str:
    """The advice of a :class:`NonFiniteError`: NaN/Inf in the data, else a learning rate too high (with
    ``arch_lr`` too when the architecture logits of a search diverged: huge weights make them diverge as
    well, so which of the two is to blame cannot be told from the result)."""
    if (
        isinstance(inputs, torch.Tensor)
        and inputs.is_floating_point()
        and not bool(torch.isfinite(inputs).all())
    ):
        return "the input data hold NaN or Inf: clean the data set"
    lr = None
    if optimizer is not None and optimizer.param_groups:
        group = optimizer.param_groups[0]
        lr = group.get("initial_lr", group.get("lr"))
    advice = "learning rate too high: lower lr" + (f" (it is {lr:.3g})" if isinstance(lr, float) else "")
    bad = [name for name, _ in nonfinite_tensors(dict(model.named_parameters()))]
    arch = [name for name in bad if "arch" in name.split(".")]
    if arch:
        advice += f" or arch_lr (the architecture logits {arch[0]!r} diverged)"
    return advice


def _any_rank(flag: bool) -> bool:
    """``flag`` or-ed over the ranks of ``torch.distributed`` (so every rank stops together)."""
    if distributed_info()[1] == 1:
        return flag
    t = torch.tensor([float(flag)])
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


def _diverged(
    what: str, model: nn.Module, optimizer, inputs=None, batch: int | None = None
) -> NonFiniteError:
    where = f" at batch {batch}" if batch is not None else ""
    return NonFiniteError(
        f"training diverged: {what}{where}; likely cause: {_likely_cause(model, optimizer, inputs)}; stopped "
        "before the optimiser step, the weights are those of the last finite step"
    )


def check_loss(
    loss: float,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    inputs: torch.Tensor | None = None,
    batch: int | None = None,
) -> None:
    """Raise :class:`NonFiniteError` when a batch's ``loss`` is NaN or Inf. Called before ``backward``
    (which would spread it into every gradient, or trip TSSL-BP's own check), so the weights stay those of
    the last finite step. Under ``torchrun`` every rank stops when one does."""
    if _any_rank(not math.isfinite(loss)):
        what = f"the loss is {loss}" if not math.isfinite(loss) else "the loss is NaN or Inf on another rank"
        raise _diverged(what, model, optimizer, inputs, batch)


def check_gradient(
    grad_norm: float | torch.Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    batch: int | None = None,
) -> None:
    """Raise :class:`NonFiniteError` when the gradient norm is NaN or Inf (a finite loss can still have
    one); called before the optimiser step. Under ``torchrun`` every rank stops when one does."""
    norm = float(grad_norm)
    if _any_rank(not math.isfinite(norm)):
        raise _diverged(f"the gradient norm is {norm}", model, optimizer, batch=batch)


def check_parameters(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Raise :class:`NonFiniteError` naming the parameters and buffers of ``model`` that hold NaN or Inf
    (an optimiser step can overflow them from a finite gradient)."""
    bad = nonfinite_tensors(model)
    if _any_rank(bool(bad)):
        listing = _listing(bad) if bad else "the weights of another rank hold NaN or Inf"
        raise NonFiniteError(f"training diverged: {listing}; likely cause: {_likely_cause(model, optimizer)}")


def check_loaded(obj, source: str | Path) -> None:
    """Raise :class:`NonFiniteError` (a ``ValueError``) naming ``source`` (the file) and the tensors of
    ``obj`` (a state dict or checkpoint) that hold NaN or Inf: a diverged network, refused when loaded."""
    bad = nonfinite_tensors(obj)
    if bad:
        raise NonFiniteError(
            f"{source}: {_listing(bad)}: the network diverged while it was trained (learning rate too high: "
            "lower lr) and cannot be used; train it again with a lower lr"
        )


@contextlib.contextmanager
def epoch_context(label: str) -> Iterator[None]:
    """Prefix a :class:`NonFiniteError` raised in the block with ``label`` (``"epoch 2/3"``); TSSL-BP's
    ``FloatingPointError`` (a NaN/Inf gradient met inside ``backward``) becomes one too."""
    try:
        yield
    except NonFiniteError as exc:
        raise NonFiniteError(f"{label}: {exc}") from None
    except FloatingPointError as exc:
        raise NonFiniteError(
            f"{label}: training diverged: {exc}; likely cause: learning rate too high: lower lr"
        ) from exc


def _check_weight_clip(weight_clip: float | None) -> None:
    if weight_clip is not None and not (
        isinstance(weight_clip, (int, float)) and math.isfinite(weight_clip) and weight_clip > 0
    ):
        raise ValueError(
            f"weight_clip must be a finite number > 0 or None, got {weight_clip!r}; use e.g. weight_clip=4 "
            "(the TSSL-BP authors' clamp [-4, 4]) or None for no clamp"
        )


def _check_param_groups(model: nn.Module, groups) -> list[dict]:
    """``groups`` if they are torch parameter groups covering each trainable parameter once, else a
    ``ValueError`` saying what is wrong."""
    if not isinstance(groups, (list, tuple)) or not all(
        isinstance(g, dict) and "params" in g for g in groups
    ):
        raise ValueError(
            "param_groups must be a list of dicts with a 'params' entry (torch's optimiser parameter "
            f"groups), got {groups!r}"
        )
    seen: dict[int, int] = {}
    for g in groups:
        for p in g["params"]:
            seen[id(p)] = seen.get(id(p), 0) + 1
    ids = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    missing = [n for i, n in ids.items() if i not in seen]
    twice = [ids.get(i, "?") for i, c in seen.items() if c > 1]
    if missing or twice:
        raise ValueError(
            f"param_groups must cover every trainable parameter exactly once: missing {missing}, "
            f"repeated {twice}"
        )
    return [dict(g, params=list(g["params"])) for g in groups]


def bind_spike_fns(model: nn.Module) -> None:
    """Bind every spiking layer's ``TSSLBP(warmup="layer")`` spike function to its layer
    (:meth:`~snn_motifs.tssl.TSSLBP.bind`); other spike functions are left alone."""
    for layer in spiking_layers(model).values():
        spike_fn = getattr(getattr(layer, "neurons", None), "spike_fn", None)
        if getattr(spike_fn, "warmup", None) == "layer" and hasattr(spike_fn, "bind"):
            spike_fn.bind(layer)


def bind_layer_rules(model: nn.Module) -> None:
    """Deprecated name of :func:`bind_spike_fns`."""
    warnings.warn("bind_layer_rules is deprecated; use bind_spike_fns", DeprecationWarning, stacklevel=2)
    bind_spike_fns(model)


@torch.no_grad()
def clip_weights(model: nn.Module, bound: float) -> None:
    """Clamp every trainable parameter whose name ends in ``weight`` (feed-forward, motif and lateral
    weights; not biases, leaks or gains) to ``[-bound, bound]``, as the TSSL-BP authors do after each
    optimiser step (``[-4, 4]``)."""
    for name, p in model.named_parameters():
        if p.requires_grad and name.endswith("weight"):
            p.clamp_(-bound, bound)


@contextlib.contextmanager
def rate_penalty_tap(model: nn.Module, regularizer: RateRegularizer | None) -> Iterator[list[torch.Tensor]]:
    """While inside, every sequence call (``run``) of a spiking layer of ``model`` appends
    ``regularizer(spikes)`` (attached to the graph) to the yielded list; ``run`` becomes an instance
    attribute and is restored on exit. With ``regularizer`` None nothing is patched."""
    penalties: list[torch.Tensor] = []
    if regularizer is None:
        yield penalties
        return
    saved = []

    def tapped(original):
        def run(*args, **kwargs):
            out = original(*args, **kwargs)
            penalties.append(regularizer(out[0]))
            return out

        return run

    try:
        for layer in spiking_layers(model).values():
            saved.append((layer, layer.__dict__.get("run")))
            layer.run = tapped(layer.run)
        yield penalties
    finally:
        for layer, own in reversed(saved):
            if own is None:
                del layer.__dict__["run"]
            else:
                layer.__dict__["run"] = own


def train_epoch(
    model: nn.Module,
    x: torch.Tensor | Iterable,
    y: torch.Tensor | None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator | None = None,
    clip_grad: float | None = 1.0,
    device: torch.device | str = "cpu",
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    stats: dict | None = None,
    batch_first: bool | None = None,
    rate_regularizer: RateRegularizer | None = None,
    weight_clip: float | None = None,
) -> float:
    """One shuffled pass; returns the mean loss (without any rate penalty).
    ``model(x [T, B, C]) -> outputs [T, B, classes]``.

    ``x``/``y`` are sample-first tensors ``[n, T, C]``/``[n]`` (shuffled with ``generator``), or ``x`` is a
    loader and ``y`` None: time-first batches (:func:`snn_motifs.loaders.sequence_loader`) or batch-first
    ones (a stock ``DataLoader``), told apart as :class:`TimeFirstLoader` does (``batch_first``).

    ``scheduler`` is stepped after every optimiser step. If ``stats`` is a dict it receives the epoch's
    mean firing rate per spiking layer (``"rates"``) and the mean gradient norm before clipping,
    overall (``"grad_norm"``) and per top-level module (``"grad_norms"``), and with ``rate_regularizer`` the
    mean penalty (``"rate_penalty"``).

    ``rate_regularizer`` (:class:`~snn_motifs.losses.RateRegularizer`) adds its penalty on every spiking
    layer's spikes to each batch's loss; ``weight_clip`` clamps the weights to ``[-weight_clip,
    weight_clip]`` after every optimiser step (:func:`clip_weights`).

    A NaN or Inf loss (before ``backward``) or gradient (before the optimiser step) raises
    :class:`NonFiniteError` (:func:`check_loss`, :func:`check_gradient`), and so do weights that end the
    epoch non-finite (:func:`check_parameters`).
    """
    _check_weight_clip(weight_clip)
    model.train()
    inner = getattr(model, "module", model)  # a DistributedDataParallel wrapper's network
    total, count, n_batches = 0.0, 0, 0
    penalty_total = 0.0
    rates: dict[str, float] = {}
    norms: dict[str, float] = {}
    grad_total = 0.0
    batches_ = _batches(x, y, batch_size, True, generator, shard=True, batch_first=batch_first)
    for batch, (xb, yb) in enumerate(batches_, 1):
        xb, yb = xb.to(device), yb.to(device)
        with rate_penalty_tap(inner, rate_regularizer) as penalties:
            loss = loss_fn(model(xb), yb)
        value = loss.item()
        check_loss(value, inner, optimizer, xb, batch)
        if penalties:
            penalty = torch.stack(penalties).sum()
            penalty_total += float(penalty.detach())
            loss = loss + penalty
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if stats is not None:
            for name, rate in firing_rates(inner).items():
                rates[name] = rates.get(name, 0.0) + rate
            for name, child in inner.named_children():
                grads = [p.grad for p in child.parameters() if p.grad is not None]
                if grads:
                    norms[name] = norms.get(name, 0.0) + float(
                        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
                    )
        clip = clip_grad if clip_grad is not None else math.inf
        grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), clip))
        check_gradient(grad_norm, inner, optimizer, batch)
        grad_total += grad_norm
        optimizer.step()
        if weight_clip is not None:
            clip_weights(inner, weight_clip)
        if scheduler is not None:
            scheduler.step()
        total += value * len(yb)
        count += len(yb)
        n_batches += 1
    check_parameters(inner, optimizer)
    if distributed_info()[1] > 1:  # the epoch's loss over every rank's samples
        both = torch.tensor([total, float(count)], dtype=torch.float64)
        torch.distributed.all_reduce(both)
        total, count = float(both[0]), int(both[1])
    if stats is not None and n_batches:
        stats["rates"] = {k: v / n_batches for k, v in rates.items()}
        stats["grad_norms"] = {k: v / n_batches for k, v in norms.items()}
        stats["grad_norm"] = grad_total / n_batches
        if rate_regularizer is not None:
            stats["rate_penalty"] = penalty_total / n_batches
    return total / max(count, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor | Iterable,
    y: torch.Tensor | None,
    batch_size: int = 256,
    tau_syn: float | None = None,
    device: torch.device | str = "cpu",
    loss: LossConfig | None = None,
    *,
    batch_first: bool | None = None,
) -> float:
    """Accuracy of the model's readout (:func:`make_predict`; see :func:`objective_of` for which one).

    ``x``/``y`` are sample-first tensors ``[n, T, C]``/``[n]``, or ``x`` is a loader and ``y`` None, in
    either layout: time-first ``[T, B, C]`` batches (:mod:`snn_motifs.loaders`) or batch-first
    ``[B, T, C]`` ones (a stock ``DataLoader`` over ``[n, T, C]`` samples). ``batch_first=None`` infers the
    layout from the label count and asks for the argument when ``T == B`` makes it ambiguous;
    ``True``/``False`` is checked (:class:`TimeFirstLoader`). ``tau_syn`` overrides the PSC constant of a
    spiking readout's prediction."""
    if y is not None:
        _sample_first(x, y)
    cfg = objective_of(model, loss)
    if tau_syn is not None:
        cfg = LossConfig(**{**vars(cfg), "tau_syn": tau_syn})
    rule = make_predict(cfg)
    model.eval()
    correct = total = 0
    for xb, yb in _batches(x, y, batch_size, False, None, batch_first=batch_first):
        correct += int((rule(model(xb.to(device))).cpu() == yb).sum())
        total += len(yb)
    return correct / max(total, 1)


def first_spiking_layer(model: nn.Module) -> SpikingLayer:
    layers = spiking_layers(model)
    if not layers:
        raise TypeError(f"{type(model).__name__} has no spiking layer to calibrate")
    return next(iter(layers.values()))


@torch.no_grad()
def calibrate_input_gain(
    model: nn.Module,
    x: torch.Tensor,
    target_rate: float = 0.05,
    lo: float = 1e-2,
    hi: float = 1e4,
    iterations: int = 30,
) -> float:
    """Set ``model.input_gain`` so that the first spiking layer fires at ``target_rate`` on ``x``.

    Data-driven input scaling: real-valued inputs (a cochleagram divided by its maximum, population codes)
    differ by orders of magnitude in how much current they inject, and a layer that never fires cannot
    learn. Bisects the gain in log space on the sample-first batch ``x`` ``[n, T, C]`` (the first layer's
    rate grows with the gain) and returns it. ``model.input_gain`` must be a tensor buffer (as in
    :class:`~snn_motifs.SCMLClassifier` and :class:`~snn_motifs.ScSrSNN`).
    """
    gain = getattr(model, "input_gain", None)
    if not isinstance(gain, torch.Tensor):
        raise TypeError(
            f"{type(model).__name__} has no input_gain buffer to calibrate; build it with an input_gain "
            "or call fit(..., calibrate=False)"
        )
    if not 0 < target_rate < 1:
        raise ValueError(f"target_rate must lie in (0, 1), got {target_rate!r}")
    layer = first_spiking_layer(model)
    was_training = model.training
    model.eval()
    device = gain.device
    xb = x.transpose(0, 1).to(device=device, dtype=layer.fc.weight.dtype)
    log_lo, log_hi = math.log(lo), math.log(hi)
    for _ in range(iterations):
        mid = 0.5 * (log_lo + log_hi)
        gain.fill_(math.exp(mid))
        model(xb)
        if float(layer.last_rate) < target_rate:
            log_lo = mid
        else:
            log_hi = mid
    gain.fill_(math.exp(0.5 * (log_lo + log_hi)))
    model.train(was_training)
    return float(gain)


def make_optimizer(
    parameters,
    lr: float,
    total_steps: int,
    weight_decay: float = 1e-2,
    schedule: str = "cosine",
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """The recipe's optimiser: AdamW and, with ``schedule="cosine"``, a cosine decay to 0 over
    ``total_steps`` optimiser steps (``"constant"``: no scheduler)."""
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    opt = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    if schedule == "constant":
        return opt, None
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))


def _warn_rates(rates: dict[str, float], epoch: int) -> None:
    for name, rate in rates.items():
        if rate < SILENT:
            warnings.warn(
                f"epoch {epoch}: layer {name!r} is silent (rate {rate:.2e}); raise the input gain "
                "(fit(..., calibrate=True)) or the weights' scale",
                RuntimeWarning,
                stacklevel=3,
            )
        elif rate > SATURATED:
            warnings.warn(
                f"epoch {epoch}: layer {name!r} is saturated (rate {rate:.2f}); lower the input gain or "
                "the recurrent weights",
                RuntimeWarning,
                stacklevel=3,
            )


def _train_test(data, batch_first: bool | None = None) -> tuple[tuple, tuple]:
    """``((x_train, y_train), (x_test, y_test))``, or ``((train_loader, None), (test_loader, None))`` with
    each loader wrapped in a :class:`TimeFirstLoader` (so its layout is decided once, on its first batch)."""
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], torch.Tensor):
        train = TimeFirstLoader(data[0], batch_first, "the training loader")
        return (train, None), (TimeFirstLoader(data[1], batch_first, "the test loader"), None)
    if batch_first is not None:
        raise ValueError(
            "batch_first applies to loaders, data=(train_loader, test_loader); the tensors of a SplitData "
            "are sample-first [n, T, F]"
        )
    _sample_first(data.x_train, data.y_train, "x_train")
    _sample_first(data.x_test, data.y_test, "x_test")
    return (data.x_train, data.y_train), (data.x_test, data.y_test)


def _first_samples(x, y, n: int) -> torch.Tensor:
    """Up to ``n`` sample-first training inputs ``[n, T, C]`` for the input-gain calibration (``x`` a
    :class:`TimeFirstLoader` when ``y`` is None)."""
    if y is not None:
        return x[:n]
    parts, count = [], 0
    for xb, _ in x:
        parts.append(xb.transpose(0, 1))
        count += len(parts[-1])
        if count >= n:
            break
    width = max(p.shape[1] for p in parts)
    padded = [torch.nn.functional.pad(p, (0, 0, 0, width - p.shape[1])) for p in parts]
    return torch.cat(padded)[:n]


def batches_per_epoch(x, y, batch_size: int) -> int:
    """Optimiser steps per epoch: the loader's length (``y`` None), else ``ceil(n / batch_size)``."""
    return len(x) if y is None else math.ceil(len(x) / batch_size)


def calibrate_for_training(model: nn.Module, samples, target_rate: float, calibrate: bool = True) -> None:
    """The recipe's calibration: with ``calibrate`` and a model that has an ``input_gain`` buffer
    (:class:`SpikingClassifier`), :func:`calibrate_input_gain` to ``target_rate`` on ``samples`` (sample-first
    ``[n, T, C]``, up to :data:`CALIBRATION_SAMPLES`); otherwise nothing. :func:`fit` and the HRMAS
    runner's retraining call it."""
    if calibrate and isinstance(getattr(model, "input_gain", None), torch.Tensor):
        calibrate_input_gain(model, samples[:CALIBRATION_SAMPLES], target_rate)


def fit_optimizer(
    model: nn.Module,
    lr: float,
    total_steps: int,
    weight_decay: float = 1e-2,
    schedule: str = "cosine",
    param_groups: list[dict] | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """The recipe's optimiser for ``model``: :func:`make_optimizer` (AdamW, cosine decay over
    ``total_steps``) on its parameters or on ``param_groups`` (checked to cover each trainable parameter
    once). :func:`fit` and the HRMAS runner's retraining call it."""
    params = model.parameters() if param_groups is None else _check_param_groups(model, param_groups)
    return make_optimizer(params, lr, total_steps, weight_decay, schedule)


def data_parallel(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` under ``torchrun`` (several ranks), else itself."""
    if distributed_info()[1] == 1:
        return model
    on_cpu = torch.device(device).type == "cpu"
    return nn.parallel.DistributedDataParallel(model, device_ids=None if on_cpu else [device])


#: the recipe's gradient-norm clip (:func:`fit`'s ``clip_grad``)
CLIP_GRAD = 1.0


def fit_epoch(
    model: nn.Module,
    train: tuple,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    batch_size: int,
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
    *,
    clip_grad: float | None = CLIP_GRAD,
    rate_regularizer: RateRegularizer | None = None,
    weight_clip: float | None = None,
) -> dict:
    """One epoch of the recipe (:func:`train_epoch` on ``train = (x, y)``, gradients clipped at
    ``clip_grad``, the scheduler stepped per batch); returns the epoch's record: the learning rate it
    started with (``"lr"``), the firing rates, gradient norms (and rate penalty) of :func:`train_epoch`'s
    ``stats``, and the mean loss (``"loss"``). :func:`fit` and the HRMAS runner's retraining call it once
    per epoch (``model`` already wrapped by :func:`data_parallel`)."""
    stats: dict = {"lr": optimizer.param_groups[0]["lr"]}
    stats["loss"] = train_epoch(
        model,
        *train,
        loss_fn,
        optimizer,
        batch_size,
        generator,
        clip_grad,
        device,
        scheduler=scheduler,
        stats=stats,
        rate_regularizer=rate_regularizer,
        weight_clip=weight_clip,
    )
    return stats


def fit(
    model: nn.Module,
    data,
    epochs: int,
    lr: float = 1e-2,
    batch_size: int = 50,
    loss: LossConfig | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | None = None,
    *,
    weight_decay: float = 1e-2,
    schedule: str = "cosine",
    clip_grad: float | None = CLIP_GRAD,
    calibrate: bool = True,
    target_rate: float = 0.05,
    log_dir: str | Path | None = None,
    batch_first: bool | None = None,
    rate_regularizer: RateRegularizer | None = None,
    weight_clip: float | None = None,
    param_groups: list[dict] | None = None,
) -> dict:
    """Train on ``data`` with the recommended recipe, test once. ``data`` is a
    :class:`~snn_motifs.datasets.SplitData` of sample-first tensors or a pair ``(train_loader,
    test_loader)`` of loaders (they own batching and shuffling, so ``batch_size`` and ``seed`` do not apply
    to them) yielding ``(x, labels)`` batches in either layout: time-first ``[T, B, F]``
    (:mod:`snn_motifs.loaders`) or batch-first ``[B, T, F]`` (a stock ``DataLoader`` over ``[n, T, F]``
    samples, as tonic and most user datasets give). ``batch_first=None`` infers the layout of each loader
    from its first batch's label count and asks for the argument when ``T == B`` makes it ambiguous;
    ``True``/``False`` is checked against every batch (:class:`TimeFirstLoader`).

    ``model`` keeps the :class:`SpikingClassifier` contract: an ``nn.Module`` mapping ``[T, B, C]`` to
    ``[T, B, classes]``, optionally with ``readout``, ``tau_syn`` and an ``input_gain`` buffer; one of them
    present but of the wrong kind is refused by :func:`check_model` with a ``TypeError`` naming it.

    Recipe (defaults chosen by measurement, docs/results.md "Accuracy"), built by functions the HRMAS runner's
    retraining calls too: AdamW (``lr``, ``weight_decay``) with a cosine schedule to 0 over all steps
    (:func:`fit_optimizer`; ``schedule="constant"`` to switch it off), gradient-norm clipping at
    ``clip_grad`` (:data:`CLIP_GRAD`) in every epoch (:func:`fit_epoch`), the model's own readout loss (or
    ``loss``), and, with ``calibrate`` and a model that has an ``input_gain`` buffer,
    :func:`calibrate_input_gain` to ``target_rate`` on up to 256 training samples before training
    (:func:`calibrate_for_training`).

    Options off by default: ``rate_regularizer`` (a :class:`~snn_motifs.losses.RateRegularizer`) adds a
    penalty on spiking layers' firing rates above its target to every batch's loss; ``weight_clip``
    clamps every ``*weight`` parameter to ``[-weight_clip, weight_clip]`` after each optimiser step (the
    TSSL-BP authors use 4). With ``spike_fn="tssl"`` pass ``rate_regularizer=RateRegularizer()``: it
    brings TSSL-BP to the surrogate's accuracy on TI46-Alpha (docs/results.md "Accuracy"; the clamp changes
    nothing there, the weights stay far below 4). ``param_groups`` replaces
    ``model.parameters()`` by torch's optimiser parameter groups (``[{"params": [...], "lr": ...,
    "weight_decay": ...}, ...]``; a group without ``lr``/``weight_decay`` gets ``lr``/``weight_decay``);
    they must cover every trainable parameter of the model exactly once.

    Under ``torchrun`` (an initialised ``torch.distributed`` group, gloo on CPU, NCCL on GPU) the training is
    data parallel: every rank takes its slice of each batch (``rank::world``; loaders bring a
    ``DistributedSampler``) and ``DistributedDataParallel`` averages the gradients, so K processes train
    the network one process would (tested); only rank 0 writes TensorBoard files.

    A NaN or Inf loss, gradient or weight stops training with :class:`NonFiniteError` naming the epoch and
    the likely cause (mostly ``lr`` too high); no silent-layer warning is given for that epoch.

    Returns ``{"test_acc", "train_loss", "seconds", "input_gain", "history"}``; ``history`` holds one
    record per epoch (loss, learning rate, firing rate per spiking layer, gradient norms). With
    ``log_dir`` (and tensorboard installed) the same numbers go to TensorBoard event files there.
    """
    if loss is None:
        check_model(model)
    else:
        check_model(model, check_readout=False)
    loss_cfg = objective_of(model, loss)
    loss_fn = make_loss(loss_cfg)
    gen = torch.Generator().manual_seed(seed)
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    _check_weight_clip(weight_clip)
    if rate_regularizer is not None and not isinstance(rate_regularizer, RateRegularizer):
        raise ValueError(
            "rate_regularizer must be a snn_motifs.losses.RateRegularizer or None, got "
            f"{rate_regularizer!r}; use e.g. rate_regularizer=RateRegularizer(weight=10, target=0.2)"
        )
    model.to(device)
    bind_spike_fns(model)
    train, test = _train_test(data, batch_first)
    if calibrate and isinstance(getattr(model, "input_gain", None), torch.Tensor):
        samples = _first_samples(train[0], train[1], CALIBRATION_SAMPLES)
        calibrate_for_training(model, samples, target_rate)
    steps = epochs * batches_per_epoch(*train, batch_size)
    opt, sched = fit_optimizer(model, lr, steps, weight_decay, schedule, param_groups)
    losses, history = [], []
    rank = distributed_info()[0]
    trained = data_parallel(model, device)  # data parallel: every rank a slice of each batch, DDP averages
    board = open_log(log_dir if rank == 0 else None)  # only rank 0 writes
    start = time.perf_counter()
    for epoch in range(epochs):
        with epoch_context(f"epoch {epoch + 1}/{epochs}"):
            stats = fit_epoch(
                trained,
                train,
                loss_fn,
                opt,
                sched,
                batch_size,
                gen,
                device,
                clip_grad=clip_grad,
                rate_regularizer=rate_regularizer,
                weight_clip=weight_clip,
            )
        losses.append(stats["loss"])
        history.append(stats)
        board.record(stats, epoch + 1, "train")
        board.neuron_parameters(model, epoch + 1)
        _warn_rates(stats.get("rates", {}), epoch + 1)
        if log:
            rates = " ".join(f"{k}={v:.3f}" for k, v in stats.get("rates", {}).items())
            grad = stats["grad_norm"]
            log(f"epoch {epoch + 1}/{epochs} loss {losses[-1]:.4f} |grad| {grad:.3g} rates {rates}")
    seconds = time.perf_counter() - start
    acc = evaluate(model, *test, loss=loss_cfg, device=device)
    board.scalars({"test_acc": acc}, epochs, "result")
    board.close()
    gain = getattr(model, "input_gain", None)
    return {
        "test_acc": acc,
        "train_loss": losses,
        "seconds": seconds,
        "input_gain": float(gain) if isinstance(gain, torch.Tensor) else None,
        "history": history,
    }
