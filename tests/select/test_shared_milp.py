"""The whole-replica MILP's stall stop (circinus.select.shared_milp)."""

from __future__ import annotations

from typing import Any

import pytest

import circinus.select.shared_milp as shared_milp
from circinus.estimate.analytic import AnalyticEstimator
from circinus.gen import GenSpec, generate
from circinus.search.decomposed import DecomposedSearch
from circinus.select import SelectionProblem
from circinus.select.highs import MipOutcome, StallRule
from circinus.select.shared_milp import SharedMilpSelector
from circinus.spec.load import parse_world
from circinus.spec.validate import build_index


def _problem(queries: int, seed: int) -> SelectionProblem:
    world = parse_world(generate(GenSpec(queries=queries, seed=seed)), origin="gen")
    index = build_index(world)
    search = DecomposedSearch(estimator=AnalyticEstimator(index=index), settings=world.planner)
    return SelectionProblem.build(index, search.search(world.queries))


@pytest.mark.slow
def test_a_stalled_selection_ends_early_with_the_proven_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """20 generated queries with shared deployments: stopped ten nodes after each pass's last
    improvement, the selection searches fewer nodes than the proof needs (the cost pass 217
    against 221) and ends with the same goodput and cost as the selection run to its proof;
    its status says it is unproven. Node counts, not seconds (HiGHS's search is
    deterministic); the cost pass's time cap is lifted so that only the stall stops it."""
    problem = _problem(20, seed=0)
    assert problem.deployments
    ends: list[MipOutcome | None] = []
    solve = shared_milp.solve_mip

    def spy(*args: Any, **kwargs: Any) -> MipOutcome | None:
        ends.append(solve(*args, **kwargs))
        return ends[-1]

    monkeypatch.setattr(shared_milp, "solve_mip", spy)
    monkeypatch.setattr(shared_milp, "MIN_COST_S", 300.0)
    proven = SharedMilpSelector(prove=True).select(problem, time_limit_s=300)
    long = list(ends)
    ends.clear()
    ten = StallRule(nodes=10)
    quick = SharedMilpSelector(goodput_stall=ten, cost_stall=ten).select(
        problem, time_limit_s=300)
    assert proven.status == "optimal" and proven.fits(problem)
    assert all(e is not None and e.status == "optimal" for e in long)
    assert [e.status for e in ends if e is not None] == ["optimal", "stalled"]
    assert sum(e.nodes for e in ends if e is not None) < sum(e.nodes for e in long if e)
    assert quick.fits(problem)
    assert quick.goodput == proven.goodput
    assert quick.cost_per_hour == pytest.approx(proven.cost_per_hour, rel=1e-9)
    assert quick.status == "stalled"  # the goodput proven, the cost not
    assert quick.goodput_bound >= quick.goodput


def test_a_proving_selector_never_stalls() -> None:
    sel = SharedMilpSelector(prove=True, goodput_stall=StallRule(nodes=1),
                             cost_stall=StallRule(nodes=1))
    assert sel.goodput_stall is None and sel.cost_stall is None
