"""The planner: world -> per-query candidates -> global selection -> plan result.

Usage::

    import circinus
    world = circinus.load_world("examples/jellybean-vqa.yaml")
    result = circinus.Planner().plan(world)
    print(result.goodput, result.cost_per_hour)

Search and selection are plug-ins named by registry key (:data:`SEARCHES`, :data:`SELECTORS`)
so the CLI and config files can choose them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from circinus.baselines import (
    BayesOptSearch,
    BeamGreedySearch,
    CheapestVariantSearch,
    RandomSearch,
)
from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import BaseEstimator, Estimate
from circinus.plan.records import QueryPlan
from circinus.search.base import BaseSearch, QueryCandidates
from circinus.search.decomposed import DecomposedSearch
from circinus.search.exhaustive import ExhaustiveSearch
from circinus.select.base import BaseSelector, Resource, Selection, SelectionProblem
from circinus.select.fcfs import FcfsSelector
from circinus.select.milp import MilpSelector
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings, World
from circinus.spec.validate import build_index

SEARCHES: dict[str, Callable[..., BaseSearch]] = {
    "circinus": DecomposedSearch,
    "exhaustive": ExhaustiveSearch,
    "vulcan": BayesOptSearch,
    "jellybean": BeamGreedySearch,
    "infaas": CheapestVariantSearch,
    "random": RandomSearch,
}
"""Per-query searches by registry key; each takes ``estimator=`` and ``settings=``."""
SELECTORS: dict[str, Callable[[], BaseSelector]] = {"milp": MilpSelector, "fcfs": FcfsSelector}
"""Global selectors by registry key."""


@dataclass(frozen=True)
class QueryOutcome:
    """What the planner decided for one query."""

    name: str
    admitted: bool
    plan: QueryPlan | None
    estimate: Estimate | None
    reason: str | None
    """Why the query is not admitted (``None`` when admitted)."""
    candidates: int
    evaluations: int


@dataclass(frozen=True)
class ResourceUse:
    """Use of one resource by the admitted plans."""

    kind: str
    """``device``, ``memory`` or ``link``."""
    name: str
    used: float
    capacity: float | None


@dataclass(frozen=True)
class PlanResult:
    """The outcome of planning a world."""

    world: str
    outcomes: tuple[QueryOutcome, ...]
    selection: Selection
    resources: tuple[ResourceUse, ...]
    search_seconds: float
    select_seconds: float
    kernel_evaluations: int = 0
    """Stage and transfer estimates the estimator computed (see
    :attr:`BaseEstimator.kernel_evaluations`)."""

    @property
    def goodput(self) -> float:
        """Weighted number of admitted queries (all admitted plans meet their SLOs)."""
        return self.selection.goodput

    @property
    def admitted(self) -> int:
        """Number of admitted queries."""
        return sum(o.admitted for o in self.outcomes)

    @property
    def cost_per_hour(self) -> float:
        """Total cost of the admitted plans, $/h."""
        return sum(o.estimate.cost_per_hour for o in self.outcomes if o.estimate is not None)

    @property
    def evaluations(self) -> int:
        """Plans whose performance was estimated."""
        return sum(o.evaluations for o in self.outcomes)


class Planner:
    """Plans every query of a world: candidate search, then global selection.

    Args:
        search: registry key of the per-query search (see :data:`SEARCHES`).
        selector: registry key of the global selector (see :data:`SELECTORS`).
        settings: planner settings overriding the world's ``planner`` section.
    """

    def __init__(self, *, search: str = "circinus", selector: str = "milp",
                 settings: PlannerSettings | None = None) -> None:
        if search not in SEARCHES:
            raise ValueError(f"unknown search {search!r}; choose from {sorted(SEARCHES)}")
        if selector not in SELECTORS:
            raise ValueError(f"unknown selector {selector!r}; choose from {sorted(SELECTORS)}")
        self.search_key = search
        self.selector_key = selector
        self.settings = settings

    def plan(self, world: World | WorldIndex) -> PlanResult:
        """Plan ``world`` (a validated :class:`World` or its index)."""
        index = world if isinstance(world, WorldIndex) else build_index(world)
        settings = self.settings or index.world.planner
        estimator: BaseEstimator = AnalyticEstimator(index=index)
        search = SEARCHES[self.search_key](estimator=estimator, settings=settings)
        t0 = time.monotonic()
        found = search.search(index.world.queries)
        t1 = time.monotonic()
        problem = SelectionProblem.build(index, found)
        selection = SELECTORS[self.selector_key]().select(problem,
                                                           time_limit_s=settings.time_limit_s)
        t2 = time.monotonic()
        assert selection.fits(problem), "selector returned a selection over capacity"
        used = selection.used(problem)
        outcomes = tuple(_outcome(problem, selection, q, used) for q in range(len(found)))
        return PlanResult(
            world=index.world.name,
            outcomes=outcomes,
            selection=selection,
            resources=_resources(index, problem, selection),
            search_seconds=t1 - t0,
            select_seconds=t2 - t1,
            kernel_evaluations=estimator.kernel_evaluations,
        )


def _outcome(problem: SelectionProblem, selection: Selection, q: int,
             used: dict[Resource, float]) -> QueryOutcome:
    qc: QueryCandidates = problem.candidates[q]
    k = selection.chosen[q]
    if k is not None:
        cand = qc.candidates[k]
        return QueryOutcome(qc.query, True, cand.plan, cand.estimate, None,
                            len(qc.candidates), qc.evaluations)
    reason = qc.reason or capacity_reason(problem, used, q)
    return QueryOutcome(qc.query, False, None, None, reason, len(qc.candidates), qc.evaluations)


def capacity_reason(problem: SelectionProblem, used: dict[Resource, float], q: int) -> str:
    """Why query ``q``, which has candidates, was left out: the resource most of them lack,
    given what the selection ``used`` of every resource."""
    blocked: dict[Resource, int] = {}
    cands = problem.candidates[q].candidates
    for cand in cands:
        for res, amount in cand.estimate.usage().items():
            cap = problem.capacity.get(res)
            if cap is not None and used.get(res, 0.0) + amount > cap + 1e-9:
                blocked[res] = blocked.get(res, 0) + 1
    if not blocked:
        return (f"selection: its {len(cands)} candidate(s) fit, but admitting it would lower "
                "goodput elsewhere or the solver's time budget ran out")
    (kind, name), count = max(blocked.items(), key=lambda kv: (kv[1], kv[0]))
    unit = {"device": "units", "memory": "GB", "link": "Mbit/s"}[kind]
    cap = problem.capacity[kind, name]
    left = cap - used.get((kind, name), 0.0)
    return (f"capacity: {kind} {name} has {left:.3g} of {cap:.3g} {unit} left, too little for "
            f"{count} of its {len(cands)} candidate(s)")


def _resources(index: WorldIndex, problem: SelectionProblem,
               selection: Selection) -> tuple[ResourceUse, ...]:
    used = selection.used(problem)
    out = [ResourceUse("device", d.name, used.get(("device", d.name), 0.0), d.units)
           for d in index.world.devices]
    out += [ResourceUse("memory", d.name, used.get(("memory", d.name), 0.0), d.memory_gb)
            for d in index.world.devices if d.memory_gb is not None]
    out += [ResourceUse("link", f"{s}->{t}", used.get(("link", f"{s}->{t}"), 0.0),
                        link.capacity_mbps) for (s, t), link in sorted(index.links.items())]
    return tuple(out)
