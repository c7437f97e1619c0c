"""Capacity as variables of the selection: the cheapest whole units to add so that enough query
weight is admitted, chosen together with every query's plan.

NOTE: the exact selection with shared deployments (:mod:`circinus.select.shared_milp`) has a
binary ``x_j`` per candidate, an integer ``R_d`` per deployment and one row per capacity. Here
each device or pool ``g`` that may grow (:class:`~circinus.capacity.resources.Growable`) also
gets an integer ``a_g >= 0``, the units added to it, and:

* its units row becomes ``use_g(x, R) - a_g <= units_g`` (0 for a new device), and its memory
  row, when the device states memory, ``mem_g(x, R) - m_g a_g <= memory_g`` (``m_g`` the memory
  one unit brings);
* the goodput row ``sum_j w_j x_j >= G`` (``G`` the asked share of all query weight);
* with a budget, ``sum_g p_g a_g <= B``;
* objective: the additions' cost ``sum_g p_g a_g`` (``p_g`` the price per unit-hour), with a
  tie broken towards fewer units (:data:`UNIT_TIE`).

Every other row is the selection's own, so the queries are planned *jointly* with what is
bought: a unit added serves whichever queries make the best use of it, and a shared deployment
grows by whole replicas. ``a_g`` is bounded by what any selection could use of ``g``
(:func:`most_use`), so the MILP stays bounded without a limit of our choosing.

The answer's additions are then made exact from its choice of candidates: the ledger of the
chosen candidates in whole replicas (:func:`circinus.select.deployments.ledger`) says what each
device uses, and each ``a_g`` becomes the fewest whole units that hold it (the solver's ``a_g``
may exceed it by its tolerance, or freely on a device whose units cost nothing).

Example: one pool of 2 GPUs at $0.70/GPU-hour, three queries of weight 1 that each need one
whole GPU, goodput 0.95 asked: ``G = 2.85``, so all three must be admitted, ``a = 1`` and the
additions cost $0.70/h.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import Bounds, LinearConstraint
from scipy.sparse import coo_array, csr_array, hstack, vstack

from circinus.capacity.greedy import grow_greedily, shed_greedily
from circinus.capacity.problem import CapacityProblem, needed
from circinus.select.deployments import ledger
from circinus.select.flat import weight_unit
from circinus.select.highs import solve_milp
from circinus.select.shared_milp import MilpModel

UNIT_TIE = 1e-6
"""Cost in $/h the objective adds per unit added: among additions of the same price, the fewest
units (a free device does not grow for nothing)."""
GREEDY_SHARE = 0.3
"""Most share of :meth:`CapacityModel.cheapest`'s time the greedy answers may take."""
GOODPUT_TOLERANCE = 1e-9
"""Relative tolerance of "at least the asked goodput" (a share of 0.95 of 20 queries is 19)."""


@dataclass(frozen=True)
class Sizing:
    """Additions and the selection that uses them."""

    additions: dict[str, int]
    """Device or pool name -> whole units added (only those with some)."""
    chosen: tuple[int | None, ...]
    """The candidate of each query (``None``: not admitted)."""
    goodput: float
    """Weighted number of admitted queries."""
    cost_per_hour: float
    """Cost of the additions, $/h."""
    plan_cost_per_hour: float
    """Cost of the selection's plans in whole replicas, $/h."""
    status: str
    """``optimal`` (proven) or ``time_limit`` (the best found in the budget)."""
    cost_bound: float
    """Proven lower bound on the additions' cost, $/h (equal to the cost when optimal)."""


@dataclass(frozen=True)
class Unreachable:
    """No additions reach the asked goodput (within the budget, if any)."""

    proven: bool
    """The solver proved it; else it found no answer within its time."""


