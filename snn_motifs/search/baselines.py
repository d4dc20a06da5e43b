"""What HRMAS is compared with (the HRMAS paper, Table 3 and the ablations of sec 3.4): random search
over the same space with the same budget, the ablations as config changes, the fully connected
recurrent SNN (any size), the feed-forward SNN, and two non-spiking references (logistic regression on the
whole sequence, a GRU), each trained with the retraining budget of a config and tested with its cost."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from ..datasets import SplitData
from ..layers import SpikingLinear
from ..models import SCMLClassifier
from ..topology import ConnectionType, MotifTopology
from ..training import LossConfig, evaluate, fit, train_epoch
from .config import HRMASConfig
from .genotype import Genotype
from .retrain import build_classifier, calibrated, retrain, test_cost

__all__ = [
    "ABLATIONS",
    "BASELINES",
    "with_ablation",
    "random_trial",
    "dense_rsnn",
    "ff_snn",
    "LogisticRegression",
    "GRUClassifier",
    "train_dense_baseline",
    "train_baseline",
]

#: ablation name -> the config changes it makes
ABLATIONS: dict[str, dict] = {
    "none": {},
    "random": {"search": "random"},
    "no-ip": {"ip": False},
    "no-motif": {"motifs": False},
    "no-lateral": {"lateral": False},
    "second-order": {"second_order": True},
}


def with_ablation(cfg: HRMASConfig, name: str) -> HRMASConfig:
    """``cfg`` with the changes of ablation ``name`` (:data:`ABLATIONS`)."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose from {sorted(ABLATIONS)}")
    return dataclasses.replace(cfg, **ABLATIONS[name])


def random_trial(
    trial: int,
    cfg: HRMASConfig,
    search_train: SplitData,
    search_valid: SplitData,
    loss_fn: Callable,
    gen: torch.Generator,
    device: torch.device | str = "cpu",
) -> dict:
    """Random search, one trial: a random genotype from the search space, trained for one epoch on
    search-train and scored on search-validation. Returns ``{"valid_acc", "genotype"}``.

    The trial's network never compiles (``kernel="auto"``, the eager sequence kernel, whatever
    ``cfg.compile`` says): each trial builds a new network of a random motif size and trains it for one
    epoch, which cannot pay back compiling it (tens of seconds per new shape on CPU; the retraining of
    the chosen genotype compiles as the config says)."""
    g = torch.Generator().manual_seed(cfg.seed * 1000 + trial)
    options = cfg.effective_options()
    v = options[int(torch.randint(len(options), (1,), generator=g))]
    genotype = Genotype(MotifTopology.random(v, g, lateral=cfg.searches_lateral), cfg.hidden)
    eager = dataclasses.replace(cfg, compile=False)
    model = build_classifier(genotype, eager, search_train.n_channels, search_train.n_classes).to(device)
    calibrated(model, cfg, search_train.x_train)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, y = search_train.x_train, search_train.y_train
    train_epoch(model, x, y, loss_fn, opt, cfg.batch_size, gen, device=device)
    acc = evaluate(model, search_valid.x_train, search_valid.y_train, tau_syn=cfg.tau_syn, device=device)
    return {"valid_acc": acc, "genotype": genotype.to_dict()}


def dense_rsnn(in_features: int, hidden: int, classes: int, cfg: HRMASConfig) -> SCMLClassifier:
    """Fully connected RSNN baseline (Table 3): one motif of size N, every recurrent weight trained with a
    free sign, initialised N(0, 1/N) (the fan-in aware initialisation of free edges, fan-in N)."""
    genotype = Genotype(MotifTopology.uniform(hidden, ConnectionType.FREE, None), hidden)
    return build_classifier(genotype, cfg, in_features, classes)


def train_dense_baseline(
    cfg: HRMASConfig, data: SplitData, seed: int | None = None, device: str = "cpu"
) -> dict:
    """Train :func:`dense_rsnn` with the retraining budget of ``cfg`` (no search) and test it once."""
    res = train_baseline("dense", cfg, data, seed, device)
    return {k: res[k] for k in ("test_acc", "seconds", "cost")}


def ff_snn(in_features: int, hidden: int, classes: int, cfg: HRMASConfig) -> SCMLClassifier:
    """The feed-forward SNN of the same size: the classifier of :func:`dense_rsnn` with a hidden
    :class:`~snn_motifs.SpikingLinear` (no recurrence)."""
    layer = SpikingLinear(
        in_features,
        hidden,
        backend=cfg.backend,
        neuron=cfg.neuron(),
        spike_fn=cfg.spike_fn,
        kernel=cfg.kernel,
    )
    return SCMLClassifier(
        in_features,
        hidden,
        classes,
        hidden_layer=layer,
        backend=cfg.backend,
        neuron=cfg.neuron(),
        spike_fn=cfg.spike_fn,
        input_gain=cfg.input_gain or 1.0,
        readout=cfg.readout,
    )


