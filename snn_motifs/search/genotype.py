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

from .._io import atomic_write_text
from ..topology import ConnectionType, MotifTopology

__all__ = ["Genotype", "check_decisive", "DECISIVE_SIZE", "DECISIVE_TYPE"]


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
        """The JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> Genotype:
        """From JSON text or a file holding it."""
        text = str(path_or_text)
        where = "genotype"
        if not text.lstrip().startswith("{"):
            where = f"genotype file {path_or_text}"
            try:
                text = Path(path_or_text).read_text()
            except OSError as exc:
                raise ValueError(f"cannot read {where}: {exc}") from exc
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not valid JSON ({exc}); re-run the search or fix the file") from exc

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
