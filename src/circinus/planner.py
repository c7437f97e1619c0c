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

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace

from circinus.baselines import (
    BayesOptSearch,
    CheapestVariantSearch,
    MultiTierAloneSearch,
    MultiTierSearch,
    NexusSearch,
    OnlineBayesOptSearch,
    RandomSearch,
)
from circinus.collector import paused
from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import EPS, Estimate
from circinus.forks import beside, until_on_forks
from circinus.parallel import BaseSearchExecutor, ChunkRecord, SerialExecutor
from circinus.plan.records import QueryPlan
from circinus.search.base import BaseSearch, QueryCandidates
from circinus.search.decomposed import DecomposedSearch
from circinus.search.exhaustive import ExhaustiveSearch
from circinus.search.oracle import OracleSearch
from circinus.select.base import BaseSelector, Resource, Selection, SelectionProblem
from circinus.select.contention import LinkCheck, check_links
from circinus.select.deflate import reselect
from circinus.select.deployments import repair, settle, work_out
from circinus.select.fcfs import FcfsSelector
from circinus.select.highs import while_solving
from circinus.select.join import join_open
from circinus.select.lp import LpRoundSelector
from circinus.select.milp import LP_ABOVE, MilpSelector, exact_selector
from circinus.select.partitioned import PartitionedSelector
from circinus.select.sizing import (
    DeploymentCheck,
    SizedDeployment,
    check_deployments,
    sized,
)
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings, Query, World
from circinus.spec.unknowns import needs_profiling
from circinus.spec.validate import build_index
from circinus.whynot import NearestSlo, Residual, WhyNot, scarcest

_log = logging.getLogger(__name__)

