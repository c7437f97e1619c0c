"""The join pass after the selection (:mod:`circinus.select.join`): queries move onto the shared
deployments the selection opens where the whole plan gets cheaper, every admitted plan still
meets its SLO at the real state of its deployments and fits in whole replicas, it never makes a
plan dearer or admit fewer, and past its deadline it does nothing.

Seeded tiny worlds of ``tests/tinyworld.py`` with shared deployments: on seed 7 the selection
leaves three queries on a light classifier deployment of their own (``classify[small]`` on the
x86 box), while the heavier one a fourth query opens on the shop's box has room for all four
(the oracle's optimum, $0.525/h against $0.610/h).
"""

from __future__ import annotations

import dataclasses
import time

import pytest

import circinus
import circinus.planner as planner
from circinus.estimate import AnalyticEstimator
from circinus.select.base import Selection, SelectionProblem
from circinus.select.deployments import ledger
from circinus.select.join import join_open
from circinus.select.milp import MilpSelector
from circinus.select.sizing import states
from circinus.spec import build_index, parse_world
from tinyworld import random_tiny_world


def _world(seed: int) -> circinus.World:
    return parse_world(random_tiny_world(seed, queries=4, sharing="shared"))


def _plan(world: circinus.World, *, join: bool, monkeypatch: pytest.MonkeyPatch
          ) -> circinus.PlanResult:
    with monkeypatch.context() as m:
        if not join:
            m.setattr(planner, "JOIN_SHARE", 0.0)
        return circinus.Planner().plan(world)


def test_moves_queries_onto_the_heavier_deployment_others_open(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world = _world(7)
    before = _plan(world, join=False, monkeypatch=monkeypatch)
    after = _plan(world, join=True, monkeypatch=monkeypatch)
    assert after.admitted == before.admitted == 4
    assert before.cost_per_hour == pytest.approx(0.61049, abs=1e-5)
    assert after.cost_per_hour == pytest.approx(0.52549, abs=1e-5)
    classifiers = {d.name: d.queries for d in after.deployments if d.name.startswith("classify")}
    assert classifiers == {"classify[large]@shop-box/b1/u0.8": ("q0", "q1", "q2", "q3")}


@pytest.mark.parametrize("seed", range(12))
def test_never_dearer_and_every_plan_holds_on_its_deployments(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    world = _world(seed)
    before = _plan(world, join=False, monkeypatch=monkeypatch)
    after = _plan(world, join=True, monkeypatch=monkeypatch)
    assert after.goodput >= before.goodput
    if after.goodput == before.goodput:
        assert after.cost_per_hour <= before.cost_per_hour * (1 + 1e-9)
    # Whole replicas within every capacity, and each admitted plan at the real state of its
    # deployments as sized meets its SLO (the estimates reported are those).
    problem = after.problem
    assert problem is not None
    assert after.selection.fits(problem)
    book = ledger(problem, after.selection.chosen)
    assert all(book.used.get(r, 0.0) <= cap * (1 + 1e-9) + 1e-9
               for r, cap in problem.capacity.items())
    real = AnalyticEstimator(index=build_index(world)).with_deployments(states(book))
    specs = {q.name: q for q in world.queries}
    for o in after.outcomes:
        if o.plan is not None:
            assert o.estimate is not None and o.estimate.meets(specs[o.name].slo)
            assert real.estimate(specs[o.name], o.plan).meets(specs[o.name].slo)
    assert after.cost_per_hour == pytest.approx(book.cost, rel=1e-9)


def _selected_seed_7() -> tuple[circinus.World, AnalyticEstimator, SelectionProblem, Selection]:
    """Seed 7's shared tiny world, its estimator, candidates and exact selection."""
    world = _world(7)
    index = build_index(world)
    estimator = AnalyticEstimator(index=index)
    search = circinus.planner.SEARCHES["circinus"](estimator=estimator, settings=world.planner)
    problem = SelectionProblem.build(index, search.search(world.queries))
    return world, estimator, problem, MilpSelector().select(problem, time_limit_s=30.0)


def test_does_nothing_past_its_deadline() -> None:
    world, estimator, problem, selection = _selected_seed_7()
    out, again, record = join_open(estimator, world.queries, problem, selection, world.planner,
                                   links=True, deadline=time.monotonic() - 1.0)
    assert record.moved == record.rounds == record.offered == 0
    assert again.chosen == selection.chosen
    assert [len(qc.candidates) for qc in out.candidates] == [
        len(qc.candidates) for qc in problem.candidates]


def test_keeps_only_the_chosen_new_plans_among_the_candidates() -> None:
    world, estimator, problem, selection = _selected_seed_7()
    out, moved, record = join_open(estimator, world.queries, problem, selection, world.planner,
                                   links=True, deadline=time.monotonic() + 60.0)
    assert record.moved > 0 and record.complete and record.offered > 0
    assert moved.cost_per_hour < selection.cost_per_hour - 1e-6
    for q, (old, new) in enumerate(zip(problem.candidates, out.candidates, strict=True)):
        extra = len(new.candidates) - len(old.candidates)
        assert extra in (0, 1)
        assert new.candidates[:len(old.candidates)] == old.candidates
        if extra:
            assert moved.chosen[q] == len(new.candidates) - 1


@pytest.mark.parametrize("seed", range(12))
def test_the_check_after_the_moves_gives_what_estimating_every_plan_again_gives(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment check after the join pass keeps the estimates of the plans whose
    deployments and links the moves left as they were (``since``); checking every plan anew
    gives the same selection, estimates and deployments."""
    seen: list[bool] = []
    check = planner.check_deployments

    def both(*args: object, **kwargs: object) -> object:
        if kwargs.get("since") is None:
            return check(*args, **kwargs)  # type: ignore[arg-type]
        anew = check(*args, **{**kwargs, "since": None})  # type: ignore[arg-type]
        kept = check(*args, **kwargs)  # type: ignore[arg-type]
        (pa, sa, ra), (pb, sb, rb) = anew, kept
        assert sa.chosen == sb.chosen and ra.deployments == rb.deployments
        assert (ra.rounds, ra.dropped, ra.unadmitted) == (rb.rounds, rb.dropped, rb.unadmitted)
        for q, k in enumerate(sa.chosen):
            if k is not None:
                assert pa.candidates[q].candidates[k] == pb.candidates[q].candidates[k]
        seen.append(True)
        return kept

    monkeypatch.setattr(planner, "check_deployments", both)
    circinus.Planner().plan(_world(seed))
    if seed == 7:
        assert seen  # its moves are checked again


def test_a_checked_plan_is_kept_only_while_its_deployments_are_as_they_were() -> None:
    world = _world(7)
    result = circinus.Planner().plan(world)
    assert result.problem is not None and result.deployment_check is not None
    estimated = result.deployment_check.estimated
    assert estimated is not None
    now = states(ledger(result.problem, result.selection.chosen))
    real = AnalyticEstimator(index=build_index(world)).with_deployments(now)
    chosen = [result.problem.candidates[q].candidates[k]
              for q, k in enumerate(result.selection.chosen) if k is not None]
    assert chosen and all(estimated.holds(c, now, real) for c in chosen)
    name, state = next(iter(now.items()))
    busier = {**now, name: dataclasses.replace(state, rate_rps=2.0 * state.rate_rps)}
    on_it = [c for c in chosen if any(n == name for n, _ in c.estimate.deployment_load)]
    assert on_it and not any(estimated.holds(c, busier, real) for c in on_it)
    copies = [dataclasses.replace(c) for c in chosen]  # equal, but not the ones estimated
    assert not any(estimated.holds(c, now, real) for c in copies)
