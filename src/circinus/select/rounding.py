"""Kernels that build and improve a :class:`Packing`: round an LP vertex, fill, cheapen.

NOTE: each kernel changes the packing only by :meth:`Packing.put` and :meth:`Packing.drop`, so
the packing is within every capacity after every step, and a kernel stopped by its deadline
(:class:`DeadlinePassed`) leaves a feasible packing behind. Orders are fixed (heavier queries
first, then by index; cheaper candidates first, then by index) so the result is deterministic.

Worked example of the rounding: with one unit left on a pool and two queries of weight 1 each
wanting it, the LP may give ``x = 0.5`` to both; neither is integral, both are "fractional", and
placing them one by one admits the first and finds no room for the second.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from circinus.select.flat import DeadlinePassed, FlatProblem, Packing, per_query_max

INTEGRAL = 1e-6
"""An LP value within this of 1 counts as chosen, within this of 0 as not."""


class _Clock:
    """Raises :class:`DeadlinePassed` once ``deadline`` is past, checked every few calls."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.calls = 0

    def tick(self) -> None:
        self.calls += 1
        if self.calls % 64 == 0 and time.monotonic() > self.deadline:
            raise DeadlinePassed


def by_cost(flat: FlatProblem, q: int) -> list[int]:
    """Query ``q``'s candidates, cheapest first (ties by index)."""
    return flat.by_cost[flat.first[q]:flat.first[q + 1]].tolist()  # type: ignore[no-any-return]


def heaviest_first(flat: FlatProblem, queries: Iterable[int]) -> list[int]:
    """``queries`` ordered by weight, heaviest first (ties by index)."""
    w = flat.query_weight
    return sorted(queries, key=lambda q: (-w[q], q))


def densest_first(flat: FlatProblem) -> tuple[list[int], np.ndarray]:
    """The greedy order of the multiple-choice knapsack: every candidate's size is its share of
    the capacities, ``sum_i a_i / cap_i``; queries by weight per size of their smallest
    candidate (largest first, ties by index), and the preference ``-size`` (smallest first,
    then cheapest) for :func:`place`.

    Example: a query of weight 1 whose smallest candidate takes a quarter of one pool and a
    tenth of a link has size 0.35 and comes before one of weight 1 and size 0.5.
    """
    size = flat.usage.T @ (1.0 / np.maximum(flat.cap, 1e-12))
    smallest = -per_query_max(flat, -size)
    has = np.flatnonzero(np.isfinite(smallest))
    ratio = flat.query_weight[has] / np.maximum(smallest[has], 1e-12)
    return has[np.lexsort((has, -ratio))].tolist(), -size


def place(flat: FlatProblem, pack: Packing, queries: Sequence[int], deadline: float,
          prefer: np.ndarray | None = None) -> None:
    """Admit each of ``queries`` not yet admitted, in order, with the first candidate that fits:
    by ``prefer`` (highest first, e.g. LP values) when given, then cheapest."""
    clock = _Clock(deadline)
    for q in queries:
        clock.tick()
        if pack.choice[q] >= 0:
            continue
        order = by_cost(flat, q)
        if prefer is not None:
            order.sort(key=lambda j: -prefer[j])  # stable: cost breaks ties
        for j in order:
            if pack.fits(j):
                pack.put(j)
                break


def fill(flat: FlatProblem, pack: Packing, deadline: float) -> None:
    """Admit every query left out that still fits, heaviest first, each with its cheapest
    candidate that fits."""
    left = [q for q in range(flat.nq) if pack.choice[q] < 0 and flat.first[q + 1] > flat.first[q]]
    place(flat, pack, heaviest_first(flat, left), deadline)


def cheapen(flat: FlatProblem, pack: Packing, deadline: float, *, passes: int = 3) -> None:
    """Move admitted queries to cheaper candidates that fit once their own is released, the
    largest possible saving first; repeat while anything moves (at most ``passes`` times)."""
    clock = _Clock(deadline)
    cost = flat.cost
    cheapest = -per_query_max(flat, -cost)  # (each query's cheapest candidate's cost)
    for _ in range(passes):
        held = [(q, j) for q, j in enumerate(pack.choice)
                if j >= 0 and cost[j] > cheapest[q] + 1e-12]
        held.sort(key=lambda qj: (cheapest[qj[0]] - cost[qj[1]], qj[0]))
        moved = False
        for q, j in held:
            clock.tick()
            for k in by_cost(flat, q):
                if cost[k] >= cost[j]:
                    break
                if pack.fits_instead(k):
                    pack.put(k)
                    moved = True
                    break
        if not moved:
            return


def round_vertex(flat: FlatProblem, x: np.ndarray, deadline: float) -> tuple[Packing, list[int]]:
    """A packing of the candidates an LP vertex ``x`` chooses outright, and the queries it
    leaves fractional (heaviest first, then by their LP mass).

    A chosen candidate that no longer fits (the LP's feasibility tolerance) is left out and its
    query counted with the fractional ones: the repair never goes over a capacity.
    """
    pack = Packing(flat)
    whole = np.flatnonzero(x > 1 - INTEGRAL)
    clock = _Clock(deadline)
    loose: list[int] = []
    for j in sorted(whole.tolist(), key=lambda j: (-flat.weight[j], j)):
        clock.tick()
        if pack.choice[int(flat.owner[j])] < 0 and pack.fits(j):
            pack.put(j)
        else:
            loose.append(int(flat.owner[j]))
    part = (x > INTEGRAL) & (x <= 1 - INTEGRAL)
    mass = np.bincount(flat.owner[part], weights=x[part], minlength=flat.nq)
    frac = {int(q) for q in np.flatnonzero(mass > 0) if pack.choice[int(q)] < 0}
    frac.update(q for q in loose if pack.choice[q] < 0)
    w = flat.query_weight
    order = sorted(frac, key=lambda q: (-w[q], -mass[q], q))
    return pack, order