SEARCHES: dict[str, Callable[..., BaseSearch]] = {
    "circinus": DecomposedSearch,
    "exhaustive": ExhaustiveSearch,
    "oracle": OracleSearch,
    "vulcan": OnlineBayesOptSearch,
    "vulcan-alone": BayesOptSearch,
    "jellybean": MultiTierSearch,
    "jellybean-alone": MultiTierAloneSearch,
    "infaas": CheapestVariantSearch,
    "nexus": NexusSearch,
    "random": RandomSearch,
}
"""Per-query searches by registry key; each takes ``estimator=`` and ``settings=``."""
SELECTORS: dict[str, Callable[[], BaseSelector]] = {
    "milp": MilpSelector, "exact": exact_selector, "lp": LpRoundSelector, "fcfs": FcfsSelector,
    "partitioned": PartitionedSelector,
}
"""Global selectors by registry key: ``milp`` is the exact MILP on small problems, the LP
rounding (``lp``) above :data:`circinus.select.milp.LP_ABOVE` candidates and the partitioned
selection (``partitioned``) above the settings' ``partition_above``; ``exact`` is the MILP at
every size. The planner configures each with its settings
(:meth:`~circinus.select.base.BaseSelector.with_settings`)."""


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
    why_not: WhyNot | None = None
    """For a rejected query: the binding objective or resource and, when the planner was asked
    for it, the nearest admissible SLO at the load the admitted queries leave."""


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
    :attr:`~circinus.estimate.base.BaseEstimator.kernel_evaluations`)."""
    why_not_seconds: float = 0.0
    """Wall time spent finding the nearest admissible SLO of rejected queries, s."""
    why_not_skipped: int = 0
    """Rejected queries whose nearest admissible SLO was asked for but not searched for,
    being past the settings' ``why_not_time_s``."""
    link_check: LinkCheck | None = None
    """What the link check did (:mod:`circinus.select.contention`; its time is part of
    ``select_seconds``); ``None`` when it is off."""
    deployment_check: DeploymentCheck | None = None
    """The shared deployments as sized and what the check of the admitted plans on them did
    (:mod:`circinus.select.sizing`; part of ``select_seconds``); ``None`` when no candidate
    joins a shared deployment."""
    problem: SelectionProblem | None = None
    """The selection problem the selection indexes: the candidates that survived the checks,
    the chosen ones with their final estimates."""
    search_chunks: tuple[ChunkRecord, ...] = ()
    """What each chunk of the search took where it ran (:mod:`circinus.parallel`)."""

    @property
    def deployments(self) -> tuple[SizedDeployment, ...]:
        """The shared deployments of the plan, each with its replicas and queries."""
        return () if self.deployment_check is None else self.deployment_check.deployments

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

    def decisions(self) -> dict[str, tuple[object, ...]]:
        """Per query: admitted or not and, if admitted, every stage's configuration, batch and
        placement (two results decide a query the same way iff these are equal)."""
        return {o.name: (o.admitted,) if o.plan is None else (
            o.admitted, tuple((s.stage, s.config, s.batch, s.placement) for s in o.plan.stages))
            for o in self.outcomes}

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
        why_not: also find each rejected query's nearest admissible SLO
            (:class:`~circinus.whynot.NearestSlo`; about one more search per group of rejected
            queries). The binding objective or resource is always given.
        store: profile store URL for worlds with estimates to measure (executable operators,
            measured accuracies), which are profiled first (:func:`circinus.profile.
            measure_world`); default :func:`circinus.profile.default_store_url`.
        freeze: freeze what the plan leaves out of the garbage collector's reach
            (:func:`circinus.collector.paused`): for a process that plans once, where it
            saves a collection over every object made (1.5 s at 10,000 queries).
        executor: where the per-group search runs (:mod:`circinus.parallel`); the plan is the
            same on every executor. Default: this process, one search over every query.
        workers: processes the planner's own steps may run on, this one and forked copies of
            it: the why-not searches within their budget (:func:`explain_rejections`; more reach
            more rejected classes in the same time), and at scale the fit of the first
            selection to whole replicas beside the second's (:func:`select_checked`; the same
            plan either way, sooner).
    """

    def __init__(self, *, search: str = "circinus", selector: str = "milp",
                 settings: PlannerSettings | None = None, why_not: bool = False,
                 store: str | None = None, freeze: bool = False,
                 executor: BaseSearchExecutor | None = None, workers: int = 1) -> None:
        if search not in SEARCHES:
            raise ValueError(f"unknown search {search!r}; choose from {sorted(SEARCHES)}")
        if selector not in SELECTORS:
            raise ValueError(f"unknown selector {selector!r}; choose from {sorted(SELECTORS)}")
        self.search_key = search
        self.selector_key = selector
        self.settings = settings
        self.why_not = why_not
        self.store = store
        self.freeze = freeze
        self.executor = executor or SerialExecutor()
        self.workers = workers

    def plan(self, world: World | WorldIndex) -> PlanResult:
        """Plan ``world`` (a validated :class:`World` or its index), measuring first what it
        leaves unknown."""
        index = world if isinstance(world, WorldIndex) else build_index(world)
        index = self._measured(index)
        settings = self.settings or index.world.planner
        estimator = AnalyticEstimator(index=index)
        search = SEARCHES[self.search_key](estimator=estimator, settings=settings)
        with paused(freeze=self.freeze):  # it was half the search's time
            t0 = time.monotonic()
            run = self.executor.search(search, index.world.queries)
            t1 = time.monotonic()
            result = self.select_found(index, run.found, search=search, settings=settings,
                                       selector=SELECTORS[self.selector_key]().with_settings(
                                           settings),
                                       search_seconds=t1 - t0)
            # Estimates computed by chunks' own searches are not in this search's estimator.
            return replace(result, search_chunks=run.chunks, kernel_evaluations=(
                result.kernel_evaluations + (0 if run.shared_search else run.kernel_evaluations)))

    def select_found(self, index: WorldIndex, found: Sequence[QueryCandidates], *,
                     search: BaseSearch, settings: PlannerSettings, selector: BaseSelector,
                     search_seconds: float = 0.0,
                     problem: SelectionProblem | None = None) -> PlanResult:
        """The plan of ``index``'s queries from their candidates ``found`` by ``search`` (whose
        estimator the checks use): selection by ``selector`` with the link and deployment
        checks, then each query's outcome. ``problem`` is the selection problem of ``found``
        when the caller has one (else built from ``index``); the resources are reported
        against ``index``'s capacities."""
        estimator = search.estimator
        assert isinstance(estimator, AnalyticEstimator)
        t1 = time.monotonic()
        problem, selection, checked, sizing = select_checked(
            estimator, index.world.queries,
            problem or SelectionProblem.build(index, found), selector, settings,
            workers=self.workers)
        t2 = time.monotonic()
        used = selection.used(problem)
        usable = problem if checked is None else replace(
            problem, capacity=checked.usable(problem.capacity))
        ceilings = {} if checked is None else dict(checked.ceilings)
        outcomes = tuple(_outcome(usable, selection, q, used, ceilings)
                         for q in range(len(found)))
        skipped: list[str] = []
        outcomes = explain_rejections(
            NearestSlo(search=search), index.world.queries, usable, outcomes, used,
            nearest=self.why_not, emptied=None if checked is None else dict(checked.emptied),
            chosen=selection.chosen, ceilings=ceilings,
            deadline=time.monotonic() + settings.why_not_time_s, skipped=skipped,
            workers=self.workers)
        t3 = time.monotonic()
        return PlanResult(
            world=index.world.name,
            outcomes=outcomes,
            selection=selection,
            resources=_resources(index, used),
            search_seconds=search_seconds,
            select_seconds=t2 - t1,
            kernel_evaluations=estimator.kernel_evaluations + (
                0 if checked is None else checked.kernel_evaluations),
            why_not_seconds=t3 - t2,
            why_not_skipped=len(skipped),
            link_check=checked,
            deployment_check=sizing,
            problem=problem,
        )

    def _without_store(self) -> Planner:
        """This planner for a world with nothing left to measure (no why-not search)."""
        return Planner(search=self.search_key, selector=self.selector_key,
                       settings=self.settings)

    def _measured(self, index: WorldIndex) -> WorldIndex:
        if not needs_profiling(index.world):
            return index  # without loading the profiler (about 0.9 s of imports)
        from circinus.profile import SqlProfileStore, default_store_url, measure_world

        store = SqlProfileStore(self.store or default_store_url())
        try:
            return build_index(measure_world(
                index.world, store, decide=lambda w: self._without_store().plan(w).decisions(),
            ).world)
        finally:
            store.close()


