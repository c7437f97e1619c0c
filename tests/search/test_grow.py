"""Larger device sets and other load splits than the placement options offer, where they pay."""

from __future__ import annotations

from typing import Any

import pytest

import circinus
from circinus.plan.units import fill_shares
from circinus.spec import parse_world
from tinyworld import make_tiny_world


def _dear_uplink(rate: float) -> Any:
    """The tiny world with one query of ``rate`` images/s at the shop, a 2-unit box, a dear
    uplink ($1/GB) and detection that may spread over the box and the GPU pool."""
    data = make_tiny_world()
    data["planner"].update(sharing="dedicated", max_devices_per_operator=2, extra_replicas=0)
    data["devices"][0]["units"] = 2
    link = data["links"][0]
    link.update(price_per_gb=1.0, bandwidth_mbps=1000)
    link.pop("capacity_mbps")
    data["queries"] = [{"name": "cam", "pipeline": "vision", "sources": {"camera": "shop"},
                        "rate_rps": rate, "slo": {"latency_ms": 2000, "percentile": 95,
                                                  "min_accuracy": 0.8}}]
    return parse_world(data)


def test_fill_shares_worked_example() -> None:
    rates = [("box", "edge", 6.0), ("gpu", "cloud", 20.0)]
    assert fill_shares(rates, 10.0, 0.8, ["edge", "cloud"]) == pytest.approx((0.48, 0.52))
    assert fill_shares(rates, 10.0, 0.8, ["cloud", "edge"]) is None  # the box would idle


@pytest.mark.parametrize("search", ["circinus", "exhaustive"])
def test_the_edge_is_filled_first_when_the_uplink_is_dear(search: str) -> None:
    # 50 images/s: the box's two replicas serve 40 at the bound, the GPU the rest. In
    # proportion to capacity the GPU would take 80 % of 7.3 MB/s over the $1/GB uplink.
    world = _dear_uplink(50.0)
    oracle = circinus.Planner(search="oracle", selector="exact").plan(world)
    ours = circinus.Planner(search=search).plan(world)
    assert ours.cost_per_hour == pytest.approx(oracle.cost_per_hour, rel=1e-9)
    (outcome,) = ours.outcomes
    assert outcome.plan is not None
    det = outcome.plan.stage("det")
    assert {(r.device, r.count) for r in det.placement} == {("shop-box", 2), ("t4-pool", 1)}
    assert {r.device: r.share for r in det.placement}["shop-box"] == pytest.approx(0.8)
    proportional = world.model_copy(update={"planner": world.planner.model_copy(
        update={"max_devices_per_operator": 1})})
    assert ours.cost_per_hour < 0.5 * circinus.Planner(search=search).plan(
        proportional).cost_per_hour


def test_a_split_plan_file_routes_its_shares() -> None:
    from circinus.plan.file import to_plan_file
    from circinus.spec import build_index

    index = build_index(_dear_uplink(50.0))
    doc = to_plan_file(index, circinus.Planner().plan(index))
    (query,) = doc.queries
    det = next(s for s in query.route if s.stage == "det")
    assert sorted(round(d.share, 6) for d in det.deployments) == [0.2, 0.8]
