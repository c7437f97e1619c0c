"""Selection at scale: LP relaxation, rounding, repair and improvement, with a proven bound.

NOTE: the selection is a multiple-choice multi-dimensional knapsack (``x[j]`` per candidate, at
most one per query, one row per capacity; goodput first, cost second). Its LP relaxation has an
optimal vertex where every query is integral except at most as many as there are binding
capacity rows: at 10,000 generated queries 121 capacity rows, 44 fractional queries. So:

1. **Incumbent.** A greedy by weight per share of capacity (:func:`rounding.densest_first`):
   feasible in a fraction of a second; what is returned if the LP is not done by its deadline
   (10,000 queries: 7,164 admitted, against 6,485 heaviest-first and an LP bound of 7,555).
   The arrays and this greedy are built to the end even past the budget: a plan that admits
   nothing because the machine was busy is never the answer (:func:`greedy_packing`).
2. **Goodput LP** (HiGHS, sparse). Its duals give the proven bound (see
   :mod:`circinus.select.bounds`), rounded down to a multiple of the weight unit when there is
   one: LP 7555.56 at 10,000 queries proves 7555.
3. **Rounding.** The integral queries are kept (one that no longer fits, by the LP's
   tolerance, is set aside: the repair never exceeds a capacity); the fractional ones are
   placed by a small MILP over only them and their candidates on the capacity left (greedily,
   by LP value, if the MILP is not done in time); then every query left out is offered its
   cheapest candidate that fits, heaviest first.
4. **Cost LP on the admitted queries**, each required to keep exactly one candidate; after
   rounding, its fractional queries are placed by a small MILP that must place them all, so
   the goodput is kept where that MILP has an answer, and the cost falls (2,000 queries with
   dedicated replicas: 199.3 to 187.1 $/h against a floor of 182.3). Its duals price the
   capacities, and any prices give a proven cost floor for *all* selections of this goodput
   (:func:`circinus.select.bounds.cheapest_reach`). With shared deployments the cost LP packs
   the capacities so tight that the MILP finds no answer and the greedy placing drops a few
   queries: of nine generated worlds of 1,000 to 100,000 queries (``circinus gen``, several
   seeds, mixes and tightnesses) it kept the goodput in none (3,000 queries: 2,700 against
   the rounding's 2,708; 100,000: 90,029 against 90,092), and its floor was 49-57 % below
   the plan's cost (3,000 to 100,000). Like step 5 it starts only while three times the
   goodput LP's time is left before its deadline: at 100,000 queries (a 5 s goodput LP) it
   took 2.1 s for nothing; where the LPs take tenths of a second it runs. ``keep_lp=False``
   skips it.
5. **Cost LP over all queries** with the goodput held by one row: a tighter floor (10,000
   queries: 913.4 against 907.3 $/h) and another rounding, which may admit other queries. It
   often loses a unit of goodput (the held row is tight) and is then dropped (1,000 queries:
   758 for 92.18 $/h, so 759 for 94.63 stays), but at 10,000 it leads (with step 6) to 7,550
   for 916.13 against 7,549 for 934.25. By dual simplex: 1.8 s against 3.3 s for the interior
   point method at 10,000 queries, but 32 s against 15 s at 50,000, where the goodput LP
   takes 8 s; so it starts only while three times the goodput LP's time is left before its
   deadline. ``cost_lp=False`` skips it.
6. **Improvement.** Admitted queries move to cheaper candidates that fit once their own is
   released, then left-out queries are offered the room again.

Each packing is kept only if it is lexicographically better (more goodput, or as much for
less). Every stage changes a packing only by steps that keep it within every capacity, every
solver call runs under a hard deadline (:mod:`circinus.select.highs`), and every Python stage
checks the clock: a stage cut short leaves the best packing so far. The stages' deadlines are
shares of the budget (``_GOODPUT_LP`` and the constants after it), so the LPs leave room for
what follows.

Measured with ``circinus plan`` on generated worlds (``circinus gen``, weights 1, 30 s budget)
on 2 cores shared with other work: 1,000 queries in 0.2 s, goodput 759 of at most 760;
10,000 in 2.9 s, 7,550 of 7,555 (gap 0.07%); 50,000 in 12.4 s, 37,781 of 37,796 (0.04%). The
MILP before it: 1,000 queries 760 in 30 s; 10,000 no integer answer in 30 s, a greedy 7,140
after 72 s; 50,000 HiGHS ran 620 s against its 30 s limit, then the greedy fallback failed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint
from scipy.sparse import csr_array, vstack

from circinus.estimate.base import EPS
from circinus.select.alike import Alike
from circinus.select.base import Resource, Selection, SelectionProblem
from circinus.select.bounds import cheapest_reach, goodput_bound, trivial_bound
from circinus.select.flat import DeadlinePassed, FlatProblem, FlatSelector, Packing, weight_unit
from circinus.select.highs import LpSolution, solve_lp, solve_milp, while_solving
from circinus.select.rounding import cheapen, densest_first, fill, place, round_vertex

_log = logging.getLogger(__name__)

# Deadlines of the stages, as shares of the budget. A stage that ends early leaves its time to
# the next ones. The goodput LP is the one that matters (50,000 generated queries: 7-10 s on
# 2 busy cores); the cost passes use what is left.
_GOODPUT_LP = 0.7
_GOODPUT_MILP = 0.72  # the small MILP over the fractional queries
_KEEP_LP = 0.84  # the cost LP over the admitted queries
_KEEP_MILP = 0.86
_COST_LP = 0.89  # the cost LP over all queries
_COST_MILP = 0.9
_IMPROVE = 0.95  # the rest is bookkeeping
_COST_LP_TIMES = 3.0  # a cost pass starts only with this many goodput LPs' time left before
# its deadline (module note, steps 4 and 5)
_PROVEN_COST_GAP = 1e-6  # the MILP's default relative gap; the held goodput row gives ~1e-7

ALIKE_ABOVE = 20_000
"""Candidates from which the LPs are solved over classes of alike queries."""
ALIKE_SHARE = 0.75
"""Classes per query at most for the LPs over classes to be used."""

GOODPUT_LP = "goodput LP"
"""What a ``warm`` :class:`LpRoundSelector` keeps on the problem it selected in
(:meth:`~circinus.select.base.SelectionProblem.stash`): a :class:`Solved`."""


@dataclass(frozen=True)
class Solved:
    """A goodput LP solved with its solver kept (``warm``), and the arrays it was solved on."""

    flat: FlatProblem
    lp: LpSolution


_At = Callable[[float], float]
"""The instant by which a share of the budget is spent."""


@dataclass
class _Best:
    """The best packing so far and what is proven about it."""

    pack: Packing
    bound: float
    cost_floor: float = 0.0
    status: str = "greedy"
    unit_values: tuple[tuple[Resource, float], ...] = ()
    """The goodput LP's duals of the capacity rows (:attr:`Selection.unit_values`)."""

    def offer(self, pack: Packing, stage: str) -> None:
        """Keep ``pack`` if it has more goodput, or as much and costs less."""
        g1, g0 = pack.goodput(), self.pack.goodput()
        c1, c0 = pack.cost(), self.pack.cost()
        _log.debug("%s: goodput %g, cost %.6g", stage, g1, c1)
        tol = 1e-9 * max(1.0, abs(g0))
        if g1 > g0 + tol or (g1 >= g0 - tol and c1 < c0 - 1e-9 * max(1.0, c0)):
            self.pack = pack


