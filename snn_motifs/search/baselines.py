"""What HRMAS is compared with (the HRMAS paper, Table 3 and the ablations of sec 3.4): random search
over the same space with the same budget, the ablations as config changes, and the fully connected
recurrent SNN of the same size."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from ..datasets import SplitData
from ..models import SCMLClassifier
from ..topology import ConnectionType, MotifTopology
from ..training import evaluate, train_epoch
from .config import HRMASConfig
from .genotype import Genotype
from .retrain import build_classifier, calibrated, retrain, test_cost

__all__ = ["ABLATIONS", "with_ablation", "random_trial", "dense_rsnn", "train_dense_baseline"]

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
    search-train and scored on search-validation. Returns ``{"valid_acc", "genotype"}``."""
    g = torch.Generator().manual_seed(cfg.seed * 1000 + trial)
    options = cfg.effective_options()
    v = options[int(torch.randint(len(options), (1,), generator=g))]
    genotype = Genotype(MotifTopology.random(v, g, lateral=cfg.searches_lateral), cfg.hidden)
    model = build_classifier(genotype, cfg, search_train.n_channels, search_train.n_classes).to(device)
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
    seed = cfg.seed if seed is None else seed
    torch.manual_seed(seed)
    model = dense_rsnn(data.n_channels, cfg.hidden, data.n_classes, cfg)
    res = retrain(model, data, cfg, seed, device)
    return {"test_acc": res["test_acc"], "seconds": res["seconds"], "cost": test_cost(model, data, device)}
