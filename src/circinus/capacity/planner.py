"""Capacity planning: the cheapest additions for a goodput, verified by planning the grown world.

NOTE: three steps.

1. **Search twice**: on the world at its largest, every growable device at all the units it
   may get (:data:`~circinus.capacity.resources.SEARCH_UNITS`, or a catalog offering's
   ``max_units``), so that no candidate plan is left out for want of capacity; and on the world
   as it is, whose few candidates per query are the ones that make do with little (a roomy
   world's best plans are others). A query's candidates are both sets.
2. **Select and buy together**: the joint MILP (:mod:`circinus.capacity.model`) picks every
   query's candidate and the whole units to add, at the least cost of the additions, with at
   least the asked share of query weight admitted.
3. **Verify by planning**: the world with the additions is planned by the ordinary
   :class:`~circinus.planner.Planner` (its own search, selection, link and deployment checks);
   that plan is the answer. Should it admit less than asked (the checks estimate plans at
   their deployments' real load; the selection works within a time budget), the MILP is asked
   again for the shortfall more, at most :data:`ROUNDS` times in all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from circinus.capacity.marginal import UnitValue, lp_unit_values, unit_values
from circinus.capacity.model import GOODPUT_TOLERANCE, CapacityModel, Sizing
from circinus.capacity.problem import CapacityProblem
from circinus.capacity.resources import Growable, grown
from circinus.collector import paused
from circinus.errors import InfeasibleError, SolverBudgetExceeded
from circinus.estimate.analytic import AnalyticEstimator
from circinus.planner import SEARCHES, Planner, PlanResult
from circinus.search.base import BaseSearch, QueryCandidates
from circinus.select.base import BaseSelector, Selection, SelectionProblem
from circinus.select.deployments import settle
from circinus.select.lp import LpRoundSelector
from circinus.select.milp import MilpSelector
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings, World
from circinus.spec.validate import build_index

START_SHARE = 0.2
"""Share of the MILP's budget for each selection the greedy answers start from (at today's
capacities, and at the most every device may have)."""
ROUNDS = 4
"""Most times the joint MILP is asked for additions (the first, then once per shortfall)."""


@dataclass(frozen=True)
class CapacityResult:
    """What to add, what it costs, and the plan of the world with it."""

    world: World
    """The world with the additions (new devices appended to its devices)."""
    index: WorldIndex
    """Index of :attr:`world`."""
    share: float
    """Asked share of query weight."""
    total_weight: float
    growables: tuple[Growable, ...]
    sizing: Sizing
    """The joint MILP's answer of the last round."""
    plan: PlanResult
    """The plan of :attr:`world` by the ordinary planner."""
    rounds: int
    before: tuple[UnitValue, ...]
    """Value of one more unit of each growable device at today's capacities."""
    after: tuple[UnitValue, ...]
    """The same with the additions (from the plan's own selection)."""
    problem: CapacityProblem
    """The joint problem (for :func:`circinus.capacity.sweep.sweep`)."""
    replanned: PlanResult | None
    """The grown world planned from scratch by the ordinary planner (``None``: not asked)."""
    today_goodput: float | None
    """Goodput of the world as it is, planned by the ordinary planner (``None``: not asked)."""
    search_seconds: float
    solve_seconds: float
    check_seconds: float
    """The link and deployment checks of the joint selection, s."""
    verify_seconds: float

    @property
    def additions(self) -> dict[str, int]:
        """Device or pool name -> units added."""
        return self.sizing.additions

    @property
    def cost_per_hour(self) -> float:
        """Cost of the additions, $/h."""
        return self.sizing.cost_per_hour

    @property
    def reached(self) -> bool:
        """Whether the plan admits at least the asked share of query weight, and so does the
        grown world planned from scratch (when it was)."""
        least = self.share * self.total_weight * (1 - GOODPUT_TOLERANCE)
        return self.plan.goodput >= least and (
            self.replanned is None or self.replanned.goodput >= least)