class LpRoundSelector(FlatSelector):
    """LP relaxation, rounding, repair and improvement; see the module note.

    Args:
        small_milp: place the fractional queries of each rounding with a small MILP (else
            greedily by LP value).
        cost_lp: solve the cost LP over all queries too (module note, step 5).
        keep_lp: solve the cost LP over the admitted queries (step 4).
        warm: keep the goodput LP's solver, where the LP is solved over classes of alike
            queries, with the arrays on the problem (:data:`GOODPUT_LP`), for
            :meth:`select_again` (:func:`circinus.select.deflate.reselect`).
    """

    def __init__(self, *, small_milp: bool = True, cost_lp: bool = True,
                 keep_lp: bool = True, warm: bool = False) -> None:
        self.small_milp = small_milp
        self.cost_lp = cost_lp
        self.keep_lp = keep_lp
        self.warm = warm

    def select_flat(self, flat: FlatProblem, problem: SelectionProblem, *, start: float,
                    time_limit_s: float, alike: Alike | None = None) -> Selection:
        """:meth:`select` on the arrays ``flat`` of ``problem``, the budget counted from
        ``start`` (a :func:`time.monotonic` instant); ``alike`` are ``flat``'s
        :func:`alike_classes` if the caller has them."""

        def at(share: float) -> float:
            return start + share * time_limit_s

        best = _Best(Packing(flat), bound=trivial_bound(flat))
        unit = weight_unit(problem.weights)
        try:
            self._run(flat, best, unit, at, alike, problem)
        except DeadlinePassed:
            _log.debug("deadline passed")
        return _report(flat, best, start)

    def select_again(self, flat: FlatProblem, problem: SelectionProblem, solved: Solved, *,
                     start: float, time_limit_s: float) -> Selection:
        """The goodput LP ``solved`` earlier for ``problem`` under other capacities (the
        :data:`GOODPUT_LP` kept by a ``warm`` selector), solved again warm for ``flat``'s
        capacities (``flat`` that problem's arrays with other ``cap``), then rounded within
        ``time_limit_s`` from ``start``, for a fit to whole replicas to fill and improve;
        without the greedy floor (an empty selection when the LP is not solved in time), the
        cost LPs and the improvement. The bound is this problem's."""

        def at(share: float) -> float:
            return start + share * time_limit_s

        best = _Best(Packing(flat), bound=trivial_bound(flat))
        unit = weight_unit(problem.weights)
        try:
            assert solved.lp.again is not None, "a warm LP has its solver"
            lp = solved.lp.again(flat.cap, at(_GOODPUT_LP))
            if lp is not None:
                best.bound = min(best.bound, goodput_bound(flat, lp.duals, unit))
                best.status = "rounded"
                _log.debug("goodput LP again: %g, bound %g", -lp.objective, best.bound)
                # Rounded without the fill and the moves to cheaper candidates: the fit to
                # whole replicas after it fills and moves in whole replicas (100,000 generated
                # queries: 0.8-1.1 s against 2.3-2.4 s for this selection, 89,475 admitted
                # after the fit against 89,452, for 2,511.03 against 2,500.45 $/h)
                best.offer(self._round(flat, lp.x, unit, at(_GOODPUT_MILP), at(_IMPROVE),
                                       filled=False), "rounded")
                best.cost_floor = cheapest_reach(flat, best.pack.goodput())
            else:
                _log.debug("goodput LP again: not solved by its deadline")
        except DeadlinePassed:
            _log.debug("deadline passed")
        return _report(flat, best, start)

    def _run(self, flat: FlatProblem, best: _Best, unit: float | None, at: _At,
             alike: Alike | None, problem: SelectionProblem) -> None:
        """The stages of the module note; raises :class:`DeadlinePassed` when cut short."""
        if flat.n == 0:
            best.status = "optimal"
            return
        lp_start = time.monotonic()
        # the greedy floor while HiGHS solves the goodput LP (0.7 s at 100,000 generated
        # queries), or before the rounding if the LP is not reached
        with while_solving(lambda: best.offer(greedy_packing(flat), "greedy")):
            alike = alike or alike_classes(flat)
            if alike is None:
                lp = solve_lp(-flat.weight, _rows(flat), _rhs(flat), deadline=at(_GOODPUT_LP))
                duals = None if lp is None else lp.duals[flat.nq:]
            else:
                # Over classes the dual simplex is the faster (100,000 generated queries,
                # 24,097 classes: 5.0 s against 11.9 s for the interior point method).
                lp = alike.solve(flat, -flat.weight, flat.usage, flat.cap,
                                 queries=np.arange(flat.nq), equal=False,
                                 deadline=at(_GOODPUT_LP), simplex=True, warm=self.warm)
                duals = None if lp is None else lp.duals
                if lp is not None and lp.again is not None:
                    problem.stash(GOODPUT_LP, Solved(flat, lp))
        if lp is None or duals is None:
            return
        lp_seconds = time.monotonic() - lp_start  # with the greedy where the LP took less
        best.bound = min(best.bound, goodput_bound(flat, duals, unit))
        best.unit_values = tuple(zip(flat.rows, duals.tolist(), strict=True))
        best.status = "rounded"
        _log.debug("goodput LP: %g, bound %g", -lp.objective, best.bound)
        best.offer(self._round(flat, lp.x, unit, at(_GOODPUT_MILP), at(_KEEP_LP)), "rounded")

        def time_for(share: float) -> bool:
            """Whether a cost pass due by ``share`` of the budget has time to start."""
            return at(share) - time.monotonic() >= _COST_LP_TIMES * lp_seconds

        if self.keep_lp and time_for(_KEEP_LP):
            self._keep_pass(flat, best, at, alike)
        else:
            best.cost_floor = cheapest_reach(flat, best.pack.goodput())
        if self.cost_lp and time_for(_COST_LP):
            self._cost_pass(flat, best, unit, at, alike)
        improved = best.pack.copy()
        cheapen(flat, improved, at(_IMPROVE))
        fill(flat, improved, at(_IMPROVE))
        best.offer(improved, "improved")

    def _round(self, flat: FlatProblem, x: np.ndarray, unit: float | None, exact_by: float,
               deadline: float, *, filled: bool = True) -> Packing:
        """Round the LP vertex ``x`` (module note, step 3; without offering the queries left
        out their cheapest candidate that fits unless ``filled``)."""
        pack, frac = round_vertex(flat, x, deadline)
        if self.small_milp:
            _place_exactly(flat, pack, frac, unit, exact_by)
        place(flat, pack, frac, deadline, prefer=x)
        if filled:
            fill(flat, pack, deadline)
        return pack

    def _keep_pass(self, flat: FlatProblem, best: _Best, at: _At, alike: Alike | None) -> None:
        """Minimise cost with every admitted query kept (module note, step 4)."""
        keep = [q for q, j in enumerate(best.pack.choice) if j >= 0]
        goodput = best.pack.goodput()
        best.cost_floor = cheapest_reach(flat, goodput)
        if not keep:
            return
        if alike is None:
            cols = np.array([j for q in keep for j in flat.of(q)], dtype=np.int64)
            lp = solve_lp(flat.cost[cols], flat.usage[:, cols].tocsr(), flat.cap,
                          a_eq=_one_each(flat, cols), b_eq=np.ones(len(keep)),
                          deadline=at(_KEEP_LP), simplex=True)
            if lp is not None:
                x = np.zeros(flat.n)
                x[cols] = lp.x
        else:
            lp = alike.solve(flat, flat.cost, flat.usage, flat.cap,
                             queries=np.array(keep, dtype=np.int64), equal=True,
                             deadline=at(_KEEP_LP), simplex=True)
            if lp is not None:
                x = lp.x
        if lp is None:
            return
        best.cost_floor = max(best.cost_floor, cheapest_reach(flat, goodput, lp.duals))
        _log.debug("kept-set cost LP: %g, floor %g", lp.objective, best.cost_floor)
        pack, frac = round_vertex(flat, x, at(_KEEP_MILP))
        if self.small_milp:
            _place_exactly(flat, pack, frac, None, at(_KEEP_MILP), all_of=True)
        place(flat, pack, frac, at(_COST_LP), prefer=x)
        fill(flat, pack, at(_COST_LP))
        best.offer(pack, "kept-set cost LP")

    def _cost_pass(self, flat: FlatProblem, best: _Best, unit: float | None, at: _At,
                   alike: Alike | None) -> None:
        """Minimise cost over all queries with the goodput held (module note, step 5)."""
        goodput = best.pack.goodput()
        held = goodput - 1e-7 * max(1.0, goodput)
        if alike is None:
            a = vstack([_rows(flat), csr_array(-flat.weight[None, :])]).tocsr()
            lp = solve_lp(flat.cost, a, np.concatenate([_rhs(flat), [-held]]),
                          deadline=at(_COST_LP), simplex=True)
            prices = None if lp is None else lp.duals[flat.nq:-1]
        else:
            a = vstack([flat.usage, csr_array(-flat.weight[None, :])]).tocsr()
            lp = alike.solve(flat, flat.cost, a, np.concatenate([flat.cap, [-held]]),
                             queries=np.arange(flat.nq), equal=False, deadline=at(_COST_LP),
                             simplex=True)
            prices = None if lp is None else lp.duals[:-1]
        if lp is None or prices is None:
            return
        floor = cheapest_reach(flat, held, prices)
        best.cost_floor = max(best.cost_floor, floor)
        _log.debug("cost LP: %g, floor %g", lp.objective, best.cost_floor)
        best.offer(self._round(flat, lp.x, unit, at(_COST_MILP), at(_IMPROVE)), "cost LP")


