"""The engine on hand-built worlds: transfers, shared links, joins, load split, determinism, and
plan files that do not fit their world."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from circinus.errors import SpecError
from circinus.plan.file import PlanFile
from circinus.simulate import (
    PoissonArrivals,
    SimulationResult,
    SimulationSettings,
    SimWorld,
    compile_plan,
)
from circinus.simulate import simulate as serve
from circinus.spec import build_index, parse_world

Build = Callable[[dict[str, Any], dict[str, list[Any]]], SimWorld]


def _run(sim: SimWorld, duration: float = 60.0, seed: int = 0) -> SimulationResult:
    return serve(sim, arrivals=PoissonArrivals(),
                 settings=SimulationSettings(duration_s=duration, seed=seed))


def _two_sites(*, capacity: float | None = None, rtt: float = 20.0,
               rates: tuple[float, ...] = (1.0,)) -> dict[str, Any]:
    """A 125 KB (1.024 Mbit) frame from the edge to a 1 ms stage in the cloud, per query."""
    link: dict[str, Any] = {"src": "edge", "dst": "cloud", "bandwidth_mbps": 8.192,
                            "rtt_ms": rtt}
    if capacity is not None:
        link["capacity_mbps"] = capacity
    return {
        "name": "wan",
        "hardware": [{"name": "gpu"}],
        "sites": [{"name": "edge", "tier": "edge"}, {"name": "cloud", "tier": "cloud"}],
        "devices": [{"name": "pool", "site": "cloud", "hardware": "gpu", "units": 64,
                     "price_per_unit_hour": 1.0}],
        "links": [link],
        "operators": [{"name": "op", "profiles": [{"hardware": "gpu", "mean_ms": 1.0,
                                                   "cv": 0.0}]}],
        "pipelines": [{"name": "p", "sources": [{"name": "cam", "output_kb": 125}],
                       "stages": [{"name": "st", "operator": "op"}], "edges": [["cam", "st"]],
                       "accuracy": {"rule": "none"}}],
        "queries": [{"name": f"q{i}", "pipeline": "p", "sources": {"cam": "edge"},
                     "rate_rps": r, "slo": {"latency_ms": 200, "percentile": 50}}
                    for i, r in enumerate(rates)],
    }


def _on_pool(world: dict[str, Any], replicas: int = 4) -> dict[str, list[Any]]:
    return {q["name"]: [("st", "op", [("pool", replicas)], 1)] for q in world["queries"]}


def test_transfer_adds_size_over_bandwidth_plus_half_rtt(build: Build) -> None:
    world = _two_sites()
    result = _run(build(world, _on_pool(world)))
    q = result.queries[0]
    assert q.latency.p50_ms == pytest.approx(125 + 10 + 1, abs=1e-6)  # wire + rtt/2 + service
    assert q.latency.mean_ms == pytest.approx(136, abs=1e-6)  # 4 replicas: nobody queues
    link = result.links[0]
    assert link.mean_transfer_ms == pytest.approx(135) and link.mean_alone_ms == pytest.approx(135)
    assert link.traffic_mbps == pytest.approx(1.024, rel=0.2)  # 1 req/s x 1.024 Mbit


def test_shared_link_is_processor_sharing(build: Build) -> None:
    # Two queries at 3 req/s share a link of capacity = bandwidth: an M/D/1-PS queue at load
    # 6 x 0.125 s = 0.75, whose mean sojourn is the time alone / (1 - load), whatever the sizes.
    world = _two_sites(capacity=8.192, rtt=0.0, rates=(3.0, 3.0))
    result = _run(build(world, _on_pool(world)), duration=30_000)  # std of the mean: 0.8 %
    alone = 125 * 8.192e-3 / 8.192  # 0.125 s
    load = 6 * alone
    link = result.links[0]
    assert result.converged and result.link_rounds >= 2
    assert link.mean_alone_ms == pytest.approx(1000 * alone)
    assert link.mean_transfer_ms == pytest.approx(1000 * alone / (1 - load), rel=0.03)
    assert link.utilization == pytest.approx(load, rel=0.03)


def test_link_capacity_as_a_budget_only(build: Build) -> None:
    world = _two_sites(capacity=8.192, rtt=0.0, rates=(3.0, 3.0))
    result = serve(build(world, _on_pool(world)), arrivals=PoissonArrivals(),
                   settings=SimulationSettings(duration_s=600, share_links=False))
    assert result.link_rounds == 0 and not result.share_links
    assert result.links[0].mean_transfer_ms == pytest.approx(125.0)


def test_unlimited_link_is_not_shared(build: Build) -> None:
    world = _two_sites(rates=(3.0, 3.0))
    result = _run(build(world, _on_pool(world)))
    assert result.link_rounds == 0
    assert result.links[0].mean_transfer_ms == pytest.approx(result.links[0].mean_alone_ms)


def test_join_waits_for_the_slowest_branch(build: Build) -> None:
    world = {
        "name": "dag",
        "hardware": [{"name": "cpu"}],
        "sites": [{"name": "a", "tier": "edge"}, {"name": "b", "tier": "edge"}],
        "devices": [{"name": "box", "site": "a", "hardware": "cpu", "units": 8,
                     "price_per_unit_hour": 0.0}],
        "links": [{"src": "b", "dst": "a", "bandwidth_mbps": 8.192, "rtt_ms": 4}],
        "operators": [{"name": n, "profiles": [{"hardware": "cpu", "mean_ms": ms, "cv": 0}]}
                      for n, ms in (("fast", 10.0), ("slow", 30.0), ("fuse", 5.0))],
        "pipelines": [{"name": "p",
                       "sources": [{"name": "img", "output_kb": 0},
                                   {"name": "mic", "output_kb": 12.5}],
                       "stages": [{"name": "x", "operator": "fast"},
                                  {"name": "y", "operator": "slow"},
                                  {"name": "z", "operator": "fuse"}],
                       "edges": [["img", "x"], ["img", "y"], ["mic", "z"], ["x", "z"],
                                 ["y", "z"]],
                       "accuracy": {"rule": "none"}}],
        "queries": [{"name": "q", "pipeline": "p", "sources": {"img": "a", "mic": "b"},
                     "rate_rps": 0.5, "slo": {"latency_ms": 100, "percentile": 50}}],
    }
    stages = {"q": [("x", "fast", [("box", 1)], 1), ("y", "slow", [("box", 1)], 1),
                    ("z", "fuse", [("box", 1)], 1)]}
    q = _run(build(world, stages), duration=400).queries[0]
    assert q.latency.p50_ms == pytest.approx(30 + 5, abs=1e-6)  # the mic's 14.5 ms arrive first

    slow_mic = copy.deepcopy(world)
    slow_mic["pipelines"][0]["sources"][1]["output_kb"] = 62.5  # 62.5 + 2 ms, after y's 30
    q = _run(build(slow_mic, stages), duration=400).queries[0]
    assert q.latency.p50_ms == pytest.approx(62.5 + 2 + 5, abs=1e-6)


def test_load_split_in_proportion_to_capacity(build: Build) -> None:
    world = {
        "name": "split",
        "hardware": [{"name": "fast"}, {"name": "slow"}],
        "sites": [{"name": "s", "tier": "edge"}],
        "devices": [{"name": "f", "site": "s", "hardware": "fast", "units": 4,
                     "price_per_unit_hour": 0.0},
                    {"name": "w", "site": "s", "hardware": "slow", "units": 4,
                     "price_per_unit_hour": 0.0}],
        "operators": [{"name": "op", "profiles": [
            {"hardware": "fast", "mean_ms": 10.0, "cv": 0.5},
            {"hardware": "slow", "mean_ms": 20.0, "cv": 0.5}]}],
        "pipelines": [{"name": "p", "sources": [{"name": "src", "output_kb": 0}],
                       "stages": [{"name": "st", "operator": "op"}],
                       "edges": [["src", "st"]], "accuracy": {"rule": "none"}}],
        "queries": [{"name": "q", "pipeline": "p", "sources": {"src": "s"}, "rate_rps": 75,
                     "slo": {"latency_ms": 100}}],
    }
    result = _run(build(world, {"q": [("st", "op", [("f", 1), ("w", 1)], 1)]}), duration=600)
    util = {d.name: d.utilization for d in result.devices}
    assert util["f"] == pytest.approx(0.5, rel=0.03)  # 75 / (100 + 50) on both
    assert util["w"] == pytest.approx(0.5, rel=0.03)


def test_batches_of_the_last_measured_requests_fill(queue: Callable[..., SimWorld]) -> None:
    result = _run(queue(rate=1.0, mean_ms=2.0, cv=0.0, batch=8, batch_ms={8: 5.0}))
    q = result.queries[0]
    assert q.requests > 0 and q.completed == q.requests


def test_same_seed_same_result(tiny_world: dict[str, Any], build: Build) -> None:
    stages = {"cam-1": [("det", "detect", [("shop-box", 1)], 1, {"model": "small"}),
                        ("cls", "classify", [("t4-pool", 1)], 1, {"resolution": 224})],
              "cam-2": [("det", "detect", [("t4-pool", 1)], 4, {"model": "small"}),
                        ("cls", "classify", [("shop-box", 2)], 1, {"resolution": 224})]}
    sim = build(tiny_world, stages)
    a, b, c = _run(sim, seed=5), _run(sim, seed=5), _run(sim, seed=6)
    strip = {"wall_seconds"}
    assert a.model_dump(exclude=strip) == b.model_dump(exclude=strip)
    assert a.model_dump(exclude=strip) != c.model_dump(exclude=strip)


def _edit(plan: PlanFile, change: Callable[[dict[str, Any]], None]) -> PlanFile:
    data = plan.model_dump()
    change(data)
    return PlanFile.model_validate(data)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change setting ``value`` at ``path`` (``queries.0.route.0.stage``)."""
    *head, last = path.split(".")

    def change(data: dict[str, Any]) -> None:
        node: Any = data
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return change


