"""A query whose every accuracy-feasible configuration has a stage no device may run is
rejected for placement, naming the stage and configuration, not for latency."""

from __future__ import annotations

from typing import Any

import pytest

from circinus.planner import Planner
from circinus.spec import build_index, parse_world


def _without_pool(world: dict[str, Any], min_accuracy: float) -> dict[str, Any]:
    world["devices"] = [d for d in world["devices"] if d["name"] != "t4-pool"]
    world["queries"][0]["slo"] = {"latency_ms": 400, "percentile": 95,
                                  "min_accuracy": min_accuracy}
    return world


@pytest.mark.parametrize("search", ["circinus", "exhaustive"])
def test_a_configuration_without_a_device_is_a_placement_reason(
        tiny_world: dict[str, Any], search: str) -> None:
    # 0.9 needs classify at 448 (0.93 x 0.95 < 0.9), which only the removed T4 pool runs
    index = build_index(parse_world(_without_pool(tiny_world, 0.9)))
    outcome = Planner(search=search).plan(index).outcomes[0]
    assert not outcome.admitted
    assert outcome.reason is not None and outcome.reason.startswith("placement:"), outcome.reason
    assert "cls as {resolution: 448}" in outcome.reason
    assert "accuracy bound 0.9" in outcome.reason


def test_a_placeable_configuration_is_still_planned(tiny_world: dict[str, Any]) -> None:
    # 0.85 is met by classify at 224, which the shop's box runs
    index = build_index(parse_world(_without_pool(tiny_world, 0.85)))
    outcome = Planner().plan(index).outcomes[0]
    assert outcome.reason is None or not outcome.reason.startswith("placement:")


@pytest.mark.parametrize("search", ["circinus", "exhaustive"])
def test_a_box_too_small_for_the_pipeline_is_a_placement_reason(
        tiny_world: dict[str, Any], search: str) -> None:
    # 0.88 needs the large detector (2 units) beside the classifier (1 unit) on a 2-unit box:
    # no plan fits, however slow; the latency prune cut the one-replica detector first, and the
    # query was told its plans were too slow.
    world = _without_pool(tiny_world, 0.88)
    world["devices"][0]["units"] = 2
    world["planner"]["sharing"] = "dedicated"
    outcome = Planner(search=search).plan(build_index(parse_world(world))).outcomes[0]
    assert not outcome.admitted
    assert outcome.reason is not None and outcome.reason.startswith("placement:"), outcome.reason
    assert "units" in outcome.reason
