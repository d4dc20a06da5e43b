"""From a genotype to a tested network: build the SC-ML classifier it describes, retrain it from scratch
with the training recipe (:func:`snn_motifs.training.fit`; a search's own retraining phase,
:class:`~snn_motifs.search.runner.HRMASRun`, runs the same recipe epoch by epoch with
:func:`~snn_motifs.training.fit_optimizer` and :func:`~snn_motifs.training.fit_epoch`, so it can checkpoint
between epochs), and rebuild trained networks from disk.

The HRMAS paper (sec 2.3) re-initialises every weight after discretisation and trains the found
architecture on the full training set; only then is the test set used.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import torch
from torch import nn

from .._io import RunFolderLock, folder_has_files, load_torch, save_torch, write_json
from ..datasets import SplitData
from ..loaders import split_loaders
from ..metrics import measure
from ..models import SCMLClassifier
from ..training import LossConfig, calibrate_for_training, check_loaded, distributed_info, fit
from .config import HRMASConfig, check_memory
from .genotype import Genotype

__all__ = [
    "NotRetrainedError",
    "build_classifier",
    "calibrated",
    "loss_config",
    "retrain",
    "test_cost",
    "train_genotype",
    "load_trained",
    "trained_file",
]


class NotRetrainedError(ValueError):
    """A search checkpoint that holds no retrained network yet (the search stopped before retraining)."""


def build_classifier(genotype: Genotype, cfg: HRMASConfig, in_features: int, classes: int) -> SCMLClassifier:
    """The network the search found: input -> SC-ML built from ``genotype`` -> the readout of ``cfg``."""
    return SCMLClassifier(
        in_features,
        genotype.n_neurons,
        classes,
        topology=genotype.topology,
        backend=cfg.backend,
        neuron=cfg.neuron(),
        spike_fn=cfg.spike_fn,
        input_gain=cfg.input_gain or 1.0,
        readout=cfg.readout,
        inhibitory_weight=cfg.inhibitory_weight,
        kernel=cfg.kernel,
    )


def loss_config(cfg: HRMASConfig) -> LossConfig:
    """The loss of ``cfg``'s readout (searching and retraining alike)."""
    return LossConfig(readout=cfg.readout, tau_syn=cfg.tau_syn)


def calibrated(model: nn.Module, cfg: HRMASConfig, x_train: torch.Tensor) -> nn.Module:
    """With ``input_gain: null`` (the default) set the input gain from the first training samples
    (:func:`~snn_motifs.training.calibrate_for_training`, as :func:`~snn_motifs.training.fit` does)."""
    calibrate_for_training(model, x_train, cfg.target_rate, calibrate=cfg.input_gain is None)
    return model


def test_cost(model: nn.Module, data: SplitData, device: torch.device | str = "cpu") -> dict:
    """The hardware cost of ``model`` on the whole test set (:func:`snn_motifs.metrics.measure`: synaptic
    operations and energy per sample, synapses, sparsities), reported beside its test accuracy."""
    return measure(model, data.x_test.to(device), batch_first=True, batch_size=256)


def retrain(
    model: nn.Module,
    data: SplitData,
    cfg: HRMASConfig,
    seed: int,
    device: str = "cpu",
    workers: int | None = None,
) -> dict:
    """Train ``model`` with the retraining budget and loss of ``cfg`` on the full training set, test once.

    ``workers``: None trains from the tensors; a number feeds ``fit`` through ``torch.utils.data``
    loaders with that many worker processes (:func:`snn_motifs.loaders.split_loaders`, shuffled by a
    generator seeded with ``seed``, so any number of workers gives the same run)."""
    if workers is not None:
        data = split_loaders(data, cfg.batch_size, seed, num_workers=workers)
    return fit(
        model.to(device),
        data,
        cfg.epochs_retrain,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        loss=loss_config(cfg),
        seed=seed,
        device=device,
        weight_decay=cfg.weight_decay,
        calibrate=cfg.input_gain is None,
        target_rate=cfg.target_rate,
    )


