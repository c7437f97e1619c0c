"""A greedy answer to the joint problem: admit queries where they cost the least to grow for.

NOTE: the joint MILP (:mod:`circinus.capacity.model`) is hard where shared deployments hold many
lightly loaded replicas: its LP relaxation counts replicas in shares and may need no addition
at all (edge-cloud-vision: a relaxation of $0/h for 95 % goodput, where whole replicas admit
77 % today), so HiGHS can run out of time without an answer. This greedy always gives one:

1. start from a selection (the one the planner makes at today's capacities, or nothing);
2. while the admitted weight is short of the goal, admit the (query, candidate) whose extra
   additions cost least per unit of weight: the whole units it makes some device need beyond
   what it has, at their prices, ties broken by fewer units, then by the cheaper plan. A
   candidate that fits in the headroom rounding up left on a deployment adds nothing and comes
   first; one that would break a capacity that cannot grow (a link, a device not named) is
   skipped.

Its answer is an upper bound the MILP is then asked to beat.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from circinus.capacity.problem import CapacityProblem, needed
from circinus.select.base import Resource
from circinus.select.deployments import Ledger


def grow_greedily(cp: CapacityProblem, goal: float, *, start: Sequence[int | None] = (),
                  budget: float | None = None, deadline: float = math.inf,
                  ) -> tuple[int | None, ...] | None:
    """The chosen candidate per query of a selection admitting at least ``goal`` weight (see
    the module note), or ``None`` when the greedy cannot reach it (within ``budget`` $/h of
    additions, before ``deadline``)."""
    problem = cp.problem
    book = Ledger(problem)
    for q, k in enumerate(start):
        if k is not None and book.fits(q, k):
            book.add(q, k)
    growing = {("device", g.name): g for g in cp.growables}
    growing.update({("memory", g.name): g for g in cp.growables})
    price = {g.name: g.price_per_unit_hour for g in cp.growables}
    added = {g.name: needed(g, book.used) for g in cp.growables}
    goodput = sum(problem.weights[q] for q in book.chosen)
    while goodput < goal - 1e-9 * max(1.0, goal):
        if time.monotonic() > deadline:
            return None
        best: tuple[float, float, float, int, int] | None = None
        for q, qc in enumerate(problem.candidates):
            if q in book.chosen:
                continue
            w = problem.weights[q]
            for k in range(len(qc.candidates)):
                if not book.fits(q, k):  # beyond a fixed capacity, or past the most added
                    continue
                change, plan_cost = book.delta(q, k)
                extra = units = 0.0
                for g in {growing[r] for r in change if r in growing}:
                    after = {r: book.used.get(r, 0.0) + change.get(r, 0.0)
                             for r in (("device", g.name), ("memory", g.name))}
                    more = needed(g, after) - added[g.name]
                    if more > 0:
                        extra += more * price[g.name]
                        units += more
                key = (extra / w, units / w, plan_cost / w, q, k)
                if best is None or key < best:
                    best = key
        if best is None:
            return None
        q, k = best[3], best[4]
        book.add(q, k)
        goodput += problem.weights[q]
        for g in cp.growables:
            added[g.name] = needed(g, book.used)
        if budget is not None and sum(price[n] * a for n, a in added.items()) > budget * (
                1 + 1e-9) + 1e-9:
            return None
    return tuple(book.chosen.get(q) for q in range(len(problem.candidates)))


def shed_greedily(cp: CapacityProblem, goal: float, chosen: Sequence[int | None], *,
                  deadline: float = math.inf) -> tuple[int | None, ...]:
    """``chosen`` (a selection within the most every growable device may have) with queries
    left out while the admitted weight stays at least ``goal``, each time the one whose
    leaving saves the most additions per unit of weight (ties: the most units), until none
    saves anything or ``deadline`` passes."""
    problem = cp.problem
    book = Ledger(problem)
    for q, k in enumerate(chosen):
        if k is not None:
            book.add(q, k)
    price = {g.name: g.price_per_unit_hour for g in cp.growables}
    goodput = sum(problem.weights[q] for q in book.chosen)

    def bill(used: dict[Resource, float]) -> tuple[float, int]:
        units = [needed(g, used) for g in cp.growables]
        return sum(price[g.name] * u for g, u in zip(cp.growables, units, strict=True)), sum(units)

    while time.monotonic() < deadline:
        now = bill(book.used)
        best: tuple[float, float, int] | None = None
        for q, k in book.chosen.items():
            w = problem.weights[q]
            if goodput - w < goal - 1e-9 * max(1.0, goal):
                continue
            change, _ = book.delta(q, k, -1)
            after = dict(book.used)
            for r, v in change.items():
                after[r] = after.get(r, 0.0) + v
            cost, units = bill(after)
            key = ((cost - now[0]) / w, (units - now[1]) / w, q)
            if key[0] < -1e-12 or (key[0] <= 1e-12 and key[1] < 0):
                best = key if best is None or key < best else best
        if best is None:
            break
        goodput -= problem.weights[best[2]]
        book.remove(best[2])
    return tuple(book.chosen.get(q) for q in range(len(problem.candidates)))
