"""Output losses (the HRMAS paper eqs 29-30, the TSSL-BP authors' count loss) and the offline data loaders."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snn_motifs import MissingDependencyError, datasets
from snn_motifs.losses import count_loss, kernel_loss, predict, psc

SHARED_TI46 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ti46_alpha"


def test_psc_is_eq_1():
    s = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(4, 1, 1)
    a = psc(s, tau_syn=2.0).flatten().tolist()
    assert a == [1.0, 0.5, 0.25, 1.125]


def test_kernel_loss_by_hand():
    spikes = torch.zeros(3, 1, 2)
    spikes[0, 0, 0] = 1.0
    labels = torch.tensor([1])
    # desired: neuron 1 fires every step, neuron 0 silent; tau_s = 2, gain 1/2
    d0 = [0.5, 0.25, 0.125]  # psc(spikes of neuron 0) * 1/2
    d1 = [-0.5, -0.75, -0.875]  # psc(-1,-1,-1) * 1/2
    expect = 0.5 * (sum(v * v for v in d0) + sum(v * v for v in d1))
    assert kernel_loss(spikes, labels, tau_syn=2.0).item() == pytest.approx(expect)
    assert kernel_loss(spikes, labels, tau_syn=2.0, reduction="mean").item() == pytest.approx(expect)
    # a perfect output has zero loss
    perfect = torch.zeros(3, 1, 2)
    perfect[:, 0, 1] = 1
    assert kernel_loss(perfect, labels, tau_syn=2.0).item() == 0


def test_count_loss_is_one_sided():
    T = 10
    spikes = torch.zeros(T, 2, 3, requires_grad=True)
    with torch.no_grad():
        spikes[:7, 0, 0] = 1  # label neuron fires 7 >= desired 5: no error
        spikes[:2, 0, 1] = 1  # other neuron fires 2 > undesired 1: error (2-1)/10
        spikes[:3, 1, 2] = 1  # label neuron fires 3 < desired 5: error (3-5)/10
    labels = torch.tensor([0, 2])
    loss = count_loss(spikes, labels, desired_count=5, undesired_count=1)
    expect = 0.5 * T * ((0.1) ** 2 + (0.2) ** 2)
    assert loss.item() == pytest.approx(expect)
    loss.backward()
    assert spikes.grad[0, 0, 0] == 0 and spikes.grad[0, 1, 0] == 0  # over-firing label, silent other
    assert spikes.grad[0, 0, 1] == pytest.approx(0.1) and spikes.grad[0, 1, 2] == pytest.approx(-0.2)


def test_predict_and_errors():
    spikes = torch.zeros(5, 2, 3)
    spikes[:, 0, 2] = 1
    spikes[0, 1, 1] = 1
    assert predict(spikes).tolist() == [2, 1]
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        kernel_loss(torch.zeros(5, 3), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"labels must be \[B\]"):
        kernel_loss(spikes, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        count_loss(spikes, torch.tensor([0, 3]), 5)
    with pytest.raises(ValueError, match="undesired_count <= desired_count"):
        count_loss(spikes, torch.tensor([0, 1]), 1, 5)
    with pytest.raises(ValueError, match="reduction"):
        kernel_loss(spikes, torch.tensor([0, 1]), reduction="max")


def test_batches_are_time_first():
    x, y = torch.rand(10, 7, 3), torch.arange(10)
    out = list(datasets.batches(x, y, 4))
    assert [b[0].shape for b in out] == [(7, 4, 3), (7, 4, 3), (7, 2, 3)]
    assert torch.equal(out[0][0][:, 1], x[1])


def _fake_ti46(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 2 * 8 * 3  # 2 speakers x 8 utterances x 3 letters
    speaker = np.array(["f1", "m1"]).repeat(24)
    utterance = np.tile(np.arange(1, 9).repeat(3), 2)
    label = np.tile(np.arange(3), 16)
    x = (rng.random((n, 11, 78)) * 4e-4).astype(np.float32)
    np.savez(
        tmp_path / "ti46_alpha_u1-8.npz",
        x=x,
        length=np.full(n, 11),
        label=label,
        speaker=speaker,
        utterance=utterance,
    )
    return tmp_path


def test_ti46_loader_on_fake_file(tmp_path):
    root = _fake_ti46(tmp_path)
    sd = datasets.load_ti46_alpha(root)
    assert sd.x_train.shape == (36, 11, 78) and sd.x_test.shape == (12, 11, 78)
    assert float(sd.x_train.max()) == pytest.approx(1.0)
    loso = datasets.load_ti46_alpha(root / "ti46_alpha_u1-8.npz", split="loso", test_speaker="m1")
    assert loso.x_train.shape[0] == 24 and loso.x_test.shape[0] == 24
    with pytest.raises(ValueError, match="test_speaker 'x9'"):
        datasets.load_ti46_alpha(root, split="loso", test_speaker="x9")
    with pytest.raises(ValueError, match="split must be"):
        datasets.load_ti46_alpha(root, split="random")


def test_ti46_missing_or_corrupt(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.TI46_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="SNN_MOTIFS_TI46_ALPHA"):
        datasets.load_ti46_alpha()
    with pytest.raises(FileNotFoundError, match="expected ti46_alpha_u1-8.npz"):
        datasets.load_ti46_alpha(tmp_path)
    np.savez(tmp_path / "ti46_alpha_u1-8.npz", y=np.zeros(3))
    with pytest.raises(ValueError, match="not a TI46-Alpha npz"):
        datasets.load_ti46_alpha(tmp_path)
    monkeypatch.setenv(datasets.TI46_ENV, str(_fake_ti46(tmp_path)))
    assert datasets.load_ti46_alpha().n_classes == 26


@pytest.mark.skipif(not (SHARED_TI46 / "ti46_alpha_u1-8.npz").exists(), reason="real TI46-Alpha not present")
def test_real_ti46_alpha_splits():
    sd = datasets.load_ti46_alpha(SHARED_TI46)
    assert sd.x_train.shape == (624, 117, 78) and sd.x_test.shape == (208, 117, 78)
    assert set(sd.y_test.tolist()) == set(range(26))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mnist1d") is None, reason="mnist1d not installed")
def test_mnist1d_generated_locally():
    sd = datasets.load_mnist1d(channels=8)
    assert sd.x_train.shape == (4000, 40, 8) and sd.x_test.shape == (1000, 40, 8)
    assert 0 <= float(sd.x_train.min()) and float(sd.x_train.max()) <= 1
    assert sd.n_classes == 10 and set(sd.y_train.tolist()) == set(range(10))


def test_mnist1d_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(MissingDependencyError, match=r"snn-motifs\[data\]"):
        datasets.load_mnist1d()


@pytest.mark.skipif(
    not (SHARED_TI46 / "raw_sample").exists(), reason="real TI46-Alpha raw sample not present"
)
def test_authors_dat_format_matches_the_npz():
    x = datasets.read_ti46_dat(SHARED_TI46 / "raw_sample" / "f1_u1_c3.dat")
    raw = np.load(SHARED_TI46 / "ti46_alpha_u1-8.npz")
    i = int(np.where((raw["speaker"] == "f1") & (raw["utterance"] == 1) & (raw["label"] == 3))[0][0])
    n = int(raw["length"][i])
    assert x.shape == (n, 78)
    np.testing.assert_allclose(x.numpy(), raw["x"][i][:n], rtol=1e-6, atol=1e-12)


def test_dat_dir_loader_on_fake_files(tmp_path):
    rng = np.random.default_rng(0)
    for spk in ("f1", "m2"):
        for utt in (1, 7):
            for cls in (0, 25):
                folder = tmp_path / str(cls)
                folder.mkdir(exist_ok=True)
                steps = int(rng.integers(5, 9))
                np.savetxt(folder / f"{spk}_u{utt}_c{cls}.dat", rng.random((78, steps)) * 1e-4)
    (tmp_path / "notes.dat").write_text("ignored: not the naming scheme")
    sd = datasets.load_ti46_dat_dir(tmp_path)
    assert sd.x_train.shape[0] == 4 and sd.x_test.shape[0] == 4 and sd.x_train.shape[2] == 78
    assert set(sd.y_train.tolist()) == {0, 25} and float(sd.x_train.max()) == pytest.approx(1.0)
    loso = datasets.load_ti46_dat_dir(tmp_path, split="loso", test_speaker="m2", pad_to=6)
    assert loso.x_test.shape == (4, 6, 78)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "f1_u1_c0.dat").write_text("1 2 3\n4 5 6\n")
    with pytest.raises(ValueError, match="has 2 lines, expected 78"):
        datasets.read_ti46_dat(bad / "f1_u1_c0.dat")
    with pytest.raises(FileNotFoundError, match="no <speaker>_u<utterance>_c<class>.dat"):
        datasets.load_ti46_dat_dir(tmp_path / "empty_nothing_here")


def _write_wav(path, seconds, rate, freq):
    import wave

    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(pcm.tobytes())


def test_ti46_raw_corpus_through_lyon(tmp_path):
    pytest.importorskip("lyon.calc")
    for spk, freq in (("f1", 300.0), ("m1", 900.0)):
        for utt in (1, 7):
            for cls in (0, 1):
                rate = 16000 if cls else 12500  # resampled to 12.5 kHz
                _write_wav(tmp_path / f"{spk}_u{utt}_c{cls}.wav", 0.3, rate, freq * (1 + cls))
    cache = tmp_path / "cochleagrams.npz"
    sd = datasets.load_ti46_raw(tmp_path, cache=cache)
    assert sd.x_train.shape == (4, 100, 78) and sd.x_test.shape == (4, 100, 78)
    assert cache.exists() and float(sd.x_train.max()) == pytest.approx(1.0)
    assert float(sd.x_train[:, 70:].abs().max()) < 0.05  # 0.3 s of sound, then decay into silence
    again = datasets.load_ti46_raw(tmp_path / "elsewhere", cache=cache, split="loso", test_speaker="m1")
    assert again.x_test.shape == (4, 100, 78)
    high = datasets.lyon_cochleagram(np.sin(np.arange(12500) * 2 * np.pi * 3000 / 12500), 12500)
    low = datasets.lyon_cochleagram(np.sin(np.arange(12500) * 2 * np.pi * 200 / 12500), 12500)
    assert high[50:].mean(0).argmax() != low[50:].mean(0).argmax()  # different cochlear channels respond


def test_ti46_raw_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="16-bit WAV"):
        datasets.load_ti46_raw(tmp_path)
    (tmp_path / "f1_u1_c0.wav").write_bytes(b"RIFF not really")
    with pytest.raises(ValueError, match="not a readable PCM WAV"):
        datasets.load_ti46_raw(tmp_path)
    monkeypatch.setitem(sys.modules, "lyon", None)
    monkeypatch.setitem(sys.modules, "lyon.calc", None)
    with pytest.raises(MissingDependencyError, match=r"snn-motifs\[ti46raw\]"):
        datasets.lyon_cochleagram(np.zeros(100), 12500)
