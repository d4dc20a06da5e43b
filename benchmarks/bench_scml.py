"""Forward+backward time of SC-ML vs dense recurrent SNNs in snnTorch and Norse, measured in one run.

Setting of the paper's TI46 experiments (the HRMAS paper, Table 1): 78 inputs, N = 800, T = 100, B = 50,
v = 16.
Every model hoists its feed-forward projection out of the time loop and is trained on the same loss (a
fixed random read-out of the spikes), so the ratios compare the recurrent part and the neuron loop.

Usage::

    python benchmarks/bench_scml.py                # full table and scaling (~20 minutes on 2 CPU cores)
    python benchmarks/bench_scml.py --quick        # fewer repeats, scaling up to N = 1600, T = 100 only
    python benchmarks/bench_scml.py --threads 1 --json results.json
    python benchmarks/bench_scml.py --device cuda --json results.json   # Triton kernels for compile=True

Peak memory: the largest amount of tensor memory allocated at once during one forward+backward, beyond what
was held before it (the model, the input): ``torch.cuda.max_memory_allocated`` on a GPU, the same quantity
from the allocations ``torch.profiler(profile_memory=True)`` records on CPU.
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


def interleaved_best(fns: dict[str, Callable[[], torch.Tensor]], device: torch.device, rounds: int) -> dict:
    """Best-of-``rounds`` seconds of each closure, run round-robin so that the slow phases of a shared
    machine hit every model alike: the basis of the ratios the performance targets are stated in."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn().backward()
            _sync(device)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def scml_model(
    n: int,
    v: int,
    backend: str,
    kernel: str,
    device,
    inputs: int = 78,
    spike_fn: str = "atan",
):
    layer = SCML(
        inputs,
        n,
        v,
        backend=backend,
        neuron=NEURON,
        kernel=kernel,
        check_inputs=False,
        spike_fn=spike_fn,
    )
    return layer.to(device)


