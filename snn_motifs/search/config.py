"""The configuration of an HRMAS run: one dataclass, its validation, and the packaged JSON files.

A plain JSON file maps onto :class:`HRMASConfig` key by key (``snn_motifs/configs/*.json``; a ``comment``
key is allowed, and the ``execution`` block a run folder's ``config.json`` records). Every key has one
JSON type, checked strictly (a bool is ``true``/``false``, never ``"false"``; an int is an int, never
``2.5``; a float accepts ints; lists hold ints), and unknown keys and out-of-range values are refused
with the key's name. Sizes are checked against the machine's memory before a network is built
(:func:`check_memory`).
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import types
import typing
import warnings
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from .._io import parse_json, read_json
from ..datasets import SplitData, load_dataset
from ..neuron import NeuronParameters
from ..readout import READOUTS

#: the costs a search can trade against accuracy (:mod:`snn_motifs.search.cost`)
COSTS = ("synops", "synapses")

__all__ = [
    "HRMASConfig",
    "load_config",
    "config_names",
    "config_diff",
    "DEFAULT_CONFIG",
    "memory_estimate",
    "check_memory",
    "EXTRA_KEYS",
    "RENAMED_KEYS",
    "load_data",
]

#: keys a config file may hold besides the fields: a comment, the paper's table row, and the ``execution``
#: block (how a run was executed) that a run folder's ``config.json`` records and ``--resume`` ignores
EXTRA_KEYS = ("comment", "table1", "execution")

#: old config keys -> their names now (``CHANGELOG.md``, "Renamed"); an old key still loads, with a
#: ``DeprecationWarning``, and :func:`config_diff` treats both spellings as one key
RENAMED_KEYS = {"loss": "readout"}

#: the packaged config the CLI uses when none is given (MNIST-1D, generated offline)
DEFAULT_CONFIG = "mnist1d_default"


@dataclass
class HRMASConfig:
    """Everything a search run needs (the HRMAS paper sec 2.3 and Algorithm 1)."""

    dataset: str = "mnist1d"
    hidden: int = 128
    motif_sizes: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32])
    tau_mem: float = 16.0
    tau_syn: float = 8.0
    tau_cal: float = 16.0
    v_threshold: float = 1.0
    input_gain: float | None = None  # None: calibrated from the data to target_rate (see fit)
    target_rate: float = 0.05
    lr: float = 1e-2
    weight_decay: float = 1e-2
    #: Adam's step on alpha. 0.05 lets alpha decide within a CPU-sized search (TI46: 36 architecture
    #: steps per epoch; with the DARTS-like 3e-3 the size softmax stayed within 0.18-0.23 after 8 epochs)
    arch_lr: float = 0.05
    arch_warmup: int = 0  # phase-1 epochs in which only the weights train (DARTS' warm-up of w)
    batch_size: int = 50
    epochs_size: int = 4  # phase 1: motif size and types
    epochs_types: int = 4  # phase 2: types, size fixed
    epochs_retrain: int = 12  # discretised SC-ML, fresh weights, full training set
    second_order: bool = False
    ip: bool = True
    ip_batches: int = 1  # IP window: training batches per iteration
    mu: float = 0.2
    ip_lr: float = 0.01
    #: None: inhibitory edges trained with a sign constraint (-|w|); a number fixes them (the paper: -2)
    inhibitory_weight: float | None = None
    lateral: bool = True
    motifs: bool = True  # False: types searched over the full N x N matrix ("without motif")
    search: str = "hrmas"  # or "random" (same space, same budget)
    #: the readout and with it the loss (snn_motifs.readout.READOUTS); the key ``loss`` is its deprecated
    #: old name (:data:`RENAMED_KEYS`)
    readout: str = "mean"
    spike_fn: str = "tssl"
    backend: str = "native"
    #: True: the recurrent layers run ``kernel="compiled"`` (the sequence kernel through torch.compile;
    #: needs a C++ compiler on CPU), False: ``kernel="auto"`` (:attr:`kernel`)
    compile: bool = False
    #: what a cost-aware search trades accuracy against (snn_motifs.search.cost): "synops" (expected
    #: recurrent synaptic operations per sample) or "synapses" (expected recurrent synapses)
    cost: str = "synops"
    #: lambda >= 0: architecture loss + lambda * E_alpha[cost] / cost of the largest option with every edge;
    #: 0 (default) is the HRMAS paper's objective, accuracy alone
    cost_weight: float = 0.0
    seed: int = 0
    ti46_root: str | None = None
    ti46_split: str = "speaker_dependent"

    def __post_init__(self) -> None:
        _check_types(self)
        for name in ("lr", "arch_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive learning rate, got {value!r}")
        if not self.motif_sizes:
            raise ValueError("motif_sizes is empty: give at least one option, e.g. [2, 4, 8, 16, 32]")
        gain = self.input_gain
        if gain is not None and not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
            raise ValueError(f"input_gain must be a positive number or null (calibrated), got {gain!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be a readout name {list(READOUTS)}, got {self.readout!r}")
        if self.search not in ("hrmas", "random"):
            raise ValueError(f"search must be 'hrmas' or 'random', got {self.search!r}")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {list(COSTS)}, got {self.cost!r}")
        lam = self.cost_weight
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise ValueError(
                f"cost_weight must be a finite number >= 0 (0: accuracy alone, e.g. 1 or 10 to trade "
                f"accuracy for a cheaper recurrence), got {lam!r}"
            )
        inh = self.inhibitory_weight
        if inh is not None and not (isinstance(inh, (int, float)) and math.isfinite(inh) and inh <= 0):
            raise ValueError(f"inhibitory_weight must be a number <= 0 or null (trained), got {inh!r}")
        for name in ("epochs_size", "epochs_types", "epochs_retrain", "arch_warmup"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be an int >= 0 (0: skip), got {getattr(self, name)!r}")
        for name in ("batch_size", "hidden", "ip_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        bad = [v for v in self.motif_sizes if v < 1]
        if bad:
            raise ValueError(f"motif_sizes must be ints >= 1, got {self.motif_sizes!r}")
        for name in ("tau_mem", "tau_syn", "tau_cal"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a time constant > 0 (steps), got {getattr(self, name)!r}")
        if self.ti46_split not in ("speaker_dependent", "loso"):
            raise ValueError(f"ti46_split must be 'speaker_dependent' or 'loso', got {self.ti46_split!r}")

    @property
    def kernel(self) -> str:
        """The ``kernel=`` of the recurrent layers this config builds (``compile`` chooses it)."""
        return "compiled" if self.compile else "auto"

    @property
    def loss(self) -> str:
        """Deprecated name of :attr:`readout`."""
        warnings.warn("HRMASConfig.loss is deprecated; use HRMASConfig.readout", DeprecationWarning, 2)
        return self.readout

    @classmethod
    def from_dict(cls, data: dict) -> HRMASConfig:
        """A config from its keys; an old key of :data:`RENAMED_KEYS` is read as its new name (with a
        ``DeprecationWarning``)."""
        if not isinstance(data, dict):
            raise ValueError(f"a config is a JSON object of keys, got {_json_type(data)}")
        if not all(isinstance(k, str) for k in data):
            raise ValueError(f"config keys must be strings, got {sorted(map(repr, data))}")
        data = renamed_keys(data, warn=True)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - set(EXTRA_KEYS))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_file(cls, path: str | Path) -> HRMASConfig:
        """A config file; errors name the file (a file you wrote: the remedy is to fix it)."""
        data = read_json(path, "config file", remedy="fix the file")
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a JSON object, got {_json_type(data)}")
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"config file {path}: {exc}") from None

    def neuron(self) -> NeuronParameters:
        return NeuronParameters(self.tau_mem, self.tau_syn, 1.0, self.v_threshold)

    def effective_options(self) -> list[int]:
        """The motif-size options searched; "without motif" searches one motif of size N."""
        return list(self.motif_sizes) if self.motifs else [self.hidden]

    @property
    def searches_lateral(self) -> bool:
        return self.lateral and self.motifs


_dataclass_init = HRMASConfig.__init__


@functools.wraps(_dataclass_init)
def _init(self, *args, **kwargs) -> None:  # HRMASConfig(loss=...): the old keyword of readout, deprecated
    _dataclass_init(self, *args, **renamed_keys(kwargs, warn=True, stacklevel=4))


HRMASConfig.__init__ = _init  # type: ignore[method-assign]


def renamed_keys(data: dict, warn: bool = False, stacklevel: int = 3) -> dict:
    """``data`` with every old key of :data:`RENAMED_KEYS` under its new name (a copy; ``warn``: a
    ``DeprecationWarning`` per old key). Both names at once is an error unless they agree."""
    old = [k for k in RENAMED_KEYS if k in data]
    if not old:
        return data
    data = dict(data)
    for key in old:
        new = RENAMED_KEYS[key]
        value = data.pop(key)
        if new in data and data[new] != value:
            raise ValueError(f"config key {key!r} is the old name of {new!r}; give one of them, not both")
        data[new] = value
        if warn:
            message = f"config key {key!r} is deprecated; call it {new!r}"
            warnings.warn(message, DeprecationWarning, stacklevel=stacklevel)
    return data


def config_diff(stored: dict, current: dict) -> list[str]:
    """Keys whose values differ between two config dicts. A key missing on one side counts, unless it is a
    config field at its default (a run folder written before the field existed); :data:`EXTRA_KEYS` (a
    comment, the ``execution`` block) never count, and an old key name (:data:`RENAMED_KEYS`, e.g. the
    ``loss`` of a run folder written before ``readout``) is compared as its new name."""
    stored, current = renamed_keys(stored), renamed_keys(current)
    defaults = {f.name: getattr(HRMASConfig(), f.name) for f in fields(HRMASConfig)}
    extra = set(EXTRA_KEYS)  # a comment, or how a run was executed, is not part of the config
    stored = {**defaults, **{k: v for k, v in stored.items() if k not in extra}}
    current = {**defaults, **{k: v for k, v in current.items() if k not in extra}}
    return sorted(k for k in {*stored, *current} if stored.get(k, object()) != current.get(k, object()))


def _packaged():
    return resources.files("snn_motifs") / "configs"


def config_names() -> list[str]:
    """Names of the packaged configs (``snn_motifs/configs/*.json``)."""
    return sorted(p.name[:-5] for p in _packaged().iterdir() if p.name.endswith(".json"))


def load_config(name_or_path: str | Path | None = None) -> HRMASConfig:
    """A JSON file, or a packaged config by name (default :data:`DEFAULT_CONFIG`)."""
    name_or_path = DEFAULT_CONFIG if name_or_path is None else name_or_path
    path = Path(name_or_path)
    if path.exists():
        return HRMASConfig.from_file(path)
    packaged = _packaged() / f"{name_or_path}.json"
    if not packaged.is_file():
        raise ValueError(f"no config {str(name_or_path)!r}: give a JSON file or one of {config_names()}")
    return HRMASConfig.from_dict(parse_json(packaged.read_text(), f"packaged config {name_or_path}"))


# -- strict types ------------------------------------------------------------------------------------------


def _json_type(value: object) -> str:
    """How JSON (or Python, for other objects) calls the type of ``value``, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_float(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: object) -> str:
    """``value`` as JSON would write it (``null``, ``"false"``), cut to 60 characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expect(hint: object) -> tuple[typing.Callable[[object], bool], str] | None:
    """How to check a field of type ``hint`` (``int``, ``float``, ``bool``, ``str``, ``list[int]``,
    ``X | None``) and how to say what it must be; None for a type this check does not know."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        inner = _expect(next(a for a in args if a is not type(None)))
        if inner is None:
            return None
        check, what = inner
        return (lambda v: v is None or check(v)), f"{what} or null"
    if hint is bool:
        return (lambda v: isinstance(v, bool)), "true or false (a JSON boolean)"
    if hint is int:
        return _is_int, "an integer"
    if hint is float:
        return _is_float, "a finite number"
    if hint is str:
        return (lambda v: isinstance(v, str)), "a string"
    if typing.get_origin(hint) is list and args == (int,):
        return (lambda v: isinstance(v, (list, tuple)) and all(_is_int(x) for x in v)), "a list of integers"
    return None


def _plain(value: object) -> object:
    """Numpy scalars (a Tune sampler's) as Python ints and floats; lists as lists."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if _is_int(value):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, float)):
        return float(value)
    return value


def _conform(name: str, hint: object, value: object) -> object:
    """``value`` checked against the field type ``hint``; ``ValueError`` naming the key otherwise."""
    expect = _expect(hint)
    if expect is None:  # a field type this check does not know: accepted as it is
        return value
    check, what = expect
    if not check(value):
        kind = "" if value is None else f" ({_json_type(value)})"
        raise ValueError(f"{name} must be {what}, got {_show(value)}{kind}")
    return _plain(value)


def _check_types(cfg: HRMASConfig) -> None:
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        setattr(cfg, f.name, _conform(f.name, hints[f.name], getattr(cfg, f.name)))


# -- memory ------------------------------------------------------------------------------------------------

#: float32 numbers per neuron and time step a forward + backward pass keeps (input current, synaptic
#: current, membrane, spikes, surrogate terms, readout): a lower bound of what training allocates
ACTIVATIONS_PER_STEP = 6


def memory_estimate(
    cfg: HRMASConfig,
    in_features: int,
    steps: int,
    classes: int,
    hidden: int | None = None,
    motif_sizes: list[int] | None = None,
) -> int:
    """A lower bound of the bytes that searching (and retraining) ``cfg`` allocates: the weights of the
    search network (input, every motif-size option's intra and lateral edges, their int64 scatter
    indices, the block-tridiagonal recurrence, readout) with their gradient and two Adam moments, and
    the activations of one batch kept for backpropagation through time. ``hidden`` overrides
    ``cfg.hidden`` and ``motif_sizes`` the searched options (a genotype's ``n_neurons`` and motif size)."""
    n = cfg.hidden if hidden is None else hidden
    sizes = cfg.effective_options() if motif_sizes is None else motif_sizes
    options = [max(1, min(int(v), n)) for v in sizes] or [1]
    edges = sum(n * v + 2 * n for v in options)
    weights = n * in_features + n * classes + edges + 3 * n * max(options)
    indices = 8 * edges  # int64 scatter indices, no gradient
    activations = ACTIVATIONS_PER_STEP * steps * cfg.batch_size * n
    return 4 * (4 * weights + activations) + indices


def available_memory(device: str = "cpu") -> int | None:
    """Bytes of the device's memory: the machine's RAM (``os.sysconf``) for the CPU, the GPU's for
    ``cuda[:N]``; None where it cannot be read."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _gb(size: int) -> str:
    """Bytes as GB for messages: two significant digits below 10 GB, whole GB above."""
    gb = size / 1e9
    return f"{gb:,.0f}" if gb >= 10 else f"{gb:.2g}"


def check_memory(
    cfg: HRMASConfig,
    in_features: int,
    steps: int,
    classes: int,
    device: str = "cpu",
    hidden: int | None = None,
    motif_sizes: list[int] | None = None,
    what: str = "hidden",
) -> int:
    """Refuse (``ValueError``, nothing allocated) a network whose :func:`memory_estimate` exceeds the
    device's memory, naming the estimate and the limit in GB; returns the estimate in bytes."""
    need = memory_estimate(cfg, in_features, steps, classes, hidden, motif_sizes)
    limit = available_memory(device)
    if limit is not None and need > limit:
        n = cfg.hidden if hidden is None else hidden
        where = "RAM of this machine" if not device.startswith("cuda") else f"memory of {device}"
        raise ValueError(
            f"{what}={n} needs at least {_gb(need)} GB to train (weights, gradients, Adam state and one "
            f"batch of {cfg.batch_size} x {steps} steps), more than the {_gb(limit)} GB {where}; "
            f"choose a smaller {what} or batch_size"
        )
    return need


def load_data(cfg: HRMASConfig, max_train: int | None = None) -> SplitData:
    """The data set ``cfg.dataset`` names (``ti46_root``/``ti46_split`` from the config)."""
    return load_dataset(cfg.dataset, ti46_root=cfg.ti46_root, ti46_split=cfg.ti46_split, max_train=max_train)