class _Joint:
    """The MILP of the module note, built once per :class:`CapacityProblem`."""

    def __init__(self, cp: CapacityProblem) -> None:
        self.cp = cp
        base = MilpModel(cp.problem)
        self.base = base
        row = {r: i for i, r in enumerate(base.rows)}
        first = base.first_capacity_row
        upper = base.upper_rows.copy()
        r_i, c_i, v = [], [], []
        for i, g in enumerate(cp.growables):
            units = ("device", g.name)
            if units in row:
                r_i.append(first + row[units])
                c_i.append(i)
                v.append(-1.0)
                upper[first + row[units]] = g.units
            memory = ("memory", g.name)
            if memory in row and g.memory_per_unit_gb is not None:
                r_i.append(first + row[memory])
                c_i.append(i)
                v.append(-g.memory_per_unit_gb)
                upper[first + row[memory]] = g.memory_per_unit_gb * g.units
        k = len(cp.growables)
        grow = csr_array(coo_array((np.array(v, dtype=float), (np.array(r_i, dtype=np.int64),
                                                                np.array(c_i, dtype=np.int64))),
                                   shape=(base.matrix.shape[0], k)))
        self.matrix = hstack([base.matrix, grow]).tocsr()
        self.upper = upper
        self.width = base.matrix.shape[1]
        self.price = np.array([g.price_per_unit_hour for g in cp.growables], dtype=float)
        self.lower = np.concatenate([base.bounds.lb, np.zeros(k)])
        self.upper_cols = np.concatenate([base.bounds.ub, np.array(cp.most_added, dtype=float)])
        self.weight = np.concatenate([base.weight, np.zeros(k)])
        self.plan_cost = np.concatenate([base.cost, np.zeros(k)])
        self.added_cost = np.concatenate([np.zeros(self.width), self.price])

    def solve(self, objective: np.ndarray, deadline: float, *, least_goodput: float | None = None,
              budget: float | None = None, floor: float = 0.0,
              fixed: Mapping[int, float] | None = None) -> object:
        """HiGHS on the model with the goodput row, the budget row (additions' cost between
        ``floor`` and ``budget``) and additions held at ``fixed`` (growable index -> units
        added) as given; its result or ``None``."""
        rows = [self.matrix]
        low = [np.full(self.matrix.shape[0], -np.inf)]
        high = [self.upper]
        if least_goodput is not None:
            rows.append(csr_array(self.weight[None, :]))
            low.append(np.array([least_goodput]))
            high.append(np.array([np.inf]))
        if budget is not None or floor > 0:
            rows.append(csr_array(self.added_cost[None, :]))
            low.append(np.array([floor if floor > 0 else -np.inf]))
            high.append(np.array([np.inf if budget is None else budget]))
        lower, upper = self.lower.copy(), self.upper_cols.copy()
        for i, units in (fixed or {}).items():
            lower[self.width + i] = upper[self.width + i] = units
        cons = LinearConstraint(vstack(rows).tocsr(), np.concatenate(low), np.concatenate(high))
        return solve_milp(objective, constraints=[cons], integrality=np.ones(len(objective)),
                          bounds=Bounds(lower, upper), options={"mip_rel_gap": 1e-6},
                          deadline=deadline)

    def sizing(self, x: np.ndarray | None, status: str, cost_bound: float) -> Sizing | None:
        """The answer ``x`` with its additions made exact (module note); ``None`` if it breaks
        a fixed capacity beyond the tolerance."""
        if x is None:
            return None
        return self.of(self.base.chosen(np.round(x), len(self.cp.problem.candidates)), status,
                       cost_bound)

    def of(self, chosen: tuple[int | None, ...], status: str, cost_bound: float
           ) -> Sizing | None:
        """The selection ``chosen`` with the fewest whole units each growable device needs to
        hold it; ``None`` if it breaks a capacity that cannot grow."""
        cp = self.cp
        book = ledger(cp.problem, chosen)
        additions: dict[str, int] = {}
        growing = set()
        for g in cp.growables:
            growing |= {("device", g.name), ("memory", g.name)}
            add = needed(g, book.used)
            if add:
                additions[g.name] = add
        if any(book.is_over(r) for r in book.used if r not in growing
               and r in cp.problem.capacity):
            return None
        goodput = float(sum(cp.problem.weights[q] for q in book.chosen))
        price = {g.name: g.price_per_unit_hour for g in cp.growables}
        cost = sum(price[n] * a for n, a in additions.items())
        return Sizing(additions, chosen, goodput, cost, book.cost, status,
                      min(cost_bound, cost))

    def most_plan_cost(self) -> float:
        """An upper bound on any selection's plan cost, $/h."""
        base = self.base
        dearest: dict[int, float] = {}
        for j, (q, _) in enumerate(base.owner):
            dearest[q] = max(dearest.get(q, 0.0), float(base.cost[j]))
        return sum(dearest.values()) + float(base.cost[base.n:] @ base.bounds.ub[base.n:])


