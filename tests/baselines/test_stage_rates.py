"""Every baseline sizes a stage at the rate the estimator gives it: the query's (or its
source's own) times the stage's visits per request (a branch's probability, a fan-out's
objects)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from circinus.baselines.space import plan_spaces
from circinus.estimate import AnalyticEstimator
from circinus.estimate.flow import least_stage_rates, stage_rates
from circinus.planner import SEARCHES
from circinus.search.placements import eligible_devices
from circinus.spec import build_index, parse_world
from circinus.spec.index import WorldIndex

BASELINES = ("vulcan", "vulcan-alone", "jellybean", "jellybean-alone", "infaas", "nexus",
             "random")


def _op(name: str, ms: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "profiles": [{"hardware": "cpu", "mean_ms": ms, "cv": 0.1}],
            "output_kb": 1.0, "accuracy": 1.0, **extra}


def _world(pipeline: dict[str, Any], ops: list[dict[str, Any]], query: dict[str, Any],
           sharing: str) -> dict[str, Any]:
    """An edge box and a cloud pool of CPUs (Nexus plans on the cloud tier only)."""
    return {
        "name": "rates", "hardware": [{"name": "cpu"}],
        "sites": [{"name": "edge", "tier": "edge"}, {"name": "region", "tier": "cloud"}],
        "devices": [{"name": "box", "site": "edge", "hardware": "cpu", "units": 16,
                     "price_per_unit_hour": 0.01},
                    {"name": "pool", "site": "region", "hardware": "cpu", "units": 16,
                     "price_per_unit_hour": 0.02}],
        "links": [{"src": "edge", "dst": "region", "bandwidth_mbps": 1000, "rtt_ms": 2,
                   "price_per_gb": 0.01, "both_ways": True}],
        "operators": ops, "pipelines": [pipeline],
        "queries": [{"name": "q", "pipeline": "p", "sources": dict.fromkeys(
            [s["name"] for s in pipeline["sources"]], "edge"), **query}],
        "planner": {"sharing": sharing, "extra_replicas": 0, "time_limit_s": 10},
    }


def _fanout(sharing: str) -> dict[str, Any]:
    """5 frames/s, each 3 or 6 objects (by the detector's model) of 40 ms each: the
    classifier is 0.6 or 1.2 replicas busy, 0.2 at the frame rate."""
    det = _op("det", 10.0, fanout=[{"when": {"model": "n"}, "mean": 3.0, "cv": 0.5},
                                   {"when": {"model": "s"}, "mean": 6.0, "cv": 0.5}])
    det["knobs"] = {"model": ["n", "s"]}
    det["profiles"] = [{"config": {"model": m}, "hardware": "cpu", "mean_ms": 10.0, "cv": 0.1}
                       for m in ("n", "s")]
    det["accuracy"] = [{"when": {"model": "n"}, "value": 0.8},
                       {"when": {"model": "s"}, "value": 0.9}]
    pipe = {"name": "p", "sources": [{"name": "camera", "output_kb": 10}],
            "stages": [{"name": "det", "operator": "det"}, {"name": "cls", "operator": "cls"}],
            "edges": [["camera", "det"], ["det", "cls"]]}
    return _world(pipe, [det, _op("cls", 40.0)],
                  {"rate_rps": 5.0, "slo": {"latency_ms": 2000, "percentile": 95,
                                            "min_accuracy": 0.85}}, sharing)


def _branch(sharing: str) -> dict[str, Any]:
    """10 frames/s; a fifth of them go to a 100 ms model (0.2 replicas busy, 1.0 at the frame
    rate)."""
    pipe = {"name": "p", "sources": [{"name": "camera", "output_kb": 10}],
            "stages": [{"name": "route", "operator": "route"},
                       {"name": "slow", "operator": "slow"},
                       {"name": "out", "operator": "out"}],
            "edges": [["camera", "route"], ["route", "slow"], ["route", "out"],
                      ["slow", "out"]],
            "branches": [{"at": "route", "to": {"slow": 0.2}}]}
    return _world(pipe, [_op("route", 2.0), _op("slow", 100.0), _op("out", 1.0)],
                  {"rate_rps": 10.0, "slo": {"latency_ms": 2000, "percentile": 95}}, sharing)


def _own_rate(sharing: str) -> dict[str, Any]:
    """4 frames/s fused with a microphone of its own 40 chunks/s into a 30 ms recogniser
    (1.2 replicas busy, 0.12 at the frame rate)."""
    pipe = {"name": "p", "sources": [{"name": "camera", "output_kb": 10},
                                     {"name": "mic", "output_kb": 2}],
            "stages": [{"name": "faces", "operator": "faces"},
                       {"name": "asr", "operator": "asr"},
                       {"name": "fuse", "operator": "fuse"}],
            "edges": [["camera", "faces"], ["mic", "asr"], ["faces", "fuse"], ["asr", "fuse"]]}
    return _world(pipe, [_op("faces", 20.0), _op("asr", 30.0), _op("fuse", 2.0)],
                  {"rate_rps": 4.0, "source_rate_rps": {"mic": 40.0},
                   "slo": {"latency_ms": 2000, "percentile": 95}}, sharing)


WORLDS = {"fanout": _fanout, "branch": _branch, "own-rate": _own_rate}


def _index(data: dict[str, Any]) -> WorldIndex:
    return build_index(parse_world(copy.deepcopy(data)))


def test_stage_rates_follow_visits_objects_and_own_rates() -> None:
    fan = _index(_fanout("dedicated"))
    pipe, ops, q = fan.pipelines["p"], fan.operators, fan.world.queries[0]
    assert stage_rates(pipe, ops, q, {"det": ("s",)}) == pytest.approx({"det": 5.0, "cls": 30.0})
    assert least_stage_rates(pipe, ops, q) == pytest.approx({"det": 5.0, "cls": 15.0})
    br = _index(_branch("dedicated"))
    assert stage_rates(br.pipelines["p"], br.operators, br.world.queries[0], {}) == (
        pytest.approx({"route": 10.0, "slow": 2.0, "out": 10.0}))
    own = _index(_own_rate("dedicated"))
    assert stage_rates(own.pipelines["p"], own.operators, own.world.queries[0], {}) == (
        pytest.approx({"faces": 4.0, "asr": 40.0, "fuse": 4.0}))


def test_a_fanout_pipeline_has_one_space_per_detector_model() -> None:
    index = _index(_fanout("dedicated"))
    query = index.world.queries[0]
    spaces = plan_spaces(index, index.world.planner, query,
                         eligible_devices(index, query, ("edge",)), fewest_replicas=True)
    assert [s.fanout for s in spaces] == [(0, ("n",)), (0, ("s",))]
    for space, objects in zip(spaces, (3.0, 6.0), strict=True):
        assert [c for c, _ in space.choices[0]] == [space.fanout[1]]  # type: ignore[index]
        (_, options), = space.choices[1]
        fewest = min(o.placement[0].count for o in options)
        # 5 frames/s x objects x 40 ms under a 0.85 bound
        assert fewest == math.ceil(5.0 * objects * 0.04 / 0.85)


@pytest.mark.parametrize("sharing", ["dedicated", "shared"])
@pytest.mark.parametrize("world", sorted(WORLDS))
@pytest.mark.parametrize("key", BASELINES)
def test_baselines_admit_plans_sized_for_each_stage_rate(key: str, world: str,
                                                         sharing: str) -> None:
    index = _index(WORLDS[world](sharing))
    search = SEARCHES[key](estimator=AnalyticEstimator(index=index),
                           settings=index.world.planner)
    (found,) = search.search(index.world.queries)
    assert found.candidates, found.reason
    for cand in found.candidates:
        assert cand.estimate.meets(index.world.queries[0].slo)
        assert cand.estimate.max_utilization <= index.world.planner.max_utilization + 1e-9


@pytest.mark.parametrize("key", ["infaas", "nexus", "jellybean"])
def test_a_rarely_taken_branch_is_not_sized_for_every_request(key: str) -> None:
    index = _index(_branch("dedicated"))
    search = SEARCHES[key](estimator=AnalyticEstimator(index=index),
                           settings=index.world.planner)
    (found,) = search.search(index.world.queries)
    cheapest = found.candidates[0].plan
    slow = next(s for s in cheapest.stages if s.stage == "slow")
    # 2 req/s x 100 ms = 0.2 busy: one replica (the frame rate would need two).
    assert sum(r.count for r in slow.placement) == 1
