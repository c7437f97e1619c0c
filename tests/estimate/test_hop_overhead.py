"""The world's runtime section: the engine's per-call overhead, added to every stage."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from circinus.estimate.analytic import AnalyticEstimator
from circinus.plan.records import QueryPlan, Replicas
from circinus.planner import Planner
from circinus.spec.index import WorldIndex
from circinus.spec.load import parse_world
from circinus.spec.models import Query
from circinus.spec.validate import build_index


def _admitted(tiny_world: dict[str, Any]) -> tuple[WorldIndex, Query, QueryPlan]:
    """The tiny world's index, its first admitted query and that query's plan."""
    index = build_index(parse_world(tiny_world))
    outcome = next(o for o in Planner().plan(index).outcomes if o.plan is not None)
    assert outcome.plan is not None
    return index, next(q for q in index.world.queries if q.name == outcome.name), outcome.plan


def test_each_stage_pays_the_overhead_once(tiny_world: dict[str, Any]) -> None:
    index, query, plan = _admitted(tiny_world)
    base = AnalyticEstimator(index=index).estimate(query, plan)
    tiny_world["runtime"] = {"hop_mean_ms": 3.0, "hop_sd_ms": 2.0}
    slow = build_index(parse_world(tiny_world))
    with_hop = AnalyticEstimator(index=slow).estimate(query, plan)
    stages = len(plan.stages)  # a chain: every stage is on the path
    assert with_hop.latency_mean_ms == pytest.approx(base.latency_mean_ms + 3.0 * stages)
    assert with_hop.latency_var_ms2 == pytest.approx(base.latency_var_ms2 + 4.0 * stages)
    assert with_hop.latency_ms > base.latency_ms
    assert with_hop.cost_per_hour == base.cost_per_hour
    assert with_hop.max_utilization == base.max_utilization


def test_no_runtime_section_changes_nothing(tiny_world: dict[str, Any]) -> None:
    index = build_index(parse_world(tiny_world))
    tiny_world["runtime"] = {"hop_mean_ms": 0.0}
    zero = build_index(parse_world(tiny_world))
    a, b = Planner().plan(index), Planner().plan(zero)
    assert [o.estimate for o in a.outcomes] == [o.estimate for o in b.outcomes]


def test_runtime_section_is_strict(tiny_world: dict[str, Any]) -> None:
    from circinus.errors import SpecError

    tiny_world["runtime"] = {"hop_mean_ms": 1.0, "hop_men_ms": 2.0}
    with pytest.raises(SpecError, match="runtime"):
        parse_world(tiny_world)


def test_each_stage_pays_the_figures_of_its_tier(tiny_world: dict[str, Any]) -> None:
    index, query, chosen = _admitted(tiny_world)
    # its last stage moved to the cloud pool, so that the plan calls both tiers
    plan = replace(chosen, stages=(*chosen.stages[:-1], replace(
        chosen.stages[-1], placement=(Replicas("t4-pool", 1),))))
    base = AnalyticEstimator(index=index).estimate(query, plan)
    assert math.isfinite(base.latency_mean_ms)
    # the world-wide figure is 1 ms; edge calls 3 +/- 2 ms, cloud calls 7 +/- 5 ms
    tiny_world["runtime"] = {"hop_mean_ms": 1.0, "tiers": {
        "edge": {"hop_mean_ms": 3.0, "hop_sd_ms": 2.0},
        "cloud": {"hop_mean_ms": 7.0, "hop_sd_ms": 5.0}}}
    tiered = build_index(parse_world(tiny_world))
    est = AnalyticEstimator(index=tiered).estimate(query, plan)
    mean = var = 0.0
    for st in plan.stages:
        total = sum(r.count for r in st.placement)
        for rep in st.placement:  # one device per stage here; a split would mix its tiers
            tier = index.sites[index.devices[rep.device].site].tier
            m, sd = (3.0, 2.0) if tier == "edge" else (7.0, 5.0)
            mean += m * rep.count / total
            var += sd * sd * rep.count / total
    assert all(len(st.placement) == 1 for st in plan.stages)
    assert est.latency_mean_ms == pytest.approx(base.latency_mean_ms + mean)
    assert est.latency_var_ms2 == pytest.approx(base.latency_var_ms2 + var)
    # a tier without figures of its own pays the world-wide figure
    tiny_world["runtime"] = {"hop_mean_ms": 1.0, "tiers": {"cloud": {"hop_mean_ms": 7.0}}}
    edge_default = build_index(parse_world(tiny_world))
    tiers = {index.sites[index.devices[r.device].site].tier
             for st in plan.stages for r in st.placement}
    assert tiers == {"edge", "cloud"}
    expected = sum(7.0 if index.sites[index.devices[st.placement[0].device].site].tier
                   == "cloud" else 1.0 for st in plan.stages)
    est = AnalyticEstimator(index=edge_default).estimate(query, plan)
    assert est.latency_mean_ms == pytest.approx(base.latency_mean_ms + expected), tiers


def test_tier_figures_are_strict_and_bounded(tiny_world: dict[str, Any]) -> None:
    from circinus.errors import SpecError

    tiny_world["runtime"] = {"hop_mean_ms": 1.0, "tiers": {"fog": {"hop_mean_ms": 2.0}}}
    with pytest.raises(SpecError, match="runtime"):
        parse_world(tiny_world)
    tiny_world["runtime"] = {"hop_mean_ms": 1.0, "tiers": {"edge": {"hop_mean_ms": -2.0}}}
    with pytest.raises(SpecError, match="hop_mean_ms"):
        parse_world(tiny_world)


def test_the_world_schema_describes_the_tier_figures(tiny_world: dict[str, Any]) -> None:
    import jsonschema

    from circinus.cli.main import json_schema

    tiny_world["runtime"] = {"hop_mean_ms": 1.0, "tiers": {
        "cloud": {"hop_mean_ms": 7.0, "hop_sd_ms": 5.0, "samples": 10}}}
    jsonschema.validate(tiny_world, json_schema("world"))
    tiny_world["runtime"]["tiers"]["fog"] = {"hop_mean_ms": 1.0}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tiny_world, json_schema("world"))