def default_decisions(world: World) -> dict[str, tuple[object, ...]]:
    """How the default planner decides every query of ``world`` (what the profiler checks
    its latencies against, see :func:`circinus.profile.measure_world`)."""
    return Planner().plan(world).decisions()


FIRST_SELECTION_SHARE = 0.6
"""Share of the selection budget the selector gets; the rest is for fitting its answer to
whole replicas and for the link and deployment checks (which repair it or select again)."""
RESELECT_UP_TO = LP_ABOVE
"""Candidates up to which the link check, after repairing the selection, also selects again
over what it left (the exact MILP, seconds at most there), keeping the better: above, a whole
selection per round costs more than the rest of the check (:func:`select_checked`)."""
BOTH_CHECKED_UP_TO = LP_ABOVE
"""Candidates up to which, with shared deployments, the LP rounding's answer is checked beside
the selector's and the better kept (:func:`select_checked`)."""
SECOND_SELECTION_ABOVE = LP_ABOVE
"""Candidates above which, with shared deployments, the first selection (the LP rounding
there) is fitted to whole replicas beside a second one on capacities lowered by its waste,
and the better kept (:func:`_settle_either`; :mod:`circinus.select.deflate`). Below, the
shared-deployment MILP places whole replicas itself."""
IMPROVE_SHARE = 0.05
"""Share of the selection budget for moving admitted queries to cheaper candidates
(:func:`~circinus.select.deployments.improve`)."""
JOIN_SHARE = 0.05
"""Share of the selection budget for moving queries onto the deployments the selection opens
(:func:`~circinus.select.join.join_open`): 1.5 s of the default 30 s, where a tiny world's
pass takes 0.05 s; at 10,000 generated queries it admitted 5 more in 0.8 s of CPU. Never past
the budget itself: it is an improvement, and what the budget is spent on before it is not (at
100,000 generated queries the selection and its checks used 29 of the 30 s, and the pass then
looked at 2,000 queries in its 1.5 s and moved none)."""


Checked = tuple[SelectionProblem, Selection, LinkCheck | None, DeploymentCheck | None]
"""What :func:`select_checked` returns."""


