"""End-to-end planner properties on small worlds, checked against brute force."""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circinus
from circinus.estimate import AnalyticEstimator
from circinus.plan import QueryPlan, Replicas, StagePlan
from circinus.spec import build_index, parse_world

BASE: dict[str, Any] = {
    "name": "two-stage",
    "hardware": [{"name": "cpu"}, {"name": "gpu", "kind": "gpu"}],
    "sites": [{"name": "shop", "tier": "edge"}, {"name": "cloud", "tier": "cloud"}],
    "devices": [
        {"name": "box", "site": "shop", "hardware": "cpu", "units": 2, "price_per_unit_hour": 0.05},
        {"name": "pool", "site": "cloud", "hardware": "gpu", "units": 2,
         "price_per_unit_hour": 1.0},
    ],
    "links": [{"src": "shop", "dst": "cloud", "bandwidth_mbps": 50, "rtt_ms": 20,
               "price_per_gb": 0.05, "both_ways": True}],
    "operators": [
        {"name": "detect", "knobs": {"size": ["s", "m"]}, "accuracy": [
            {"when": {"size": "s"}, "value": 0.8}, {"when": {"size": "m"}, "value": 0.9}],
         "output_kb": 20, "profiles": [
            {"config": {"size": "s"}, "hardware": "cpu", "mean_ms": 40},
            {"config": {"size": "m"}, "hardware": "cpu", "mean_ms": 90},
            {"config": {"size": "s"}, "hardware": "gpu", "mean_ms": 5},
            {"config": {"size": "m"}, "hardware": "gpu", "mean_ms": 8, "batch_ms": {4: 20}}]},
        {"name": "classify", "knobs": {"model": ["small", "big"]}, "accuracy": [
            {"when": {"model": "small"}, "value": 0.7}, {"when": {"model": "big"}, "value": 0.85}],
         "output_kb": 1, "profiles": [
            {"config": {"model": "small"}, "hardware": "cpu", "mean_ms": 30},
            {"config": {"model": "big"}, "hardware": "cpu", "mean_ms": 120},
            {"config": {"model": "small"}, "hardware": "gpu", "mean_ms": 4, "units": 0.5},
            {"config": {"model": "big"}, "hardware": "gpu", "mean_ms": 10, "units": 0.5}]},
    ],
    "pipelines": [{"name": "vision", "sources": [{"name": "cam", "output_kb": 200}],
                   "stages": [{"name": "detect", "operator": "detect"},
                              {"name": "classify", "operator": "classify"}],
                   "edges": [["cam", "detect"], ["detect", "classify"]]}],
    "queries": [],
}

slo = st.fixed_dictionaries({
    "latency_ms": st.sampled_from([80.0, 150.0, 300.0, 1000.0]),
    "min_accuracy": st.sampled_from([0.5, 0.6, 0.7, 0.75]),
    "max_cost_per_hour": st.sampled_from([0.5, 1.5, 5.0]),
})
queries = st.lists(st.tuples(slo, st.sampled_from([2.0, 5.0, 10.0])), min_size=1, max_size=4)


def _world(qs: list[tuple[dict[str, float], float]]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["queries"] = [{"name": f"q{i}", "pipeline": "vision", "sources": {"cam": "shop"},
                        "rate_rps": rate, "slo": s} for i, (s, rate) in enumerate(qs)]
    return data


def _all_plans(index: Any, query: Any) -> list[QueryPlan]:
    """Every plan of ``query`` within the planner's option space, independently enumerated:
    any configuration, device and batch, from the fewest replicas that keep utilisation under
    the bound to ``extra_replicas`` more."""
    settings = index.world.planner
    stages = []
    for stage in ("detect", "classify"):
        op = index.operators[stage]
        opts = []
        for config in op.configs:
            for dev in index.world.devices:
                prof = op.profiles.get((config, dev.hardware))
                if prof is None:
                    continue
                for batch in (1, *prof.batch_ms):
                    ms = prof.mean_ms if batch == 1 else prof.batch_ms[batch]
                    per_replica = batch * 1000 / ms
                    fewest = math.ceil(query.rate_rps / (per_replica * settings.max_utilization))
                    most = min(int(dev.units / prof.units), fewest + settings.extra_replicas)
                    for count in range(fewest, most + 1):
                        opts.append(StagePlan(stage, config, batch, (Replicas(dev.name, count),)))
        stages.append(opts)
    return [QueryPlan(query.name, combo) for combo in itertools.product(*stages)]


@settings(max_examples=25, deadline=None)
@given(queries)
def test_admitted_plans_meet_slo_and_fit(qs: list[tuple[dict[str, float], float]]) -> None:
    world = parse_world(_world(qs))
    result = circinus.Planner().plan(world)
    index = build_index(world)
    used: dict[str, float] = {}
    for outcome, query in zip(result.outcomes, world.queries, strict=True):
        if outcome.admitted:
            assert outcome.estimate is not None and outcome.estimate.meets(query.slo)
            for dev, units in outcome.estimate.device_units:
                used[dev] = used.get(dev, 0.0) + units
        else:
            assert outcome.reason
    for dev, units in used.items():
        assert units <= index.devices[dev].units + 1e-9


@settings(max_examples=25, deadline=None)
@given(slo, st.sampled_from([2.0, 5.0, 10.0]))
def test_single_query_is_admitted_iff_some_plan_meets_its_slo(
    s: dict[str, float], rate: float
) -> None:
    world = parse_world(_world([(s, rate)]))
    index = build_index(world)
    estimator = AnalyticEstimator(index=index)
    query = world.queries[0]
    feasible = []
    for plan in _all_plans(index, query):
        est = estimator.estimate(query, plan)
        units: dict[str, float] = {}
        for dev, u in est.device_units:
            units[dev] = units.get(dev, 0.0) + u
        fits = all(u <= index.devices[d].units + 1e-9 for d, u in units.items())
        if fits and est.max_utilization <= world.planner.max_utilization + 1e-9 and est.meets(
            query.slo
        ):
            feasible.append(est.cost_per_hour)
    (outcome,) = circinus.Planner().plan(world).outcomes
    assert outcome.admitted == bool(feasible)
    if feasible:
        assert outcome.estimate is not None
        assert outcome.estimate.cost_per_hour == pytest.approx(min(feasible))


def test_same_world_same_plan() -> None:
    world = parse_world(_world([({"latency_ms": 300.0, "min_accuracy": 0.6,
                                  "max_cost_per_hour": 5.0}, 5.0)] * 3))
    first = circinus.Planner().plan(world)
    second = circinus.Planner().plan(world)
    assert [o.plan for o in first.outcomes] == [o.plan for o in second.outcomes]
