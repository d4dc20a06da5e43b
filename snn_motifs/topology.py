"""SC-ML topology (the HRMAS paper, section 2.2 and eqs 16-17): what connects to what, independent of weights.

A layer of ``N`` neurons is cut into ``M = N / v`` motifs of ``v`` neurons; neuron ``i`` sits in motif
``k = i // v`` at position ``p = i % v``. Its recurrent inputs ``I_i^v`` (eq 16) are

* intra-motif: every neuron ``r`` of its own motif, itself included (all ``v x v`` ordered pairs), and
* lateral (inter-motif): the neuron at the same position of each neighbouring motif, ``r = i - v`` and
  ``r = i + v``; the first motif has no left neighbour and the last no right one (no wrap-around).

All motifs share one *topology*: a ``v x v`` matrix of connection types for the intra-motif edges and a
``2 x v`` matrix for the lateral edges (row 0: from ``i - v``, row 1: from ``i + v``). Weights are per edge.
Matrices are indexed ``[post, pre]`` like ``torch.nn.Linear``: entry ``[i, r]`` is the edge ``r -> i``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

import torch

from ._checks import check_positive_int

__all__ = [
    "ConnectionType",
    "MotifTopology",
    "check_motif_size",
    "INHIBITORY_WEIGHT",
    "EXCITATORY_INIT",
    "EXCITATORY_INPUT",
    "initial_weights",
]

#: The paper's fixed inhibitory weight (the HRMAS paper, section 3.1.3): -2, never trained. Not the default
#: here: with this neuron's eq-1 PSC (no ``1/tau_s`` gain, unlike the authors' code) -2 silences a motif,
#: so inhibitory edges are trained with a sign constraint instead (``SCML(inhibitory_weight=...)`` opts in).
INHIBITORY_WEIGHT = -2.0
#: Initial weight of an excitatory connection in the paper (section 3.1.3): 0.2, kept positive, trained.
EXCITATORY_INIT = 0.2
#: Default total initial excitatory weight onto one neuron, shared by its recurrent edges (fan-in aware
#: initialisation, see :func:`initial_weights`): with the paper's 0.2 on *each* of the v + 2 edges of an
#: SC-ML neuron the hidden layer saturates (rates 0.3-0.5 on TI46-Alpha, measured).
EXCITATORY_INPUT = 0.2


class ConnectionType(enum.IntEnum):
    """The three connection types of HRMAS (section 2.3.1), plus a free-sign type for eq 8.

    ``FREE`` (trained, any sign) is not in the search space; it models the ScSr-SNN paper's self-recurrent
    weight ``w_s`` (eq 8), which the paper does not constrain in sign.
    """

    NONE = 0
    EXCITATORY = 1
    INHIBITORY = 2
    FREE = 3

    @classmethod
    def parse(cls, value: object) -> ConnectionType:
        """Accept a member, its int value, its name or one letter: ``n``/``e``/``i``/``f``."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            for member in cls:
                if key in (member.name.lower(), member.name[0].lower()):
                    return member
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        names = ", ".join(f"{m.name.lower()} ({m.value})" for m in cls)
        raise ValueError(f"unknown connection type {value!r}; expected one of {names}")


def check_motif_size(n_neurons: int, motif_size: int) -> None:
    """Raise ``ValueError`` unless ``1 <= motif_size <= n_neurons`` and ``motif_size`` divides it."""
    check_positive_int("n_neurons", n_neurons)
    check_positive_int("motif_size", motif_size)
    if motif_size > n_neurons:
        raise ValueError(
            f"motif_size v={motif_size} is larger than the layer (N={n_neurons}); choose v <= N."
        )
    if n_neurons % motif_size:
        divisors = [d for d in range(1, min(n_neurons, 64) + 1) if n_neurons % d == 0]
        raise ValueError(
            f"motif_size v={motif_size} does not divide n_neurons N={n_neurons} "
            f"(N/v = {n_neurons / motif_size:.3g}); pick a divisor of N such as {divisors}."
        )