class LogisticRegression(nn.Module):
    """Non-spiking reference: a linear classifier on the whole flattened sequence,
    ``[T, B, C] -> [1, B, classes]`` logits."""

    readout = "last"

    def __init__(self, steps: int, channels: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(steps * channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.transpose(0, 1).flatten(1)).unsqueeze(0)

    @torch.no_grad()
    def mac_per_sample(self, x: torch.Tensor) -> float:
        """Multiply-accumulates per sample of ``x`` ``[T, B, C]``: one per (non-zero input, class)."""
        return float((x != 0).sum()) * self.fc.out_features / x.shape[1]


class GRUClassifier(nn.Module):
    """Non-spiking reference: one GRU layer and a linear readout of its outputs, max over time."""

    readout = "max"

    def __init__(self, channels: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.gru = nn.GRU(channels, hidden)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.gru(x)[0])

    @torch.no_grad()
    def mac_per_sample(self, x: torch.Tensor) -> float:
        """Multiply-accumulates per sample of ``x`` ``[T, B, C]``: the three gates' input weights for each
        non-zero input value, their recurrent weights for the (dense) hidden state of every step after the
        first, and the readout per step."""
        h, c = self.gru.hidden_size, self.fc.out_features
        steps = x.shape[0]
        inputs = float((x != 0).sum()) / x.shape[1] * 3 * h
        return inputs + (steps - 1) * 3 * h * h + steps * h * c


#: baselines trained without a search by :func:`train_baseline` (the dense RSNN of ``cfg.hidden``
#: neurons, the FF-SNN of the same size, and the non-spiking references)
BASELINES = ("dense", "ff", "logistic", "gru")


def _baseline_model(kind: str, cfg: HRMASConfig, data: SplitData) -> nn.Module:
    if kind == "dense":
        return dense_rsnn(data.n_channels, cfg.hidden, data.n_classes, cfg)
    if kind == "ff":
        return ff_snn(data.n_channels, cfg.hidden, data.n_classes, cfg)
    if kind == "logistic":
        return LogisticRegression(data.n_steps, data.n_channels, data.n_classes)
    if kind == "gru":
        return GRUClassifier(data.n_channels, cfg.hidden, data.n_classes)
    raise ValueError(f"unknown baseline {kind!r}; choose from {list(BASELINES)}")


def train_baseline(
    kind: str, cfg: HRMASConfig, data: SplitData, seed: int | None = None, device: str = "cpu"
) -> dict:
    """Train baseline ``kind`` (:data:`BASELINES`) with the retraining budget of ``cfg`` and test it once.

    Returns ``{"test_acc", "seconds", "cost", "baseline", "hidden", "seed"}``; ``cost`` is
    :func:`~snn_motifs.metrics.measure` on the test set for the SNNs, and for the non-spiking references
    their multiply-accumulates per sample (``mac_per_sample``, ``synops_per_sample`` and the energy
    estimate of the same :class:`~snn_motifs.metrics.EnergyModel`)."""
    from ..metrics import EnergyModel

    seed = cfg.seed if seed is None else seed
    torch.manual_seed(seed)
    model = _baseline_model(kind, cfg, data)
    if kind in ("dense", "ff"):
        res = retrain(model, data, cfg, seed, device)
        cost = test_cost(model, data, device)
    else:
        loss = LossConfig(readout=model.readout, tau_syn=cfg.tau_syn)
        args = dict(lr=cfg.lr, batch_size=cfg.batch_size, loss=loss, seed=seed, device=device)
        res = fit(
            model.to(device), data, cfg.epochs_retrain, weight_decay=cfg.weight_decay, calibrate=False, **args
        )
        x = data.x_test.transpose(0, 1).to(device)
        mac = model.mac_per_sample(x)
        energy = EnergyModel()
        cost = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "footprint_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
            "recurrent_synapses": model.gru.hidden_size * model.gru.hidden_size * 3 if kind == "gru" else 0,
            "connection_sparsity": 0.0,
            "ac_per_sample": 0.0,
            "mac_per_sample": mac,
            "synops_per_sample": mac,
            "energy_pj_per_sample": energy.energy_pj(0.0, mac),
            "energy_model": {**dataclasses.asdict(energy), "estimate": True},
        }
    return {
        "test_acc": res["test_acc"],
        "seconds": res["seconds"],
        "cost": cost,
        "baseline": kind,
        "hidden": cfg.hidden,
        "seed": seed,
    }
