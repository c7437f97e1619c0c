"""The second selection on capacities lowered by the first rounding's waste
(:mod:`circinus.select.deflate`), on a generated world whose LP rounding leaves its edge boxes
over capacity once each deployment is rounded up to whole replicas."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pytest

import circinus.planner as planner
from circinus.estimate import AnalyticEstimator
from circinus.gen import GenSpec, generate
from circinus.planner import SEARCHES
from circinus.select.base import Selection, SelectionProblem
from circinus.select.deflate import DEFLATE, deflated, reselect, waste
from circinus.select.deployments import ledger, settle
from circinus.select.flat import flatten
from circinus.select.lp import GOODPUT_LP, LpRoundSelector, alike_classes
from circinus.spec import build_index, parse_world


@pytest.fixture(scope="module")
def problem() -> SelectionProblem:
    """A generated world of 3,000 queries (its LPs are solved over classes of alike queries)."""
    world = parse_world(generate(GenSpec(queries=3000, seed=1)))
    index = build_index(world)
    search = SEARCHES["circinus"](estimator=AnalyticEstimator(index=index),
                                  settings=world.planner)
    problem = SelectionProblem.build(index, search.search(world.queries))
    assert problem.deployments and alike_classes(flatten(problem)) is not None
    return problem


def _first(problem: SelectionProblem, *, warm: bool) -> Selection:
    return LpRoundSelector(warm=warm).select(problem, time_limit_s=60.0)


def _share_use(problem: SelectionProblem, chosen: tuple[int | None, ...]) -> dict:
    """What the chosen candidates use counting each deployment in shares (the LP's count)."""
    out: dict = {}
    for q, k in enumerate(chosen):
        if k is not None:
            for r, v in problem.candidates[q].candidates[k].estimate.usage().items():
                out[r] = out.get(r, 0.0) + v
    return out


def test_the_waste_is_whole_replicas_less_their_shares(problem: SelectionProblem) -> None:
    first = _first(problem, warm=False)
    book = ledger(problem, first.chosen)
    spare = waste(book)
    shares = _share_use(problem, first.chosen)
    assert spare and all(v >= -1e-9 for v in spare.values())
    assert {kind for kind, _ in spare} <= {"device", "memory"}
    for row, v in spare.items():
        assert book.used[row] - v == pytest.approx(shares.get(row, 0.0), rel=1e-9, abs=1e-7)
    lowered = deflated(problem, first.chosen)
    for row, cap in problem.capacity.items():
        assert lowered[row] == pytest.approx(max(0.0, cap - DEFLATE * spare.get(row, 0.0)))
        if row[0] == "link":
            assert lowered[row] == cap
    assert sum(problem.capacity.values()) > sum(lowered.values())


def test_the_second_selection_warm_is_the_one_solved_anew(problem: SelectionProblem) -> None:
    warm_problem = replace(problem)  # a memo of its own
    first = _first(warm_problem, warm=True)
    warm = reselect(warm_problem, first, time_limit_s=60.0)
    assert warm_problem.take(GOODPUT_LP) is None  # the solver was taken, and only once
    cold = reselect(replace(problem), _first(replace(problem), warm=False), time_limit_s=60.0)
    for sel in (warm, cold):
        assert sel.status == "rounded"
        assert sel.goodput_bound == first.goodput_bound  # the first bound, not the lowered LP's
        assert sel.unit_values == first.unit_values
        # it was chosen within the lowered capacities
        assert all(v <= deflated(problem, first.chosen)[r] * (1 + 1e-6) + 1e-6
                   for r, v in _share_use(problem, sel.chosen).items()
                   if r in problem.capacity)
    # the same LP optimum (the lowered LP's own bound), rounded alike
    assert abs(warm.goodput - cold.goodput) <= 0.005 * cold.goodput


def test_the_planner_keeps_the_better_fit(problem: SelectionProblem,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = _first(problem, warm=False)

    def fitted(sel: Selection) -> Selection:
        return settle(problem, sel, improve_by=time.monotonic())

    alone = fitted(first)
    either = planner._settle_either(problem, first, math.inf, time.monotonic)
    # the first fitted on a forked copy meanwhile: the same answer
    assert planner._settle_either(problem, first, math.inf, time.monotonic,
                                  workers=2).chosen == either.chosen
    assert either.fits(problem)
    assert (either.goodput, -either.cost_per_hour) >= (alone.goodput, -alone.cost_per_hour)
    second = fitted(reselect(problem, first, time_limit_s=60.0))
    assert either.goodput == max(alone.goodput, second.goodput)
    # a second selection whose LP was not solved in time (the greedy floor, or nothing): not
    # fitted, the first's fit stands
    empty = replace(first, chosen=(None,) * len(first.chosen), goodput=0.0, cost_per_hour=0.0,
                    status="greedy")
    monkeypatch.setattr(planner, "reselect", lambda *a, **k: empty)
    assert planner._settle_either(problem, first, math.inf, time.monotonic).chosen == (
        alone.chosen)
