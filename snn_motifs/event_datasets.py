"""Neuromorphic data sets through tonic, as time-first frames for our layers (the HRMAS paper sec 3.1.1).

Recipes (Table 1 of the HRMAS paper where it applies):

=========== ====================== ============================ ======== ==========
name        tonic class            frames                       T        channels
=========== ====================== ============================ ======== ==========
nmnist      ``NMNIST``             34 x 34 x 2                  100      2312
dvsgesture  ``DVSGesture``         128 x 128 x 2, P4 -> 32x32x2 400      2048
ntidigits18 ``NTIDIGITS18``        64 channels, single digits   300      64
shd         ``SHD``                700 cochlear units           100      700
=========== ====================== ============================ ======== ==========

Events become frames with ``tonic.transforms.ToFrame(sensor_size, n_time_bins=T)``, flattened to
``[T, channels]`` float tensors; batches are padded and stacked time-first by
``tonic.collation.PadTensors(batch_first=False)``; ``cache_dir`` wraps the set in ``tonic.DiskCachedDataset``.
Nothing here downloads unless you pass ``download=True``: put the files where tonic expects them
(``<root>/<ClassName>/...``) or let tonic fetch them once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ._optional import require

__all__ = ["TONIC_RECIPES", "EventRecipe", "event_dataset", "event_loader"]


@dataclass(frozen=True)
class EventRecipe:
    tonic_class: str
    n_time_bins: int
    classes: int
    spatial_factor: float = 1.0  # tonic.transforms.Downsample, e.g. 0.25 for DVS-Gesture's "P4"
    kwargs: tuple = ()  # extra constructor arguments


TONIC_RECIPES: dict[str, EventRecipe] = {
    "nmnist": EventRecipe("NMNIST", 100, 10),
    "dvsgesture": EventRecipe("DVSGesture", 400, 11, spatial_factor=0.25),
    "ntidigits18": EventRecipe("NTIDIGITS18", 300, 11, kwargs=(("single_digits", True),)),
    "shd": EventRecipe("SHD", 100, 20),
}


class _ToTimeFirst:
    """``[T, *sensor]`` frames -> ``[T, channels]`` float32 (numpy, so tonic's disk cache can store it)."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return np.asarray(frames, dtype=np.float32).reshape(len(frames), -1)


class _Tensors(torch.utils.data.Dataset):
    """``(frames, label)`` as ``(float32 tensor [T, channels], int)``, whether cached or not."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        frames, target = self.dataset[index]
        return torch.as_tensor(np.asarray(frames, dtype=np.float32)), int(np.asarray(target))


def _offline(cls):
    """Subclass (same name, so tonic finds the same folder) whose download explains instead of fetching."""

    def download(self):
        raise FileNotFoundError(
            f"{cls.__name__} files not found under {self.location_on_system}. Download them once (e.g. "
            f"tonic.datasets.{cls.__name__}(save_to=..., ...) on a machine with internet) and point root at "
            "the folder that contains it, or pass download=True."
        )

    return type(cls.__name__, (cls,), {"download": download, "__module__": cls.__module__})


def event_dataset(
    name: str,
    root: str | os.PathLike,
    train: bool = True,
    n_time_bins: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = False,
):
    """A torch ``Dataset`` of ``(frames [T, channels], label)`` for a recipe in :data:`TONIC_RECIPES`."""
    tonic = require("tonic", "events", "the neuromorphic data sets")
    try:
        recipe = TONIC_RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown event data set {name!r}; available: {sorted(TONIC_RECIPES)}") from None
    cls = getattr(tonic.datasets, recipe.tonic_class)
    if not download:
        cls = _offline(cls)
    steps, sensor = [], tuple(cls.sensor_size)
    if recipe.spatial_factor != 1:  # DVS-Gesture "P4": 128 x 128 -> 32 x 32
        steps.append(tonic.transforms.Downsample(spatial_factor=recipe.spatial_factor))
        sensor = (int(sensor[0] * recipe.spatial_factor), int(sensor[1] * recipe.spatial_factor), sensor[2])
    steps.append(tonic.transforms.ToFrame(sensor_size=sensor, n_time_bins=n_time_bins or recipe.n_time_bins))
    transform = tonic.transforms.Compose([*steps, _ToTimeFirst()])
    dataset = cls(save_to=str(root), train=train, transform=transform, **dict(recipe.kwargs))
    if cache_dir is not None:
        dataset = tonic.DiskCachedDataset(dataset, cache_path=str(cache_dir))
    return _Tensors(dataset)


def event_loader(dataset, batch_size: int, shuffle: bool = False, **kwargs) -> torch.utils.data.DataLoader:
    """Batches ``(x [T, B, channels], y [B])``, padded to the longest sample (``PadTensors``)."""
    tonic = require("tonic", "events", "the neuromorphic data sets")
    collate = tonic.collation.PadTensors(batch_first=False)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, **kwargs
    )
