"""A second selection for whole replicas: the LP again, on capacities lowered by the first
rounding's waste.

NOTE: the LP rounding (:mod:`circinus.select.lp`) counts a shared deployment's replicas in
shares (``load / level``), and fitting its answer to whole replicas
(:func:`~circinus.select.deployments.settle`) rounds each deployment up and takes the excess
back, query by query. At scale that is where most of the goodput goes: 100,000 generated
queries, 127 edge boxes of 318 units with about 20 deployments each, about half a replica
of waste on each; the LP rounding admits 90,105 of the bound's 90,138, the fit 89,379. The fit
only moves and drops queries; the LP could have chosen another mix (more of a box's queries on
fewer deployments, more of them in the cloud) had it known the room was smaller.

So :func:`reselect` solves the selection again with each device's capacity (units and memory)
lowered by :data:`DEFLATE` times the waste of the first rounding's deployments there (their
whole replicas less their shares), and the planner fits both answers to whole replicas and
keeps the better (:func:`circinus.planner.select_checked`; the first one's fit runs on the
second core meanwhile). The bound stays the first selection's: a selection of the lowered
problem is one of the original, but the lowered problem's bound is not the original's.

Only the capacities' right-hand sides change, so where the first LP kept its solver (the LP
over classes of alike queries, :class:`~circinus.select.lp.LpRoundSelector` ``warm``) the
second goes on from its basis by the dual simplex: at 100,000 generated queries 0.2 s, where
solving the lowered LP from scratch took 5.3 s, and the whole second selection 0.8-1.1 s (its
rounding and the small MILP over its fractional queries; the fit that follows fills and moves
queries to cheaper candidates, in whole replicas). Elsewhere (below
:data:`~circinus.select.lp.ALIKE_ABOVE` candidates, where the LP takes a fraction of a second)
it is solved anew.

How much to lower (one seed of ``circinus gen``, gains over the first fit in admitted queries,
improvement moves off): at 100,000 queries a share of 0.4 of the waste +50, 0.5 +57, 0.6
+84, 0.7 +67, 0.85 +16, 1.0 -56; at 20,000, 0.3 +19, 0.5 +43, 0.7 +26; at 3,000, 0.4 +8, 0.5
-2, 0.6 +10, 0.8 -15. Lowered by the whole waste the LP overshoots (the new mix has less waste
to take back); 0.6 gained everywhere measured, and where it does not the first fit is kept.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from circinus.select.base import Resource, Selection, SelectionProblem
from circinus.select.deployments import Ledger, ledger
from circinus.select.lp import GOODPUT_LP, LpRoundSelector, Solved

DEFLATE = 0.6
"""Share of the first rounding's waste taken off each device's capacity (module note)."""


def waste(book: Ledger) -> dict[Resource, float]:
    """Per device and memory row, what ``book``'s deployments hold there beyond their loads'
    shares: ``(replicas - load / level)`` replicas' units (or GB) each."""
    out: dict[Resource, float] = {}
    for name, n in book.replicas.items():
        if not n:
            continue
        spec = book.table[name]
        spare = n - book.load.get(name, 0.0) / spec.level
        for kind, per in (("device", spec.units), ("memory", spec.memory_gb)):
            if per > 0:
                row = (kind, spec.key.device)
                out[row] = out.get(row, 0.0) + spare * per
    return out


def deflated(problem: SelectionProblem, chosen: tuple[int | None, ...], *,
             share: float = DEFLATE) -> dict[Resource, float]:
    """``problem``'s capacities with each device and memory row lowered by ``share`` of the
    waste of ``chosen``'s deployments there (never below zero)."""
    spare = waste(ledger(problem, chosen))
    return {r: max(0.0, cap - share * spare[r]) if r in spare else cap
            for r, cap in problem.capacity.items()}


def reselect(problem: SelectionProblem, first: Selection, *, time_limit_s: float,
             share: float = DEFLATE) -> Selection:
    """The LP rounding of ``problem`` with the capacities :func:`deflated` by ``first``'s
    waste, within ``time_limit_s`` (without the cost LPs: the fit to whole replicas moves the
    queries to cheaper candidates anyway); a selection of ``problem`` carrying ``first``'s
    bound and capacity values."""
    start = time.monotonic()
    lowered = replace(problem, capacity=deflated(problem, first.chosen, share=share))
    solved = problem.take(GOODPUT_LP)
    if isinstance(solved, Solved):  # the first LP's solver, warm
        flat = replace(solved.flat, cap=np.array([lowered.capacity[r] for r in solved.flat.rows],
                                                 dtype=float))
        sel = LpRoundSelector().select_again(flat, lowered, solved, start=start,
                                             time_limit_s=time_limit_s)
    else:
        sel = LpRoundSelector(cost_lp=False, keep_lp=False).select(lowered,
                                                                   time_limit_s=time_limit_s)
    bound = max(first.goodput_bound, sel.goodput)
    return replace(sel, goodput_bound=bound,
                   gap=(bound - sel.goodput) / bound if bound > 0 else 0.0,
                   unit_values=first.unit_values,
                   status="rounded" if sel.status == "optimal" else sel.status)
