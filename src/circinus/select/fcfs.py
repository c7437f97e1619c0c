"""First-come-first-served admission: the selection of planners without a global view.

NOTE: queries are taken in the order they are listed (their arrival order); each gets the first
of its candidates, in the order its search ranked them, that still fits what earlier queries left.
This is how per-query planners such as Vulcan- and INFaaS-style ones admit work: once a query
holds resources it keeps them, whatever the queries after it would have gained. The reported
bound is the weight of every query that has a candidate (no optimality is claimed).
"""

from __future__ import annotations

import time

from circinus.estimate.base import EPS
from circinus.select.base import BaseSelector, Resource, Selection, SelectionProblem


class FcfsSelector(BaseSelector):
    """Admit queries in order, each with its first candidate that still fits."""

    def select(self, problem: SelectionProblem, *, time_limit_s: float) -> Selection:
        start = time.monotonic()
        load: dict[Resource, float] = {}
        chosen: list[int | None] = []
        goodput = cost = bound = 0.0
        for qc, weight in zip(problem.candidates, problem.weights, strict=True):
            pick = None
            if qc.candidates:
                bound += weight
            for k, cand in enumerate(qc.candidates):
                need = cand.estimate.usage()
                if all(load.get(r, 0.0) + v <= problem.capacity.get(r, float("inf")) + EPS
                       for r, v in need.items()):
                    for r, v in need.items():
                        load[r] = load.get(r, 0.0) + v
                    pick = k
                    goodput += weight
                    cost += cand.estimate.cost_per_hour
                    break
            chosen.append(pick)
        return Selection(
            chosen=tuple(chosen), goodput=goodput, cost_per_hour=cost, goodput_bound=bound,
            gap=(bound - goodput) / bound if bound > EPS else 0.0, cost_gap=0.0,
            status="greedy", seconds=time.monotonic() - start,
        )