class CapacityModel:
    """The joint MILP of a :class:`CapacityProblem` (module note): the cheapest additions for a
    goodput, the most goodput for a budget, and the selection at given additions.

    Every call runs HiGHS under a hard deadline (:mod:`circinus.select.highs`).
    """

    def __init__(self, cp: CapacityProblem) -> None:
        self.cp = cp
        self._joint = _Joint(cp)

    def cheapest(self, goodput: float, *, budget: float | None, deadline: float,
                 start: Sequence[int | None] = (), full: Sequence[int | None] | None = None,
                 floor: float = 0.0) -> Sizing | Unreachable:
        """The cheapest additions admitting at least ``goodput`` query weight (at most
        ``budget`` $/h of additions): the greedy answers (:mod:`circinus.capacity.greedy`)
        grown from ``start`` (a selection within today's capacities) and shed from ``full`` (a
        selection within the most every device may have), then the MILP asked for a cheaper
        one by ``deadline``. With a ``floor``, only additions costing at least that much are
        answers (the cheaper ones were tried)."""
        j = self._joint
        least = goodput - GOODPUT_TOLERANCE * max(1.0, goodput)
        greedy_by = time.monotonic() + GREEDY_SHARE * seconds_left(deadline)
        incumbent: Sizing | None = None
        tries = [grow_greedily(self.cp, least, start=start, budget=budget, deadline=greedy_by)]
        if full is not None and time.monotonic() < greedy_by:
            tries.append(shed_greedily(self.cp, least, full, deadline=greedy_by))
        for chosen in tries:
            found = None if chosen is None else j.of(chosen, "time_limit", 0.0)
            if found is None or found.goodput < least or found.cost_per_hour < floor or (
                    budget is not None and found.cost_per_hour > budget * (1 + 1e-9) + 1e-9):
                continue
            if incumbent is None or found.cost_per_hour < incumbent.cost_per_hour - 1e-12:
                incumbent = found
        if incumbent is not None and incumbent.cost_per_hour <= 1e-12:
            return replace(incumbent, status="optimal", cost_bound=0.0)
        cutoff = None if budget is None else budget * (1 + 1e-9) + 1e-9
        if incumbent is not None:  # only a cheaper answer is of use
            cheaper = incumbent.cost_per_hour * (1 - 1e-7) - 1e-9
            cutoff = cheaper if cutoff is None else min(cutoff, cheaper)
        objective = j.added_cost + UNIT_TIE * np.concatenate(
            [np.zeros(j.width), np.ones(len(self.cp.growables))])
        res: object = j.solve(objective, deadline, least_goodput=least, budget=cutoff,
                              floor=floor)
        status = getattr(res, "status", None)
        if status == 2:  # infeasible: nothing cheaper than the incumbent (or nothing at all)
            if incumbent is None:
                return Unreachable(proven=True)
            return replace(incumbent, status="optimal", cost_bound=incumbent.cost_per_hour)
        bound = getattr(res, "mip_dual_bound", None)
        cost_bound = 0.0 if bound is None or not math.isfinite(float(bound)) else max(
            0.0, float(bound) - UNIT_TIE * sum(self.cp.most_added))
        found = j.sizing(getattr(res, "x", None), "optimal" if status == 0 else "time_limit",
                         cost_bound)
        if found is not None and found.cost_per_hour < floor:  # the exact additions are fewer
            found = None
        if found is not None and (incumbent is None
                                  or found.cost_per_hour < incumbent.cost_per_hour):
            return found
        if incumbent is None:
            return Unreachable(proven=False)
        if status == 0:  # the MILP's optimum is no cheaper than the incumbent
            return replace(incumbent, status="optimal", cost_bound=incumbent.cost_per_hour)
        return replace(incumbent, cost_bound=min(incumbent.cost_per_hour, cost_bound))

    def best(self, deadline: float, *, budget: float | None = None,
             fixed: Mapping[str, float] | None = None) -> Sizing | None:
        """The most goodput (then the cheapest plans) within ``budget`` $/h of additions, or
        with the additions ``fixed`` (device name -> units added; the others 0); ``None`` when
        HiGHS gives no answer by ``deadline``."""
        j = self._joint
        unit = weight_unit(self.cp.problem.weights) or min(self.cp.problem.weights, default=1.0)
        big = (j.most_plan_cost() + 1.0) / unit
        names = {g.name: i for i, g in enumerate(self.cp.growables)}
        held = None if fixed is None else {i: float(fixed.get(n, 0.0)) for n, i in names.items()}
        res: object = j.solve(j.plan_cost + UNIT_TIE * j.added_cost - big * j.weight, deadline,
                              budget=budget, fixed=held)
        if res is None:
            return None
        status = "optimal" if getattr(res, "status", None) == 0 else "time_limit"
        return j.sizing(getattr(res, "x", None), status, 0.0)


def seconds_left(deadline: float) -> float:
    """Seconds until ``deadline`` (a :func:`time.monotonic` instant), at least 0."""
    return max(0.0, deadline - time.monotonic())
