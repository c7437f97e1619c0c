"""Exact selection with shared deployments: candidates and whole replicas chosen together.

NOTE: with shared deployments a selection's use of a device is a step function of the queries
on it (:mod:`circinus.select.deployments`), so the MILP gets an integer variable ``R_d`` per
deployment besides the binary ``x_j`` per candidate:

* at most one candidate per query: ``sum_{j of q} x_j <= 1``;
* each deployment carries its load at its level: ``sum_j load_jd x_j - level_d R_d <= 0``,
  and has at least the replicas each of its candidates' estimates assume:
  ``floor_jd x_j - R_d <= 0`` (rows only for floors above 1, which the load row implies);
* each capacity row (device units, memory, link): what the candidates use of it themselves
  (dedicated replicas, traffic) plus ``sum_d per_replica_d R_d`` within the capacity;
* goodput ``sum w_q x_j`` first, then cost ``sum own_cost_j x_j + sum price_d R_d`` with the
  goodput held: a goodput pass that proves the bound, then one weighted solve for the cost
  (see :meth:`SharedMilpSelector.select`).

``R_d`` is bounded by the replicas its device holds. The incumbent is the LP rounding over the
relaxation made to fit in whole replicas (:func:`~circinus.select.deployments.settle`); every
HiGHS call runs under the budget's deadline, and the best answer so far is returned.

**The stall stop.** On small shared worlds HiGHS often holds its best goodput long before it
can prove it (40 generated queries: 28 found at the root node, 1,027 nodes to prove it), and
SciPy's solve, abandoned at the deadline, gave nothing back at all (edge-cloud-vision, 100
and 300 generated queries: the LP rounding's answer was kept). So each pass runs through
highspy and stops at whichever comes first: a proof, the deadline (HiGHS is interrupted
through its callback a moment before, and its incumbent kept), or a stall, its incumbent not
improved for a number of branch-and-bound nodes (:data:`GOODPUT_STALL`, :data:`COST_STALL`;
:class:`~circinus.select.highs.StallRule`). Nodes, not seconds: where a stall ends a pass the
answer does not depend on the machine's load. The root node (where most improvements appear)
is never cut short by a stall; improvements deep in the tree do occur (meeting-companion's
cost pass: nodes 40, 573 and 2,200, proven at 4,106), hence counts in the hundreds. The cost
pass starts from the goodput pass's answer and runs at most as long as the goodput pass took
(at least ``MIN_COST_S``). A selection ended by a stall reports ``stalled``, one ended by the
budget ``time_limit``: neither is proven, and ``gap`` is against the proven bound. The exact
selector (``prove``) never stalls.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
from scipy.optimize import Bounds
from scipy.sparse import coo_array, csr_array

from circinus.estimate.base import EPS
from circinus.select.base import Resource, Selection, SelectionProblem
from circinus.select.deployments import ledger, own_use, settle
from circinus.select.flat import weight_unit
from circinus.select.highs import StallRule, solve_mip
from circinus.select.lp import LpRoundSelector

_INCUMBENT_SHARE = 0.2  # at most this share of the budget for the incumbent
_GOODPUT_SHARE = 0.7  # the goodput pass must end by this share of the budget
GOODPUT_STALL = StallRule(nodes=500)
"""When the goodput pass stops without a proof (see the module note)."""
COST_STALL = StallRule(nodes=1000)
"""When the cost pass stops without a proof (see the module note)."""
MIN_COST_S = 2.0
"""Least time the cost solve gets (if the budget allows; see :meth:`SharedMilpSelector.select`)."""


class MilpModel:
    """The arrays of the MILP (see the module note): columns are the candidates (``n``, in
    query order, :attr:`owner`) then the deployments (:attr:`names`); rows are the queries,
    the deployments' loads, the capacities (:attr:`rows`, from :attr:`first_capacity_row`)
    and the floors."""

    def __init__(self, problem: SelectionProblem) -> None:
        self.owner: list[tuple[int, int]] = [
            (q, k) for q, qc in enumerate(problem.candidates) for k in range(len(qc.candidates))]
        self.names = sorted(problem.deployments)
        n, m = len(self.owner), len(self.names)
        dep = {name: i for i, name in enumerate(self.names)}
        rows = sorted(problem.capacity)
        row = {r: i for i, r in enumerate(rows)}
        nq = len(problem.candidates)
        self.rows: tuple[Resource, ...] = tuple(rows)
        self.first_capacity_row = nq + m
        r_i, c_i, v = [], [], []  # one matrix: query rows, deployment rows, capacity rows
        self.weight = np.zeros(n + m)
        self.cost = np.zeros(n + m)
        for j, (q, k) in enumerate(self.owner):
            est = problem.candidates[q].candidates[k].estimate
            r_i.append(q)
            c_i.append(j)
            v.append(1.0)
            for name, load in est.deployment_load:
                r_i.append(nq + dep[name])
                c_i.append(j)
                v.append(load)
            use, cost = own_use(est, problem.deployments)
            for r, amount in use.items():
                if r in row:
                    r_i.append(nq + m + row[r])
                    c_i.append(j)
                    v.append(amount)
            self.weight[j] = problem.weights[q]
            self.cost[j] = cost
        floors: list[tuple[int, int, int]] = []  # (candidate, deployment, floor > 1)
        for j, (q, k) in enumerate(self.owner):
            est = problem.candidates[q].candidates[k].estimate
            floors.extend((j, dep[name], f) for name, f in est.deployment_floor if f > 1)
        first_floor = nq + m + len(rows)
        for row_i, (j, i, f) in enumerate(floors):
            r_i += [first_floor + row_i, first_floor + row_i]
            c_i += [j, n + i]
            v += [float(f), -1.0]
        upper = np.zeros(m)
        for i, name in enumerate(self.names):
            spec = problem.deployments[name]
            r_i.append(nq + i)
            c_i.append(n + i)
            v.append(-spec.level)
            dev = spec.key.device
            per = {("device", dev): spec.units, ("memory", dev): spec.memory_gb}
            most = math.inf
            for r, amount in per.items():
                if r in row and amount > 0:
                    r_i.append(nq + m + row[r])
                    c_i.append(n + i)
                    v.append(amount)
                    most = min(most, math.floor(problem.capacity[r] / amount + EPS))
            upper[i] = most if math.isfinite(most) else n
            self.cost[n + i] = spec.price_per_hour
        shape = (nq + m + len(rows) + len(floors), n + m)
        self.matrix = csr_array(coo_array((np.array(v), (np.array(r_i), np.array(c_i))),
                                          shape=shape))
        self.upper_rows = np.concatenate([np.ones(nq), np.zeros(m),
                                          np.array([problem.capacity[r] for r in rows]),
                                          np.zeros(len(floors))])
        self.bounds = Bounds(np.zeros(n + m), np.concatenate([np.ones(n), upper]))
        self.n = n

    def chosen(self, x: np.ndarray, nq: int) -> tuple[int | None, ...]:
        out: list[int | None] = [None] * nq
        for j in np.flatnonzero(x[: self.n] > 0.5).tolist():
            q, k = self.owner[j]
            out[q] = k
        return tuple(out)


class SharedMilpSelector:
    """The MILP of the module note; called by :class:`~circinus.select.milp.MilpSelector` for
    problems with shared deployments.

    Args:
        rel_gap: HiGHS's relative MIP gap.
        prove: let the cost solve run to the end of the budget instead of about as long as
            the goodput pass took (the exact selector's choice, for the oracle: measured on a
            four-query tiny world with the oracle's 495 candidates, the cost solve needs 13 s
            on a loaded machine, and the answer after 2 s was 2.7x dearer than the optimum).
            A proving selector never stops on a stall.
        goodput_stall: when the goodput pass stops without a proof (module note).
        cost_stall: when the cost pass stops without a proof.
    """

    def __init__(self, *, rel_gap: float = 1e-6, prove: bool = False,
                 goodput_stall: StallRule = GOODPUT_STALL,
                 cost_stall: StallRule = COST_STALL) -> None:
        self.rel_gap = rel_gap
        self.prove = prove
        self.goodput_stall = None if prove else goodput_stall
        self.cost_stall = None if prove else cost_stall

    def select(self, problem: SelectionProblem, *, time_limit_s: float) -> Selection:
        """Solve ``problem`` within ``time_limit_s`` (module note)."""
        start = time.monotonic()
        incumbent = settle(problem, LpRoundSelector().select(
            problem, time_limit_s=_INCUMBENT_SHARE * time_limit_s))
        model = MilpModel(problem)
        if model.n == 0:
            return replace(incumbent, status="optimal", seconds=time.monotonic() - start)
        kw = {"a": model.matrix, "row_upper": model.upper_rows, "lower": model.bounds.lb,
              "upper": model.bounds.ub, "rel_gap": self.rel_gap}
        best, bound = incumbent, incumbent.goodput_bound
        proven = False
        first = solve_mip(-model.weight, deadline=start + _GOODPUT_SHARE * time_limit_s,
                          stall=self.goodput_stall, **kw)
        if first is not None:
            proven = first.status == "optimal"
            bound = min(bound, -first.dual_bound)
            best = _better(problem, model, best, first.x)
        # Cost, goodput kept: one solve of min cost - B goodput (B above any cost difference,
        # so goodput comes first), which finds cheap selections far sooner than a cost pass
        # with the goodput held by a row (measured on edge-cloud-vision: $5.10/h in 5 s
        # against $6.18/h in 60 s). It runs until it stalls (the cost stall) and at most as
        # long as the goodput pass took (at least MIN_COST_S), within the budget: the cost
        # pass alone seldom proves a thing here.
        spent = time.monotonic() - start
        unit = weight_unit(problem.weights) or min(problem.weights)
        big = (_most_cost(problem, model) + 1.0) / unit
        second = solve_mip(model.cost - big * model.weight,
                           deadline=start + time_limit_s if self.prove else min(
                               start + time_limit_s, time.monotonic() + max(MIN_COST_S, spent)),
                           stall=self.cost_stall,
                           start=None if first is None else first.x, **kw)
        if second is not None:
            best = _better(problem, model, best, second.x)
            if second.status == "optimal":
                best = replace(best, cost_gap=0.0)
        done = proven and second is not None and second.status == "optimal"
        bound = max(bound, best.goodput)
        best = replace(best, goodput_bound=bound,
                       gap=(bound - best.goodput) / bound if bound > EPS else 0.0,
                       seconds=time.monotonic() - start)
        if done and best.goodput >= bound - 1e-9 * max(1.0, bound):
            best = replace(best, status="optimal", cost_gap=0.0)
        elif best.status in ("optimal", "time_limit"):  # not proven: the budget or a stall
            ends = {"none" if p is None else p.status for p in (first, second)}
            best = replace(best, status="stalled" if "stalled" in ends
                           and ends <= {"optimal", "stalled"} else "time_limit")
        return best


def _better(problem: SelectionProblem, model: MilpModel, sel: Selection,
            x: np.ndarray | None) -> Selection:
    """The MILP's answer ``x`` as a selection if it fits in whole replicas and beats ``sel``
    (more goodput, or as much for less), else ``sel``."""
    if x is None:
        return sel
    chosen = model.chosen(np.round(x), len(problem.candidates))
    book = ledger(problem, chosen)
    if book.over():
        return sel
    goodput = float(sum(problem.weights[q] for q in book.chosen))
    cost = book.cost
    tol = 1e-9 * max(1.0, goodput)
    if goodput < sel.goodput - tol or (
            goodput <= sel.goodput + tol and cost >= sel.cost_per_hour - 1e-9 * max(1.0, cost)):
        return sel
    return replace(sel, chosen=chosen, goodput=goodput, cost_per_hour=cost,
                   status="time_limit", cost_gap=1.0)


def _most_cost(problem: SelectionProblem, model: MilpModel) -> float:
    """An upper bound on the cost of any selection: every query's dearest own cost plus every
    replica its device can hold, $/h."""
    dearest: dict[int, float] = {}
    for j, (q, _) in enumerate(model.owner):
        dearest[q] = max(dearest.get(q, 0.0), float(model.cost[j]))
    return sum(dearest.values()) + float(model.cost[model.n:] @ model.bounds.ub[model.n:])
