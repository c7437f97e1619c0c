"""Local repair: move a few admitted queries to other candidates of theirs to free room.

NOTE: when a newcomer's candidate does not fit, the resources it lacks (its *deficits*) are
often held by admitted queries that have other candidates elsewhere: an edge box is full, but
some query on it could as well run in the cloud. A repair looks for such moves: each moves one
admitted query (a *mover*, holding a deficit resource) to another of its own candidates, which
meets its SLO by construction, so nobody is dropped and every admitted query still meets its SLO.

The rule is greedy and bounded. For every mover, the option kept is the one that frees the most
of the deficits (each resource's freed amount, capped at its deficit, as a fraction of its
capacity) without taking more of any deficit resource and without overfilling anything else,
ties broken by the smaller cost increase; the movers are then applied in that order, each
re-checked against the capacity the previous moves left, until every deficit is closed or
``max_moves`` moves are made. If deficits remain the repair fails and nothing moves. The caller
accepts a successful repair only when it admits the newcomer (goodput grows by its weight), so a
repair never lowers goodput; it may raise cost (the moved queries' new plans may cost more).

With ``need`` empty the same rule closes deficits that a capacity cut left (resources already
over their capacity).

Example: box (4 units) holds q1 (2 units, its alternative needs 1 pool unit) and q2 (2 units, no
alternative); a newcomer needs 2 units of box. Deficit box: 2. q1's move frees 2 of box and
takes 1 pool unit, which is free, so the repair is ``[("q1", 1)]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from circinus.estimate.base import EPS

Resource = tuple[str, str]
"""``("device", name)``, ``("memory", device)`` or ``("link", "src->dst")``."""


@dataclass(frozen=True)
class Option:
    """A candidate of a query: its index, its resource use and its cost, $/h."""

    index: int
    usage: Mapping[Resource, float]
    cost: float


@dataclass(frozen=True)
class Move:
    """Moving a query to its candidate ``index``: the change of use and of cost it causes."""

    index: int
    delta: Mapping[Resource, float]
    extra_cost: float


@dataclass(frozen=True)
class Mover:
    """An admitted query that may be moved, with a move to each of its other candidates."""

    name: str
    moves: tuple[Move, ...]

    @staticmethod
    def of(name: str, options: Sequence[Option], current: int) -> Mover:
        """The moves from candidate ``current`` to every other one of ``options``."""
        now = options[current]
        return Mover(name, tuple(Move(o.index, _delta(o.usage, now.usage), o.cost - now.cost)
                                 for o in options if o.index != current))


def repair(need: Mapping[Resource, float], capacity: Mapping[Resource, float],
           used: Mapping[Resource, float], movers: Sequence[Mover], *,
           max_moves: int) -> list[tuple[str, int]] | None:
    """Moves that make room for ``need`` (see module note), or ``None``.

    Args:
        need: what the newcomer's plan uses (empty to close deficits already present).
        capacity: every constrained resource and its capacity.
        used: what the admitted queries use now (movers included, newcomer not).
        movers: admitted queries that may move (:meth:`Mover.of`), in a deterministic order
            (ties keep it).
        max_moves: most queries moved.

    Returns:
        ``[(mover, option index), ...]`` in the order applied; ``[]`` when ``need`` fits as is.
    """
    slack = {r: cap - used.get(r, 0.0) - need.get(r, 0.0) for r, cap in capacity.items()}
    deficit = {r: -s for r, s in slack.items() if s < -EPS}
    if not deficit:
        return []
    ranked = []
    for order, mover in enumerate(movers):
        best = None
        for move in mover.moves:
            gain = _gain(move.delta, deficit, slack, capacity)
            if gain > 0:
                key = (-gain, move.extra_cost, move.index)
                if best is None or key < best[0]:
                    best = (key, move)
        if best is not None:
            ranked.append((best[0][0], best[0][1], order, mover.name, best[1].index,
                           best[1].delta))
    ranked.sort(key=lambda row: row[:3])
    moves: list[tuple[str, int]] = []
    for _, _, _, name, index, delta in ranked:
        open_deficit = {r: -slack[r] for r in deficit if slack[r] < -EPS}
        if _gain(delta, open_deficit, slack, capacity) <= 0:
            continue
        for r, d in delta.items():
            if r in slack:
                slack[r] -= d
        moves.append((name, index))
        if all(slack[r] >= -EPS for r in deficit):
            return moves
        if len(moves) >= max_moves:
            return None
    return None


def _delta(new: Mapping[Resource, float], old: Mapping[Resource, float]) -> dict[Resource, float]:
    """Change of use when a query goes from ``old`` to ``new`` (zero changes left out)."""
    out = dict(new)
    for r, v in old.items():
        out[r] = out.get(r, 0.0) - v
    return {r: d for r, d in out.items() if d > EPS or d < -EPS}


def _gain(delta: Mapping[Resource, float], deficit: Mapping[Resource, float],
          slack: Mapping[Resource, float], capacity: Mapping[Resource, float]) -> float:
    """How much of ``deficit`` a move with ``delta`` closes, in fractions of capacity; 0 when it
    takes more of a deficit resource or overfills another resource."""
    gain = 0.0
    for r, d in delta.items():
        if r not in capacity:
            continue
        if r in deficit:
            if d > EPS:
                return 0.0
            gain += min(-d, deficit[r]) / max(capacity[r], EPS)
        elif d > slack[r] + EPS:
            return 0.0
    return gain