class CapacityPlanner:
    """Finds the cheapest additions to a world's devices (and new devices of a catalog) with
    which at least a share of the query weight is admitted (see the module note).

    Args:
        settings: planner settings overriding the world's.
        time_limit_s: budget of each joint MILP solve, s (default: the settings' selection
            budget).
        budget: most the additions may cost, $/h (``None``: no limit).
        verify: also plan the grown world from scratch with the ordinary planner
            (:attr:`CapacityResult.replanned`), and the world as it is
            (:attr:`CapacityResult.today_goodput`).
    """

    def __init__(self, *, settings: PlannerSettings | None = None,
                 time_limit_s: float | None = None, budget: float | None = None,
                 verify: bool = True) -> None:
        self.settings = settings
        self.time_limit_s = time_limit_s
        self.budget = budget
        self.verify = verify

    def plan(self, world: World, share: float, growables: tuple[Growable, ...]
             ) -> CapacityResult:
        """The cheapest additions to ``growables`` admitting ``share`` of ``world``'s query
        weight, and the plan with them.

        Raises:
            InfeasibleError: the share is out of reach (at any capacity, or within the budget);
                the message says the best reachable goodput.
            SolverBudgetExceeded: the MILP found no answer within its time.
        """
        settings = self.settings or world.planner
        limit = self.time_limit_s or settings.time_limit_s
        today_goodput = Planner(settings=settings).plan(world).goodput if self.verify else None
        t0 = time.monotonic()
        with paused():
            cp, search, found = self.problem(world, growables, settings)
            t1 = time.monotonic()
            model = CapacityModel(cp)
            total = cp.total_weight
            target = share * total
            need = target
            today = cp.today()
            before = _values(today, growables, t1 + limit)
            start = settle(today, LpRoundSelector().select(
                today, time_limit_s=START_SHARE * limit)).chosen
            full: tuple[int | None, ...] | None = settle(cp.problem, LpRoundSelector().select(
                cp.problem, time_limit_s=START_SHARE * limit)).chosen
            rounds = 0
            solve_s = check_s = verify_s = floor = 0.0
            replanned: PlanResult | None = None
            whole = (cp, model, found, start, full)  # every candidate
            narrowed = False  # choosing among the candidates that passed the checks
            answer: tuple[Sizing, PlanResult, World, WorldIndex, SelectionProblem] | None = None
            while rounds < ROUNDS:
                rounds += 1
                s0 = time.monotonic()
                try:
                    sizing = self._cheapest(model, need, share, limit, start, full, floor)
                except (InfeasibleError, SolverBudgetExceeded):
                    solve_s += time.monotonic() - s0
                    if answer is None:
                        raise
                    if not narrowed:
                        break
                    # The survivors cannot reach it: back to every candidate, asking for more.
                    cp, model, found, start, full = whole
                    narrowed = False
                    continue
                solve_s += time.monotonic() - s0
                units = {g.name: g.units + sizing.additions.get(g.name, 0) for g in growables}
                upgraded = grown(world, growables, units)
                index = build_index(upgraded)
                problem = cp.at(sizing.additions)
                c0 = time.monotonic()
                result = Planner(settings=settings).select_found(
                    index, found, search=search, settings=settings, problem=problem,
                    selector=_Seeded(problem, sizing, MilpSelector()))
                check_s += time.monotonic() - c0
                answer = (sizing, result, upgraded, index, problem)
                short = target * (1 - GOODPUT_TOLERANCE) - result.goodput
                replanned = None
                if short <= 0:
                    if not self.verify:
                        break
                    v0 = time.monotonic()
                    replanned = Planner(settings=settings).plan(index)
                    verify_s += time.monotonic() - v0
                    if replanned.goodput >= target * (1 - GOODPUT_TOLERANCE):
                        break
                    # The ordinary planner does not find the joint plan (its few candidates per
                    # query do not combine so well): try the next cheapest additions.
                    floor = sizing.cost_per_hour + _least_step(growables)
                    continue
                # Select and buy again among the candidates that passed the checks, within the
                # utilisation ceilings the link check put on links, asking for the shortfall
                # more from the second time on.
                if narrowed:
                    need = min(total, need + short)
                assert result.problem is not None
                capacity = dict(cp.problem.capacity)
                if result.link_check is not None:
                    capacity = result.link_check.usable(capacity)
                kept = replace(result.problem, capacity=capacity)
                found = list(kept.candidates)
                cp = CapacityProblem.build(kept, growables)
                model = CapacityModel(cp)
                start, full = result.selection.chosen, None
                narrowed = True
            assert answer is not None
            sizing, result, upgraded, index, problem = answer
            after = _values(problem, growables, time.monotonic() + limit)
        return CapacityResult(
            world=upgraded, index=index, share=share, total_weight=total,
            growables=growables, sizing=sizing, plan=result, rounds=rounds,
            before=before, after=after, problem=cp, replanned=replanned,
            today_goodput=today_goodput,
            search_seconds=t1 - t0, solve_seconds=solve_s, check_seconds=check_s,
            verify_seconds=verify_s)

    def problem(self, world: World, growables: tuple[Growable, ...],
                settings: PlannerSettings,
                ) -> tuple[CapacityProblem, BaseSearch, list[QueryCandidates]]:
        """Step 1 of the module note: the candidates of ``world`` as it is and with every
        growable at its most, together, as a joint problem, with the search at the most (whose
        estimator the checks use)."""
        index = build_index(grown(world, growables, {g.name: g.most for g in growables}))
        search = SEARCHES["circinus"](estimator=AnalyticEstimator(index=index),
                                      settings=settings)
        found = list(search.search(index.world.queries))
        today = build_index(world)
        small = SEARCHES["circinus"](estimator=AnalyticEstimator(index=today), settings=settings)
        found = [merged(a, b) for a, b in zip(found, small.search(world.queries), strict=True)]
        return (CapacityProblem.build(SelectionProblem.build(index, found), growables), search,
                found)

    def _cheapest(self, model: CapacityModel, need: float, share: float,
                  limit: float, start: tuple[int | None, ...],
                  full: tuple[int | None, ...] | None, floor: float) -> Sizing:
        found = model.cheapest(need, budget=self.budget, deadline=time.monotonic() + limit,
                               start=start, full=full, floor=floor)
        if isinstance(found, Sizing):
            return found
        total = model.cp.total_weight
        if not found.proven:
            raise SolverBudgetExceeded(
                f"--time-limit: no additions reaching goodput {share:g} found within "
                f"{limit:g} s; raise --time-limit or narrow --resources")
        best = model.best(time.monotonic() + limit, budget=self.budget)
        reach = "" if best is None else (
            ("; the most reachable is " if best.status == "optimal" else
             f"; the best found in {limit:g} s reaches ")
            + f"{best.goodput / total:.4g} of the query weight"
            + ("" if self.budget is None else f" (additions ${best.cost_per_hour:.4g}/h)"))
        if self.budget is not None:
            raise InfeasibleError(
                f"--budget: goodput {share:g} is out of reach with ${self.budget:g}/h of "
                f"additions{reach}; raise --budget or lower --goodput")
        raise InfeasibleError(
            f"--goodput: {share:g} is out of reach at any capacity of the growable devices"
            f"{reach} (the other queries have no plan meeting their SLOs, or need devices or "
            "links that cannot grow); lower --goodput, widen --resources or add a --catalog")