def _two_queries_on_one_deployment(sharing: str = "shared") -> Callable[..., PlanFile]:
    def make(make_plan: Callable[..., PlanFile]) -> PlanFile:
        world = _two_sites(rates=(1.0, 2.0))
        plan = make_plan(world, {"q0": [("st", ["op@pool"])], "q1": [("st", ["op@pool"])]},
                         {"op@pool": ("op", "pool", 2, 1)})
        return _edit(plan, _set("deployments.0.sharing", sharing))
    return make


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.model_copy(update={"world": "elsewhere"}),
     "world: the plan is for world 'elsewhere', not 'wan'"),
    (lambda p: p.model_copy(update={"format": "circinus-plan/1"}),
     "format: the simulator serves 'circinus-plan/2' plan files"),
    (lambda p: _edit(p, _set("deployments.0.device", "moon")),
     "deployments[0].device: unknown device 'moon'"),
    (lambda p: _edit(p, _set("deployments.0.site", "edge")),
     "deployments[0].site: device 'pool' stands at 'cloud' in this world, not 'edge'"),
    (lambda p: _edit(p, _set("deployments.0.config", {"size": 3})),
     "deployments[0].config: {'size': 3} is not a configuration of operator 'op'"),
    (lambda p: _edit(p, _set("deployments.0.batch.max_batch_size", 8)),
     "deployments[0].batch.max_batch_size: batch 8 is not profiled for 'op' {} on 'gpu'"),
    (lambda p: _edit(p, _set("deployments.0.units_per_replica", 2.0)),
     "deployments[0].units_per_replica: 2, but a replica of 'op' {} takes 1 units"),
    (lambda p: _edit(p, _set("queries.0.route.0.deployments.0.deployment", "ghost")),
     "queries[0].route[0].deployments[0].deployment: unknown deployment 'ghost'; known: "
     "q0/st@pool"),
    (lambda p: _edit(p, _set("queries.0.route.0.deployments.0.share", 0.9)),
     "queries[0].route[0].deployments: shares sum to 0.9, not 1"),
    (lambda p: _edit(p, _set("queries.0.route", [])),
     "queries[0].route: must route each stage of pipeline 'p' once (st); missing ['st']"),
    (lambda p: _edit(p, _set("queries.0.route.0.stage", "nope")),
     "unknown ['nope']"),
    (lambda p: _edit(p, _set("queries.0.rate_rps", 9.0)),
     "queries[0].rate_rps: the plan was made for 9 req/s"),
])
def test_plan_for_another_world(change: Callable[[PlanFile], PlanFile], message: str,
                                make_plan: Callable[..., PlanFile]) -> None:
    world = _two_sites()
    plan = change(make_plan(world, _on_pool(world)))
    with pytest.raises(SpecError, match="circinus plan WORLD") as err:
        compile_plan(build_index(parse_world(world)), plan, origin="p.json")
    assert message in str(err.value) and str(err.value).startswith("p.json: ")
    assert len(str(err.value).splitlines()) == 1