def select_checked(estimator: AnalyticEstimator, queries: Sequence[Query],
                   problem: SelectionProblem, selector: BaseSelector, settings: PlannerSettings,
                   *, workers: int = 1) -> Checked:
    """Select in ``problem`` (the candidates of ``queries``, in order, found with
    ``estimator``) within the settings' time budget, in whole replicas per shared deployment
    (:func:`~circinus.select.deployments.settle`); then run the link check
    (:func:`~circinus.select.contention.check_links`) unless the settings turn it off, and the
    deployment check (:func:`~circinus.select.sizing.check_deployments`) when candidates join
    shared deployments. Returns the problem the selection indexes (the candidates that survived
    the checks, the chosen ones with their final estimates), the selection and the checks'
    records.

    NOTE (two answers, checked): with shared deployments and up to
    :data:`BOTH_CHECKED_UP_TO` candidates, the LP rounding's selection is checked too and the
    better checked plan kept (more goodput, then less cost). The whole-replica MILP packs
    deployments up to their levels with the plans' estimates alone; where the real mix of
    co-tenants is heavier, the deployment check takes more away from its answer than it had
    over the rounding's (edge-cloud-vision: the MILP's 213 admitted before the checks, 198
    after; the rounding's 202 after). The rounding and its checks take seconds at that size;
    both bounds are proven, and the lower is reported."""
    first = _select_checked(estimator, queries, problem, selector, settings, workers)
    if (not problem.deployments or isinstance(selector, (LpRoundSelector, FcfsSelector))
            or problem.candidate_count > BOTH_CHECKED_UP_TO):
        return first
    second = _select_checked(estimator, queries, problem, LpRoundSelector(), settings, workers)
    a, b = first[1], second[1]
    best = second if _leads(b, a) else first
    bound = max(min(a.goodput_bound, b.goodput_bound), best[1].goodput)
    return (best[0], _against(best[1], bound), best[2], best[3])


def _select_checked(estimator: AnalyticEstimator, queries: Sequence[Query],
                    problem: SelectionProblem, selector: BaseSelector,
                    settings: PlannerSettings, workers: int) -> Checked:
    """:func:`select_checked` with one selector."""
    start = time.monotonic()

    def select(problem: SelectionProblem, time_limit_s: float,
               incumbent: Selection | None = None, *, first: bool = False) -> Selection:
        end = time.monotonic() + time_limit_s

        def improve_by() -> float:
            return min(end, time.monotonic() + IMPROVE_SHARE * time_limit_s)

        at_scale = first and bool(problem.deployments) and (
            problem.candidate_count > SECOND_SELECTION_ABOVE)
        # what the fits to whole replicas read of every estimate, worked out while the
        # selector's solver runs (or after it)
        with while_solving(lambda: work_out(problem)) if at_scale else nullcontext():
            sel = selector.select(problem, time_limit_s=FIRST_SELECTION_SHARE * time_limit_s)
        # filling the rounded-up replicas (goodput) may take what the budget has left; the
        # moves to cheaper candidates their share
        if at_scale and sel.status == "rounded":
            sel = _settle_either(problem, sel, end, improve_by, workers=workers)
        else:
            sel = settle(problem, sel, deadline=end, improve_by=improve_by())
        assert sel.fits(problem), "selector returned a selection over capacity"
        if incumbent is not None and incumbent.goodput > sel.goodput + EPS:
            sel = _kept(problem, sel, incumbent, deadline=improve_by())
        return sel

    def mend(problem: SelectionProblem, sel: Selection, deadline: float,
             complete: bool) -> Selection:
        sel = repair(problem, sel, deadline=deadline, complete=complete,
                     improve_by=time.monotonic() + IMPROVE_SHARE * settings.time_limit_s)
        left = deadline - time.monotonic()
        if problem.candidate_count <= RESELECT_UP_TO and left > 0:
            sel = select(problem, left, sel)  # never worse than the repair
        return sel

    selection = select(problem, settings.time_limit_s, first=True)
    bound = selection.goodput_bound
    checked = None
    if settings.link_check:
        left = settings.time_limit_s - (time.monotonic() - start)
        problem, selection, checked = check_links(estimator, queries, problem, selection,
                                                  mend, time_limit_s=left)
    if not problem.deployments:
        return problem, _against(selection, bound), checked, None
    left = settings.time_limit_s - (time.monotonic() - start)
    problem, selection, sizing = check_deployments(
        estimator, queries, problem, selection, select, links=checked is not None,
        time_limit_s=left, size=False)  # sized below, once the join pass has moved plans
    problem, selection, joined = join_open(
        estimator, queries, problem, selection, settings, links=checked is not None,
        deadline=min(time.monotonic() + JOIN_SHARE * settings.time_limit_s,
                     start + settings.time_limit_s))
    if not joined.moved:  # the chosen candidates are the check's
        sizing = replace(sizing, deployments=sized(problem, selection.chosen))
    else:  # the moved plans at their deployments' real state
        left = settings.time_limit_s - (time.monotonic() - start)
        problem, selection, again = check_deployments(
            estimator, queries, problem, selection, select, links=checked is not None,
            time_limit_s=left, since=sizing)
        sizing = replace(again, rounds=sizing.rounds + again.rounds,
                         dropped=sizing.dropped + again.dropped,
                         unadmitted=sizing.unadmitted + again.unadmitted,
                         seconds=sizing.seconds + joined.seconds + again.seconds)
    return problem, _against(selection, bound), checked, sizing


