"""Data sets as time-first tensors for our layers: MNIST-1D (generated locally) and the TI46-Alpha subset
preprocessed by the papers' authors. Nothing here downloads.

Every loader returns a :class:`SplitData` of ``x_train [n, T, C]``, ``y_train [n]``, ``x_test``, ``y_test``
(sample-first, for shuffling); :func:`batches` yields time-first ``[T, B, C]`` batches.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ._optional import require

__all__ = [
    "SplitData",
    "batches",
    "load_mnist1d",
    "load_ti46_alpha",
    "load_dataset",
    "DATASETS",
    "read_ti46_dat",
    "load_ti46_dat_dir",
    "load_ti46_raw",
    "lyon_cochleagram",
    "TI46_ENV",
]

#: environment variable naming the folder of ``ti46_alpha_u1-8.npz``
TI46_ENV = "SNN_MOTIFS_TI46_ALPHA"


class SplitData(NamedTuple):
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def n_steps(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_channels(self) -> int:
        return self.x_train.shape[2]


def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x [T, B, C], y [B])`` batches from sample-first ``x [n, T, C]``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        yield x[idx].transpose(0, 1), y[idx]


def population_code(signal: np.ndarray, channels: int, lo: float, hi: float) -> np.ndarray:
    """Gaussian receptive fields: ``[n, T]`` values -> ``[n, T, channels]`` currents in [0, 1]."""
    centres = np.linspace(lo, hi, channels)
    width = (hi - lo) / (channels - 1)
    return np.exp(-0.5 * ((signal[..., None] - centres) / width) ** 2)


def load_mnist1d(
    seed: int = 42,
    channels: int = 16,
    dtype: torch.dtype = torch.float32,
) -> SplitData:
    """MNIST-1D (Greydanus 2020) generated locally by the ``mnist1d`` package: 4000 train / 1000 test
    sequences of 40 steps, 10 classes. Each scalar step is population-coded into ``channels`` Gaussian
    receptive fields spanning [-3, 3], giving input currents ``[n, 40, channels]``.

    Needs ``pip install mnist1d`` (in the ``[data]`` extra). Uses ``make_dataset``, never ``get_dataset``
    (which tries a download first).
    """
    data_mod = require("mnist1d.data", "data", "MNIST-1D")
    args = data_mod.get_dataset_args()
    args.seed = seed
    data = data_mod.make_dataset(args)
    to = lambda a: torch.as_tensor(population_code(np.asarray(a), channels, -3.0, 3.0), dtype=dtype)  # noqa: E731
    return SplitData(
        to(data["x"]),
        torch.as_tensor(data["y"], dtype=torch.long),
        to(data["x_test"]),
        torch.as_tensor(data["y_test"], dtype=torch.long),
        10,
    )


def _ti46_file(root: str | os.PathLike | None) -> Path:
    if root is None:
        root = os.environ.get(TI46_ENV)
        if root is None:
            raise FileNotFoundError(
                f"TI46-Alpha data not given: pass root=<folder with ti46_alpha_u1-8.npz> or set {TI46_ENV}. "
                "TI46 is LDC93S9 (licensed); the authors' preprocessed subset ships with their SpiKL-IP code."
            )
    path = Path(root)
    path = path / "ti46_alpha_u1-8.npz" if path.is_dir() else path
    if not path.exists():
        raise FileNotFoundError(f"no TI46-Alpha file at {path} (expected ti46_alpha_u1-8.npz)")
    return path


def load_ti46_alpha(
    root: str | os.PathLike | None = None,
    split: str = "speaker_dependent",
    test_speaker: str = "f1",
    dtype: torch.dtype = torch.float32,
) -> SplitData:
    """The authors' preprocessed TI46-Alpha subset (26 letters, 78 Lyon channels, up to 117 steps).

    Args:
        root: folder holding ``ti46_alpha_u1-8.npz`` (or the file); default: ``$SNN_MOTIFS_TI46_ALPHA``.
        split: ``"speaker_dependent"`` (train on utterances 1-6, test on 7-8, as the papers) or
            ``"loso"`` (leave one speaker out: train on the other speakers, test on ``test_speaker``).
        test_speaker: held-out speaker for ``"loso"``.

    Inputs are divided by the training set's maximum, so they lie in [0, 1]; zero padding is kept.
    """
    path = _ti46_file(root)
    try:
        with np.load(path, allow_pickle=False) as raw:
            x, label = raw["x"], raw["label"]
            speaker, utterance = raw["speaker"], raw["utterance"]
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a TI46-Alpha npz with x/label/speaker/utterance: {exc}") from exc
    return _split_ti46(x, label, speaker, utterance, split, test_speaker, dtype)


#: names :func:`load_dataset` knows (the tonic recipes live in :mod:`snn_motifs.event_datasets`)
DATASETS = ("mnist1d", "ti46_alpha")


def load_dataset(
    name: str,
    *,
    ti46_root: str | os.PathLike | None = None,
    ti46_split: str = "speaker_dependent",
    max_train: int | None = None,
) -> SplitData:
    """A data set by its config name (:data:`DATASETS`), optionally cut to the first ``max_train``
    training samples. MNIST-1D is generated with seed 42 (no download)."""
    if name == "mnist1d":
        data = load_mnist1d(seed=42)
    elif name == "ti46_alpha":
        data = load_ti46_alpha(ti46_root, ti46_split)
    else:
        raise ValueError(
            f"dataset {name!r} has no loader by name (available: {list(DATASETS)}); event-camera and "
            "audio-spike sets load through snn_motifs.event_datasets"
        )
    if max_train is not None:
        data = data._replace(x_train=data.x_train[:max_train], y_train=data.y_train[:max_train])
    return data


def _split_ti46(x, label, speaker, utterance, split, test_speaker, dtype) -> SplitData:
    if split == "speaker_dependent":
        train = utterance <= 6
    elif split == "loso":
        if test_speaker not in set(speaker.tolist()):
            raise ValueError(f"test_speaker {test_speaker!r} not in {sorted(set(speaker.tolist()))}")
        train = speaker != test_speaker
    else:
        raise ValueError(f"split must be 'speaker_dependent' or 'loso', got {split!r}")
    if not train.any():
        raise ValueError(f"split {split!r} leaves no training samples")
    scale = float(x[train].max()) or 1.0
    as_t = lambda a: torch.as_tensor(a / scale, dtype=dtype)  # noqa: E731
    return SplitData(
        as_t(x[train]),
        torch.as_tensor(label[train], dtype=torch.long),
        as_t(x[~train]),
        torch.as_tensor(label[~train], dtype=torch.long),
        26,
    )


_DAT_NAME = re.compile(r"^(?P<speaker>[a-z]+\d+)_u(?P<utt>\d+)_c(?P<cls>\d+)\.dat$")


def read_ti46_dat(path: str | os.PathLike, channels: int = 78) -> torch.Tensor:
    """One file of the authors' preprocessed text format: ``channels`` lines of ``T`` whitespace-separated
    values (Lyon cochleagram). Returns time-first ``[T, channels]`` float32."""
    path = Path(path)
    try:
        values = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a TI46 .dat file (numbers in {channels} lines): {exc}") from exc
    if values.shape[0] != channels:
        raise ValueError(f"{path} has {values.shape[0]} lines, expected {channels} channels x T values")
    return torch.from_numpy(np.ascontiguousarray(values.T))


def load_ti46_dat_dir(
    root: str | os.PathLike,
    split: str = "speaker_dependent",
    test_speaker: str = "f1",
    pad_to: int | None = None,
) -> SplitData:
    """A folder of ``<speaker>_u<utterance>_c<class>.dat`` files (the authors' layout, in class
    sub-folders or flat), zero-padded to the longest sample (or ``pad_to``) and split like
    :func:`load_ti46_alpha`."""
    files = sorted(Path(root).rglob("*.dat"))
    parsed = [(f, _DAT_NAME.match(f.name)) for f in files]
    parsed = [(f, m) for f, m in parsed if m]
    if not parsed:
        raise FileNotFoundError(f"no <speaker>_u<utterance>_c<class>.dat files under {root}")
    seqs = [read_ti46_dat(f) for f, _ in parsed]
    steps = pad_to or max(len(s) for s in seqs)
    x = np.zeros((len(seqs), steps, seqs[0].shape[1]), dtype=np.float32)
    for i, seq in enumerate(seqs):
        n = min(len(seq), steps)
        x[i, :n] = seq[:n].numpy()
    label = np.array([int(m["cls"]) for _, m in parsed])
    speaker = np.array([m["speaker"] for _, m in parsed])
    utterance = np.array([int(m["utt"]) for _, m in parsed])
    return _split_ti46(x, label, speaker, utterance, split, test_speaker, torch.float32)


_RAW_NAME = r"^(?P<speaker>[a-z]+\d+)_u(?P<utt>\d+)_c(?P<cls>\d+)\.wav$"


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    import wave

    try:
        with wave.open(str(path), "rb") as fh:
            rate, width, channels = fh.getframerate(), fh.getsampwidth(), fh.getnchannels()
            frames = fh.readframes(fh.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise ValueError(
            f"{path} is not a readable PCM WAV file ({exc}); convert SPHERE files with sox"
        ) from exc
    if width != 2:
        raise ValueError(f"{path}: only 16-bit PCM WAV is supported, got {8 * width}-bit")
    audio = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    return audio.reshape(-1, channels).mean(axis=1), rate


def lyon_cochleagram(audio: np.ndarray, rate: int, seconds: float = 1.0) -> np.ndarray:
    """The papers' preprocessing: resample to 12.5 kHz, pad/crop to ``seconds``, Lyon's passive ear
    model with decimation 125 -> ``[100 * seconds, 78]`` (time-first). Needs the ``[ti46raw]`` extra."""
    calc_mod = require("lyon.calc", "ti46raw", "TI46 raw-audio preprocessing (Lyon's ear model)")
    target = 12500
    if rate != target:  # linear-interpolation resampling; TI46 itself is recorded at 12.5 kHz
        t_new = np.arange(int(round(len(audio) * target / rate))) / target
        audio = np.interp(t_new, np.arange(len(audio)) / rate, audio)
    n = int(round(seconds * target))
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    return calc_mod.LyonCalc().lyon_passive_ear(audio, target, 125).astype(np.float32)


def load_ti46_raw(
    root: str | os.PathLike,
    split: str = "speaker_dependent",
    test_speaker: str = "f1",
    pattern: str = _RAW_NAME,
    cache: str | os.PathLike | None = None,
) -> SplitData:
    """A user-supplied raw TI46 corpus (16-bit WAV; convert the LDC's SPHERE files with ``sox``) through the
    papers' preprocessing (:func:`lyon_cochleagram`: 12.5 kHz, 78 channels x 100 steps).

    ``pattern`` is a regular expression on file names with named groups ``speaker``, ``utt`` and ``cls``
    (class index 0-25); the default matches ``f1_u1_c0.wav``. ``cache`` names an ``.npz`` to reuse the
    cochleagrams on later calls. Split as :func:`load_ti46_alpha`.
    """
    if cache is not None and Path(cache).exists():
        with np.load(cache, allow_pickle=False) as raw:
            x, label, speaker, utterance = raw["x"], raw["label"], raw["speaker"], raw["utterance"]
        return _split_ti46(x, label, speaker, utterance, split, test_speaker, torch.float32)
    rx = re.compile(pattern)
    files = [(f, rx.match(f.name)) for f in sorted(Path(root).rglob("*.wav"))]
    files = [(f, m) for f, m in files if m]
    if not files:
        raise FileNotFoundError(
            f"no WAV files matching {pattern!r} under {root}: put the TI46 letters there as 16-bit WAV "
            "named like f1_u1_c0.wav (speaker, utterance, class 0-25), or pass pattern="
        )
    x = np.stack([lyon_cochleagram(*_read_wav(f)) for f, _ in files])
    label = np.array([int(m["cls"]) for _, m in files])
    speaker = np.array([m["speaker"] for _, m in files])
    utterance = np.array([int(m["utt"]) for _, m in files])
    if cache is not None:
        np.savez(cache, x=x, label=label, speaker=speaker, utterance=utterance)
    return _split_ti46(x, label, speaker, utterance, split, test_speaker, torch.float32)
