"""The partitioned selection: the split, capacities, the bound against exact selections."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.select.test_lp import _random_problem
from tests.select.test_milp import _brute, _problem, instance

from circinus.select import MilpSelector, SelectionProblem
from circinus.select.partitioned import PartitionedSelector, split


def test_split_keeps_each_site_whole_and_shares_the_pool() -> None:
    problem = _random_problem(np.random.default_rng(1), queries=400, rows=9, per_query=4)
    parts = split(problem, 3, seed=0)
    assert sorted(q for qs in parts.parts for q in qs) == list(range(400))
    for s in range(8):  # every query that can use a box in one part, which gets it whole
        users = {q for q, qc in enumerate(problem.candidates)
                 if any(("device", f"box-{s}") in c.estimate.usage() for c in qc.candidates)}
        owners = {p for p, qs in enumerate(parts.parts) for q in qs if q in users}
        assert users and len(owners) == 1, (s, owners)
        col = parts.shares[:, parts.rows.index(("device", f"box-{s}"))]
        assert col[owners.pop()] == pytest.approx(1.0)
    pool = parts.shares[:, parts.rows.index(("device", "pool"))]
    assert pool.sum() == pytest.approx(1.0)
    assert all(0.2 < s < 0.5 for s in pool)  # about a third each
    sizes = [sum(len(problem.candidates[q].candidates) for q in qs) for qs in parts.parts]
    assert max(sizes) < 1.5 * min(sizes)


def test_a_row_everyone_uses_is_split_at_random_when_no_row_is_local() -> None:
    problem = _random_problem(np.random.default_rng(2), queries=300, rows=2, per_query=3)
    parts = split(problem, 3, seed=4)  # one box and the pool: both used by every query
    sizes = [sum(len(problem.candidates[q].candidates) for q in qs) for qs in parts.parts]
    assert max(sizes) - min(sizes) <= 3  # dealt one by one to the part with fewest
    assert parts.shares.sum(axis=0) == pytest.approx(np.ones(len(parts.rows)))
    assert all(0.25 < s < 0.42 for s in parts.shares.ravel())
    assert split(problem, 3, seed=4).parts == parts.parts
    assert split(problem, 3, seed=5).parts != parts.parts


@pytest.mark.parametrize("seed", range(6))
def test_within_its_reported_gap_of_the_exact_selection(seed: int) -> None:
    problem = _random_problem(np.random.default_rng(seed), queries=120, rows=7, per_query=4)
    exact = MilpSelector(lp_above=None, partition_above=None).select(problem, time_limit_s=20)
    part = PartitionedSelector(partitions=3, seed=seed).select(problem, time_limit_s=20)
    assert exact.status == "optimal"
    assert part.status == "partitioned"
    assert part.fits(problem)
    assert part.goodput <= exact.goodput + 1e-9
    assert exact.goodput <= part.goodput_bound + 1e-9  # the bound is proven
    assert (exact.goodput - part.goodput) / exact.goodput <= part.gap + 1e-9
    assert part.gap == pytest.approx((part.goodput_bound - part.goodput) / part.goodput_bound)


@settings(max_examples=60, deadline=None)
@given(instance, st.integers(1, 3), st.integers(0, 3))
def test_never_over_capacity_and_the_bound_holds(inst, partitions: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    problem = _problem(*inst)
    sel = PartitionedSelector(partitions=partitions, seed=seed).select(problem, time_limit_s=10)
    best, _ = _brute(problem)
    assert len(sel.chosen) == len(problem.candidates)
    assert sel.fits(problem)
    assert sel.goodput <= best + 1e-9
    assert sel.goodput_bound >= best - 1e-9


def test_deterministic_with_a_fixed_seed() -> None:
    problem = _random_problem(np.random.default_rng(9), queries=600, rows=21, per_query=5)
    first = PartitionedSelector(partitions=4, seed=3).select(problem, time_limit_s=60)
    second = PartitionedSelector(partitions=4, seed=3).select(problem, time_limit_s=60)
    assert first.chosen == second.chosen
    assert (first.goodput, first.goodput_bound, first.cost_per_hour) == (
        second.goodput, second.goodput_bound, second.cost_per_hour)


def test_parts_in_worker_processes_choose_as_one_after_another() -> None:
    problem = _random_problem(np.random.default_rng(10), queries=400, rows=9, per_query=4)
    serial = PartitionedSelector(partitions=2, seed=1).select(problem, time_limit_s=60)
    forked = PartitionedSelector(partitions=2, seed=1, workers=2).select(problem,
                                                                         time_limit_s=60)
    assert forked.chosen == serial.chosen
    assert forked.goodput_bound == serial.goodput_bound


def test_milp_selector_partitions_above_its_threshold_only() -> None:
    problem = _random_problem(np.random.default_rng(7), queries=300, rows=10, per_query=4)
    n = sum(len(qc.candidates) for qc in problem.candidates)
    assert MilpSelector(partition_above=n - 1).select(
        problem, time_limit_s=10).status == "partitioned"
    assert MilpSelector(partition_above=n).select(
        problem, time_limit_s=10).status != "partitioned"
    with pytest.raises(ValueError, match="partitions"):
        PartitionedSelector(partitions=0)


@pytest.mark.slow
def test_shared_deployments_fit_in_whole_replicas_within_the_bound() -> None:
    """A generated world with shared deployments (cloud replicas shared across parts): the
    merged selection fits in whole replicas, and the exact selector's goodput (feasible, so at
    most the optimum) is within the partitioned bound."""
    from circinus.estimate.analytic import AnalyticEstimator
    from circinus.gen import GenSpec, generate
    from circinus.search.decomposed import DecomposedSearch
    from circinus.spec.load import parse_world
    from circinus.spec.validate import build_index

    world = parse_world(generate(GenSpec(queries=240, seed=3, edge_sites=6)), origin="gen")
    index = build_index(world)
    search = DecomposedSearch(estimator=AnalyticEstimator(index=index), settings=world.planner)
    problem = SelectionProblem.build(index, search.search(world.queries))
    assert problem.deployments
    part = PartitionedSelector(partitions=3, seed=0).select(problem, time_limit_s=5)
    exact = MilpSelector(partition_above=None).select(problem, time_limit_s=5)
    assert part.fits(problem) and exact.fits(problem)
    assert exact.goodput <= part.goodput_bound + 1e-9
    assert part.goodput > 0.8 * exact.goodput
