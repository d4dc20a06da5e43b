"""Run ``snn-motifs`` and deliver a real SIGINT to this process in the middle of an epoch.

    python sigint_driver.py PHASE EPOCH FORWARD -- CLI ARGS...

PHASE is ``search`` or ``retrain``; the signal arrives at the FORWARD-th forward pass of the EPOCH-th
(0-based) epoch of that phase, i.e. with the epoch's weights, optimiser and RNG streams half updated.
"""

from __future__ import annotations

import os
import signal
import sys

import snn_motifs.search.runner as runner
from snn_motifs import cli


def arm(fn, epoch: int, forward: int):
    calls = {"epoch": -1}

    def wrapped(model, *args, **kwargs):
        calls["epoch"] += 1
        if calls["epoch"] != epoch:
            return fn(model, *args, **kwargs)
        seen = {"n": 0}

        def hook(module, inputs):
            seen["n"] += 1
            if seen["n"] == forward:
                os.kill(os.getpid(), signal.SIGINT)

        handle = model.register_forward_pre_hook(hook)
        try:
            return fn(model, *args, **kwargs)
        finally:
            handle.remove()

    return wrapped


if __name__ == "__main__":
    phase, epoch, forward = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    name = {"search": "search_epoch", "retrain": "fit_epoch"}[phase]
    setattr(runner, name, arm(getattr(runner, name), epoch, forward))
    sys.exit(cli.main(sys.argv[5:]))
