"""HRMAS, the Hybrid Risk-Mitigating Architectural Search (the HRMAS paper, section 2.3, Algorithm 1,
Figure 4).

The search *algorithm* lives here; the search *space* is :class:`~snn_motifs.mixed_op.MixedMotifLayer`
(DARTS keeps ``model_search`` apart from ``architect`` the same way). Every iteration:

(a) architecture step on a validation batch: ``alpha <- alpha - eta1 grad_alpha L_valid(w', alpha)``, first
    order (``w' = w``) or second order (eqs 12-14): ``w' = w - eta2 grad_w L_train(w, alpha)`` and the
    Hessian-vector product by finite differences around ``w+- = w +- eps grad_w' L_valid(w', alpha)``;
(b) weight step on a training batch;
(c) SpiKL-IP over an IP window of training examples (no gradients), the "self-repair" after the changes.

Incremental schedule (Figure 4, section 3.4): motif size and types together, then the motif size is fixed
(argmax) and the types keep evolving, then everything is discretised (argmax; "none" removes the edge)
into a :class:`Genotype`, all weights are re-initialised, an :class:`~snn_motifs.SCML` built from the
genotype is retrained on the full training set, and only then is the test set touched. The search splits
the training set in half into search-train and search-validation (the paper's protocol).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from .datasets import SplitData, batches
from .mixed_op import MixedMotifLayer
from .models import SCMLClassifier, _Classifier
from .neuron import NeuronParameters
from .readout import READOUTS, make_readout
from .spikl_ip import SpiKLIP
from .topology import ConnectionType, MotifTopology
from .training import (
    CALIBRATION_SAMPLES,
    LossConfig,
    calibrate_input_gain,
    evaluate,
    firing_rates,
    fit,
    make_loss,
    make_optimizer,
    train_epoch,
)

__all__ = [
    "HRMASConfig",
    "Genotype",
    "SearchNet",
    "architecture_step",
    "second_order_arch_grad",
    "HRMASRun",
    "dense_rsnn",
    "train_dense_baseline",
    "classifier_from_genotype",
    "retrain",
]


@dataclass
class HRMASConfig:
    """Everything a search run needs; a plain JSON file maps onto it (see ``snn_motifs/configs``)."""

    dataset: str = "mnist1d"
    hidden: int = 128
    motif_sizes: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32])
    tau_mem: float = 16.0
    tau_syn: float = 8.0
    tau_cal: float = 16.0
    v_threshold: float = 1.0
    input_gain: float | None = None  # None: calibrated from the data to target_rate (see fit)
    target_rate: float = 0.05
    lr: float = 1e-2
    weight_decay: float = 1e-2
    arch_lr: float = 3e-3
    batch_size: int = 50
    epochs_size: int = 4  # phase 1: motif size and types
    epochs_types: int = 4  # phase 2: types, size fixed
    epochs_retrain: int = 12  # discretised SC-ML, fresh weights, full training set
    second_order: bool = False
    ip: bool = True
    ip_batches: int = 1  # IP window: training batches per iteration
    mu: float = 0.2
    ip_lr: float = 0.01
    lateral: bool = True
    motifs: bool = True  # False: types searched over the full N x N matrix ("without motif")
    search: str = "hrmas"  # or "random" (same space, same budget)
    loss: str = "mean"  # the readout (snn_motifs.readout.READOUTS)
    spike_fn: str = "tssl"
    backend: str = "native"
    seed: int = 0
    ti46_root: str | None = None
    ti46_split: str = "speaker_dependent"

    def __post_init__(self) -> None:
        for name in ("lr", "arch_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive learning rate, got {value!r}")
        if not self.motif_sizes:
            raise ValueError("motif_sizes is empty: give at least one option, e.g. [2, 4, 8, 16, 32]")
        gain = self.input_gain
        if gain is not None and not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
            raise ValueError(f"input_gain must be a positive number or null (calibrated), got {gain!r}")
        if self.loss not in READOUTS:
            raise ValueError(f"loss must be a readout name {list(READOUTS)}, got {self.loss!r}")
        if self.search not in ("hrmas", "random"):
            raise ValueError(f"search must be 'hrmas' or 'random', got {self.search!r}")
        for name in ("epochs_size", "epochs_types", "epochs_retrain", "batch_size", "hidden"):
            if int(getattr(self, name)) < (1 if name in ("batch_size", "hidden") else 0):
                raise ValueError(f"{name} must be a non-negative int, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: dict) -> HRMASConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"comment", "table1"})
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_file(cls, path: str | Path) -> HRMASConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read config {path}: {exc}") from exc
        return cls.from_dict(data)

    def neuron(self) -> NeuronParameters:
        return NeuronParameters(self.tau_mem, self.tau_syn, 1.0, self.v_threshold)

    def effective_options(self) -> list[int]:
        return list(self.motif_sizes) if self.motifs else [self.hidden]


@dataclass
class Genotype:
    """The discretised architecture: an SC-ML topology (motif size, ``v x v`` types, lateral pattern)."""

    topology: MotifTopology
    n_neurons: int

    def to_dict(self) -> dict:
        return {"n_neurons": self.n_neurons, **self.topology.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Genotype:
        if not isinstance(data, dict) or "n_neurons" not in data:
            raise ValueError(f"a genotype needs n_neurons, motif_size, intra, lateral; got {data!r}")
        topo = MotifTopology.from_dict(data)
        n = data["n_neurons"]
        if not isinstance(n, int) or n % topo.motif_size:
            raise ValueError(f"genotype n_neurons={n!r} is not a multiple of motif_size={topo.motif_size}")
        return cls(topo, n)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> Genotype:
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(path_or_text).read_text()
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"genotype is not valid JSON: {exc}") from exc

    def summary(self) -> str:
        t = self.topology
        n_exc = int((t.intra == ConnectionType.EXCITATORY).sum())
        n_inh = int((t.intra == ConnectionType.INHIBITORY).sum())
        return (
            f"motif size {t.motif_size}, intra {n_exc} excitatory / {n_inh} inhibitory of {t.motif_size**2}, "
            f"lateral {t.to_dict()['lateral']}"
        )


class SearchNet(_Classifier):
    """Input -> mixed-op hidden layer (the search space) -> spiking output layer."""

    def __init__(self, in_features: int, classes: int, cfg: HRMASConfig) -> None:
        super().__init__()
        common = dict(backend=cfg.backend, neuron=cfg.neuron(), spike_fn=cfg.spike_fn)
        lateral = cfg.lateral and cfg.motifs
        self.hidden = MixedMotifLayer(
            in_features, cfg.hidden, cfg.effective_options(), lateral=lateral, **common
        )
        self.output = make_readout(cfg.loss, cfg.hidden, classes, **common)
        self._init_common(cfg.input_gain or 1.0, cfg.loss, cfg.neuron())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.hidden.run(x * self.input_gain)
        out, _ = self.output.run(h)
        return out

    def arch_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.hidden.arch_parameters() if p.requires_grad]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.hidden.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]


def dense_rsnn(in_features: int, hidden: int, classes: int, cfg: HRMASConfig) -> SCMLClassifier:
    """Fully connected RSNN baseline (Table 3): one motif of size N, every recurrent weight trained with a
    free sign, initialised N(0, 1/N) (the fan-in aware initialisation of free edges, fan-in N)."""
    return SCMLClassifier(
        in_features,
        hidden,
        classes,
        topology=MotifTopology.uniform(hidden, ConnectionType.FREE, None),
        backend=cfg.backend,
        neuron=cfg.neuron(),
        spike_fn=cfg.spike_fn,
        input_gain=cfg.input_gain or 1.0,
        readout=cfg.loss,
    )


def retrain(model: nn.Module, data: SplitData, cfg: HRMASConfig, seed: int, device: str = "cpu") -> dict:
    """Train ``model`` with the retraining budget and loss of ``cfg`` on the full training set, test once."""
    return fit(
        model.to(device),
        data,
        cfg.epochs_retrain,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        loss=LossConfig(kind=cfg.loss, tau_syn=cfg.tau_syn),
        seed=seed,
        device=device,
        weight_decay=cfg.weight_decay,
        calibrate=cfg.input_gain is None,
        target_rate=cfg.target_rate,
    )


def classifier_from_genotype(genotype: Genotype, data: SplitData, cfg: HRMASConfig) -> SCMLClassifier:
    """The network the search found: input -> SC-ML built from ``genotype`` -> spiking output layer."""
    return SCMLClassifier(
        data.n_channels,
        genotype.n_neurons,
        data.n_classes,
        topology=genotype.topology,
        backend=cfg.backend,
        neuron=cfg.neuron(),
        spike_fn=cfg.spike_fn,
        input_gain=cfg.input_gain or 1.0,
        readout=cfg.loss,
    )


def train_dense_baseline(
    cfg: HRMASConfig, data: SplitData, seed: int | None = None, device: str = "cpu"
) -> dict:
    """Train :func:`dense_rsnn` with the retraining budget of ``cfg`` (no search) and test it once."""
    seed = cfg.seed if seed is None else seed
    torch.manual_seed(seed)
    res = retrain(dense_rsnn(data.n_channels, cfg.hidden, data.n_classes, cfg), data, cfg, seed, device)
    return {"test_acc": res["test_acc"], "seconds": res["seconds"]}


# -- the architecture step (Algorithm 1, line "update alpha") ------------------------------------------------
def second_order_arch_grad(
    weights: list[torch.Tensor],
    arch: list[torch.Tensor],
    train_loss: Callable[[], torch.Tensor],
    valid_loss: Callable[[], torch.Tensor],
    eta: float,
    eps_scale: float = 0.01,
) -> list[torch.Tensor]:
    """Second-order DARTS gradient for ``alpha`` (the HRMAS paper eqs 12-14).

    ``grad_alpha L_valid(w', alpha) - eta * [grad_alpha L_train(w+, alpha) - grad_alpha L_train(w-, alpha)]
    / (2 eps)`` with ``w' = w - eta grad_w L_train(w, alpha)``, ``w+- = w +- eps g``,
    ``g = grad_w' L_valid(w', alpha)`` and ``eps = eps_scale / |g|``. ``weights`` are restored on return.
    The loss callables must read the current values of ``weights`` and ``arch``.
    """
    backup = [w.detach().clone() for w in weights]
    g_train = torch.autograd.grad(train_loss(), weights, allow_unused=True)
    try:
        with torch.no_grad():
            for w, g in zip(weights, g_train, strict=True):
                if g is not None:
                    w.sub_(eta * g)
        grads = torch.autograd.grad(valid_loss(), [*arch, *weights], allow_unused=True)
        g_alpha = [
            torch.zeros_like(a) if g is None else g for a, g in zip(arch, grads[: len(arch)], strict=True)
        ]
        g_w = [
            torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads[len(arch) :], strict=True)
        ]
        norm = torch.sqrt(sum((g * g).sum() for g in g_w))
        eps = eps_scale / float(norm) if float(norm) > 0 else 0.0

        def alpha_grad_at(sign: float) -> list[torch.Tensor]:
            with torch.no_grad():
                for w, b, g in zip(weights, backup, g_w, strict=True):
                    w.copy_(b + sign * eps * g)
            gs = torch.autograd.grad(train_loss(), arch, allow_unused=True)
            return [torch.zeros_like(a) if g is None else g for a, g in zip(arch, gs, strict=True)]

        if eps > 0:
            plus, minus = alpha_grad_at(+1.0), alpha_grad_at(-1.0)
            g_alpha = [ga - eta * (p - m) / (2 * eps) for ga, p, m in zip(g_alpha, plus, minus, strict=True)]
    finally:
        with torch.no_grad():
            for w, b in zip(weights, backup, strict=True):
                w.copy_(b)
    return g_alpha


def architecture_step(
    model: SearchNet,
    loss_fn: Callable,
    train_batch: tuple[torch.Tensor, torch.Tensor],
    valid_batch: tuple[torch.Tensor, torch.Tensor],
    arch_opt: torch.optim.Optimizer,
    second_order: bool,
    eta: float,
) -> float:
    """Algorithm 1 step (a); returns the validation loss before the update."""
    arch = model.arch_parameters()
    if not arch:
        return float("nan")
    xv, yv = valid_batch
    xt, yt = train_batch
    arch_opt.zero_grad(set_to_none=True)
    if second_order:
        weights = model.weight_parameters()
        grads = second_order_arch_grad(
            weights, arch, lambda: loss_fn(model(xt), yt), lambda: loss_fn(model(xv), yv), eta
        )
        with torch.no_grad():
            value = float(loss_fn(model(xv), yv))
        for a, g in zip(arch, grads, strict=True):
            a.grad = g
    else:
        loss = loss_fn(model(xv), yv)
        grads = torch.autograd.grad(loss, arch, allow_unused=True)
        for a, g in zip(arch, grads, strict=True):
            a.grad = torch.zeros_like(a) if g is None else g
        value = loss.item()
    arch_opt.step()
    return value


# -- a whole run with checkpoints ---------------------------------------------------------------------------
class Interrupted(Exception):
    """Raised after Ctrl-C once the checkpoint is written."""


def split_search(data: SplitData, seed: int) -> tuple[SplitData, SplitData]:
    """The paper's protocol: the training set halves into search-train and search-validation."""
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))
    half = len(order) // 2
    a, b = order[:half], order[half:]
    train = SplitData(data.x_train[a], data.y_train[a], data.x_train[b], data.y_train[b], data.n_classes)
    return train, SplitData(data.x_train[b], data.y_train[b], data.x_test, data.y_test, data.n_classes)


