"""TensorBoard scalars for training runs and searches, when ``tensorboard`` is installed.

``tensorboard --logdir runs`` then shows a search live: losses, accuracies, each spiking layer's firing
rate, the architecture softmax per motif-size option, the architect's gradient norm and, with SpiKL-IP,
the statistics of the neurons' ``R`` and ``tau``. Without the package every call does nothing.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .layers import spiking_layers

__all__ = ["ScalarLog", "open_log"]


class ScalarLog:
    """A thin wrapper over ``torch.utils.tensorboard.SummaryWriter`` (or nothing when it is missing)."""

    def __init__(self, writer=None) -> None:
        self.writer = writer

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        """Write every finite number in ``values`` under ``prefix/name``; nested dicts become paths."""
        if self.writer is None:
            return
        for name, value in values.items():
            tag = f"{prefix}/{name}" if prefix else name
            if isinstance(value, dict):
                self.scalars(value, step, tag)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
                self.writer.add_scalar(tag, float(value), step)

    def record(self, record: dict, step: int, prefix: str, lists: dict[str, list] | None = None) -> None:
        """An epoch record (numbers, nested dicts such as ``rates``); a list under a key of ``lists``
        becomes one scalar per label (e.g. ``size_probs`` per motif-size option)."""
        if self.writer is None:
            return
        flat = {k: v for k, v in record.items() if not isinstance(v, list)}
        for key, labels in (lists or {}).items():
            if isinstance(record.get(key), list):
                flat[key] = dict(zip(map(str, labels), record[key], strict=False))
        self.scalars(flat, step, prefix)

    def neuron_parameters(self, model: nn.Module, step: int) -> None:
        """Mean and spread of every spiking layer's ``R`` and ``tau`` (what SpiKL-IP and BIP change)."""
        if self.writer is None:
            return
        for name, layer in spiking_layers(model).items():
            for param in ("resistance", "tau_mem"):
                value = getattr(layer.neurons, param).detach().float()
                self.scalars({"mean": float(value.mean()), "std": float(value.std(unbiased=False))}, step,
                             f"neurons/{name}/{param}")  # fmt: skip

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def open_log(folder: str | Path | None) -> ScalarLog:
    """A :class:`ScalarLog` writing event files into ``folder`` (None, or tensorboard missing: a no-op)."""
    if folder is None:
        return ScalarLog()
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return ScalarLog()
    Path(folder).mkdir(parents=True, exist_ok=True)
    return ScalarLog(SummaryWriter(log_dir=str(folder)))
