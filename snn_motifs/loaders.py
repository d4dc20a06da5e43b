"""``torch.utils.data`` datasets and time-first loaders for every data set the library knows.

Each item is ``(x [T, channels], label)``; :func:`time_first_collate` zero-pads a batch to its longest
sequence and stacks it time-first, ``(x [T, B, channels], y [B])``, the layout of snnTorch and of our
layers. So ``DataLoader``, samplers, ``num_workers`` and ``DistributedSampler`` plug in, and
:func:`~snn_motifs.training.fit` takes ``(train_loader, test_loader)`` as readily as tensors.

====================  ==================================================================================
name                  source
====================  ==================================================================================
``mnist1d``           MNIST-1D generated locally (:func:`~snn_motifs.datasets.load_mnist1d`, no download)
``ti46_alpha``        the authors' preprocessed TI46-Alpha ``.npz`` (``root``: its folder or file)
``ti46_dat``          a folder of the authors' ``.dat`` cochleagrams (``datasets.load_ti46_dat_dir``)
``ti46_raw``          a folder of raw 16-bit WAV files through Lyon's ear model (the ``[ti46raw]`` extra)
tonic recipes         ``nmnist``, ``dvsgesture``, ``ntidigits18``, ``shd`` (:mod:`snn_motifs.event_datasets`)
====================  ==================================================================================
"""

from __future__ import annotations

import functools
import os

import torch
from torch.utils.data import DataLoader, Dataset

from . import datasets
from .datasets import SplitData

__all__ = ["SequenceDataset", "sequence_dataset", "time_first_collate", "sequence_loader", "split_loaders"]


class SequenceDataset(Dataset):
    """Sample-first tensors ``x [n, T, C]``, ``y [n]`` as a dataset of ``(x [T, C], label)``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, n_classes: int | None = None) -> None:
        if x.dim() != 3 or y.dim() != 1 or len(x) != len(y):
            raise ValueError(f"need x [n, T, C] and y [n], got {list(x.shape)} and {list(y.shape)}")
        self.x, self.y = x, y.long()
        self.n_classes = int(y.max()) + 1 if n_classes is None else n_classes

    @classmethod
    def from_split(cls, data: SplitData, train: bool = True) -> SequenceDataset:
        x, y = (data.x_train, data.y_train) if train else (data.x_test, data.y_test)
        return cls(x, y, data.n_classes)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.x[index], int(self.y[index])


def time_first_collate(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(x [T_i, C], label)] -> (x [max T, B, C] zero-padded, y [B])``."""
    xs = [torch.as_tensor(x) for x, _ in batch]
    channels = {x.shape[1:] for x in xs}
    if len(channels) != 1:
        raise ValueError(f"samples in a batch differ in their channel shape: {sorted(map(tuple, channels))}")
    out = xs[0].new_zeros(max(len(x) for x in xs), len(xs), *xs[0].shape[1:])
    for i, x in enumerate(xs):
        out[: len(x), i] = x
    return out, torch.as_tensor([int(y) for _, y in batch], dtype=torch.long)


def sequence_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, **kwargs) -> DataLoader:
    """``DataLoader(dataset, batch_size, shuffle, collate_fn=time_first_collate, **kwargs)``."""
    kwargs.setdefault("collate_fn", time_first_collate)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, **kwargs)


def split_loaders(data: SplitData, batch_size: int, seed: int = 0, **kwargs) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` over a :class:`~snn_motifs.datasets.SplitData` (the training loader
    shuffles with a generator seeded by ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    train = sequence_loader(SequenceDataset.from_split(data, True), batch_size, True, generator=gen, **kwargs)
    return train, sequence_loader(SequenceDataset.from_split(data, False), batch_size, False, **kwargs)


@functools.lru_cache(maxsize=4)
def _mnist1d(seed: int, channels: int) -> SplitData:
    return datasets.load_mnist1d(seed=seed, channels=channels)


def sequence_dataset(
    name: str,
    train: bool = True,
    *,
    root: str | os.PathLike | None = None,
    split: str = "speaker_dependent",
    test_speaker: str = "f1",
    **kwargs,
) -> Dataset:
    """The training (``train=True``) or test part of data set ``name`` (see the module table).

    ``split``/``test_speaker`` choose the TI46 protocol (speaker-dependent, or leave one speaker out);
    ``kwargs`` go to the loader (``seed``/``channels`` for MNIST-1D, ``n_time_bins``/``cache_dir``/
    ``download`` for the tonic recipes).
    """
    from .event_datasets import TONIC_RECIPES, event_dataset

    if name == "mnist1d":
        data = _mnist1d(kwargs.pop("seed", 42), kwargs.pop("channels", 16))
    elif name == "ti46_alpha":
        data = datasets.load_ti46_alpha(root, split, test_speaker)
    elif name in ("ti46_dat", "ti46_raw"):
        if root is None:
            raise ValueError(f"{name} needs root=<folder with the TI46 files>")
        load = datasets.load_ti46_dat_dir if name == "ti46_dat" else datasets.load_ti46_raw
        data = load(root, split, test_speaker, **kwargs)
    elif name in TONIC_RECIPES:
        if root is None:
            raise ValueError(f"{name} needs root=<folder tonic reads {TONIC_RECIPES[name].tonic_class} from>")
        return event_dataset(name, root, train=train, **kwargs)
    else:
        known = ["mnist1d", "ti46_alpha", "ti46_dat", "ti46_raw", *sorted(TONIC_RECIPES)]
        raise ValueError(f"unknown data set {name!r}; available: {known}")
    return SequenceDataset.from_split(data, train)