def _settle_either(problem: SelectionProblem, first: Selection, end: float,
                   improve_by: Callable[[], float], *, workers: int = 1) -> Selection:
    """The better of the LP rounding ``first`` fitted to whole replicas and a second selection
    on capacities lowered by its rounding waste (:func:`~circinus.select.deflate.reselect`),
    fitted too: more goodput, then less cost. With ``workers`` above 1 the first is fitted on a
    forked copy (the second core) while this process selects again and fits that
    (:func:`~circinus.forks.beside`), else here before; each fit until ``end``."""
    def fit_first() -> Selection:
        return settle(problem, first, deadline=end, improve_by=improve_by())

    with beside(fit_first, name="circinus-fit", fork=workers > 1) as first_settled:
        left = max(end - time.monotonic(), 0.0)
        again = reselect(problem, first, time_limit_s=FIRST_SELECTION_SHARE * left)
        # one that is not the LP's rounding (its LP not solved in time) is not fitted: a fill
        # from the greedy floor or from nothing is not worth the time
        second = (settle(problem, again, deadline=end, improve_by=improve_by())
                  if again.status == "rounded" else None)
        one = first_settled()
    if second is None:
        _log.debug("no second selection on lowered capacities (%s)", again.status)
        return one
    _log.debug("fitted to whole replicas: first %g for %.2f $/h, on lowered capacities %g "
               "for %.2f $/h", one.goodput, one.cost_per_hour, second.goodput,
               second.cost_per_hour)
    return second if _leads(second, one) else one


def _leads(b: Selection, a: Selection) -> bool:
    """Whether selection ``b`` beats ``a``: more goodput, or as much for less."""
    return b.goodput > a.goodput + EPS or (
        b.goodput >= a.goodput - EPS and b.cost_per_hour < a.cost_per_hour - EPS)


def _against(selection: Selection, bound: float) -> Selection:
    """``selection`` after the checks with its gap against ``bound``, the proven bound of the
    selection before them. The checks only take plans away (a plan slowed by its links' or
    deployments' load is one that met its SLO alone, and its estimate alone is what the first
    selection chose from), so every plan that passes them is one the first selection could
    have chosen, and that bound holds for it. A new selection over what the checks left proves
    a bound of that smaller problem only: the checks are conservative (a candidate dropped at
    one load is not tried at a lower one), so a better plan may exist outside it."""
    bound = max(bound, selection.goodput)
    gap = (bound - selection.goodput) / bound if bound > EPS else 0.0
    status = selection.status
    if status == "optimal" and gap > 1e-9:
        status = "time_limit"  # optimal for the problem the checks left, not proven here
    return replace(selection, goodput_bound=bound, gap=gap, status=status)