def _least_step(growables: tuple[Growable, ...]) -> float:
    """Less than the smallest price step of the additions, $/h: a floor that cost plus this
    excludes the additions just tried and no dearer ones."""
    prices = [g.price_per_unit_hour for g in growables if g.price_per_unit_hour > 0]
    return 0.5 * min(prices) if prices else 1e-9


def _values(problem: SelectionProblem, growables: tuple[Growable, ...], deadline: float
            ) -> tuple[UnitValue, ...]:
    """Values of one more unit of each growable at ``problem``'s capacities, by the LP."""
    duals = lp_unit_values(problem, deadline=deadline)
    return () if duals is None else unit_values(duals, growables)


class _Seeded(BaseSelector):
    """The joint MILP's selection when asked for ``problem`` itself; ``fallback``'s for any
    other (the checks select again on the candidates that survive them)."""

    def __init__(self, problem: SelectionProblem, sizing: Sizing,
                 fallback: BaseSelector) -> None:
        self.problem = problem
        self.sizing = sizing
        self.fallback = fallback

    def select(self, problem: SelectionProblem, *, time_limit_s: float) -> Selection:
        if problem is not self.problem:
            return self.fallback.select(problem, time_limit_s=time_limit_s)
        s = self.sizing
        bound = float(sum(w for qc, w in zip(problem.candidates, problem.weights, strict=True)
                          if qc.candidates))
        return Selection(chosen=s.chosen, goodput=s.goodput, cost_per_hour=s.plan_cost_per_hour,
                         goodput_bound=max(bound, s.goodput),
                         gap=(bound - s.goodput) / bound if bound > s.goodput else 0.0,
                         cost_gap=1.0, status="time_limit", seconds=0.0)


def merged(a: QueryCandidates, b: QueryCandidates) -> QueryCandidates:
    """The candidates of ``a`` and those of ``b`` that ``a`` lacks (one query searched with two
    capacities: the plans a tight world keeps differ from those of a roomy one)."""
    seen = {c.plan for c in a.candidates}
    extra = tuple(c for c in b.candidates if c.plan not in seen)
    if not extra:
        return a
    return replace(a, candidates=a.candidates + extra, reason=None,
                   evaluations=a.evaluations + b.evaluations)