def test_profile_missing_on_the_device(make_plan: Callable[..., PlanFile]) -> None:
    world = _two_sites()
    plan = make_plan(world, _on_pool(world))
    world["hardware"].append({"name": "tpu"})
    world["devices"][0]["hardware"] = "tpu"
    with pytest.raises(SpecError, match=r"deployments\[0\]\.device: operator 'op' \{\} has no "
                       r"profile on 'tpu' \(device 'pool'\)"):
        compile_plan(build_index(parse_world(world)), plan)


def test_dedicated_deployment_serves_one_query(make_plan: Callable[..., PlanFile]) -> None:
    world = _two_sites(rates=(1.0, 2.0))
    index = build_index(parse_world(world))
    shared = compile_plan(index, _two_queries_on_one_deployment()(make_plan))
    assert len(shared.deployments) == 1
    assert shared.allocated_units == (2.0,)  # the deployment's 2 replicas, counted once
    with pytest.raises(SpecError, match="dedicated deployment 'op@pool' is routed by 2 queries"):
        compile_plan(index, _two_queries_on_one_deployment("dedicated")(make_plan))


def test_plan_without_link(make_plan: Callable[..., PlanFile]) -> None:
    world = _two_sites()
    plan = make_plan(world, _on_pool(world))
    world["links"] = []
    with pytest.raises(SpecError, match="no link from site 'edge' to 'cloud'"):
        compile_plan(build_index(parse_world(world)), plan)


def test_independent_of_the_estimator() -> None:
    package = Path(__file__).resolve().parents[2] / "src" / "circinus" / "simulate"
    for path in package.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for banned in ("circinus.estimate", "circinus.search", "circinus.select",
                       "circinus.planner"):
            assert banned not in text, f"{path.name} uses {banned}"
