"""The world's runtime section: the engine's per-call overhead, added to every stage."""

from __future__ import annotations

from typing import Any

import pytest

from circinus.estimate.analytic import AnalyticEstimator
from circinus.planner import Planner
from circinus.spec.load import parse_world
from circinus.spec.validate import build_index


def test_each_stage_pays_the_overhead_once(tiny_world: dict[str, Any]) -> None:
    index = build_index(parse_world(tiny_world))
    result = Planner().plan(index)
    outcome = next(o for o in result.outcomes if o.plan is not None)
    query = next(q for q in index.world.queries if q.name == outcome.name)
    assert outcome.plan is not None
    base = AnalyticEstimator(index=index).estimate(query, outcome.plan)
    tiny_world["runtime"] = {"hop_mean_ms": 3.0, "hop_sd_ms": 2.0}
    slow = build_index(parse_world(tiny_world))
    with_hop = AnalyticEstimator(index=slow).estimate(query, outcome.plan)
    stages = len(outcome.plan.stages)  # a chain: every stage is on the path
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