def _kept(problem: SelectionProblem, new: Selection, incumbent: Selection, *,
          deadline: float) -> Selection:
    """The better of a new selection and the selection so far (``incumbent``, its choices in
    ``problem``'s candidates) made to fit ``problem``, whose capacities the checks may have
    lowered: a new selection that ran short of time (a greedy one, on a loaded machine) must
    not undo the one it was to improve. Both bounds hold for ``problem`` (the incumbent's for
    one that allowed more), so the lower is kept."""
    kept = settle(problem, incumbent, deadline=deadline)
    if not kept.fits(problem) or (kept.goodput, -kept.cost_per_hour) <= (
            new.goodput, -new.cost_per_hour):
        return new
    bound = max(min(new.goodput_bound, incumbent.goodput_bound), kept.goodput)
    gap = (bound - kept.goodput) / bound if bound > EPS else 0.0
    return replace(kept, goodput_bound=bound, gap=gap,  # proven for another problem only:
                   status="time_limit" if kept.status == "optimal" else kept.status)


def _outcome(problem: SelectionProblem, selection: Selection, q: int,
             used: dict[Resource, float], ceilings: Mapping[str, float]) -> QueryOutcome:
    qc: QueryCandidates = problem.candidates[q]
    k = selection.chosen[q]
    if k is not None:
        cand = qc.candidates[k]
        return QueryOutcome(qc.query, True, cand.plan, cand.estimate, None,
                            len(qc.candidates), qc.evaluations)
    # With shared deployments explain_rejections gives the capacity reason again against the
    # selection's exact ledger: not worked out twice (a second per rejected query).
    reason = qc.reason or ("capacity" if problem.deployments else
                           capacity_reason(problem, used, q, ceilings))
    return QueryOutcome(qc.query, False, None, None, reason, len(qc.candidates), qc.evaluations)


def explain_rejections(engine: NearestSlo, queries: Sequence[Query], problem: SelectionProblem,
                       outcomes: Sequence[QueryOutcome], used: dict[Resource, float], *,
                       nearest: bool, emptied: Mapping[str, str] | None = None,
                       chosen: Sequence[int | None] | None = None,
                       ceilings: Mapping[str, float] | None = None,
                       deadline: float = math.inf, skipped: list[str] | None = None,
                       workers: int = 1) -> tuple[QueryOutcome, ...]:
    """``outcomes`` (of ``queries``, in ``problem``'s order) with the :class:`WhyNot` of every
    rejected query filled in, given what the admitted ones ``used``. A query the link check
    keeps out (``emptied``: query -> link ``src->dst``) names the link as the resource it lacks
    and gets no nearest SLO: that search estimates plans as if alone on their links.

    With ``chosen`` (the selection's candidate per query) what the admitted queries leave is
    the selection's exact ledger where candidates join shared deployments
    (:meth:`Residual.of <circinus.whynot.Residual.of>`), and the capacity reasons are given
    again against it, in whole replicas (``ceilings`` as for :func:`capacity_reason`); without
    it, or without shared deployments, use adds up plan by plan.

    The nearest SLOs are searched for once per class of alike rejected queries (equal but for
    their names, :meth:`NearestSlo.alike <circinus.whynot.NearestSlo.alike>`: each member
    gets the same ones), the largest classes first, ties in query order, until ``deadline`` (a
    :func:`time.monotonic` instant); the queries of the classes after it get their binding
    objective or resource only (``relaxations`` ``None``), and their names are appended to
    ``skipped`` in query order. With ``workers`` above 1 the classes are dealt over this
    process and forked copies of it (:func:`~circinus.forks.until_on_forks`): more
    classes reach their answer by the same deadline.

    NOTE: a search takes a fraction of a second to seconds, and at 100,000 generated queries
    10 s reached 17 of 10,866 rejected queries in query order; their 4,303 classes (link-bound
    ones aside) hold up to 16 members each, and the largest 17 hold 227. By classes, largest
    first, 10 s answered 869 of the 10,824 rejected queries in this process alone and 1,484 on
    this process and a fork (2 cores)."""
    emptied = emptied or {}
    residual = (Residual.additive(problem.capacity, used) if chosen is None else
                Residual.of(problem, chosen, engine.search.estimator.index))

    def explained(q: int, search_nearest: bool) -> QueryOutcome:
        o, qc = outcomes[q], problem.candidates[q]
        link = emptied.get(o.name)
        reason = o.reason
        assert reason is not None
        if not link and residual.shared and qc.reason is None:
            reason = capacity_reason(problem, used, q, ceilings, residual=residual)
        return replace(o, reason=reason, why_not=WhyNot("capacity", ("link", link), None)
                       if link else engine.explain(queries[q], qc, reason, residual=residual,
                                                   nearest=search_nearest))

    rejected = [q for q, o in enumerate(outcomes) if not o.admitted and o.reason is not None]
    # Every rejected query's binding objective or resource first, what those past the deadline
    # keep (10,824 rejected queries at 100,000 generated ones: 0.5 s), so that the budget
    # covers it: after the searches it ran past the deadline.
    out = list(outcomes)
    for q in rejected:
        out[q] = explained(q, False)
    classes: dict[tuple[object, ...], list[int]] = {}
    if nearest:
        for q in rejected:
            if not emptied.get(outcomes[q].name):
                classes.setdefault(engine.alike(queries[q]), []).append(q)
    def searched(members: Sequence[int]) -> dict[int, tuple[str | None, WhyNot | None]]:
        return {q: (o.reason, o.why_not) for q in members
                for o in (explained(q, True),)}

    found = until_on_forks(sorted(classes.values(), key=lambda m: (-len(m), m[0])), searched,
                           deadline, workers=workers)
    for q in rejected:
        hit = found.get(q)
        if hit is not None:
            out[q] = replace(outcomes[q], reason=hit[0], why_not=hit[1])
        elif nearest and skipped is not None and not emptied.get(outcomes[q].name):
            skipped.append(outcomes[q].name)
    return tuple(out)


