"""Joins without an operator, sources with rates and sizes of their own, and a source's uplink
priced apart: each estimator term pinned against the simulator (and arithmetic).

Tolerances: the branches of a join see the same arrivals, so their waits are correlated; the
estimator shares a part of their first stages' waits (estimate.join.common_wait), which at low
load is small (the simulated maximum is 3 % under the independent one for two M/M/1 branches at
30 and 20 % utilisation, so the pin runs them at 6 and 4 %); 20,000 requests give the mean to
about 1 % and the 95th percentile to about 1.5 %.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scipy.optimize import brentq

from circinus.estimate import AnalyticEstimator
from circinus.estimate.analytic import KB_PER_S_TO_GB_PER_H, KB_PER_S_TO_MBPS
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.simulate import PoissonArrivals, SimulationResult, SimulationSettings, SimWorld
from circinus.simulate import simulate as serve
from circinus.spec import build_index, parse_world
from circinus.spec.models import Query

Build = Callable[..., SimWorld]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fusion-join.yaml"


def _world(*, join_sink: bool, rate: float = 10.0, mic_rate: float | None = None,
           camera_kb: float | None = None) -> dict[str, Any]:
    """Camera -> x (Exp 30 ms), mic -> y (Exp 20 ms), joined by ``done`` (no operator) or by
    ``z`` (a deterministic 5 ms). Sources at ``edge``; a 81.92 Mbit/s link to ``cloud`` (1 KB
    = 0.1 ms) whose sources' messages cost 0.5 $/GB and stages' 0.01."""
    query: dict[str, Any] = {"name": "q", "pipeline": "p",
                             "sources": {"camera": "edge", "mic": "edge"}, "rate_rps": rate,
                             "slo": {"latency_ms": 1000, "percentile": 95}}
    if mic_rate is not None:
        query["source_rate_rps"] = {"mic": mic_rate}
    if camera_kb is not None:
        query["source_output_kb"] = {"camera": camera_kb}
    end = [{"name": "done"}] if join_sink else [{"name": "z", "operator": "fuse"}]
    sink = "done" if join_sink else "z"
    return {
        "name": "fusion",
        "hardware": [{"name": "cpu"}],
        "sites": [{"name": "edge", "tier": "edge"}, {"name": "cloud", "tier": "cloud"}],
        "devices": [{"name": "box", "site": "edge", "hardware": "cpu", "units": 8,
                     "price_per_unit_hour": 0.0},
                    {"name": "pool", "site": "cloud", "hardware": "cpu", "units": 8,
                     "price_per_unit_hour": 0.0}],
        "links": [{"src": "edge", "dst": "cloud", "bandwidth_mbps": 81.92, "rtt_ms": 0,
                   "price_per_gb": 0.01, "source_price_per_gb": 0.5, "both_ways": True}],
        "operators": [{"name": "slow", "profiles": [{"hardware": "cpu", "mean_ms": 30, "cv": 1}],
                       "output_kb": 2},
                      {"name": "fast", "profiles": [{"hardware": "cpu", "mean_ms": 20, "cv": 1}],
                       "output_kb": 0.5},
                      {"name": "fuse", "profiles": [{"hardware": "cpu", "mean_ms": 5, "cv": 0}]}],
        "pipelines": [{"name": "p",
                       "sources": [{"name": "camera", "output_kb": 0},
                                   {"name": "mic", "output_kb": 0}],
                       "stages": [{"name": "x", "operator": "slow"},
                                  {"name": "y", "operator": "fast"}, *end],
                       "edges": [["camera", "x"], ["mic", "y"], ["x", sink], ["y", sink]],
                       "accuracy": {"rule": "none"}}],
        "queries": [query],
    }


def _run(sim: SimWorld, duration: float, seed: int = 1) -> SimulationResult:
    return serve(sim, arrivals=PoissonArrivals(),
                 settings=SimulationSettings(duration_s=duration, seed=seed))


def _estimate(world: dict[str, Any], where: dict[str, tuple[str, int]]) -> Any:
    index = build_index(parse_world(world))
    query: Query = index.world.queries[0]
    plan = QueryPlan("q", tuple(StagePlan(s, (), 1, (Replicas(dev, n),))
                                for s, (dev, n) in where.items()))
    return AnalyticEstimator(index=index).estimate(query, plan)


def test_a_join_sink_is_the_maximum_of_its_branches(build: Build) -> None:
    # At 2 req/s the branches barely queue, so their shared arrivals hardly correlate them
    # (at 10 req/s the simulated maximum is 3 % under the independent one): the estimate,
    # which correlates the branches' waits (estimate.join.common_wait), is at most 1 % under
    # the maximum of independent sojourns, never above it.
    world = _world(join_sink=True, rate=2.0)
    where = {"x": ("box", 1), "y": ("box", 1)}
    est = _estimate(world, where)
    # Independent M/M/1 sojourns, Exp(1 / (mu - lambda)): 31.9 and 20.8 ms.
    a, b = 1 / (1000 / 30 - 2), 1 / (1000 / 20 - 2)
    mean = (a + b - 1 / (1 / a + 1 / b)) * 1000
    p95 = brentq(lambda t: (1 - math.exp(-t / a)) * (1 - math.exp(-t / b)) - 0.95, 0, 1) * 1000
    assert 0.99 * mean <= est.latency_mean_ms <= mean * (1 + 1e-9)
    assert est.latency_ms == pytest.approx(p95, rel=0.03)
    assert est.cost_per_hour == 0.0
    sim = build(world, {"q": [(s, op, [where[s]], 1) for s, op in (("x", "slow"),
                                                                     ("y", "fast"))]})
    q = _run(sim, duration=10_000).queries[0]
    assert q.latency.mean_ms == pytest.approx(est.latency_mean_ms, rel=0.02)
    assert q.latency.p95_ms == pytest.approx(est.latency_ms, rel=0.03)


def test_a_join_sink_waits_for_every_input(build: Build) -> None:
    # Deterministic branches: the request ends with the slower, never the faster.
    world = _world(join_sink=True, rate=0.5)
    for op in world["operators"]:
        op["profiles"][0]["cv"] = 0
    stages = {"q": [("x", "slow", [("box", 1)], 1), ("y", "fast", [("pool", 1)], 1)]}
    q = _run(build(world, stages), duration=400).queries[0]
    assert q.latency.p50_ms == pytest.approx(30, abs=1e-6)
    world["queries"][0]["source_output_kb"] = {"mic": 150}  # 15 ms up the link, then 20
    q = _run(build(world, stages), duration=400).queries[0]
    assert q.latency.p50_ms == pytest.approx(35, abs=1e-6)


def test_a_source_with_its_own_rate_loads_its_branch_and_is_not_waited_for(
        build: Build) -> None:
    world = _world(join_sink=False, rate=5.0, mic_rate=40.0)
    where = {"x": ("box", 1), "y": ("box", 2), "z": ("box", 1)}
    est = _estimate(world, where)
    stages = {"q": [(s, op, [where[s]], 1) for s, op in (("x", "slow"), ("y", "fast"),
                                                          ("z", "fuse"))]}
    result = _run(build(world, stages), duration=6000)
    q = result.queries[0]
    # The requests: x's M/M/1 at 5 req/s (mean 35.3 ms) and z's 5 ms, never y's wait.
    assert est.latency_mean_ms == pytest.approx(1000 / (1000 / 30 - 5) + 5, rel=0.01)
    assert q.latency.mean_ms == pytest.approx(est.latency_mean_ms, rel=0.03)
    assert q.latency.p95_ms == pytest.approx(est.latency_ms, rel=0.03)
    # y serves the microphone's 40 chunks a second on 2 replicas: 0.4 busy.
    y = next(d for d in result.deployments if d.name.endswith("/y@box"))
    assert y.utilization == pytest.approx(40 * 0.020 / 2, rel=0.03)
    assert y.requests == pytest.approx(40 * (6000 - result.warmup_s), rel=0.02)
    # Were the join to wait for y, the requests would take max(x, y) + z: much longer.
    waited = _estimate(_world(join_sink=False, rate=5.0), where)
    assert waited.latency_mean_ms > est.latency_mean_ms + 5


def test_source_rates_and_sizes_set_link_traffic_and_its_price(build: Build) -> None:
    world = _world(join_sink=False, rate=5.0, mic_rate=40.0, camera_kb=100.0)
    world["pipelines"][0]["sources"][1]["output_kb"] = 16
    where = {"x": ("pool", 1), "y": ("pool", 2), "z": ("box", 1)}
    est = _estimate(world, where)
    up = 5 * 100 + 40 * 16  # KB/s of the sources' own messages, edge -> cloud
    down = 5 * 2 + 40 * 0.5  # KB/s of x's and y's outputs, cloud -> edge
    assert dict(est.link_mbps) == pytest.approx({("edge", "cloud"): up * KB_PER_S_TO_MBPS,
                                                 ("cloud", "edge"): down * KB_PER_S_TO_MBPS})
    assert est.network_cost_per_hour == pytest.approx(
        up * KB_PER_S_TO_GB_PER_H * 0.5 + down * KB_PER_S_TO_GB_PER_H * 0.01)
    stages = {"q": [(s, op, [where[s]], 1) for s, op in (("x", "slow"), ("y", "fast"),
                                                          ("z", "fuse"))]}
    result = _run(build(world, stages), duration=2000)
    links = {(ln.src, ln.dst): ln.traffic_mbps for ln in result.links}
    assert links["edge", "cloud"] == pytest.approx(up * KB_PER_S_TO_MBPS, rel=0.02)
    assert links["cloud", "edge"] == pytest.approx(down * KB_PER_S_TO_MBPS, rel=0.02)
    # A frame takes 10 ms up the link (100 KB at 81.92 Mbit/s), x's result 0.2 ms back.
    q = result.queries[0]
    assert est.latency_mean_ms == pytest.approx(10 + 1000 / (1000 / 30 - 5) + 0.2 + 5,
                                                rel=0.01)
    assert q.latency.mean_ms == pytest.approx(est.latency_mean_ms, rel=0.03)


def test_without_a_source_price_sources_pay_the_link_price() -> None:
    world = _world(join_sink=True, rate=5.0, camera_kb=100.0)
    del world["links"][0]["source_price_per_gb"]
    est = _estimate(world, {"x": ("pool", 1), "y": ("box", 1)})
    assert est.network_cost_per_hour == pytest.approx(5 * 100 * KB_PER_S_TO_GB_PER_H * 0.01)


def test_same_seed_same_result_with_feeds(build: Build) -> None:
    world = _world(join_sink=False, rate=5.0, mic_rate=40.0)
    stages = {"q": [("x", "slow", [("box", 1)], 1), ("y", "fast", [("pool", 2)], 1),
                    ("z", "fuse", [("box", 1)], 1)]}
    first = _run(build(world, stages), duration=200).model_dump(exclude={"wall_seconds"})
    again = _run(build(copy.deepcopy(world), stages), duration=200).model_dump(
        exclude={"wall_seconds"})
    assert first == again


def test_the_example_plans_and_simulates() -> None:
    import circinus
    from circinus.plan.file import to_plan_file
    from circinus.simulate import compile_plan
    from circinus.spec import load_world

    world = load_world(EXAMPLE)
    index = build_index(world)
    plan = to_plan_file(index, circinus.Planner().plan(world))
    out = {q.name: q for q in plan.queries}
    assert all(q.admitted for q in plan.queries), [q.reason for q in plan.queries]
    # The join takes no deployment and shows in the plan file without one.
    assert [(j.stage, j.inputs) for j in out["lobby"].joins] == [("done", ["faces", "speech"])]
    assert [op.stage for op in out["lobby"].operators] == ["faces", "speech"]
    assert all(d.operator != "done" for d in plan.deployments)
    # kiosk-1's speech deployment serves the microphone's 40 chunks a second.
    speech = {s.deployment for r in out["kiosk-1"].route if r.stage == "speech"
              for s in r.deployments}
    assert all(d.rate_rps >= 40 - 1e-9 for d in plan.deployments if d.name in speech)
    assert out["kiosk-1"].source_rate_rps == {"mic": 40}
    result = _run(compile_plan(index, plan), duration=600)
    for q in result.queries:
        assert q.slo_met, q.name
        assert q.latency.at_slo_ms == pytest.approx(q.predicted_latency_ms, rel=0.15), q.name
