"""Forward+backward time of SC-ML vs dense recurrent SNNs in snnTorch and Norse, measured in one run.

Setting of the paper's TI46 experiments (the HRMAS paper, Table 1): 78 inputs, N = 800, T = 100, B = 50,
v = 16.
Every model hoists its feed-forward projection out of the time loop and is trained on the same loss (a
fixed random read-out of the spikes), so the ratios compare the recurrent part and the neuron loop.

Usage::

    python benchmarks/bench_scml.py                # full table (a few minutes on 2 CPU cores)
    python benchmarks/bench_scml.py --quick        # fewer repeats
    python benchmarks/bench_scml.py --device cuda --json results.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from snn_motifs import SCML, NeuronParameters
from snn_motifs._io import write_json

NEURON = NeuronParameters(tau_mem=16.0, tau_syn=8.0)  # Table 1, TI46


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn: Callable[[], torch.Tensor], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` (forward) + ``backward()``."""
    for _ in range(warmup):
        fn().backward()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn().backward()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def scml_model(n: int, v: int, backend: str, fused: bool, device, inputs: int = 78, compile: bool = False):
    layer = SCML(
        inputs, n, v, backend=backend, neuron=NEURON, fused=fused, check_inputs=False, compile=compile
    )
    return layer.to(device)


def projection_loss(n: int, x: torch.Tensor, readout: torch.Tensor, device) -> Callable[[], torch.Tensor]:
    """The feed-forward projection alone (``nn.Linear(78, N)`` on all ``T * B`` inputs): the floor."""
    fc = nn.Linear(x.shape[-1], n, bias=False).to(device)

    def f():
        fc.zero_grad(set_to_none=True)
        return (fc(x) @ readout).square().mean()

    return f


