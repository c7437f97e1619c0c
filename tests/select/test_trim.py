"""Unloading a deployment's last replica (:func:`circinus.select.deployments._trim`) before any
query leaves: on a generated world whose relaxed selection rounds its edge boxes over capacity
(about half a replica per deployment, twenty-odd deployments a box), queries of a partly
loaded last replica move to their other candidates that add nothing to the box, so the box
needs fewer units and no query is left out; and the repair after it admits at least as many
as without it; made complete, the repair admits as much with its deadline passed as with
none."""

from __future__ import annotations

import math

import pytest

import circinus.select.deployments as deployments
from circinus.estimate import AnalyticEstimator
from circinus.gen import GenSpec, generate
from circinus.planner import SEARCHES
from circinus.select.base import Selection, SelectionProblem
from circinus.select.deployments import ledger, repair
from circinus.select.lp import LpRoundSelector
from circinus.spec import build_index, parse_world


@pytest.fixture(scope="module")
def relaxed() -> tuple[SelectionProblem, Selection]:
    """A generated world of 3,000 queries and its LP-rounded selection before it is made to
    fit in whole replicas."""
    world = parse_world(generate(GenSpec(queries=3000, seed=1)))
    index = build_index(world)
    search = SEARCHES["circinus"](estimator=AnalyticEstimator(index=index),
                                  settings=world.planner)
    problem = SelectionProblem.build(index, search.search(world.queries))
    return problem, LpRoundSelector().select(problem, time_limit_s=60.0)


def test_a_box_over_capacity_needs_fewer_units_with_every_query_kept(
        relaxed: tuple[SelectionProblem, Selection]) -> None:
    problem, selection = relaxed
    book = ledger(problem, selection.chosen)
    over = [r for r in book.over() if r[0] == "device"]
    assert over, "the relaxed selection rounds no box over capacity"
    trimmed = 0
    for row in over:
        before, admitted = book.used[row], set(book.chosen)
        others = {r: book.used.get(r, 0.0) for r in problem.capacity if r != row}
        deployments._trim(book, row, math.inf)
        assert set(book.chosen) == admitted  # nobody left out
        assert book.used[row] <= before + 1e-9
        trimmed += book.used[row] < before - 1e-9
        # no other row went over its capacity by the moves
        cap = problem.capacity
        assert all(book.used.get(r, 0.0) <= max(cap[r] * (1 + 1e-9) + 1e-9, v + 1e-9)
                   for r, v in others.items())
    assert trimmed, "no box was trimmed"
    again = ledger(problem, tuple(book.chosen.get(q) for q in range(len(problem.candidates))))
    assert again.used == pytest.approx(book.used)


def test_the_repair_admits_at_least_as_many_with_it(
        relaxed: tuple[SelectionProblem, Selection], monkeypatch: pytest.MonkeyPatch) -> None:
    problem, selection = relaxed
    with_trim = repair(problem, selection)
    monkeypatch.setattr(deployments, "_trim", lambda *_: None)
    without = repair(problem, selection)
    assert with_trim.fits(problem) and without.fits(problem)
    assert with_trim.goodput >= without.goodput


def test_a_complete_repair_admits_the_same_whatever_the_clock(
        relaxed: tuple[SelectionProblem, Selection]) -> None:
    # the link check's first repair runs with its deadline passed on a loaded machine: made
    # complete, it admits what a repair with no deadline admits; cut there, it admits fewer
    problem, selection = relaxed
    unbounded = repair(problem, selection)
    late = repair(problem, selection, deadline=0.0, complete=True)
    cut = repair(problem, selection, deadline=0.0)
    assert late.fits(problem) and cut.fits(problem)

    def admitted(s: Selection) -> set[int]:
        return {q for q, k in enumerate(s.chosen) if k is not None}

    assert admitted(late) == admitted(unbounded)
    assert late.goodput == unbounded.goodput > cut.goodput


def test_worked_out_ahead_the_ledger_is_the_same(
        relaxed: tuple[SelectionProblem, Selection]) -> None:
    problem, selection = relaxed
    ahead = problem.with_candidates(problem.candidates)  # its memo of this problem's only
    ahead._memo.clear()
    deployments.work_out(ahead)
    distinct = {id(c.estimate) for qc in problem.candidates for c in qc.candidates}
    assert {key[1] for key in ahead._memo if isinstance(key, tuple) and key[0] == "tally"} \
        == distinct
    fresh = problem.with_candidates(problem.candidates)
    fresh._memo.clear()
    a, b = ledger(ahead, selection.chosen), ledger(fresh, selection.chosen)
    assert (a.used, a.replicas, a.members, a.cost) == (b.used, b.replicas, b.members, b.cost)


def test_an_alias_shares_what_was_worked_out_only_for_the_same_use(
        relaxed: tuple[SelectionProblem, Selection]) -> None:
    import dataclasses

    problem, _ = relaxed
    q = next(q for q, qc in enumerate(problem.candidates) if qc.candidates)
    like = problem.candidates[q].candidates[0].estimate
    tally = deployments._tally(problem, q, 0)
    slower = dataclasses.replace(like, latency_ms=like.latency_ms * 2)
    capped = problem.with_candidates(problem.candidates, capacity={
        r: v / 2 for r, v in problem.capacity.items()})
    assert capped.alias(slower, like)

    def never(_: object) -> object:
        raise AssertionError("worked out again")

    assert capped._memo["tally", id(slower)] == (slower, tally)
    own = capped._memo["own", id(slower)]
    assert own[0] is slower and capped.per_estimate(q, 0, "own", never) == own[1]
    dearer = dataclasses.replace(like, compute_cost_per_hour=like.cost_per_hour + 1)
    assert not capped.alias(dearer, like)  # not an alias: worked out anew
    assert ("tally", id(dearer)) not in capped._memo
    with pytest.raises(AssertionError, match="other capacity rows"):
        problem.with_candidates(problem.candidates, capacity={})