def alike_classes(flat: FlatProblem) -> Alike | None:
    """The classes of alike queries of ``flat`` when the LPs are to be solved over them
    (:mod:`circinus.select.alike`): from :data:`ALIKE_ABOVE` candidates on, when there are at
    most :data:`ALIKE_SHARE` as many classes as queries."""
    if flat.n < ALIKE_ABOVE:
        return None
    alike = Alike.of(flat)
    return alike if alike.size <= ALIKE_SHARE * flat.nq else None


def _rows(flat: FlatProblem) -> csr_array:
    """Query rows (at most one candidate) above the capacity rows."""
    return vstack([flat.query_rows(), flat.usage]).tocsr()


def _rhs(flat: FlatProblem) -> np.ndarray:
    return np.concatenate([np.ones(flat.nq), flat.cap])


def _one_each(flat: FlatProblem, cols: np.ndarray) -> csr_array:
    """One row per query among ``cols``'s owners, over the columns ``cols``."""
    local = np.unique(flat.owner[cols], return_inverse=True)[1]
    return csr_array((np.ones(len(cols)), (local, np.arange(len(cols)))),
                     shape=(int(local.max()) + 1, len(cols)))


def _place_exactly(flat: FlatProblem, pack: Packing, queries: Sequence[int],
                   unit: float | None, deadline: float, *, all_of: bool = False) -> None:
    """Place ``queries`` by a MILP over only their candidates that fit what ``pack`` left.

    By default it maximises their goodput and, when the weights have a unit ``u``, then their
    cost, in one objective ``sum (c - B w) x`` with ``B = (C + 1) / u`` (goodputs differ by at
    least ``u``, costs by at most ``C``). With ``all_of`` every query must be placed and the
    cost alone is minimised. A solution the packing cannot take (solver tolerance) is skipped
    candidate by candidate; nothing is placed when there is no answer by ``deadline``.
    """
    cols = np.array([j for q in queries for j in flat.of(q) if pack.fits(j)], dtype=np.int64)
    if len(cols) == 0:
        return
    a = flat.usage[:, cols].tocsr()
    used = np.flatnonzero(np.diff(a.indptr))
    free = np.maximum(np.array(pack.free)[used], 0.0)
    one = _one_each(flat, cols)
    w, c = flat.weight[cols], flat.cost[cols]
    if all_of:
        if one.shape[0] < len(queries):
            return  # some query has no candidate that fits: the MILP is infeasible
        obj, low = c, 1.0
    else:
        obj, low = (-w if unit is None else c - (c.sum() + 1.0) / unit * w), -np.inf
    res = solve_milp(obj, constraints=[LinearConstraint(one, low, 1.0),
                                       LinearConstraint(a[used], -np.inf, free)],
                     integrality=np.ones(len(cols)), bounds=Bounds(0, 1), deadline=deadline)
    _log.debug("small MILP: %d queries, %d candidates, %s", one.shape[0], len(cols),
               "no answer" if res is None or res.x is None else "solved")
    if res is None or res.x is None:
        return
    for j in cols[np.asarray(res.x) > 0.5].tolist():
        if pack.choice[int(flat.owner[j])] < 0 and pack.fits(j):
            pack.put(j)