class HRMASRun:
    """One seed of HRMAS (or random search, or an ablation): search -> discretise -> retrain -> test.

    State (models, optimizers, RNG streams, IP traces, history) is checkpointed to ``out/checkpoint.pt``
    after every epoch; :meth:`run` with ``resume=True`` continues from it and, on the CPU, reaches the same
    result as an uninterrupted run. Ctrl-C writes the checkpoint and raises :class:`Interrupted`.
    """

    def __init__(
        self,
        cfg: HRMASConfig,
        data: SplitData,
        out: str | Path,
        device: str = "cpu",
        progress: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        self.cfg, self.data, self.out, self.device = cfg, data, Path(out), torch.device(device)
        self.progress, self.log = progress, log
        self.loss_fn = make_loss(LossConfig(kind=cfg.loss, tau_syn=cfg.tau_syn))
        self.search_train, self.search_valid = split_search(data, cfg.seed)
        self.state: dict = {
            "phase": "search_size",
            "epoch": 0,
            "history": [],
            "genotype": None,
            "result": None,
            "random_trials": [],
        }
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.model = self._calibrated(SearchNet(data.n_channels, data.n_classes, cfg).to(self.device))
        self.w_opt = torch.optim.Adam(self.model.weight_parameters(), lr=cfg.lr)
        self.a_opt = torch.optim.Adam(self.model.hidden.arch_parameters(), lr=cfg.arch_lr)
        self.ip: SpiKLIP | None = None
        self.ip_handle = None
        if cfg.ip:
            self.ip = SpiKLIP(mu=cfg.mu, lr=cfg.ip_lr, tau_cal=cfg.tau_cal, window_only=True)
            self.ip_handle = self.ip.attach(self.model.hidden)
        self.final_model: nn.Module | None = None
        self.final_opt: torch.optim.Optimizer | None = None
        self.final_sched: torch.optim.lr_scheduler.LRScheduler | None = None

    # -- checkpoints ------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        blob = {
            "config": asdict(self.cfg),
            "state": self.state,
            "model": self.model.state_dict(),
            "fixed_size": self.model.hidden.fixed_size,
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "rng": torch.get_rng_state(),
            "gen": self.gen.get_state(),
            "ip_phi": None if self.ip_handle is None else self.ip_handle.target.phi,
            "ip_initial": None if self.ip_handle is None else self.ip_handle.target.initial,
            "final_model": None if self.final_model is None else self.final_model.state_dict(),
            "final_opt": None if self.final_opt is None else self.final_opt.state_dict(),
            "final_sched": None if self.final_sched is None else self.final_sched.state_dict(),
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(blob, tmp)
        tmp.replace(self.checkpoint_path)

    def load(self) -> None:
        path = self.checkpoint_path
        try:
            blob = torch.load(path, map_location=self.device, weights_only=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"no checkpoint to resume at {path}") from None
        except Exception as exc:  # a truncated or corrupt file
            raise ValueError(
                f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
                "delete it (or the output directory) to start afresh"
            ) from exc
        if not isinstance(blob, dict) or "config" not in blob:
            raise ValueError(f"checkpoint {path} is not an HRMAS checkpoint")
        if blob["config"] != asdict(self.cfg):
            diff = sorted(k for k in blob["config"] if blob["config"][k] != asdict(self.cfg).get(k))
            raise ValueError(
                f"checkpoint {path} was written with a different config (differs in {diff}); "
                "resume with the same config or use a new --out"
            )
        self.state = blob["state"]
        if blob["fixed_size"] is not None:
            self.model.hidden.fix_motif_size(blob["fixed_size"])
        self.model.load_state_dict(blob["model"])
        self.w_opt.load_state_dict(blob["w_opt"])
        self.a_opt.load_state_dict(blob["a_opt"])
        torch.set_rng_state(blob["rng"])
        self.gen.set_state(blob["gen"])
        if self.ip_handle is not None:
            self.ip_handle.target.phi = blob["ip_phi"]
            self.ip_handle.target.initial = blob["ip_initial"]
        if blob["final_model"] is not None:
            self._build_final(Genotype.from_dict(self.state["genotype"]), reinit=False)
            self.final_model.load_state_dict(blob["final_model"])
            self.final_opt.load_state_dict(blob["final_opt"])
            if blob.get("final_sched") is not None:
                self.final_sched.load_state_dict(blob["final_sched"])

    # -- phases -------------------------------------------------------------------------------------
    def _pairs(self) -> Iterator[tuple]:
        cfg, st, sv = self.cfg, self.search_train, self.search_valid
        train = batches(st.x_train, st.y_train, cfg.batch_size, shuffle=True, generator=self.gen)
        valid = batches(sv.x_train, sv.y_train, cfg.batch_size, shuffle=True, generator=self.gen)
        yield from zip(train, valid, strict=False)

    def _search_epoch(self) -> dict:
        cfg, model, dev = self.cfg, self.model, self.device
        model.train()
        w_losses, v_losses = [], []
        for (xt, yt), (xv, yv) in self._pairs():
            xt, yt, xv, yv = xt.to(dev), yt.to(dev), xv.to(dev), yv.to(dev)
            v_losses.append(
                architecture_step(
                    model, self.loss_fn, (xt, yt), (xv, yv), self.a_opt, cfg.second_order, cfg.lr
                )
            )
            loss = self.loss_fn(model(xt), yt)  # (b) weights on the training batch
            self.w_opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.weight_parameters(), 1.0)
            self.w_opt.step()
            w_losses.append(loss.item())
            if self.ip is not None:  # (c) SpiKL-IP over the IP window
                with self.ip.window(), torch.no_grad():
                    for k, (xi, _) in enumerate(
                        batches(
                            self.search_train.x_train,
                            self.search_train.y_train,
                            cfg.batch_size,
                            shuffle=True,
                            generator=self.gen,
                        )
                    ):
                        if k >= cfg.ip_batches:
                            break
                        model(xi.to(dev))
        acc = evaluate(
            model, self.search_valid.x_train, self.search_valid.y_train, tau_syn=cfg.tau_syn, device=dev
        )
        return {
            "train_loss": _mean(w_losses),
            "valid_loss": _mean(v_losses),
            "valid_acc": acc,
            "size_probs": self.model.hidden.size_probabilities().tolist(),
            "genotype": self.model.hidden.genotype_topology().to_dict(),
        }

    def _random_trial(self, trial: int) -> dict:
        """Random search: one random genotype from the same space, trained for one epoch on search-train."""
        cfg = self.cfg
        g = torch.Generator().manual_seed(cfg.seed * 1000 + trial)
        options = cfg.effective_options()
        v = options[int(torch.randint(len(options), (1,), generator=g))]
        topo = MotifTopology.random(v, g, lateral=cfg.lateral and cfg.motifs)
        model = self._classifier(Genotype(topo, cfg.hidden)).to(self.device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        train_epoch(
            model,
            self.search_train.x_train,
            self.search_train.y_train,
            self.loss_fn,
            opt,
            cfg.batch_size,
            self.gen,
            device=self.device,
        )
        acc = evaluate(
            model,
            self.search_valid.x_train,
            self.search_valid.y_train,
            tau_syn=cfg.tau_syn,
            device=self.device,
        )
        return {"valid_acc": acc, "genotype": Genotype(topo, cfg.hidden).to_dict()}

    def _classifier(self, genotype: Genotype) -> SCMLClassifier:
        return self._calibrated(classifier_from_genotype(genotype, self.data, self.cfg).to(self.device))

    def _calibrated(self, model: nn.Module) -> nn.Module:
        """With ``input_gain: null`` (the default) the input gain is set from the search-training data."""
        if self.cfg.input_gain is None:
            x = self.search_train.x_train[:CALIBRATION_SAMPLES]
            calibrate_input_gain(model, x, self.cfg.target_rate)
        return model

    def _build_final(self, genotype: Genotype, reinit: bool = True) -> None:
        cfg = self.cfg
        if reinit:
            torch.manual_seed(cfg.seed + 7)  # every weight re-initialised
        self.final_model = self._classifier(genotype)
        steps = cfg.epochs_retrain * math.ceil(len(self.data.y_train) / cfg.batch_size)
        self.final_opt, self.final_sched = make_optimizer(
            self.final_model.parameters(), cfg.lr, steps, cfg.weight_decay
        )

    def discretise(self) -> Genotype:
        return Genotype(self.model.hidden.genotype_topology(), self.cfg.hidden)

    @contextlib.contextmanager
    def _save_on_interrupt(self) -> Iterator[None]:
        try:
            yield
        except KeyboardInterrupt:
            self.save()
            raise Interrupted(
                f"interrupted: checkpoint saved to {self.checkpoint_path}; continue with --resume"
            ) from None

    def run(self, resume: bool = False) -> dict:
        cfg, st = self.cfg, self.state
        if resume:
            self.load()
            st = self.state
        total = {
            "search_size": cfg.epochs_size,
            "search_types": cfg.epochs_types,
            "retrain": cfg.epochs_retrain,
        }
        bar = _progress(sum(total.values()), self.progress, desc=f"{cfg.search} seed {cfg.seed}")
        bar.update(sum(total[p] for p in _phases_before(st["phase"])) + st["epoch"])
        with self._save_on_interrupt():
            while st["phase"] != "done":
                phase = st["phase"]
                if st["epoch"] >= total.get(phase, 0):
                    self._next_phase()
                    continue
                t0 = time.perf_counter()
                if phase == "retrain":
                    stats: dict = {}
                    loss = train_epoch(
                        self.final_model,
                        self.data.x_train,
                        self.data.y_train,
                        self.loss_fn,
                        self.final_opt,
                        cfg.batch_size,
                        self.gen,
                        device=self.device,
                        scheduler=self.final_sched,
                        stats=stats,
                    )
                    record = {"train_loss": loss, "rates": stats["rates"], "grad_norm": stats["grad_norm"]}
                elif cfg.search == "random":
                    trial = self._random_trial(len(st["random_trials"]))
                    st["random_trials"].append(trial)
                    record = {"valid_acc": trial["valid_acc"], "genotype": trial["genotype"]}
                else:
                    record = self._search_epoch()
                    record["rates"] = firing_rates(self.model)
                record.update(phase=phase, epoch=st["epoch"], seconds=time.perf_counter() - t0)
                st["history"].append(record)
                st["epoch"] += 1
                self.save()
                bar.update(1)
                bar.set_postfix_str(_postfix(record))
        bar.close()
        return st["result"]

    def _next_phase(self) -> None:
        st, cfg = self.state, self.cfg
        phase = st["phase"]
        if phase == "search_size":
            st["phase"] = "search_types"
            if cfg.search == "hrmas":
                v = self.model.hidden.fix_motif_size()
                self.log(f"motif size fixed to {v}")
        elif phase == "search_types":
            if cfg.search == "random" and st["random_trials"]:
                best = max(st["random_trials"], key=lambda t: t["valid_acc"])
                genotype = Genotype.from_dict(best["genotype"])
            else:
                genotype = self.discretise()
            st["genotype"] = genotype.to_dict()
            genotype.to_json(self.out / "genotype.json")
            self.log(f"genotype: {genotype.summary()}")
            self._build_final(genotype)
            st["phase"] = "retrain"
        elif phase == "retrain":
            acc = evaluate(
                self.final_model, self.data.x_test, self.data.y_test, tau_syn=cfg.tau_syn, device=self.device
            )
            st["result"] = {
                "test_acc": acc,
                "genotype": st["genotype"],
                "seed": cfg.seed,
                "search": cfg.search,
                "ip": cfg.ip,
                "second_order": cfg.second_order,
                "lateral": cfg.lateral,
                "motifs": cfg.motifs,
            }
            st["phase"] = "done"
            (self.out / "result.json").write_text(json.dumps(st["result"], indent=2))
            (self.out / "history.json").write_text(json.dumps(st["history"], indent=2))
        st["epoch"] = 0
        self.save()


def _phases_before(phase: str) -> list[str]:
    order = ["search_size", "search_types", "retrain", "done"]
    return order[: order.index(phase)]


def _mean(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


def _postfix(record: dict) -> str:
    parts = [f"{k}={record[k]:.3f}" for k in ("train_loss", "valid_loss", "valid_acc") if k in record]
    if "genotype" in record:
        parts.append(f"v={record['genotype']['motif_size']}")
    if record.get("rates"):
        parts.append(f"rate={next(iter(record['rates'].values())):.3f}")
    return " ".join(parts)


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix_str(self, s: str) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="epoch")