def step_api_loss(layer: SCML, x: torch.Tensor, readout: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The snnTorch-style loop: ``spk, state = layer(x[t], state)`` per step."""

    def f():
        layer.zero_grad(set_to_none=True)
        state, out = None, []
        for t in range(x.shape[0]):
            spk, state = layer(x[t], state)
            out.append(spk)
        return (torch.stack(out).mean(0) @ readout).square().mean()

    return f


def scml_loss(layer: SCML, x: torch.Tensor, readout: torch.Tensor) -> Callable[[], torch.Tensor]:
    def f():
        layer.zero_grad(set_to_none=True)
        spikes, _ = layer.run(x)
        return (spikes @ readout).square().mean()

    return f


def rleaky_loss(n: int, x: torch.Tensor, readout: torch.Tensor, device) -> Callable[[], torch.Tensor]:
    import snntorch as snn

    fc = nn.Linear(x.shape[-1], n, bias=False).to(device)
    lif = snn.RLeaky(
        beta=1 - 1 / NEURON.tau_mem,
        linear_features=n,
        all_to_all=True,
        reset_mechanism="zero",
        reset_delay=False,
    ).to(device)

    def f():
        fc.zero_grad(set_to_none=True)
        lif.zero_grad(set_to_none=True)
        cur = fc(x)
        spk = torch.zeros(x.shape[1], n, device=device)
        mem = torch.zeros(x.shape[1], n, device=device)
        out = []
        for t in range(x.shape[0]):
            spk, mem = lif(cur[t], spk, mem)
            out.append(spk)
        return (torch.stack(out) @ readout).square().mean()

    return f


def norse_loss(n: int, x: torch.Tensor, readout: torch.Tensor, device) -> Callable[[], torch.Tensor]:
    from norse.torch import LIFParameters, LIFRecurrentCell

    p = LIFParameters(
        tau_mem_inv=torch.as_tensor(1 / NEURON.tau_mem, device=device),
        tau_syn_inv=torch.as_tensor(1 / NEURON.tau_syn, device=device),
        v_th=torch.as_tensor(1.0, device=device),
        v_leak=torch.as_tensor(0.0, device=device),
        v_reset=torch.as_tensor(0.0, device=device),
    )
    cell = LIFRecurrentCell(x.shape[-1], n, p=p, dt=1.0, autapses=True).to(device)

    def f():
        cell.zero_grad(set_to_none=True)
        state = None
        out = []
        for t in range(x.shape[0]):
            z, state = cell(x[t], state)
            out.append(z)
        return (torch.stack(out) @ readout).square().mean()

    return f


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 repeats, scaling up to N=1600")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--motif", type=int, default=16)
    ap.add_argument("--sizes", default="400,800,1600,3200", help="N values of the scaling sweep")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    repeats = 2 if args.quick else args.repeats
    torch.manual_seed(0)
    T, B, F, N, v = args.steps, args.batch, 78, 800, args.motif
    x = (torch.rand(T, B, F, device=device) < 0.15).float()
    readout = torch.randn(N, 10, device=device)

    results: dict = {
        "setting": {"inputs": F, "N": N, "T": T, "B": B, "v": v, "device": str(device)},
        "machine": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
        },
        "seconds": {},
    }
    sec = results["seconds"]
    rate = {}

    def bench(name: str, fn: Callable[[], torch.Tensor]) -> None:
        sec[name] = time_it(fn, device, repeats)
        print(f"  {name:<34s} {sec[name] * 1e3:9.1f} ms", flush=True)

    print(f"fwd+bwd, N={N}, T={T}, B={B}, v={v}, device={device}, threads={torch.get_num_threads()}")
    layer = scml_model(N, v, "native", True, device)
    with torch.no_grad():
        rate["scml"] = layer.run(x)[0].mean().item()
    bench("SCML native (sequence, fused)", scml_loss(layer, x, readout))
    bench("SCML native (step path)", scml_loss(scml_model(N, v, "native", False, device), x, readout))
    bench("SCML native (step API loop)", step_api_loss(scml_model(N, v, "native", True, device), x, readout))
    bench(
        "SCML native (compile=True)",
        scml_loss(scml_model(N, v, "native", False, device, compile=True), x, readout),
    )
    bench("feed-forward projection alone", projection_loss(N, x, readout, device))
    for backend in ("snntorch", "norse"):
        try:
            model = scml_model(N, v, backend, False, device)
        except ImportError as exc:
            print(f"  skip SCML {backend}: {exc}")
            continue
        bench(f"SCML {backend} adapter", scml_loss(model, x, readout))
    try:
        bench("snnTorch RLeaky (dense all-to-all)", rleaky_loss(N, x, readout, device))
    except ImportError as exc:
        print(f"  skip RLeaky: {exc}")
    try:
        bench("Norse LIFRecurrentCell (dense)", norse_loss(N, x, readout, device))
    except ImportError as exc:
        print(f"  skip Norse: {exc}")

    fused = sec["SCML native (sequence, fused)"]
    step = sec["SCML native (step path)"]
    ratios = {}
    for name in ("snnTorch RLeaky (dense all-to-all)", "Norse LIFRecurrentCell (dense)"):
        if name in sec:
            ratios[f"{name} / SCML native fused"] = sec[name] / fused
    for backend in ("snntorch", "norse"):
        key = f"SCML {backend} adapter"
        if key in sec:
            ratios[f"{key} / SCML native step path"] = sec[key] / step
    ratios["SCML native step path / fused"] = step / fused
    ratios["SCML native step API loop / fused"] = sec["SCML native (step API loop)"] / fused
    projection = sec["feed-forward projection alone"]
    ratios["SCML native fused / feed-forward projection"] = fused / projection
    ratios["SCML native compile=True / feed-forward projection"] = (
        sec["SCML native (compile=True)"] / projection
    )
    ratios["SCML native compile=True / fused"] = sec["SCML native (compile=True)"] / fused
    results["ratios"] = ratios
    results["firing_rate_scml"] = rate["scml"]
    print("ratios:")
    for k, r in ratios.items():
        print(f"  {k:<62s} {r:6.2f}x")

    print("scaling with N (SCML native fused vs RLeaky dense):")
    scaling = []
    sizes = [400, 800, 1600] if args.quick else [int(n) for n in args.sizes.split(",")]
    for n in sizes:
        ro = torch.randn(n, 10, device=device)
        t_scml = time_it(scml_loss(scml_model(n, v, "native", True, device), x, ro), device, repeats)
        row = {"N": n, "scml_s": t_scml}
        if device.type == "cuda":  # peak memory is measured on a GPU only (no allocator statistics on CPU)
            torch.cuda.reset_peak_memory_stats(device)
            scml_loss(scml_model(n, v, "native", True, device), x, ro)().backward()
            row["scml_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        try:
            row["rleaky_s"] = time_it(rleaky_loss(n, x, ro, device), device, max(1, repeats // 2))
        except ImportError:
            pass
        scaling.append(row)
        extra = f"  RLeaky {row['rleaky_s'] * 1e3:9.1f} ms" if "rleaky_s" in row else ""
        print(f"  N={n:5d}  SCML {t_scml * 1e3:9.1f} ms{extra}", flush=True)
    base = scaling[0]
    for row in scaling:
        row["scml_cost_per_neuron_vs_N400"] = (row["scml_s"] / row["N"]) / (base["scml_s"] / base["N"])
    results["scaling"] = scaling
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
