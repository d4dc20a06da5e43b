"""tonic-backed data sets, tested offline on fake raw files written the way the real ones are laid out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snn_motifs import MissingDependencyError
from snn_motifs.event_datasets import event_dataset, event_loader

tonic = pytest.importorskip("tonic")


def _nmnist_bin(path, events):
    """N-MNIST binary: 5 bytes per event, x, y, polarity bit 7 + 23-bit timestamp (microseconds)."""
    raw = bytearray()
    for x, y, t, p in events:
        raw += bytes([x, y, (p << 7) | ((t >> 16) & 127), (t >> 8) & 255, t & 255])
    path.write_bytes(bytes(raw))


def test_nmnist_frames_from_fake_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tonic.datasets.NMNIST, "_check_exists", lambda self: True)
    folder = tmp_path / "NMNIST" / "Train"
    for label in (3, 7):
        (folder / str(label)).mkdir(parents=True)
        events = [(label, 2 * label, 1000 * k, k % 2) for k in range(50)]
        _nmnist_bin(folder / str(label) / "00001.bin", events)
    ds = event_dataset("nmnist", tmp_path, train=True, n_time_bins=10)
    assert len(ds) == 2
    frames, target = ds[0]
    assert frames.shape == (10, 34 * 34 * 2) and frames.dtype == torch.float32 and target == 3
    assert 49 <= frames.sum() <= 50  # tonic's ToFrame drops the event on the last timestamp
    x, y = next(iter(event_loader(ds, batch_size=2)))
    assert x.shape == (10, 2, 2312) and y.tolist() == [3, 7]


def test_shd_frames_from_fake_h5(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    monkeypatch.setattr(tonic.datasets.SHD, "_check_exists", lambda self: True)
    folder = tmp_path / "SHD"
    folder.mkdir()
    with h5py.File(folder / "shd_train.h5", "w") as f:
        times = f.create_dataset("spikes/times", (3,), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (3,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(3):
            times[i] = np.linspace(0.0, 0.5, 20 + i, dtype=np.float32)
            units[i] = np.arange(20 + i, dtype=np.uint16) * 30
        f["labels"] = np.array([1, 4, 19])
        f["extra/keys"] = np.array([b"k%d" % i for i in range(20)])
        f["extra/speaker"] = np.array([0, 1, 2])
    ds = event_dataset("shd", tmp_path, train=True, cache_dir=tmp_path / "cache")
    frames, target = ds[2]
    assert frames.shape == (100, 700) and target == 19 and 21 <= float(frames.sum()) <= 22
    again, _ = ds[2]  # from the disk cache
    assert torch.equal(again, frames)


def test_dvsgesture_p4_frames_from_fake_npy(tmp_path, monkeypatch):
    monkeypatch.setattr(tonic.datasets.DVSGesture, "_check_exists", lambda self: True)
    folder = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_fluorescent"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    events = np.stack(
        [
            rng.integers(0, 128, 300),
            rng.integers(0, 128, 300),
            rng.integers(0, 2, 300),
            np.sort(rng.integers(0, 2000, 300)),
        ],
        axis=1,
    ).astype(np.float64)  # x, y, p, t [ms]
    np.save(folder / "4.npy", events)
    ds = event_dataset("dvsgesture", tmp_path, n_time_bins=20)
    frames, target = ds[0]
    assert frames.shape == (20, 32 * 32 * 2) and target == 4  # P4: 128 x 128 -> 32 x 32
    assert 295 <= float(frames.sum()) <= 300


def test_ntidigits18_single_digit_frames_from_fake_hdf5(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    monkeypatch.setattr(tonic.datasets.NTIDIGITS18, "_check_exists", lambda self: True)
    folder = tmp_path / "NTIDIGITS18"
    folder.mkdir()
    with h5py.File(folder / "n-tidigits.hdf5", "w") as f:
        ids = ["man-ae-7", "woman-bc-z", "man-cd-12"]  # the two-digit sample is skipped (single digits)
        f["train_labels"] = np.array([i.encode() for i in ids])
        for k, sample in enumerate(ids):
            f[f"train_addresses/{sample}"] = np.arange(10 + k) % 64
            f[f"train_timestamps/{sample}"] = np.linspace(0, 0.9, 10 + k)
    ds = event_dataset("ntidigits18", tmp_path)
    assert len(ds) == 2
    frames, target = ds[1]
    assert frames.shape == (300, 64) and target == 10  # 'z'


def test_missing_files_never_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="NMNIST files not found under .*download=True"):
        event_dataset("nmnist", tmp_path)
    with pytest.raises(ValueError, match="unknown event data set 'cifar'"):
        event_dataset("cifar", tmp_path)


def test_missing_tonic_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "tonic", None)
    with pytest.raises(MissingDependencyError, match=r"snn-motifs\[events\]"):
        event_dataset("nmnist", tmp_path)
