"""The selection's LPs over classes of alike queries: the same LP as over queries, spread back
into a feasible solution of it; the selectors that use them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.select.test_lp import _random_problem
from tests.select.test_milp import _brute, _problem, instance

import circinus.select.lp as lp_module
from circinus.search.base import QueryCandidates
from circinus.select import LpRoundSelector, MilpSelector, SelectionProblem
from circinus.select.alike import Alike
from circinus.select.bounds import goodput_bound
from circinus.select.flat import flatten
from circinus.select.highs import solve_lp
from circinus.select.lp import alike_classes


def _repeated(problem: SelectionProblem, times: list[int]) -> SelectionProblem:
    """``problem`` with query ``q`` there ``times[q]`` times (the copies share its estimates,
    as the queries of one site and group do), interleaved, capacities scaled by the mean."""
    order = [q for rep in range(max(times)) for q in range(len(times)) if rep < times[q]]
    qcs = tuple(QueryCandidates(f"{problem.candidates[q].query}-{i}",
                                problem.candidates[q].candidates, None,
                                problem.candidates[q].evaluations)
                for i, q in enumerate(order))
    scale = sum(times) / len(times)
    return SelectionProblem(qcs, tuple(problem.weights[q] for q in order),
                            {r: c * scale for r, c in problem.capacity.items()})


def test_alike_queries_share_a_class_and_others_do_not() -> None:
    base = _random_problem(np.random.default_rng(3), queries=30, rows=4, per_query=3)
    flat = flatten(_repeated(base, [3] * 30))
    alike = Alike.of(flat)
    assert alike.size == 30
    assert np.array_equal(alike.counts(np.arange(flat.nq)), np.full(30, 3))
    for c in range(alike.size):
        members = np.flatnonzero(alike.label == c)
        assert len({flat.columns[flat.first[q]] for q in members}) == 1
    assert alike.columns(flat) == flatten(base).n


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 5), min_size=12, max_size=12),
       st.booleans())
def test_lp_over_classes_is_the_lp_over_queries(seed: int, times: list[int],
                                                 equal: bool) -> None:
    base = _random_problem(np.random.default_rng(seed), queries=12, rows=4, per_query=3)
    flat = flatten(_repeated(base, times))
    alike = Alike.of(flat)
    queries = np.arange(flat.nq) if not equal else np.arange(0, flat.nq, 2)
    c = -flat.weight if not equal else flat.cost
    cap = flat.cap if not equal else flat.cap * 10  # every kept query must fit
    got = alike.solve(flat, c, flat.usage, cap, queries=queries, equal=equal, deadline=np.inf)
    assert got is not None
    cols = np.concatenate([np.arange(flat.first[q], flat.first[q + 1]) for q in queries])
    one = np.zeros((len(queries), len(cols)))
    for i, q in enumerate(queries):
        one[i, np.flatnonzero(flat.owner[cols] == q)] = 1.0
    usage = flat.usage[:, cols].toarray()
    if equal:
        direct = solve_lp(c[cols], usage, cap, a_eq=one, b_eq=np.ones(len(queries)),
                          deadline=np.inf)
    else:
        direct = solve_lp(c[cols], np.vstack([one, usage]),
                          np.concatenate([np.ones(len(queries)), cap]), deadline=np.inf)
    assert direct is not None
    assert got.objective == pytest.approx(direct.objective, rel=1e-7, abs=1e-7)
    x = got.x
    assert np.all(x >= -1e-9)
    assert x[np.setdiff1d(np.arange(flat.n), cols)].sum() == 0.0  # only the queries asked
    per_query = np.bincount(flat.owner, weights=x, minlength=flat.nq)[queries]
    assert np.all(per_query <= 1 + 1e-7)
    if equal:
        assert per_query == pytest.approx(np.ones(len(queries)), abs=1e-7)
    assert np.all(flat.usage @ x <= cap * (1 + 1e-7) + 1e-7)
    assert float(c @ x) == pytest.approx(direct.objective, rel=1e-7, abs=1e-7)
    if not equal:  # the same duals: the same proven bound
        assert goodput_bound(flat, got.duals, None) == pytest.approx(-direct.objective,
                                                                      rel=1e-6, abs=1e-6)


def test_a_class_spreads_whole_members_first_then_pours_the_fractions() -> None:
    base = _random_problem(np.random.default_rng(1), queries=1, rows=2, per_query=1)
    flat = flatten(_repeated(base, [4]))
    alike = Alike.of(flat)
    k = flat.first[1] - flat.first[0]
    assert k >= 1
    worth = np.zeros(k)
    worth[0] = 2.5
    x = alike.spread(flat, np.arange(4), np.array([0]), np.arange(k), worth)
    assert x[flat.first[:4]].tolist() == [1.0, 1.0, 0.5, 0.0]


@settings(max_examples=80, deadline=None)
@given(instance, st.lists(st.integers(1, 3), min_size=5, max_size=5))
def test_lp_rounding_over_classes_fits_and_its_bound_holds(inst, times) -> None:  # type: ignore[no-untyped-def]
    queries, weights, caps, link_cap = inst
    problem = _repeated(_problem(queries, weights, caps, link_cap), times[:len(queries)])
    if sum(len(qc.candidates) for qc in problem.candidates) > 12:
        problem = SelectionProblem(problem.candidates[:6], problem.weights[:6], problem.capacity)
    saved = lp_module.ALIKE_ABOVE, lp_module.ALIKE_SHARE
    lp_module.ALIKE_ABOVE, lp_module.ALIKE_SHARE = 0, 1.0
    try:
        sel = LpRoundSelector().select(problem, time_limit_s=10)
    finally:
        lp_module.ALIKE_ABOVE, lp_module.ALIKE_SHARE = saved
    best, _ = _brute(problem)
    assert sel.fits(problem)
    assert sel.goodput <= best + 1e-9
    assert sel.goodput_bound >= best - 1e-9


def test_milp_selector_solves_whole_what_falls_into_few_classes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lp_module, "ALIKE_ABOVE", 0)
    base = _random_problem(np.random.default_rng(5), queries=40, rows=5, per_query=4)
    problem = _repeated(base, [10] * 40)
    flat = flatten(problem)
    alike = alike_classes(flat)
    assert alike is not None and alike.columns(flat) < flat.n
    sel = MilpSelector(partition_above=alike.columns(flat)).select(problem, time_limit_s=30)
    assert sel.status != "partitioned" and sel.fits(problem)
    assert sel.gap <= 0.01
    split = MilpSelector(partition_above=alike.columns(flat) - 1).select(problem,
                                                                         time_limit_s=30)
    assert split.status == "partitioned" and split.fits(problem)
    assert split.goodput_bound == pytest.approx(sel.goodput_bound)  # the whole LP's bound


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 4), min_size=10, max_size=10),
       st.lists(st.floats(0.3, 1.0), min_size=4, max_size=4), st.booleans())
def test_the_warm_lp_solved_again_is_the_lp_solved_anew(
        seed: int, times: list[int], lower: list[float], equal: bool) -> None:
    # The goodput LP's solver kept (warm) and solved again for lowered capacities gives what
    # a cold solve of the lowered LP gives: the same optimum and the same proven bound.
    base = _random_problem(np.random.default_rng(seed), queries=10, rows=4, per_query=3)
    flat = flatten(_repeated(base, times))
    alike = Alike.of(flat)
    queries = np.arange(flat.nq) if not equal else np.arange(0, flat.nq, 2)
    c = -flat.weight if not equal else flat.cost
    cap = flat.cap if not equal else flat.cap * 10
    first = alike.solve(flat, c, flat.usage, cap, queries=queries, equal=equal,
                        deadline=np.inf, simplex=True, warm=True)
    cold = alike.solve(flat, c, flat.usage, cap, queries=queries, equal=equal, deadline=np.inf,
                       simplex=True)
    assert first is not None and cold is not None and first.again is not None
    assert first.objective == pytest.approx(cold.objective, rel=1e-7, abs=1e-7)
    for factor in (np.array(lower), np.ones(4), np.array(lower) ** 2):
        lowered = cap * factor
        again = first.again(lowered, np.inf)
        anew = alike.solve(flat, c, flat.usage, lowered, queries=queries, equal=equal,
                           deadline=np.inf, simplex=True)
        assert (again is None) == (anew is None)  # both infeasible, or both solved
        if again is None or anew is None:
            continue
        assert again.objective == pytest.approx(anew.objective, rel=1e-7, abs=1e-7)
        assert np.all(flat.usage @ again.x <= lowered * (1 + 1e-7) + 1e-7)
        assert float(c @ again.x) == pytest.approx(again.objective, rel=1e-7, abs=1e-7)
        if not equal:  # its duals prove the lowered LP's optimum
            assert goodput_bound(replace(flat, cap=lowered), again.duals, None) == (
                pytest.approx(-anew.objective, rel=1e-6, abs=1e-6))
