"""A query whose every accuracy-feasible configuration has a stage no device may run is
rejected for placement, naming the stage and configuration, not for latency."""

from __future__ import annotations

from typing import Any

import pytest

from circinus.planner import Planner
from circinus.spec import build_index, parse_world
from tinyworld import make_tiny_world


def _without_pool(world: dict[str, Any], min_accuracy: float) -> dict[str, Any]:
    world["devices"] = [d for d in world["devices"] if d["name"] != "t4-pool"]
    world["queries"][0]["slo"] = {"latency_ms": 400, "percentile": 95,
                                  "min_accuracy": min_accuracy}
    return world


@pytest.mark.parametrize("sharing", ["dedicated", "shared", "mixed"])
@pytest.mark.parametrize("search", ["circinus", "exhaustive"])
def test_a_configuration_without_a_device_is_a_placement_reason(
        tiny_world: dict[str, Any], search: str, sharing: str) -> None:
    # 0.9 needs classify at 448 (0.93 x 0.95 < 0.9), which only the removed T4 pool runs
    world = _without_pool(tiny_world, 0.9)
    world["planner"]["sharing"] = sharing
    outcome = Planner(search=search).plan(build_index(parse_world(world))).outcomes[0]
    assert not outcome.admitted
    assert outcome.reason is not None and outcome.reason.startswith("placement:"), outcome.reason
    assert "cls as {resolution: 448}" in outcome.reason
    assert "accuracy bound 0.9" in outcome.reason


def test_a_placeable_configuration_is_still_planned(tiny_world: dict[str, Any]) -> None:
    # 0.85 is met by classify at 224, which the shop's box runs
    index = build_index(parse_world(_without_pool(tiny_world, 0.85)))
    outcome = Planner().plan(index).outcomes[0]
    assert outcome.reason is None or not outcome.reason.startswith("placement:")


SMALL_BOX = ("fits the units of the devices it may use at any latency (shop-box: 2 units); the "
             "smallest plan, det as {model: large} (2 units) and cls as {resolution: 224} "
             "(1 unit), takes 3 units in whole replicas")


@pytest.mark.parametrize("sharing", ["dedicated", "shared", "mixed"])
@pytest.mark.parametrize("search", ["circinus", "exhaustive"])
def test_a_box_too_small_for_the_pipeline_is_a_placement_reason(
        tiny_world: dict[str, Any], search: str, sharing: str) -> None:
    # 0.88 needs the large detector (2 units) beside the classifier (1 unit) on a 2-unit box:
    # no plan fits, however slow; the latency prune cut the one-replica detector first, and the
    # query was told its plans were too slow. Shared, the detector's share of one replica at
    # 80 % (1.875 units) and the classifier's (0.125) made the plans look as if they fit.
    world = _without_pool(tiny_world, 0.88)
    world["devices"][0]["units"] = 2
    world["planner"]["sharing"] = sharing
    outcome = Planner(search=search).plan(build_index(parse_world(world))).outcomes[0]
    assert not outcome.admitted
    assert outcome.reason is not None and outcome.reason.startswith("placement:"), outcome.reason
    assert SMALL_BOX in outcome.reason


def test_plans_that_fit_only_in_fractions_of_replicas_name_the_device_and_its_units(
        tiny_world: dict[str, Any]) -> None:
    # A bound every plan meets. Dedicated, no plan fits the box; shared, the plans' shares fit
    # it (the detector's share of a replica at 80 %, 1.875 units, and the classifier's 0.125)
    # and the selection, in whole replicas (3 units), finds no room: a capacity reason that
    # names the box and its units, not latency.
    world = _without_pool(tiny_world, 0.88)
    world["queries"][0]["slo"]["latency_ms"] = 60_000
    world["devices"][0]["units"] = 2
    world["planner"]["sharing"] = "dedicated"
    dedicated = Planner().plan(build_index(parse_world(world))).outcomes[0]
    assert not dedicated.admitted
    assert dedicated.reason is not None and SMALL_BOX in dedicated.reason, dedicated.reason
    world["planner"]["sharing"] = "shared"
    shared = Planner().plan(build_index(parse_world(world))).outcomes[0]
    assert not shared.admitted
    assert shared.reason is not None and shared.reason.startswith(
        "capacity: device shop-box has 2 of 2 units left"), shared.reason
    assert "whole replicas" in shared.reason


def test_a_box_that_holds_the_whole_replicas_is_planned(tiny_world: dict[str, Any]) -> None:
    world = _without_pool(tiny_world, 0.88)
    world["queries"][0]["slo"]["latency_ms"] = 60_000
    world["devices"][0]["units"] = 3
    outcome = Planner().plan(build_index(parse_world(world))).outcomes[0]
    assert outcome.admitted, outcome.reason


def test_the_reason_counts_a_deployment_two_stages_join_once(tiny_world: dict[str, Any]) -> None:
    # Two stages of one operator and configuration on one device join one deployment: its
    # replicas are counted once, so a box of one replica's units still hosts the query (2 req/s
    # on each stage load the deployment 0.6 of a replica, under 80 %).
    world = _without_pool(tiny_world, 0.0)
    world["queries"] = [world["queries"][0]]
    world["queries"][0]["rate_rps"] = 2
    world["queries"][0]["slo"] = {"latency_ms": 60_000, "percentile": 95}
    world["pipelines"][0]["stages"][1]["operator"] = "detect"
    world["devices"][0]["units"] = 2
    world["operators"][0]["profiles"] = [p for p in world["operators"][0]["profiles"]
                                         if p["config"]["model"] == "large"]
    shared = Planner().plan(build_index(parse_world(world))).outcomes[0]
    assert shared.admitted, shared.reason
    world["planner"]["sharing"] = "dedicated"
    dedicated = Planner().plan(build_index(parse_world(world))).outcomes[0]
    assert not dedicated.admitted  # two replicas of 2 units each
    assert dedicated.reason is not None and "takes 4 units" in dedicated.reason


@pytest.mark.parametrize("sharing", ["dedicated", "shared"])
def test_the_oracle_gives_the_placement_reasons_too(tiny_world: dict[str, Any],
                                                    sharing: str) -> None:
    small = _without_pool(tiny_world, 0.88)
    small["devices"][0]["units"] = 2
    unplaced = _without_pool(make_tiny_world(), 0.9)
    reasons = []
    for world in (small, unplaced):
        world["planner"]["sharing"] = sharing
        outcome = Planner(search="oracle", selector="exact").plan(
            build_index(parse_world(world))).outcomes[0]
        assert not outcome.admitted
        reasons.append(outcome.reason or "")
    assert reasons[0].startswith("placement: no plan meeting the accuracy bound 0.88 fits the "
                                 "units of the devices"), reasons[0]
    assert reasons[1].startswith("placement: no device the query may use runs every stage of a "
                                 "configuration meeting the accuracy bound 0.9"), reasons[1]
