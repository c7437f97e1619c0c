"""The MILP selector against brute force on tiny instances, and its invariants."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circinus.estimate.base import Estimate
from circinus.plan.records import QueryPlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.select import MilpSelector, SelectionProblem

DEVICES = ("edge-a", "edge-b", "pool")


def _estimate(cost: float, units: dict[str, float], mbps: float) -> Estimate:
    return Estimate(
        latency_mean_ms=10.0, latency_ms=20.0, percentile=99.0, accuracy=0.9,
        compute_cost_per_hour=cost, network_cost_per_hour=0.0, max_utilization=0.5,
        device_units=tuple(sorted(units.items())), device_memory_gb=(),
        link_mbps=((("edge-a", "cloud"), mbps),) if mbps > 0 else (),
    )


candidate = st.builds(
    lambda cost, units, mbps: (cost, units, mbps),
    st.integers(1, 20).map(float),
    st.dictionaries(st.sampled_from(DEVICES), st.integers(1, 4).map(float), min_size=1,
                    max_size=2),
    st.sampled_from([0.0, 0.0, 5.0, 12.0]),
)
instance = st.tuples(
    st.lists(st.lists(candidate, max_size=3), min_size=1, max_size=5),
    st.lists(st.sampled_from([1.0, 1.0, 2.0, 0.5]), min_size=5, max_size=5),
    st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(2, 10)),
    st.sampled_from([None, 10.0, 20.0]),
)


def _problem(queries, weights, caps, link_cap) -> SelectionProblem:  # type: ignore[no-untyped-def]
    qcs = tuple(
        QueryCandidates(f"q{i}", tuple(
            Candidate(QueryPlan(f"q{i}", ()), _estimate(*c)) for c in cands), None, len(cands))
        for i, cands in enumerate(queries)
    )
    capacity = {("device", d): float(c) for d, c in zip(DEVICES, caps, strict=True)}
    if link_cap is not None:
        capacity["link", "edge-a->cloud"] = link_cap
    return SelectionProblem(qcs, tuple(weights[: len(qcs)]), capacity)


def _brute(problem: SelectionProblem) -> tuple[float, float]:
    """Best (goodput, -cost) over every choice of at most one candidate per query."""
    best = (-1.0, 0.0)
    options = [[None, *range(len(qc.candidates))] for qc in problem.candidates]
    for choice in itertools.product(*options):
        load: dict[tuple[str, str], float] = {}
        goodput = cost = 0.0
        for qc, w, k in zip(problem.candidates, problem.weights, choice, strict=True):
            if k is None:
                continue
            est = qc.candidates[k].estimate
            goodput += w
            cost += est.cost_per_hour
            for r, amount in est.usage().items():
                load[r] = load.get(r, 0.0) + amount
        if all(v <= problem.capacity.get(r, float("inf")) + 1e-9 for r, v in load.items()):
            best = max(best, (goodput, -cost))
    return best


@settings(max_examples=120, deadline=None)
@given(instance)
def test_milp_matches_brute_force(inst) -> None:  # type: ignore[no-untyped-def]
    problem = _problem(*inst)
    sel = MilpSelector().select(problem, time_limit_s=10)
    goodput, neg_cost = _brute(problem)
    assert sel.status == "optimal"
    assert sel.fits(problem)
    assert len(sel.chosen) == len(problem.candidates)  # at most one candidate per query
    assert sel.goodput == pytest.approx(goodput)
    assert sel.cost_per_hour == pytest.approx(-neg_cost)
    assert sel.goodput_bound >= sel.goodput - 1e-9
    assert sel.gap == pytest.approx(0.0, abs=1e-6)


def test_empty_problem_selects_nothing() -> None:
    problem = SelectionProblem((QueryCandidates("q", (), "accuracy: ...", 0),), (1.0,), {})
    sel = MilpSelector().select(problem, time_limit_s=1)
    assert sel.chosen == (None,)
    assert sel.goodput == 0.0


def test_heavier_query_wins_contention() -> None:
    # Two queries want the only unit of "pool"; the one of weight 2 must get it.
    problem = _problem([[(1.0, {"pool": 1.0}, 0.0)], [(1.0, {"pool": 1.0}, 0.0)]],
                       [1.0, 2.0, 1.0, 1.0, 1.0], (1, 1, 1), None)
    sel = MilpSelector().select(problem, time_limit_s=5)
    assert sel.chosen == (None, 0)
    assert sel.goodput == 2.0


def test_weight_unit() -> None:
    from circinus.select.flat import weight_unit

    assert weight_unit((0.5, 1.0, 2.0)) == 0.5
    assert weight_unit((1.0, 3.0)) == 1.0
    assert weight_unit((0.123456789, 1.0)) is None


@settings(max_examples=40, deadline=None)
@given(instance)
def test_two_pass_path_matches_brute_force_for_weights_without_unit(inst) -> None:  # type: ignore[no-untyped-def]
    queries, _, caps, link_cap = inst
    weights = [1.0, 0.7071067811865476, 1.4142135623730951, 0.5773502691896257, 1.0]
    problem = _problem(queries, weights, caps, link_cap)
    sel = MilpSelector().select(problem, time_limit_s=10)
    goodput, neg_cost = _brute(problem)
    assert sel.fits(problem)
    assert sel.goodput == pytest.approx(goodput)
    assert sel.cost_per_hour == pytest.approx(-neg_cost)


@settings(max_examples=60, deadline=None)
@given(instance)
def test_single_weighted_solve_matches_brute_force(inst) -> None:  # type: ignore[no-untyped-def]
    import circinus.select.milp as milp_module

    problem = _problem(*inst)
    saved = milp_module._SINGLE_SOLVE_ABOVE
    milp_module._SINGLE_SOLVE_ABOVE = 0  # the exact path used above 20,000 candidates
    try:
        sel = MilpSelector(lp_above=None).select(problem, time_limit_s=10)
    finally:
        milp_module._SINGLE_SOLVE_ABOVE = saved
    goodput, neg_cost = _brute(problem)
    assert sel.fits(problem)
    assert sel.goodput == pytest.approx(goodput)
    assert sel.cost_per_hour == pytest.approx(-neg_cost, rel=1e-5)
    assert sel.goodput_bound >= sel.goodput
    assert sel.status == "optimal"