def capacity_reason(problem: SelectionProblem, used: dict[Resource, float], q: int,
                    ceilings: Mapping[str, float] | None = None, *,
                    residual: Residual | None = None) -> str:
    """Why query ``q``, which has candidates, was left out: the resource most of them lack,
    given what the selection ``used`` of every resource (adding up plan by plan), or what it
    leaves (``residual``; with shared deployments, in the whole replicas a candidate would
    add). ``ceilings`` are the links' utilisation ceilings of the link check (``src->dst`` ->
    fraction), which ``problem``'s capacities already apply."""
    cands = problem.candidates[q].candidates
    residual = residual or Residual.additive(problem.capacity, used)
    lacking = scarcest(cands, residual)
    if lacking is None:
        return (f"selection: its {len(cands)} candidate(s) fit, but admitting it would lower "
                "goodput elsewhere or the solver's time budget ran out")
    (kind, name), count = lacking
    unit = {"device": "units", "memory": "GB", "link": "Mbit/s"}[kind]
    cap = problem.capacity[kind, name]
    left = residual.left((kind, name))
    ceiling = (ceilings or {}).get(name) if kind == "link" else None
    usable = "" if ceiling is None else (
        f" (kept under {ceiling:.0%} utilisation: above it, transfers slow its plans past their "
        "SLOs)")
    whole = " in the whole replicas of the shared deployments they join" if (
        residual.shared and kind != "link" and any(c.estimate.deployment_load for c in cands)
    ) else ""
    return (f"capacity: {kind} {name} has {left:.3g} of {cap:.3g} {unit} left{usable}, too "
            f"little for {count} of its {len(cands)} candidate(s){whole}")


def _resources(index: WorldIndex, used: Mapping[Resource, float]) -> tuple[ResourceUse, ...]:
    """Use against capacity of every device, memory and link, given what the selection
    ``used``."""
    out = [ResourceUse("device", d.name, used.get(("device", d.name), 0.0), d.units)
           for d in index.world.devices]
    out += [ResourceUse("memory", d.name, used.get(("memory", d.name), 0.0), d.memory_gb)
            for d in index.world.devices if d.memory_gb is not None]
    out += [ResourceUse("link", f"{s}->{t}", used.get(("link", f"{s}->{t}"), 0.0),
                        link.capacity_mbps) for (s, t), link in sorted(index.links.items())]
    return tuple(out)
