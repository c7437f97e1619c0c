"""What the admitted queries leave: the additive residual adds use up, the shared one agrees with
the selection's ledger however a plan is tried, and the array bounds over a plan space never
reject a plan that fits nor price one above what it costs on its deployments."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from test_nearest import BASE

from circinus.estimate import AnalyticEstimator
from circinus.plan.records import QueryPlan
from circinus.planner import SEARCHES, SELECTORS, select_checked
from circinus.search.base import Candidate
from circinus.search.exhaustive import ExhaustiveSearch
from circinus.select.base import SelectionProblem
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex
from circinus.spec.models import Slo
from circinus.whynot import Residual
from circinus.whynot.shared import PoolUse, bounds


def _shared(queries: int, box_units: float) -> WorldIndex:
    """The two-tier world on shared deployments, ``queries`` cameras at 10 req/s."""
    data: dict[str, Any] = copy.deepcopy(BASE)
    data["planner"]["sharing"] = "shared"
    data["links"][0]["capacity_mbps"] = 10
    data["devices"][0]["units"] = box_units
    data["queries"] = [{"name": f"q{i}", "pipeline": "vision", "sources": {"cam": "shop"},
                        "rate_rps": 10.0, "slo": {"latency_ms": 400.0, "min_accuracy": 0.6}}
                       for i in range(queries)]
    return build_index(parse_world(data))


def _selected(index: WorldIndex) -> tuple[ExhaustiveSearch, SelectionProblem,
                                          tuple[int | None, ...]]:
    """The search, final problem and selection of ``index`` as the planner makes them."""
    estimator = AnalyticEstimator(index=index)
    settings = index.world.planner
    search = SEARCHES["circinus"](estimator=estimator, settings=settings)
    assert isinstance(search, ExhaustiveSearch)
    problem, selection, _, _ = select_checked(
        estimator, index.world.queries, SelectionProblem.build(index, search.search(
            index.world.queries)), SELECTORS["milp"](), settings)
    return search, problem, selection.chosen


def test_additive_adds_up() -> None:
    residual = Residual.additive({("device", "box"): 3.0, ("link", "a->b"): 10.0},
                                 {("device", "box"): 2.5})
    assert not residual.shared
    assert residual.left(("device", "box")) == 0.5
    assert residual.left(("memory", "box")) == float("inf")
    assert residual.fits_usage({("device", "box"): 0.5, ("link", "a->b"): 10.0})
    assert not residual.fits_usage({("device", "box"): 0.6})
    assert residual.headroom("box") == 0.0


@pytest.mark.parametrize("box_units", [3.0, 3.5])
def test_shared_agrees_with_the_ledger(box_units: float) -> None:
    """Rejected queries' own candidates (checked on the selection's ledger) and the same
    candidates tried as newcomers (on a copy with them appended) lack the same rows; the
    residual's use is the ledger's, in whole replicas."""
    index = _shared(12, box_units)
    _, problem, chosen = _selected(index)
    residual = Residual.of(problem, chosen, index)
    assert residual.shared
    assert residual.used == problem.use(chosen)
    rejected = [q for q, k in enumerate(chosen) if k is None and problem.candidates[q].candidates]
    assert rejected
    specs = {q.name: q for q in index.world.queries}
    for q in rejected:
        cands = problem.candidates[q].candidates
        own = residual.lacking(cands)
        tried = residual.trials(list(cands), specs[problem.candidates[q].query].pipeline)
        assert own == [t.lacking for t in tried]
        assert all(rows for rows in own)  # the world is full
        assert all(not t.states for t in tried)  # nothing to say of plans that do not fit


def test_bounds_keep_every_plan_that_fits() -> None:
    """Every plan of a third camera's plan space with two cameras admitted: the bounds keep
    each plan the ledger takes (and price none above its cost on its deployments), while use
    adding up would take plans that need more whole replicas than are left."""
    index = _shared(2, 3.0)
    search, problem, chosen = _selected(index)
    assert all(k is not None for k in chosen)
    residual = Residual.of(problem, chosen, index)
    query = index.world.queries[0].model_copy(update={"name": "new", "slo": Slo()})
    pool = search.plan_space(query)
    fit, cost = bounds(query, pool, PoolUse.of(pool), residual)
    cands = [Candidate(QueryPlan(query.name, pool.plans[i]), pool.estimate(i))
             for i in range(len(pool))]
    trials = residual.trials(cands, query.pipeline)
    fits = np.array([t.fits for t in trials])
    assert fits.any() and not fits.all()
    assert not (fits & ~fit).any()
    additive = Residual.additive(residual.capacity, residual.used)
    by_shares = np.array([additive.fits_usage(c.estimate.usage()) for c in cands])
    assert (by_shares & ~fits).any()
    estimator = search.estimator
    assert isinstance(estimator, AnalyticEstimator)
    for i in np.flatnonzero(fits):
        states = trials[i].states
        real = estimator.with_deployments(states).estimate(query, cands[i].plan) if states else (
            cands[i].estimate)
        assert cost[i] <= real.cost_per_hour + 1e-6
