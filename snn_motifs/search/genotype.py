"""The result of a search: a discretised SC-ML architecture and its JSON form.

Discretisation (the HRMAS paper, sec 2.3, last phase of Figure 4) takes the argmax over the motif-size
logits and, per connection of the shared motif pattern, over the type logits; "none" removes the edge
(:meth:`snn_motifs.search.space.MixedMotifLayer.genotype_topology`). What remains is a
:class:`~snn_motifs.MotifTopology` plus the layer size, enough to build the :class:`~snn_motifs.SCML`
that is retrained from scratch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_text, parse_json, read_json
from ..topology import ConnectionType, MotifTopology

__all__ = ["Genotype", "check_decisive", "DECISIVE_SIZE", "DECISIVE_TYPE", "GENOTYPE_KEYS"]

#: the keys of a genotype's JSON form (:meth:`Genotype.to_dict`)
GENOTYPE_KEYS = ("n_neurons", "motif_size", "intra", "lateral")


@dataclass
class Genotype:
    """The discretised architecture: an SC-ML topology (motif size, ``v x v`` types, lateral pattern)."""

    topology: MotifTopology
    n_neurons: int

    def to_dict(self) -> dict:
        return {"n_neurons": self.n_neurons, **self.topology.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Genotype:
        """Strict: exactly the keys :meth:`to_dict` writes, ``n_neurons`` and ``motif_size`` integers >= 1
        (never a bool or ``8.0``), ``intra`` / ``lateral`` lists of rows (strings of letters or lists of
        types); every error is a ``ValueError`` naming the key."""
        if not isinstance(data, dict) or not set(GENOTYPE_KEYS) <= set(data):
            shown = repr(data) if len(repr(data)) <= 200 else repr(data)[:200] + "..."
            raise ValueError(f"a genotype needs the keys {list(GENOTYPE_KEYS)}; got {shown}")
        unknown = sorted(map(str, set(data) - set(GENOTYPE_KEYS)))
        if unknown:
            raise ValueError(f"unknown genotype keys {unknown}; a genotype has {list(GENOTYPE_KEYS)}")
        for key in ("n_neurons", "motif_size"):
            value = data[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"genotype {key} must be an integer >= 1, got {value!r}")
        for key in ("intra", "lateral"):
            rows = data[key]
            if not isinstance(rows, list) or not all(isinstance(r, (str, list)) for r in rows):
                raise ValueError(
                    f"genotype {key} must be a list of rows (strings of letters n/e/i/f, or lists), "
                    f"got {type(rows).__name__}"
                )
        n, v = data["n_neurons"], data["motif_size"]
        if n % v:
            raise ValueError(f"genotype n_neurons={n!r} is not a multiple of motif_size={v}")
        return cls(MotifTopology.from_dict(data), n)

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> Genotype:
        """From JSON text or a file holding it."""
        text = str(path_or_text)
        if text.lstrip().startswith("{"):
            data = parse_json(text, "genotype")
            return cls.from_dict(data)
        where = f"genotype file {path_or_text}"
        data = read_json(path_or_text, "genotype file", remedy="re-run the search or fix the file")
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None

    def summary(self) -> str:
        t = self.topology
        n_exc = int((t.intra == ConnectionType.EXCITATORY).sum())
        n_inh = int((t.intra == ConnectionType.INHIBITORY).sum())
        return (
            f"motif size {t.motif_size}, intra {n_exc} excitatory / {n_inh} inhibitory of {t.motif_size**2}, "
            f"lateral {t.to_dict()['lateral']}"
        )


#: below these the search is called undecided at discretisation (largest motif-size probability after
#: phase 1, mean largest type probability of the kept option); uniform is 1/options and 1/3
DECISIVE_SIZE, DECISIVE_TYPE = 0.5, 0.5


def check_decisive(size_prob: float, type_prob: float, options: int) -> dict:
    """Whether the architecture the search discretises was decided or is an argmax of near-uniform
    probabilities; returns the numbers, a verdict and a message."""
    size_ok = options == 1 or size_prob >= DECISIVE_SIZE
    type_ok = type_prob >= DECISIVE_TYPE
    message = (
        f"the search did not decide: largest motif-size probability {size_prob:.2f} over {options} "
        f"options (needs {DECISIVE_SIZE}), mean largest type probability {type_prob:.2f} (needs "
        f"{DECISIVE_TYPE}); the genotype is close to an argmax of noise. Raise arch_lr or the search epochs."
    )
    return {
        "size_prob": size_prob,
        "type_prob": type_prob,
        "decisive": size_ok and type_ok,
        "message": "" if size_ok and type_ok else message,
    }
