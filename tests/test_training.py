"""The training loop, the readouts and the default recipe: small synthetic tasks end to end."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from snn_motifs import SCML, NeuronParameters, SpikingLinear
from snn_motifs.datasets import SplitData
from snn_motifs.models import SCMLClassifier
from snn_motifs.training import LossConfig, calibrate_input_gain, evaluate, fit, make_loss


def _task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    rates = torch.where(y[:, None, None] == 0, torch.linspace(0.05, 0.6, 8), torch.linspace(0.6, 0.05, 8))
    x = (torch.rand(n, 20, 8, generator=g) < rates).float()
    return x, y


def _data() -> SplitData:
    x, y = _task(96, 0)
    xt, yt = _task(64, 1)
    return SplitData(x, y, xt, yt, 2)


NEURON = NeuronParameters(tau_mem=4, tau_syn=2)


@pytest.mark.parametrize(
    "spike_fn,readout",
    [("atan", "mean"), ("tssl", "mean"), ("atan", "count"), ("tssl", "count"), ("atan", "kernel")],
)
def test_fit_learns_a_separable_task(spike_fn, readout):
    data = _data()
    torch.manual_seed(0)
    model = SCMLClassifier(8, 16, 2, 4, neuron=NEURON, spike_fn=spike_fn, readout=readout)
    before = evaluate(model, data.x_test, data.y_test)
    out = fit(model, data, epochs=15, batch_size=16)
    assert out["test_acc"] >= 0.85 and out["test_acc"] >= before
    assert out["train_loss"][-1] < out["train_loss"][0]


def test_fit_records_rates_gradients_and_schedule(tmp_path):
    data = _data()
    torch.manual_seed(0)
    model = SCMLClassifier(8, 16, 2, 4, neuron=NEURON)
    out = fit(model, data, epochs=3, batch_size=16, target_rate=0.1, log_dir=tmp_path / "tb")
    hist = out["history"]
    assert len(hist) == 3 and set(hist[0]["rates"]) == {"hidden"}
    assert all(0 < h["rates"]["hidden"] < 1 and h["grad_norm"] > 0 for h in hist)
    assert set(hist[0]["grad_norms"]) == {"hidden", "output"}
    assert hist[0]["lr"] == pytest.approx(1e-2) and hist[2]["lr"] < hist[1]["lr"] < hist[0]["lr"]  # cosine
    assert out["input_gain"] == pytest.approx(float(model.input_gain))
    assert "input_gain" in model.state_dict()  # checkpoints keep the calibrated gain
    if importlib.util.find_spec("tensorboard") is not None:  # the same numbers as TensorBoard scalars
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(tmp_path / "tb"))
        events.Reload()
        assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(out["train_loss"])
        assert [e.value for e in events.Scalars("train/rates/hidden")] == pytest.approx(
            [h["rates"]["hidden"] for h in hist]
        )
        assert events.Scalars("result/test_acc")[0].value == pytest.approx(out["test_acc"])


def test_fit_warns_about_a_silent_layer():
    data = _data()
    model = SCMLClassifier(8, 16, 2, 4, neuron=NEURON, input_gain=1e-4)
    with pytest.warns(RuntimeWarning, match="layer 'hidden' is silent"):
        fit(model, data, epochs=1, batch_size=16, calibrate=False)


@pytest.mark.parametrize("target", [0.02, 0.1, 0.3])
def test_calibration_hits_the_target_rate(target):
    x, _ = _task(64, 0)
    torch.manual_seed(0)
    model = SCMLClassifier(8, 32, 2, 4, neuron=NEURON, spike_fn="atan")
    gain = calibrate_input_gain(model, x * 0.01, target)  # input 100x too weak: the gain makes up for it
    with torch.no_grad():
        model(x.transpose(0, 1) * 0.01)
    assert abs(float(model.hidden.last_rate) - target) < 0.25 * target
    assert gain == pytest.approx(float(model.input_gain)) and gain > 1


def test_calibration_needs_an_input_gain_buffer():
    with pytest.raises(TypeError, match="no input_gain buffer"):
        calibrate_input_gain(torch.nn.Sequential(SpikingLinear(8, 4)), torch.rand(4, 10, 8))
    model = SCMLClassifier(8, 16, 2, 4)
    with pytest.raises(ValueError, match="target_rate must lie in"):
        calibrate_input_gain(model, torch.rand(4, 10, 8), 1.5)


def test_plain_spiking_stack_trains_with_the_count_loss():
    data = _data()
    torch.manual_seed(0)
    net = torch.nn.Sequential(SCML(8, 16, 4, neuron=NEURON), SpikingLinear(16, 2, neuron=NEURON))

    class Stack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            for layer in self.net:
                x, _ = layer.run(x)
            return x

    out = fit(Stack(), data, epochs=4, batch_size=16)  # no readout attribute: the papers' count loss
    assert out["train_loss"][-1] < out["train_loss"][0] and out["input_gain"] is None
    assert "net.0" in out["history"][0]["rates"] and "net.1" in out["history"][0]["rates"]


def test_unknown_loss_kind_and_readout():
    with pytest.raises(ValueError, match="unknown readout 'mse'"):
        make_loss(LossConfig(readout="mse"))
    with pytest.raises(ValueError, match="unknown readout 'softmax'"):
        SCMLClassifier(8, 16, 2, 4, readout="softmax")
    with pytest.raises(ValueError, match="schedule must be"):
        fit(SCMLClassifier(8, 16, 2, 4), _data(), 1, schedule="linear")


@pytest.mark.slow
@pytest.mark.parametrize("job", ["fit", "search"])
def test_two_processes_under_torchrun_train_what_one_does(tmp_path, job):
    """fit, and a whole HRMAS search (architecture and weight steps, IP window, retraining), under
    ``torchrun --nproc_per_node=2`` (gloo): each rank half of every batch, averaged gradients: the same
    weights, losses and accuracy as one process (float64, tight tolerance)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    driver = Path(__file__).with_name("ddp_driver.py")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update(GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")  # gloo over loopback, one thread per rank
    extra = [] if job == "fit" else ["search"]
    subprocess.run([sys.executable, str(driver), str(one), *extra], check=True, timeout=300, env=env)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = [*torchrun, str(driver), str(two), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if job == "search":
        for name in ("genotype.json", "result.json"):
            assert json.loads((two / name).read_text()) == json.loads((one / name).read_text()), name
        h1, h2 = (json.loads((d / "history.json").read_text()) for d in (one, two))
        for a, b in zip(h1, h2, strict=True):
            assert a.get("valid_acc") == b.get("valid_acc")
            assert a.get("size_probs", []) == pytest.approx(b.get("size_probs", []), rel=1e-9)
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-9)
        c1, c2 = (torch.load(d / "checkpoint.pt", weights_only=True)["final_model"] for d in (one, two))
        for k in c1:
            torch.testing.assert_close(c2[k], c1[k], rtol=1e-9, atol=1e-12)
        return
    r1, r2 = (json.loads((d / "result.json").read_text()) for d in (one, two))
    assert r1["world"] == 1 and r2["world"] == 2
    assert r2["test_acc"] == r1["test_acc"] and r2["loss"] == pytest.approx(r1["loss"], rel=1e-12)
    w1, w2 = (torch.load(d / "model.pt", weights_only=True) for d in (one, two))
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-10, atol=1e-12)
    assert not (two / "tb").exists() or len(list((two / "tb").iterdir())) == len(list((one / "tb").iterdir()))
