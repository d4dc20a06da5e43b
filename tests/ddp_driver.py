"""``torchrun --nproc_per_node=K ddp_driver.py OUT [search]``: fit the test task (or run a tiny HRMAS
search) data parallel (gloo, float64); rank 0 saves the weights and the result to OUT
(``python ddp_driver.py OUT`` is the 1-process run)."""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from snn_motifs import NeuronParameters, SCMLClassifier  # noqa: E402
from snn_motifs.training import distributed_info, fit  # noqa: E402
from tests.test_training import _data  # noqa: E402


def _exit() -> None:
    """Leave without C++ static destructors: under torchrun, torch 2.13 on CPU sometimes aborts a rank
    after its Python code has finished ("terminate called without an active exception", SIGABRT with no
    Python frame; about 1 run in 10 here), which would fail a run whose results are already written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    out = sys.argv[1]
    if "WORLD_SIZE" in os.environ:
        torch.distributed.init_process_group("gloo")
    torch.set_num_threads(1)
    if sys.argv[2:] == ["search"]:
        from snn_motifs.search import HRMASRun
        from tests.conftest import tiny_search

        torch.set_default_dtype(torch.float64)
        cfg, data = tiny_search()
        data = data._replace(x_train=data.x_train.double(), x_test=data.x_test.double())
        HRMASRun(cfg, data, out, progress=False, log=lambda s: None, tensorboard=False).run()
        if "WORLD_SIZE" in os.environ:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        _exit()
    torch.manual_seed(0)
    data = _data()
    data = data._replace(x_train=data.x_train.double(), x_test=data.x_test.double())
    model = SCMLClassifier(8, 16, 2, 4, neuron=NeuronParameters(tau_mem=4, tau_syn=2)).double()
    result = fit(model, data, epochs=2, batch_size=16, log_dir=os.path.join(out, "tb"))
    rank, world = distributed_info()
    if rank == 0:
        torch.save(model.state_dict(), os.path.join(out, "model.pt"))
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump({"world": world, "test_acc": result["test_acc"], "loss": result["train_loss"]}, f)
    if world > 1:
        torch.distributed.barrier()  # no rank tears gloo down while a peer is still saving or communicating
        torch.distributed.destroy_process_group()
    _exit()
