"""The configuration of an HRMAS run: one dataclass, its validation, and the packaged JSON files.

A plain JSON file maps onto :class:`HRMASConfig` key by key (``snn_motifs/configs/*.json``; a ``comment``
key is allowed). Unknown keys and out-of-range values are refused with the key's name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from .._io import read_json
from ..neuron import NeuronParameters
from ..readout import READOUTS

#: the costs a search can trade against accuracy (:mod:`snn_motifs.search.cost`)
COSTS = ("synops", "synapses")

__all__ = ["HRMASConfig", "load_config", "config_names", "config_diff", "DEFAULT_CONFIG"]

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
    loss: str = "mean"  # the readout (snn_motifs.readout.READOUTS)
    spike_fn: str = "tssl"
    backend: str = "native"
    compile: bool = False  # torch.compile the recurrent kernels (SpikingLayer's compile)
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
        for name in ("lr", "arch_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive learning rate, got {value!r}")
        if not self.motif_sizes:
            raise ValueError("motif_sizes is empty: give at least one option, e.g. [2, 4, 8, 16, 32]")
        gain = self.input_gain
        if gain is not None and not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
            raise ValueError(f"input_gain must be a positive number or null (calibrated), got {gain!r}")
        if self.loss not in READOUTS:
            raise ValueError(f"loss must be a readout name {list(READOUTS)}, got {self.loss!r}")
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
        for name in ("epochs_size", "epochs_types", "epochs_retrain", "batch_size", "hidden", "arch_warmup"):
            if int(getattr(self, name)) < (1 if name in ("batch_size", "hidden") else 0):
                raise ValueError(f"{name} must be a non-negative int, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: dict) -> HRMASConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"comment", "table1"})
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_file(cls, path: str | Path) -> HRMASConfig:
        data = read_json(path, "config")
        if not isinstance(data, dict):
            raise ValueError(f"config {path} must hold a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)

    def neuron(self) -> NeuronParameters:
        return NeuronParameters(self.tau_mem, self.tau_syn, 1.0, self.v_threshold)

    def effective_options(self) -> list[int]:
        """The motif-size options searched; "without motif" searches one motif of size N."""
        return list(self.motif_sizes) if self.motifs else [self.hidden]

    @property
    def searches_lateral(self) -> bool:
        return self.lateral and self.motifs


def config_diff(stored: dict, current: dict) -> list[str]:
    """Keys whose values differ between two config dicts. A key missing on one side counts, unless it is a
    config field at its default (a run folder written before the field existed)."""
    defaults = {f.name: getattr(HRMASConfig(), f.name) for f in fields(HRMASConfig)}
    stored, current = {**defaults, **stored}, {**defaults, **current}
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
    return HRMASConfig.from_dict(json.loads(packaged.read_text()))