def train_genotype(
    genotype: Genotype,
    cfg: HRMASConfig,
    data: SplitData,
    out: str | Path,
    seed: int = 0,
    device: str = "cpu",
    workers: int | None = None,
) -> dict:
    """``snn-motifs train``: build, retrain and test ``genotype``; writes ``out/model.pt`` (weights, genotype,
    config) and ``out/result.json``. Refuses a non-empty ``out``, and one another process holds
    (:class:`~snn_motifs._io.RunFolderLock`, taken by rank 0 under ``torchrun``). ``workers`` as in
    :func:`retrain`."""
    out = Path(out)
    with RunFolderLock(out) if distributed_info()[0] == 0 else contextlib.nullcontext():
        return _train_genotype(genotype, cfg, data, out, seed, device, workers)


def _train_genotype(
    genotype: Genotype,
    cfg: HRMASConfig,
    data: SplitData,
    out: Path,
    seed: int,
    device: str,
    workers: int | None,
) -> dict:
    if folder_has_files(out):
        raise ValueError(f"output directory {out} exists and is not empty; choose another --out")
    cfg = dataclasses.replace(cfg, hidden=genotype.n_neurons)
    sizes = [genotype.topology.motif_size]  # refused before allocating when it cannot fit in memory
    dims = (data.n_channels, data.n_steps, data.n_classes)
    check_memory(cfg, *dims, device, motif_sizes=sizes, what="n_neurons")
    torch.manual_seed(seed)
    model = build_classifier(genotype, cfg, data.n_channels, data.n_classes)
    res = retrain(model, data, cfg, seed, device, workers)
    blob = {"genotype": genotype.to_dict(), "config": dataclasses.asdict(cfg), "model": model.state_dict()}
    save_torch(blob, out / "model.pt")
    result = {
        "test_acc": res["test_acc"],
        "genotype": genotype.to_dict(),
        "cost": test_cost(model, data, device),
    }
    write_json(out / "result.json", result)
    return result


def trained_file(path: str | Path) -> Path:
    """``model.pt`` of 'snn-motifs train', or ``checkpoint.pt`` of a finished search seed directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"no such file or directory: {path}")
    for candidate in (path / "model.pt", path / "checkpoint.pt", *sorted(path.glob("seed*/checkpoint.pt"))):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{path} has no model.pt or checkpoint.pt; give a directory written by 'snn-motifs train' "
        "or a search output (seedN/ directory)"
    )


def load_trained(path: str | Path) -> tuple[SCMLClassifier, Genotype, HRMASConfig]:
    """Rebuild the trained SC-ML classifier of a 'train' directory or a finished search seed.

    Layer sizes come from the saved weights, so no data set is loaded. The file is read with
    ``weights_only=True``: a file that would run code when unpickled is refused.
    """
    file = trained_file(path)
    blob = load_torch(file)
    try:
        cfg = HRMASConfig.from_dict(blob["config"])
        if "genotype" in blob:  # snn-motifs train
            genotype, state = Genotype.from_dict(blob["genotype"]), blob["model"]
        else:  # a search checkpoint: the retrained network is 'final_model'
            state = blob.get("final_model")
            if state is None:
                raise NotRetrainedError("the search has not reached retraining yet (resume it first)")
            genotype = Genotype.from_json(file.parent / "genotype.json")
        in_features = state["hidden.fc.weight"].shape[1]
        model = build_classifier(genotype, cfg, in_features, state["output.fc.weight"].shape[0])
        model.load_state_dict(state)
    except Exception as exc:
        raise ValueError(f"cannot read a trained model from {file}: {type(exc).__name__}: {exc}") from exc
    check_loaded(state, file)  # a diverged network (NaN/Inf weights) is refused, naming the parameter
    return model, genotype, cfg