def _type_tensor(value, shape: tuple[int, ...], what: str) -> torch.Tensor:
    raw = value.detach().cpu().tolist() if isinstance(value, torch.Tensor) else value
    if isinstance(raw, (list, tuple)):  # rows may be strings of letters: ["eine", "eein", ...]
        names = {m.name.lower() for m in ConnectionType}
        raw = [list(r) if isinstance(r, str) and r.lower() not in names else r for r in raw]
    try:
        mapped = _map_nested(raw, lambda x: int(ConnectionType.parse(x)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: {exc}") from None
    try:
        t = torch.tensor(mapped, dtype=torch.int64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must have shape {list(shape)}; its rows have different lengths") from None
    if tuple(t.shape) != shape:
        raise ValueError(f"{what} must have shape {list(shape)}, got {list(t.shape)}")
    return t


def _map_nested(x, fn):
    if isinstance(x, (list, tuple)):
        return [_map_nested(y, fn) for y in x]
    return fn(x)


@dataclass(frozen=True)
class MotifTopology:
    """The shared motif topology of an SC-ML layer: motif size, intra-motif and lateral types.

    Args:
        motif_size: ``v``.
        intra: ``[v, v]`` connection types (ints, names, letters ``n/e/i/f`` or :class:`ConnectionType`),
            ``[post, pre]``; rows may be strings of letters, e.g. ``["ei", "ne"]``.
        lateral: ``[2, v]`` types of the lateral inputs of each position, row 0 from ``i - v``, row 1
            from ``i + v``.
    """

    motif_size: int
    intra: torch.Tensor = field(repr=False)
    lateral: torch.Tensor = field(repr=False)

    def __post_init__(self) -> None:
        v = self.motif_size
        check_positive_int("motif_size", v)
        object.__setattr__(self, "intra", _type_tensor(self.intra, (v, v), "intra topology"))
        object.__setattr__(self, "lateral", _type_tensor(self.lateral, (2, v), "lateral topology"))

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def uniform(
        cls,
        motif_size: int,
        intra: ConnectionType | str = ConnectionType.EXCITATORY,
        lateral: ConnectionType | str | None = ConnectionType.EXCITATORY,
    ) -> MotifTopology:
        """Every intra-motif edge of type ``intra``, every lateral edge of type ``lateral`` (None: none)."""
        it = int(ConnectionType.parse(intra))
        lt = int(ConnectionType.parse(lateral if lateral is not None else ConnectionType.NONE))
        v = motif_size
        return cls(v, torch.full((v, v), it), torch.full((2, v), lt))

    @classmethod
    def random(
        cls,
        motif_size: int,
        generator: torch.Generator | None = None,
        lateral: bool = True,
        types: tuple[ConnectionType, ...] = (
            ConnectionType.NONE,
            ConnectionType.EXCITATORY,
            ConnectionType.INHIBITORY,
        ),
    ) -> MotifTopology:
        """A topology drawn uniformly from ``types`` for every edge (random-search baseline)."""
        choices = torch.tensor([int(t) for t in types])
        v = motif_size
        intra = choices[torch.randint(len(choices), (v, v), generator=generator)]
        lat = choices[torch.randint(len(choices), (2, v), generator=generator)]
        if not lateral:
            lat = torch.zeros_like(lat)
        return cls(v, intra, lat)

    @classmethod
    def self_recurrent(cls, kind: ConnectionType | str = ConnectionType.FREE) -> MotifTopology:
        """ScSr-SNN (the ScSr-SNN paper, eq 8): each neuron connects only to itself, no lateral edges."""
        return cls(1, [[kind]], [[ConnectionType.NONE], [ConnectionType.NONE]])

    # -- queries --------------------------------------------------------------------------------
    @property
    def has_lateral(self) -> bool:
        return bool((self.lateral != ConnectionType.NONE).any())

    def edge_counts(self, n_neurons: int) -> dict[str, int]:
        """Number of existing (type != none) edges in a layer of ``n_neurons`` neurons, by kind."""
        check_motif_size(n_neurons, self.motif_size)
        m = n_neurons // self.motif_size
        intra = int((self.intra != ConnectionType.NONE).sum()) * m
        lateral = int((self.lateral != ConnectionType.NONE).sum()) * max(m - 1, 0)
        return {"intra": intra, "lateral": lateral, "total": intra + lateral}

    def summary(self) -> str:
        """A one-line description for messages: the letters of every edge for small motifs, edge counts
        by type for large ones (whose letters would run to hundreds of characters)."""
        if self.motif_size <= 8:
            return repr(self)

        def counts(types: torch.Tensor) -> str:
            parts = [f"{int((types == t).sum())} {t.name.lower()}" for t in ConnectionType]
            return ", ".join(parts)

        return (
            f"MotifTopology(v={self.motif_size}, intra edges: {counts(self.intra)}; "
            f"lateral edges: {counts(self.lateral)})"
        )

    def difference(self, other: MotifTopology) -> str:
        """How ``other`` differs from this topology, in words ("" when equal): the motif sizes when they
        differ, otherwise how many intra-motif and lateral edges have another connection type."""
        if self.motif_size != other.motif_size:
            return f"motif size v={self.motif_size} vs v={other.motif_size}"
        v = self.motif_size
        intra = int((self.intra != other.intra).sum())
        lateral = int((self.lateral != other.lateral).sum())
        if not intra and not lateral:
            return ""
        return (
            f"same motif size v={v}, but {intra} of {v * v} intra-motif and {lateral} of {2 * v} lateral "
            "edges have another connection type"
        )

    def type_matrix(self, n_neurons: int) -> torch.Tensor:
        """Dense ``[N, N]`` matrix of connection types (for plots and tests only: O(N^2) memory)."""
        check_motif_size(n_neurons, self.motif_size)
        v, m = self.motif_size, n_neurons // self.motif_size
        out = torch.zeros(n_neurons, n_neurons, dtype=torch.int64)
        for k in range(m):
            sl = slice(k * v, (k + 1) * v)
            out[sl, sl] = self.intra
        pos = torch.arange(v)
        for k in range(m):
            post = k * v + pos
            if k > 0:
                out[post, post - v] = self.lateral[0]
            if k < m - 1:
                out[post, post + v] = self.lateral[1]
        return out

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        letters = {int(t): t.name[0].lower() for t in ConnectionType}
        return {
            "motif_size": self.motif_size,
            "intra": ["".join(letters[int(x)] for x in row) for row in self.intra.tolist()],
            "lateral": ["".join(letters[int(x)] for x in row) for row in self.lateral.tolist()],
        }

    @classmethod
    def from_dict(cls, data: dict) -> MotifTopology:
        """From :meth:`to_dict`'s form: ``motif_size`` an integer >= 1, ``intra`` and ``lateral`` lists of
        rows (strings of letters or lists of types); anything else is a ``ValueError`` naming the key."""
        if not isinstance(data, dict) or not {"motif_size", "intra", "lateral"} <= set(data):
            shown = repr(data) if len(repr(data)) <= 200 else repr(data)[:200] + "..."
            raise ValueError(f"a topology needs keys motif_size, intra, lateral; got {shown}")
        rows = {}
        for key in ("intra", "lateral"):
            value = data[key]
            if not isinstance(value, (list, tuple)) or not all(isinstance(r, (str, list)) for r in value):
                raise ValueError(
                    f"topology {key} must be a list of rows (strings of letters n/e/i/f, or lists), got "
                    f"{type(value).__name__}"
                )
            rows[key] = [list(row) if isinstance(row, str) else row for row in value]
        return cls(data["motif_size"], rows["intra"], rows["lateral"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> MotifTopology:
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, MotifTopology)
            and self.motif_size == other.motif_size
            and torch.equal(self.intra, other.intra)
            and torch.equal(self.lateral, other.lateral)
        )

    def __hash__(self) -> int:
        return hash((self.motif_size, tuple(self.intra.flatten().tolist())))

    def __repr__(self) -> str:
        d = self.to_dict()
        return f"MotifTopology(v={self.motif_size}, intra={d['intra']}, lateral={d['lateral']})"


def recurrent_fan_in(topology: MotifTopology) -> torch.Tensor:
    """Number of existing recurrent edges onto each motif position ``[v]`` (intra row + lateral), >= 1."""
    intra = (topology.intra != ConnectionType.NONE).sum(1)
    lateral = (topology.lateral != ConnectionType.NONE).sum(0)
    return (intra + lateral).clamp(min=1)


def initial_weights(
    topology: MotifTopology, n_motifs: int, constant: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw initial per-edge weights ``(intra [M, v, v], lateral [2, M, v])`` for a topology, by type.

    Fan-in aware (``k`` = existing recurrent edges onto the post-synaptic neuron): excitatory and
    inhibitory edges start at ``EXCITATORY_INPUT / k`` in magnitude (every neuron receives the same total
    weight whatever the motif size), free-sign edges are drawn from ``N(0, 1/k)`` (torch's global RNG),
    absent edges ignore their raw value. ``constant`` instead sets every edge to one value (the paper's 0.2:
    ``constant=EXCITATORY_INIT``).
    """
    v = topology.motif_size
    if constant is not None:
        return torch.full((n_motifs, v, v), float(constant)), torch.full((2, n_motifs, v), float(constant))
    fan_in = recurrent_fan_in(topology).to(torch.get_default_dtype())
    intra = (EXCITATORY_INPUT / fan_in).view(1, v, 1).expand(n_motifs, v, v).clone()
    lateral = (EXCITATORY_INPUT / fan_in).view(1, 1, v).expand(2, n_motifs, v).clone()
    std_intra = fan_in.rsqrt().view(1, v, 1)
    std_lateral = fan_in.rsqrt().view(1, 1, v)
    free_intra = (topology.intra == ConnectionType.FREE).unsqueeze(0).expand_as(intra)
    free_lateral = (topology.lateral == ConnectionType.FREE).unsqueeze(1).expand_as(lateral)
    if free_intra.any():
        intra = torch.where(free_intra, torch.randn_like(intra) * std_intra, intra)
    if free_lateral.any():
        lateral = torch.where(free_lateral, torch.randn_like(lateral) * std_lateral, lateral)
    return intra, lateral
