"""Contracts of the Nexus- and INFaaS-style baselines on tiny worlds.

Nexus: the latency split is the cheapest within the budget (brute force over budget grids),
every plan runs on the cloud tier at batch sizes within Nexus's batching bound, a query is
packed whole or not at all. INFaaS: without a try cap, its choice is the plan of least compute
cost among every admissible single-tier plan (brute force over the same space).
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import pytest

from circinus.baselines.infaas import CheapestVariantSearch
from circinus.baselines.nexus import Choice, NexusSearch, split
from circinus.baselines.space import plan_space
from circinus.estimate import AnalyticEstimator
from circinus.search.shortlist import admissible
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex
from tinyworld import make_tiny_world


def _choice(bound_ms: float, cost: float) -> Choice:
    return Choice(1, "d", bound_ms, cost, 0.1, 1.0, 0.0)


def test_split_matches_its_worked_example() -> None:
    options = {"a": [_choice(25, 4), _choice(50, 1)], "b": [_choice(50, 3), _choice(75, 1)]}
    budgets = split(["a", "b"], {"a": ("src",), "b": ("a",)}, options, 100, 4)
    assert budgets == {"a": 50, "b": 50}


@pytest.mark.parametrize("seed", range(20))
def test_split_is_the_cheapest_on_its_grid(seed: int) -> None:
    """Brute force over every assignment of grid steps, on a join of two chains."""
    import random

    rng = random.Random(seed)
    stages = ["a", "b", "c", "d"]
    preds = {"a": ("s1",), "b": ("a",), "c": ("s2",), "d": ("b", "c")}
    options = {s: [_choice(rng.uniform(5, 60), rng.uniform(0.1, 5)) for _ in range(3)]
               for s in stages}
    grid, budget = 8, 100.0
    step = budget / grid

    def cheapest(s: str, k: int) -> float:
        return min((c.cost for c in options[s] if c.bound_ms <= k * step + 1e-9),
                   default=math.inf)

    best = math.inf
    for ks in itertools.product(range(1, grid + 1), repeat=4):
        k = dict(zip(stages, ks, strict=True))
        if k["a"] + k["b"] + k["d"] > grid or k["c"] + k["d"] > grid:
            continue
        best = min(best, sum(cheapest(s, k[s]) for s in stages))
    budgets = split(stages, preds, options, budget, grid)
    if not math.isfinite(best):
        assert budgets is None
        return
    assert budgets is not None
    assert budgets["a"] + budgets["b"] + budgets["d"] <= budget + 1e-9
    assert budgets["c"] + budgets["d"] <= budget + 1e-9
    got = sum(min(c.cost for c in options[s] if c.bound_ms <= budgets[s] + 1e-9)
              for s in stages)
    assert got == pytest.approx(best)


def _index(data: dict[str, Any]) -> WorldIndex:
    return build_index(parse_world(data))


def test_nexus_serves_from_the_cloud_within_its_batching_bound() -> None:
    data = make_tiny_world()
    for q in data["queries"]:
        q["rate_rps"] = 40
    index = _index(data)
    search = NexusSearch(estimator=AnalyticEstimator(index=index), settings=index.world.planner)
    found = search.search(index.world.queries)
    assert any(qc.candidates for qc in found)
    for query, qc in zip(index.world.queries, found, strict=True):
        for cand in qc.candidates:
            assert cand.estimate.meets(query.slo)
            for st in cand.plan.stages:
                assert all(index.sites[index.devices[d].site].tier == "cloud"
                           for d in st.devices)
                assert st.level == index.world.planner.max_utilization


def test_nexus_packs_a_query_whole_or_not_at_all() -> None:
    data = make_tiny_world()
    data["devices"][1]["units"] = 1  # room for one replica on the cloud
    extra = copy.deepcopy(data["queries"][0])
    extra["name"] = "cam-3"
    data["queries"].append(extra)
    index = _index(data)
    search = NexusSearch(estimator=AnalyticEstimator(index=index), settings=index.world.planner)
    found = search.search(index.world.queries)
    used = 0.0
    for qc in found:
        if qc.candidates:
            used += dict(qc.candidates[0].estimate.device_units).get("t4-pool", 0.0)
        else:
            assert qc.reason is not None
    assert used <= 1 + 1e-9
    assert any(qc.reason and qc.reason.startswith("capacity:") for qc in found)


@pytest.mark.parametrize("latency", [None, 400, 120, 90])
def test_infaas_takes_the_least_compute_admissible_single_tier_plan(latency: int | None
                                                                      ) -> None:
    data = make_tiny_world()
    data["queries"][0]["slo"]["latency_ms"] = latency
    data["queries"][0]["slo"]["min_accuracy"] = 0.85
    index = _index(data)
    estimator = AnalyticEstimator(index=index)
    search = CheapestVariantSearch(estimator=estimator, settings=index.world.planner)
    query = index.world.queries[0]
    (qc,) = search.search([query])
    best = math.inf
    for devices in search._tier_devices(query):
        space = plan_space(index, index.world.planner, query, devices, single_device=True,
                           fewest_replicas=True)
        for picks in itertools.product(*[[(c, o) for c, opts in ch for o in opts]
                                         for ch in space.choices]):
            est = estimator.estimate(query, space.plan(query, picks))
            if admissible(query, est, index=index, settings=index.world.planner):
                best = min(best, est.compute_cost_per_hour)
    if math.isinf(best):
        assert not qc.candidates and qc.reason
    else:
        assert min(c.estimate.compute_cost_per_hour for c in qc.candidates) == (
            pytest.approx(best))
