"""Exact selection as a mixed-integer program solved by HiGHS (through SciPy).

NOTE: the selection is a multiple-choice multi-dimensional knapsack: a binary ``x[q,k]`` per
candidate ``k`` of query ``q``, at most one per query, every capacity row respected, maximising
goodput ``sum w_q x[q,k]`` first and minimising cost second. Two passes share the time budget:
maximise goodput, then minimise cost with goodput held by one row. Above ``_SINGLE_SOLVE_ABOVE``
candidates, where neither pass proves anything within a budget, one solve of
``min sum (c - B w) x`` is used instead when the weights are multiples of a common unit ``u``
(1 for plain counts, 0.5 for 0.5/1/2): goodputs then differ by at least ``u`` and
``B = (C + 1) / u`` (``C`` the largest possible total cost) makes the objective exactly
lexicographic, and the cost term guides HiGHS to better selections.

**When the MILP is used.** Its goodput pass, measured on 2 cores on generated worlds (weights
1): 453 candidates 0.5 s, 2,237 1.7 s, 3,130 3.0 s, 4,437 (1,000 queries) 8.4 s, 8,892 28 s;
at 44,569 (10,000 queries) HiGHS found no integer answer in 30 s on a busy machine and overran
that limit. The cost pass runs out the whole 30 s budget from 1,350 candidates on. The LP
rounding (:class:`LpRoundSelector`) is within 0.1-0.5% of the optimal goodput there, in under
a second. So ``MilpSelector()`` (registry key ``milp``, the planner's default) *is* the LP
rounding above ``lp_above`` = 3,000 candidates (where the goodput pass still proves optimality
in about 3 s); ``MilpSelector(lp_above=None)`` (key ``exact``, the oracle's) always solves the
MILP. Either way the LP rounding runs first as the incumbent and every HiGHS call runs under a
hard deadline (:mod:`circinus.select.highs`): whatever a pass does not finish, the best answer
so far is returned, so the budget is always honoured and the answer is never worse than the LP
rounding's. The bound is the smaller of HiGHS's and the LP rounding's proven ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint
from scipy.sparse import csr_array, vstack

from circinus.collector import paused
from circinus.estimate.base import EPS
from circinus.select.base import BaseSelector, Selection, SelectionProblem
from circinus.select.flat import (
    FlatProblem,
    flatten,
    per_query_max,
    weight_unit,
)
from circinus.select.highs import solve_milp
from circinus.select.lp import LpRoundSelector, alike_classes
from circinus.select.partitioned import PARTITION_ABOVE, PARTITIONS, PartitionedSelector
from circinus.spec.models import PlannerSettings

LP_ABOVE = 3_000
"""Candidates above which :class:`MilpSelector` is the LP rounding (see the module note)."""
_SINGLE_SOLVE_ABOVE = 20_000  # candidates; above this the single weighted solve is used
_INCUMBENT_SHARE = 0.2  # at most this share of the budget for the LP rounding incumbent
_GOODPUT_SHARE = 0.7  # the goodput pass must end by this share of the budget


class MilpSelector(BaseSelector):
    """Exact (within its time budget) selection; see the module note.

    Args:
        rel_gap: HiGHS's relative MIP gap.
        lp_above: candidates above which the LP rounding is used instead; ``None``: never.
        partition_above: candidates above which the selection is partitioned
            (:class:`~circinus.select.partitioned.PartitionedSelector`); ``None``: never.
        partitions: parts of a partitioned selection.
        seed: seed of a partitioned selection's split.
        workers: processes solving the parts of a partitioned selection at once.
    """

    def __init__(self, *, rel_gap: float = 1e-6, lp_above: int | None = LP_ABOVE,
                 partition_above: int | None = PARTITION_ABOVE, partitions: int = PARTITIONS,
                 seed: int = 0, workers: int = 1) -> None:
        self.rel_gap = rel_gap
        self.lp_above = lp_above
        self.partition_above = partition_above
        self.partitions = partitions
        self.seed = seed
        self.workers = workers

    def with_settings(self, settings: PlannerSettings) -> MilpSelector:
        """This selector partitioning as ``settings`` say (``partition_above``, ``partitions``,
        ``seed``); the exact selector (``lp_above=None``) never partitions."""
        return MilpSelector(rel_gap=self.rel_gap, lp_above=self.lp_above,
                            partition_above=None if self.lp_above is None
                            else settings.partition_above,
                            partitions=settings.partitions, seed=settings.seed,
                            workers=self.workers)

    def select(self, problem: SelectionProblem, *, time_limit_s: float) -> Selection:
        with paused():
            return self._select(problem, time_limit_s)

    def _select(self, problem: SelectionProblem, time_limit_s: float) -> Selection:
        start = time.monotonic()
        n = problem.candidate_count
        if self.partition_above is not None and n > self.partition_above:
            flat = flatten(problem)
            alike = alike_classes(flat)
            if alike is not None and alike.columns(flat) <= self.partition_above:
                # The whole LP over classes is no larger than a part's: solved whole.
                return LpRoundSelector(warm=bool(problem.deployments)).select_flat(
                    flat, problem, start=start, time_limit_s=time_limit_s, alike=alike)
            return PartitionedSelector(partitions=self.partitions, seed=self.seed,
                                       workers=self.workers).select_flat(
                flat, problem, start=start, time_limit_s=time_limit_s)
        if self.lp_above is not None and n > self.lp_above:
            return LpRoundSelector(warm=bool(problem.deployments)).select(
                problem, time_limit_s=time_limit_s)
        if problem.deployments:  # whole replicas per shared deployment
            from circinus.select.shared_milp import SharedMilpSelector

            return SharedMilpSelector(rel_gap=self.rel_gap, prove=self.lp_above is None).select(
                problem, time_limit_s=time_limit_s)
        flat = flatten(problem)
        incumbent = LpRoundSelector().select_flat(
            flat, problem, start=start, time_limit_s=_INCUMBENT_SHARE * time_limit_s)
        if incumbent.status == "optimal" or n == 0:
            return _after(incumbent, start)
        unit = weight_unit(problem.weights)
        if unit is not None and n > _SINGLE_SOLVE_ABOVE:
            found = self._weighted(flat, incumbent, unit, start + time_limit_s)
        else:
            found = self._passes(flat, incumbent, start, time_limit_s)
        return _after(found, start)

    def _passes(self, flat: FlatProblem, incumbent: Selection, start: float,
                time_limit_s: float) -> Selection:
        """The two passes, each adopted only if it beats the incumbent."""
        cons, ones, box = _model(flat)
        opts = {"mip_rel_gap": self.rel_gap}
        best, bound = incumbent, incumbent.goodput_bound
        proven = incumbent.gap <= 1e-12  # the goodput pass has nothing left to prove
        if not proven:
            first = solve_milp(-flat.weight, constraints=cons, integrality=ones, bounds=box,
                               options=opts, deadline=start + _GOODPUT_SHARE * time_limit_s)
            if first is not None:
                proven = first.status == 0
                if first.mip_dual_bound is not None:
                    bound = min(bound, -float(first.mip_dual_bound))
                best = _better(flat, best, first.x, 1.0, "time_limit")
        target = best.goodput
        keep = LinearConstraint(csr_array(flat.weight[None, :]),
                                target - 1e-7 * max(1.0, target), np.inf)
        second = solve_milp(flat.cost, constraints=[*cons, keep], integrality=ones, bounds=box,
                            options=opts, deadline=start + time_limit_s)
        if second is not None:
            best = _better(flat, best, second.x, max(float(second.mip_gap or 0.0), 0.0),
                           "time_limit")
        done = second is not None and second.status == 0 and proven
        return _with_bound(best, bound, optimal=done)

    def _weighted(self, flat: FlatProblem, incumbent: Selection, unit: float,
                  deadline: float) -> Selection:
        """The single lexicographic solve (see the module note)."""
        cons, ones, box = _model(flat)
        most = float(np.sum(per_query_max(flat, flat.cost), where=flat.first[1:] > flat.first[:-1]))
        big = (most + 1.0) / unit
        res: Any = solve_milp(flat.cost - big * flat.weight, constraints=cons, integrality=ones,
                              bounds=box, options={"mip_rel_gap": self.rel_gap},
                              deadline=deadline)
        if res is None:
            return incumbent
        best = _better(flat, incumbent, res.x, 1.0, "time_limit")
        bound = incumbent.goodput_bound
        if res.mip_dual_bound is not None:
            # Any selection y has cost(y) - B goodput(y) >= dual and cost(y) <= C, so
            # goodput(y) <= (C - dual) / B (goodputs are multiples of the unit), and one of
            # goodput G costs at least dual + B G.
            dual = float(res.mip_dual_bound)
            bound = min(bound, math.floor((most - dual) / big / unit + 1e-9) * unit)
            floor = max(0.0, dual + big * best.goodput)
            if best.cost_per_hour > EPS:
                best = replace(best, cost_gap=min(
                    best.cost_gap, max(0.0, (best.cost_per_hour - floor) / best.cost_per_hour)))
        solved = res.status == 0 and res.x is not None and _fits(flat, np.round(res.x))
        return _with_bound(best, bound, optimal=solved)


def _model(flat: FlatProblem) -> tuple[list[LinearConstraint], np.ndarray, Bounds]:
    """The constraints (one row per query, one per capacity), integrality and 0/1 bounds."""
    rows = vstack([flat.query_rows(), flat.usage]).tocsr()
    cons = [LinearConstraint(rows, -np.inf, np.concatenate([np.ones(flat.nq), flat.cap]))]
    return cons, np.ones(flat.n), Bounds(0, 1)


def _with_bound(sel: Selection, bound: float, *, optimal: bool) -> Selection:
    """``sel`` with the proven ``bound`` (never below its goodput) and its gap; marked optimal
    when the solver proved it and the goodput meets the bound."""
    bound = max(min(bound, sel.goodput_bound), sel.goodput)
    sel = replace(sel, goodput_bound=bound,
                  gap=(bound - sel.goodput) / bound if bound > EPS else 0.0)
    if optimal and sel.goodput >= bound - 1e-9 * max(1.0, bound):
        sel = replace(sel, cost_gap=0.0, status="optimal")  # as good as the optimum
    return sel


def _better(flat: FlatProblem, sel: Selection, x: np.ndarray | None, cost_gap: float,
            status: str) -> Selection:
    """The MILP's answer ``x`` as a selection if it fits and beats ``sel`` (more goodput, or as
    much for less), else ``sel``."""
    if x is None:
        return sel
    x = np.round(x)
    goodput, cost = float(flat.weight @ x), float(flat.cost @ x)
    tol = 1e-9 * max(1.0, goodput)
    if not _fits(flat, x) or goodput < sel.goodput - tol or (
            goodput <= sel.goodput + tol
            and cost >= sel.cost_per_hour - 1e-9 * max(1.0, cost)):
        return sel
    return Selection(chosen=_decode(flat, x), goodput=goodput, cost_per_hour=cost,
                     goodput_bound=sel.goodput_bound, gap=sel.gap, cost_gap=cost_gap,
                     status=status, seconds=sel.seconds, unit_values=sel.unit_values)


def _fits(flat: FlatProblem, x: np.ndarray) -> bool:
    """Whether the 0/1 choice ``x`` is within every capacity (at most one per query holds by
    construction of the rows; HiGHS's tolerance could break a capacity by a hair)."""
    return bool(np.all(flat.usage @ x <= flat.cap * (1 + 0.5 * EPS) + 0.5 * EPS))


def _decode(flat: FlatProblem, x: np.ndarray) -> tuple[int | None, ...]:
    chosen: list[int | None] = [None] * flat.nq
    for j in np.flatnonzero(x > 0.5).tolist():
        q = int(flat.owner[j])
        chosen[q] = j - int(flat.first[q])
    return tuple(chosen)


def _after(sel: Selection, start: float) -> Selection:
    """``sel`` with the seconds of the whole call."""
    return replace(sel, seconds=time.monotonic() - start)


def exact_selector() -> MilpSelector:
    """The MILP at every size (registry key ``exact``; the oracle's selector)."""
    return MilpSelector(lp_above=None, partition_above=None)