def peak_memory_mb(fn: Callable[[], torch.Tensor], device: torch.device) -> float:
    """Peak tensor memory of one forward+backward of ``fn`` beyond what was allocated before (see the
    module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn().backward()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn().backward()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak / 2**20


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
        for x_t in x.unbind(0):
            spk, state = layer(x_t, state)
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
        # unbind, as a careful snnTorch user writes it: indexing cur[t] of a tensor that needs a gradient
        # makes autograd build a zero-filled [T, B, N] gradient per step (O(T^2) traffic)
        for cur_t in cur.unbind(0):
            spk, mem = lif(cur_t, spk, mem)
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
        for x_t in x.unbind(0):
            z, state = cell(x_t, state)
            out.append(z)
        return (torch.stack(out) @ readout).square().mean()

    return f


SCALING_MODELS = ("SCML fused", "SCML compiled", "RLeaky", "Norse")


def scaling_loss(name: str, n: int, v: int, x: torch.Tensor, readout: torch.Tensor, device):
    """The forward+backward closure of one model of the scaling tables."""
    if name == "SCML fused":
        return scml_loss(scml_model(n, v, "native", "auto", device), x, readout)
    if name == "SCML compiled":
        return scml_loss(scml_model(n, v, "native", "compiled", device), x, readout)
    if name == "RLeaky":
        return rleaky_loss(n, x, readout, device)
    return norse_loss(n, x, readout, device)


def scaling_row(
    models: tuple[str, ...], n: int, v: int, x: torch.Tensor, device, repeats: int, slow_s: float
) -> dict:
    """Time (median) and peak memory of every model at one ``(N, T)``; models slower than ``slow_s`` per
    iteration are timed once."""
    readout = torch.randn(n, 10, device=device)
    row: dict = {"N": n, "T": x.shape[0]}
    for name in models:
        try:
            fn = scaling_loss(name, n, v, x, readout, device)
        except ImportError as exc:
            print(f"  skip {name}: {exc}")
            continue
        t0 = time.perf_counter()
        fn().backward()  # warm-up (and compilation)
        _sync(device)
        first = time.perf_counter() - t0
        reps = 1 if first > slow_s else repeats
        row[f"{name} s"] = time_it(fn, device, reps, warmup=0)
        row[f"{name} peak MB"] = peak_memory_mb(fn, device)
        del fn
    return row


def print_scaling(rows: list[dict], models: tuple[str, ...]) -> None:
    head = "".join(f" {m + ' ms':>16s} {'MB':>7s}" for m in models)
    print(f"  {'N':>5s} {'T':>5s}{head}")
    for row in rows:
        cells = ""
        for m in models:
            t, mb = row.get(f"{m} s"), row.get(f"{m} peak MB")
            cells += f" {t * 1e3:16.1f}" if t is not None else f" {'-':>16s}"
            cells += f" {mb:7.0f}" if mb is not None else f" {'-':>7s}"
        print(f"  {row['N']:5d} {row['T']:5d}{cells}", flush=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 repeats, scaling up to N=1600, no T sweep")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--motif", type=int, default=16)
    ap.add_argument("--sizes", default="400,800,1600,3200,6400", help="N values of the scaling sweep")
    ap.add_argument("--long-steps", type=int, default=1000, help="T of the long-sequence row (N = 800)")
    ap.add_argument("--no-scaling", action="store_true", help="only the N = 800 table")
    ap.add_argument("--json", help="write the results to this JSON file")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
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
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        },
        "seconds": {},
    }
    sec = results["seconds"]
    rate = {}

    closures: dict[str, Callable[[], torch.Tensor]] = {}

    def bench(name: str, fn: Callable[[], torch.Tensor]) -> None:
        closures[name] = fn
        sec[name] = time_it(fn, device, repeats)
        print(f"  {name:<34s} {sec[name] * 1e3:9.1f} ms", flush=True)

    print(f"fwd+bwd, N={N}, T={T}, B={B}, v={v}, device={device}, threads={torch.get_num_threads()}")
    layer = scml_model(N, v, "native", "auto", device)
    with torch.no_grad():
        rate["scml"] = layer.run(x)[0].mean().item()
    bench("feed-forward projection alone", projection_loss(N, x, readout, device))
    bench("SCML native (sequence, fused)", scml_loss(layer, x, readout))
    bench(
        "SCML native (compile=True)",
        scml_loss(scml_model(N, v, "native", "compiled", device), x, readout),
    )
    bench(
        "SCML native TSSL-BP (fused)",
        scml_loss(scml_model(N, v, "native", "auto", device, spike_fn="tssl"), x, readout),
    )
    bench(
        "SCML native TSSL-BP (compile=True)",
        scml_loss(scml_model(N, v, "native", "compiled", device, spike_fn="tssl"), x, readout),
    )
    bench("SCML native (step path)", scml_loss(scml_model(N, v, "native", "step", device), x, readout))
    stepped = scml_model(N, v, "native", "auto", device)
    bench("SCML native (step API loop)", step_api_loss(stepped, x, readout))
    for backend in ("snntorch", "norse"):
        try:
            model = scml_model(N, v, backend, "step", device)
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
    compiled = sec["SCML native (compile=True)"]
    step = sec["SCML native (step path)"]
    projection = sec["feed-forward projection alone"]
    ratios = {
        "SCML native fused / feed-forward projection": fused / projection,
        "SCML native compile=True / feed-forward projection": compiled / projection,
        "SCML native TSSL-BP fused / feed-forward projection": (
            sec["SCML native TSSL-BP (fused)"] / projection
        ),
        "SCML native TSSL-BP compile=True / feed-forward projection": (
            sec["SCML native TSSL-BP (compile=True)"] / projection
        ),
        "SCML native compile=True / fused": compiled / fused,
        "SCML native step path / fused": step / fused,
        "SCML native step API loop / fused": sec["SCML native (step API loop)"] / fused,
    }
    for name in ("snnTorch RLeaky (dense all-to-all)", "Norse LIFRecurrentCell (dense)"):
        if name in sec:
            ratios[f"{name} / SCML native fused"] = sec[name] / fused
            ratios[f"{name} / SCML native compile=True"] = sec[name] / compiled
    for backend in ("snntorch", "norse"):
        key = f"SCML {backend} adapter"
        if key in sec:
            ratios[f"{key} / SCML native step path"] = sec[key] / step
    results["ratios"] = ratios
    results["firing_rate_scml"] = rate["scml"]
    print("ratios:")
    for k, r in ratios.items():
        print(f"  {k:<62s} {r:6.2f}x")
    targets = (
        "feed-forward projection alone",
        "SCML native (sequence, fused)",
        "SCML native (compile=True)",
        "SCML native TSSL-BP (fused)",
        "SCML native TSSL-BP (compile=True)",
        "SCML native (step path)",
        "SCML native (step API loop)",
    )
    rounds = 3 if args.quick else 8
    best = interleaved_best({k: closures[k] for k in targets}, device, rounds)
    proj, fused_best = best[targets[0]], best[targets[1]]
    results["interleaved_best_seconds"] = best
    results["interleaved_ratios"] = {
        "SCML native fused / projection": fused_best / proj,
        "SCML native compile=True / projection": best[targets[2]] / proj,
        "SCML native TSSL-BP fused / projection": best[targets[3]] / proj,
        "SCML native TSSL-BP compile=True / projection": best[targets[4]] / proj,
        "SCML native step path / fused": best[targets[5]] / fused_best,
        "SCML native step API loop / fused": best[targets[6]] / fused_best,
    }
    print(f"interleaved, best of {rounds} rounds:")
    for k, b in best.items():
        print(f"  {k:<34s} {b * 1e3:9.1f} ms")
    for k, r in results["interleaved_ratios"].items():
        print(f"  {k:<62s} {r:6.2f}x")

    if not args.no_scaling:
        sizes = [400, 800, 1600] if args.quick else [int(n) for n in args.sizes.split(",")]
        print(f"scaling with N (T={T}): forward+backward ms and peak MB")
        rows = [scaling_row(SCALING_MODELS, n, v, x, device, repeats, slow_s=5.0) for n in sizes]
        print_scaling(rows, SCALING_MODELS)
        if not args.quick:
            long_x = (torch.rand(args.long_steps, B, F, device=device) < 0.15).float()
            print(f"long sequences (N={N}): forward+backward ms and peak MB")
            rows.append(scaling_row(SCALING_MODELS, N, v, long_x, device, repeats, slow_s=5.0))
            print_scaling(rows[-1:], SCALING_MODELS)
        results["scaling"] = rows
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
