"""Global selection over the present queries: the start and ``rebalance()`` of the online planner.

NOTE: the selector runs over the present queries' candidates under the current capacities,
followed by the batch planner's link and deployment checks
(:func:`circinus.planner.select_checked`); a plan the checks leave that misses its SLO at the
state the final selection brings is then dropped (:func:`~circinus.online.guard.settle`; never on
a selection the checks left consistent, so the online start equals the batch planner's). The
state is changed only by :func:`take`, once the caller has decided to keep the selection.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from circinus.estimate.base import EPS, Estimate
from circinus.online.guard import settle
from circinus.online.state import OnlineState
from circinus.online.tools import PlanningTools
from circinus.planner import select_checked
from circinus.search.base import Candidate
from circinus.select.base import Selection, SelectionProblem
from circinus.select.contention import LinkCheck, utilisation
from circinus.select.deployments import deployment_table
from circinus.select.sizing import DeploymentCheck, sized
from circinus.spec.models import PlannerSettings


@dataclass(frozen=True)
class Selected:
    """A global selection over present queries, after the batch planner's checks."""

    problem: SelectionProblem
    selection: Selection
    links: LinkCheck | None
    sizing: DeploymentCheck | None
    dropped: tuple[tuple[str, str, str, float], ...] = ()
    """``(query, "deployment" or "link", name, link utilisation)`` for each plan the checks
    left that missed its SLO at the state the selection brings
    (:func:`~circinus.online.guard.settle`)."""


def problem_of(tools: PlanningTools, state: OnlineState, names: Sequence[str],
               weights: Sequence[float]) -> SelectionProblem:
    """The selection problem of ``names``' candidates under the current capacities, with
    their shared deployments (as :meth:`SelectionProblem.build` makes it)."""
    entries = state.entries
    found = tuple(entries[n].found for n in names)
    plans = [c.plan for qc in found for c in qc.candidates]
    pipes = [entries[n].query.pipeline
             for n, qc in zip(names, found, strict=True) for _ in qc.candidates]
    return SelectionProblem(found, tuple(weights), dict(state.ledger.capacity),
                            deployment_table(tools.index, plans, pipes))


def select_present(tools: PlanningTools, state: OnlineState, names: Sequence[str],
                   weights: Sequence[float], settings: PlannerSettings) -> Selected:
    """The global selector over ``names``' candidates with ``weights``, checked (module note);
    the state is not changed."""
    t0 = time.monotonic()
    queries = [state.entries[n].query for n in names]
    problem, sel, checked, sizing = select_checked(
        state.estimator, queries, problem_of(tools, state, names, weights), tools.selector(),
        settings)
    if checked is not None:
        tools.kernels += checked.kernel_evaluations
    made = Selected(problem, sel, checked, sizing)
    chosen, fresh = settle(state.estimator, queries, problem, sel.chosen,
                           link_check=settings.link_check)
    if chosen != sel.chosen:
        made = _dropped(made, chosen, fresh)
    tools.seconds["select"] += time.monotonic() - t0
    return made


def take(state: OnlineState, names: Sequence[str], made: Selected) -> None:
    """Give ``names`` (none admitted) the candidates of ``made``'s problem (after the checks)
    and the reasons of those the checks keep out; admitting them is the caller's."""
    state.enter([(state.entries[n].query, qc)
                 for n, qc in zip(names, made.problem.candidates, strict=True)],
                table=made.problem.deployments)
    for name in names:
        state.guard.forget(name)
    if made.links is not None:
        loads = dict(made.links.loads)
        for query, link in made.links.emptied:
            state.guard.blame_link(query, link, loads[link])
    for query, kind, what, rho in made.dropped:
        if kind == "link":
            state.guard.blame_link(query, what, rho)
        else:
            state.guard.blame_deployment(query, what)


def _dropped(made: Selected, chosen: tuple[int | None, ...],
             fresh: Mapping[int, Estimate]) -> Selected:
    """``made`` with ``chosen`` instead (some plans dropped, each blamed on the first shared
    deployment it joins, else its busiest link), the kept plans carrying their ``fresh``
    estimates."""
    problem, sel = made.problem, made.selection
    loads = utilisation(problem.capacity, problem.use(sel.chosen))
    cands = list(problem.candidates)
    dropped = []
    for q, k in enumerate(sel.chosen):
        if k is None:
            continue
        cand = cands[q].candidates[k]
        if chosen[q] is None:
            est = cand.estimate
            if est.deployment_load:
                dropped.append((cands[q].query, "deployment", est.deployment_load[0][0], 0.0))
            else:
                pair = max((p for p, _ in est.link_mbps), key=lambda p: loads.get(p, 0.0))
                dropped.append((cands[q].query, "link", f"{pair[0]}->{pair[1]}",
                                loads.get(pair, 0.0)))
        elif q in fresh:
            options = list(cands[q].candidates)
            options[k] = Candidate(cand.plan, fresh[q])
            cands[q] = replace(cands[q], candidates=tuple(options))
    problem = replace(problem, candidates=tuple(cands))
    goodput = sum(w for w, k in zip(problem.weights, chosen, strict=True) if k is not None)
    bound = sel.goodput_bound
    sizing = made.sizing
    if sizing is not None:
        sizing = replace(sizing, unadmitted=sizing.unadmitted + len(dropped),
                         deployments=sized(problem, chosen))
    return Selected(problem, replace(
        sel, chosen=chosen, goodput=goodput, cost_per_hour=problem.cost(chosen),
        gap=(bound - goodput) / bound if bound > EPS else 0.0), made.links, sizing,
        tuple(dropped))
