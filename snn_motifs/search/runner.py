"""One seed of HRMAS (or random search, or an ablation) from start to result, with checkpoints.

Data flows one way: config -> search network (:mod:`.space`) -> architect and schedule epochs
(:mod:`.architect`, :mod:`.schedule`) -> genotype (:mod:`.genotype`) -> retrain (:mod:`.retrain`) -> a
tested result. Everything a run needs to continue (models, optimisers, RNG streams, IP traces, history,
phase and epoch) is written to ``out/checkpoint.pt`` after every epoch (atomically), so
:meth:`HRMASRun.run` with ``resume=True`` continues from it and reaches the result of an uninterrupted
run. Ctrl-C (or a kill) at any point leaves the checkpoint of the last finished epoch, from which the
interrupted epoch is re-run; :class:`Interrupted` is raised.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from .._io import fingerprint, load_torch, save_torch, write_json
from .._progress import progress_bar
from .._tensorboard import open_log
from ..datasets import SplitData
from ..training import (
    batches_per_epoch,
    check_loaded,
    data_parallel,
    distributed_info,
    epoch_context,
    evaluate,
    fit_epoch,
    fit_optimizer,
    make_loss,
)
from .architect import Architect
from .baselines import random_trial
from .config import HRMASConfig, config_diff
from .genotype import Genotype, check_decisive
from .retrain import build_classifier, calibrated, loss_config, test_cost
from .schedule import IPWindow, epoch_line, epochs_before, phase_epochs, search_epoch, split_search
from .space import search_network, weight_parameters

__all__ = ["HRMASRun", "Interrupted"]


class Interrupted(Exception):
    """Raised on Ctrl-C; the checkpoint on disk is the last epoch boundary."""


class HRMASRun:
    """One seed: search -> discretise -> retrain -> test, checkpointed to ``out``.

    Args:
        cfg: the run's configuration (its ``seed`` seeds everything).
        data: training and test data; the search uses halves of the training set.
        out: the run folder (``checkpoint.pt``, ``genotype.json``, ``history.json``, ``result.json``).
        device: where the networks run.
        progress: show a tqdm bar (when tqdm is installed).
        log: where one-line messages go.
        tensorboard: write TensorBoard scalars to ``out/tensorboard`` (when tensorboard is installed).
        on_epoch: called with every epoch's record once it is checkpointed (e.g. Ray Tune's ``report``).
    """

    def __init__(
        self,
        cfg: HRMASConfig,
        data: SplitData,
        out: str | Path,
        device: str = "cpu",
        progress: bool = True,
        log: Callable[[str], None] = print,
        tensorboard: bool = True,
        on_epoch: Callable[[dict], None] | None = None,
    ) -> None:
        self.cfg, self.data, self.out, self.device = cfg, data, Path(out), torch.device(device)
        self.progress, self.log, self.tensorboard, self.on_epoch = progress, log, tensorboard, on_epoch
        self.loss_fn = make_loss(loss_config(cfg))
        self.search_train, self.search_valid = split_search(data, cfg.seed)
        self.data_fingerprint = fingerprint(data.x_train, data.y_train, data.x_test, data.y_test)
        self.rank, self.world = distributed_info()
        self.state: dict = {"phase": "search_size", "epoch": 0, "history": [], "genotype": None}
        self.state.update(result=None, random_trials=[])
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        model = search_network(cfg, data.n_channels, data.n_classes).to(self.device)
        self.model = calibrated(model, cfg, self.search_train.x_train)
        self.w_opt = torch.optim.Adam(weight_parameters(self.model), lr=cfg.lr)
        self.architect = Architect(
            self.model, self.loss_fn, cfg.arch_lr, cfg.second_order, cfg.lr, cfg.cost, cfg.cost_weight
        )
        self.ip = IPWindow(cfg, self.model.hidden) if cfg.ip else None
        self.final_model: nn.Module | None = None
        self.final_opt: torch.optim.Optimizer | None = None
        self.final_sched: torch.optim.lr_scheduler.LRScheduler | None = None

    # -- checkpoints ------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def _parts(self) -> dict:
        """Everything with a ``state_dict`` a checkpoint holds (None where not built yet)."""
        return {
            "model": self.model,
            "w_opt": self.w_opt,
            "a_opt": self.architect,
            "ip": self.ip,
            "final_model": self.final_model,
            "final_opt": self.final_opt,
            "final_sched": self.final_sched,
        }

    def save(self) -> None:
        blob = {k: None if part is None else part.state_dict() for k, part in self._parts().items()}
        blob.update(config=asdict(self.cfg), data=self.data_fingerprint, state=self.state)
        blob.update(
            fixed_size=self.model.hidden.fixed_size, rng=torch.get_rng_state(), gen=self.gen.get_state()
        )
        if self.rank == 0:  # under torchrun only rank 0 writes the run folder
            save_torch(blob, self.checkpoint_path)

    def load(self) -> None:
        path = self.checkpoint_path
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume at {path}")
        blob = load_torch(path, map_location=self.device)
        if not isinstance(blob, dict) or "config" not in blob:
            raise ValueError(f"checkpoint {path} is not an HRMAS checkpoint")
        check_loaded(blob, f"checkpoint {path}")  # NaN/Inf weights of a diverged run: refused, named
        diff = config_diff(blob["config"], asdict(self.cfg)) + (
            ["data"] if blob.get("data") != self.data_fingerprint else []
        )
        if diff:
            raise ValueError(
                f"checkpoint {path} was written with a different config or data (differs in {diff}); "
                "resume with the same config or use a new --out"
            )
        self.state = blob["state"]
        if blob["fixed_size"] is not None:
            self.model.hidden.fix_motif_size(blob["fixed_size"])
        if blob["final_model"] is not None:
            self._build_final(Genotype.from_dict(self.state["genotype"]), reinit=False)
        for key, part in self._parts().items():
            if part is not None:
                part.load_state_dict(blob[key])
        torch.set_rng_state(blob["rng"].cpu())
        self.gen.set_state(blob["gen"].cpu())

    @contextlib.contextmanager
    def _interruptible(self) -> Iterator[None]:
        """Ctrl-C keeps the checkpoint of the last finished epoch (written atomically at every epoch
        boundary), never the half-updated state of the interrupted epoch: that epoch is re-run from its
        start on resume, so a resumed run equals an uninterrupted one."""
        try:
            yield
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted: {self.checkpoint_path} holds the run up to the last finished epoch; "
                "continue with --resume"
            ) from None

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> dict:
        """Run (or, with ``resume``, continue) to the end; returns the result dict."""
        if resume:
            self.load()
        else:
            self.save()  # the boundary before the first epoch
        cfg, st = self.cfg, self.state
        lengths = phase_epochs(cfg)
        show = self.progress and self.rank == 0
        bar = progress_bar(sum(lengths.values()), show, desc=f"{cfg.search} seed {cfg.seed}")
        bar.update(epochs_before(cfg, st["phase"], st["epoch"]))
        board = open_log(self.out / "tensorboard" if self.tensorboard and self.rank == 0 else None)
        with self._interruptible(), contextlib.closing(board):
            while st["phase"] != "done":
                phase = st["phase"]
                if st["epoch"] >= lengths[phase]:
                    self._finish_phase(phase)
                    continue
                t0 = time.perf_counter()
                with epoch_context(f"{phase} epoch {st['epoch'] + 1}/{lengths[phase]} (not saved)"):
                    record = self._epoch(phase)  # NaN/Inf raises: the checkpoint keeps the last good epoch
                record.update(phase=phase, epoch=st["epoch"], seconds=time.perf_counter() - t0)
                st["history"].append(record)
                st["epoch"] += 1
                self.save()
                step = len(st["history"])
                labels = {"size_probs": [f"v={v}" for v in cfg.effective_options()]}
                board.record(record, step, phase, labels)
                board.neuron_parameters(self.final_model if phase == "retrain" else self.model, step)
                bar.update(1)
                bar.set_postfix_str(epoch_line(record))
                if self.on_epoch is not None:
                    self.on_epoch(record)
            board.scalars({"test_acc": st["result"]["test_acc"]}, len(st["history"]), "result")
        bar.close()
        if self.rank == 0:  # (re)written: a lost file is rebuilt on resume
            write_json(self.out / "result.json", st["result"])
            write_json(self.out / "history.json", st["history"])
        return st["result"]

    def _epoch(self, phase: str) -> dict:
        cfg, dev = self.cfg, self.device
        if phase == "retrain":  # the recipe of training.fit, one epoch at a time (checkpointed between)
            train = (self.data.x_train, self.data.y_train)
            model = data_parallel(self.final_model, dev)  # under torchrun DDP averages the gradients
            opt, sched = self.final_opt, self.final_sched
            stats = fit_epoch(model, train, self.loss_fn, opt, sched, cfg.batch_size, self.gen, dev)
            return {"train_loss": stats["loss"], "rates": stats["rates"], "grad_norm": stats["grad_norm"]}
        st, sv = self.search_train, self.search_valid
        if cfg.search == "random":
            trial = random_trial(len(self.state["random_trials"]), cfg, st, sv, self.loss_fn, self.gen, dev)
            self.state["random_trials"].append(trial)
            return {"valid_acc": trial["valid_acc"], "genotype": trial["genotype"]}
        warm_up = phase == "search_size" and self.state["epoch"] < cfg.arch_warmup
        args = (self.model, self.architect, self.w_opt, self.loss_fn, st, sv, cfg, self.gen, self.ip, dev)
        return search_epoch(*args, update_arch=not warm_up)

    def _finish_phase(self, phase: str) -> None:
        """The step between phases: fix the motif size, discretise and rebuild, or test."""
        cfg, st = self.cfg, self.state
        if phase == "search_size":
            st["phase"] = "search_types"
            if cfg.search == "hrmas":
                st["size_prob"] = float(self.model.hidden.size_probabilities().detach().max())
                self.log(f"motif size fixed to {self.model.hidden.fix_motif_size()}")
        elif phase == "search_types":
            genotype = self.discretise()
            if cfg.search == "hrmas":
                hidden = self.model.hidden
                st["decision"] = check_decisive(
                    st.get("size_prob", 1.0), hidden.type_confidence(), len(hidden.options)
                )
                if not st["decision"]["decisive"]:
                    warnings.warn(st["decision"]["message"], RuntimeWarning, stacklevel=2)
                    self.log(st["decision"]["message"])
            st["genotype"] = genotype.to_dict()
            if self.rank == 0:
                genotype.to_json(self.out / "genotype.json")
            self.log(f"genotype: {genotype.summary()}")
            self._build_final(genotype)
            st["phase"] = "retrain"
        elif phase == "retrain":
            test = (self.data.x_test, self.data.y_test)
            acc = evaluate(self.final_model, *test, loss=loss_config(cfg), device=self.device)
            keys = ("seed", "search", "ip", "second_order", "lateral", "motifs", "cost_weight")
            st["result"] = {"test_acc": acc, "genotype": st["genotype"], **{k: getattr(cfg, k) for k in keys}}
            if cfg.cost_weight:
                st["result"]["cost_objective"] = cfg.cost
            st["result"]["cost"] = test_cost(self.final_model, self.data, self.device)
            if "decision" in st:
                st["result"]["decision"] = st["decision"]
            st["phase"] = "done"
        st["epoch"] = 0
        self.save()

    def discretise(self) -> Genotype:
        """The found architecture: the best random trial, or the argmax of the architecture logits."""
        trials = self.state["random_trials"]
        if self.cfg.search == "random" and trials:
            return Genotype.from_dict(max(trials, key=lambda t: t["valid_acc"])["genotype"])
        return Genotype(self.model.hidden.genotype_topology(), self.cfg.hidden)

    def _build_final(self, genotype: Genotype, reinit: bool = True) -> None:
        cfg = self.cfg
        if reinit:
            torch.manual_seed(cfg.seed + 7)  # every weight re-initialised
        model = build_classifier(genotype, cfg, self.data.n_channels, self.data.n_classes).to(self.device)
        # calibrated on the search's training half (as the search network was), then fit's optimiser
        self.final_model = calibrated(model, cfg, self.search_train.x_train)
        steps = cfg.epochs_retrain * batches_per_epoch(self.data.x_train, self.data.y_train, cfg.batch_size)
        self.final_opt, self.final_sched = fit_optimizer(self.final_model, cfg.lr, steps, cfg.weight_decay)