def _report(flat: FlatProblem, best: _Best, start: float) -> Selection:
    pack = best.pack
    goodput, cost = pack.goodput(), pack.cost()
    bound = max(best.bound, goodput)
    gap = (bound - goodput) / bound if bound > EPS else 0.0
    floor = min(best.cost_floor, cost)
    cost_gap = (cost - floor) / cost if cost > EPS else 0.0
    status = best.status
    if status == "rounded" and gap <= 1e-9 and cost_gap <= _PROVEN_COST_GAP:
        status = "optimal"
    chosen = tuple(None if j < 0 else j - int(flat.first[q]) for q, j in enumerate(pack.choice))
    return Selection(chosen=chosen, goodput=goodput, cost_per_hour=cost, goodput_bound=bound,
                     gap=gap, cost_gap=cost_gap, status=status,
                     seconds=time.monotonic() - start, unit_values=best.unit_values)


def greedy_packing(flat: FlatProblem) -> Packing:
    """The greedy by weight per share of capacity (:func:`rounding.densest_first`), built to
    the end whatever the clock says: the floor of every selection at scale. A budget spent
    before it (the arrays of 100,000 queries on a loaded machine) must not leave a plan that
    admits nothing; it costs one pass over the candidates (measured in the module note)."""
    pack = Packing(flat)
    order, prefer = densest_first(flat)
    place(flat, pack, order, math.inf, prefer=prefer)
    return pack


def greedy_selection(flat: FlatProblem, start: float) -> Selection:
    """The :func:`greedy_packing` of ``flat`` as a selection (status ``greedy``), the bound
    the trivial one: what a selector returns when its budget ended before its first LP."""
    return _report(flat, _Best(greedy_packing(flat), bound=trivial_bound(flat)), start)
