"""The online planner's state as the batch planner's result: outcomes, selection, resources."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from circinus.estimate.base import EPS
from circinus.online.ledger import Resource
from circinus.online.selection import Selected, problem_of
from circinus.online.state import OnlineState
from circinus.online.tools import PlanningTools
from circinus.planner import (
    PlanResult,
    QueryOutcome,
    ResourceUse,
    capacity_reason,
    explain_rejections,
)
from circinus.select.base import Selection, SelectionProblem
from circinus.select.contention import LinkCheck
from circinus.select.sizing import DeploymentCheck, sized
from circinus.spec.index import WorldIndex


def result_of(tools: PlanningTools, state: OnlineState, world: str, last: Selected | None, *,
              nearest: bool) -> PlanResult:
    """The state as a :class:`~circinus.planner.PlanResult` (present queries in arrival order).

    ``last`` is the selector's answer the state was set to, if nothing has changed since (its
    selection and checks are reported as they were); otherwise the selection is ``greedy``, the
    shared deployments are the ledger's, and each admitted query's estimate is the one at the
    current state (with its share of its deployments' replicas). ``nearest``: search the
    nearest admissible SLO of the waiting queries.
    """
    names = list(state.entries)
    problem = problem_of(tools, state, names, [state.entries[n].query.weight for n in names])
    chosen = tuple(state.chosen.get(n) for n in names)
    if last is not None and last.selection.chosen == chosen:
        selection, checked, sizing = last.selection, last.links, last.sizing
    else:
        goodput = state.goodput(state.chosen)
        bound = sum(w for qc, w in zip(problem.candidates, problem.weights, strict=True)
                    if qc.candidates)
        selection = Selection(chosen, goodput, problem.cost(chosen), bound,
                              (bound - goodput) / bound if bound > EPS else 0.0, 0.0,
                              "greedy", 0.0)
        checked, sizing = _ledger_checks(problem, chosen)
    used = selection.used(problem)
    ceilings = {} if checked is None else dict(checked.ceilings)
    if checked is not None:  # the capacities the selection was kept within
        problem = replace(problem, capacity=checked.usable(problem.capacity))
    outcomes: list[QueryOutcome] = []
    for name, qc, k in zip(names, problem.candidates, chosen, strict=True):
        if k is None:
            reason = qc.reason or state.guard.reason(name) or capacity_reason(
                problem, used, len(outcomes), ceilings)
            outcomes.append(QueryOutcome(name, False, None, None, reason,
                                         len(qc.candidates), qc.evaluations))
        else:
            c = qc.candidates[k]
            outcomes.append(QueryOutcome(name, True, c.plan, c.estimate, None,
                                         len(qc.candidates), qc.evaluations))
    t0 = time.monotonic()
    explained = explain_rejections(
        tools.explainer, [state.entries[n].query for n in names], problem, outcomes, used,
        nearest=nearest, emptied=state.guard.blocked(), chosen=chosen, ceilings=ceilings)
    return PlanResult(
        world=world, outcomes=explained, selection=selection,
        resources=resource_use(tools.index, used), search_seconds=tools.seconds["search"],
        select_seconds=tools.seconds["select"],
        kernel_evaluations=tools.kernel_evaluations + state.guard.kernel_evaluations,
        why_not_seconds=time.monotonic() - t0, link_check=checked, deployment_check=sizing)


def resource_use(index: WorldIndex, used: Mapping[Resource, float]) -> tuple[ResourceUse, ...]:
    """Use against capacity of every device, memory and link of ``index``, as the batch planner
    lists them."""
    out = [ResourceUse("device", d.name, used.get(("device", d.name), 0.0), d.units)
           for d in index.world.devices]
    out += [ResourceUse("memory", d.name, used.get(("memory", d.name), 0.0), d.memory_gb)
            for d in index.world.devices if d.memory_gb is not None]
    out += [ResourceUse("link", f"{s}->{t}", used.get(("link", f"{s}->{t}"), 0.0),
                        ln.capacity_mbps) for (s, t), ln in sorted(index.links.items())]
    return tuple(out)


def _ledger_checks(problem: SelectionProblem, chosen: tuple[int | None, ...]
                   ) -> tuple[LinkCheck | None, DeploymentCheck | None]:
    """No link check, and the shared deployments as the ledger sizes them."""
    if not problem.deployments:
        return None, None
    return None, DeploymentCheck(0, 0, 0, sized(problem, chosen), 0.0)
