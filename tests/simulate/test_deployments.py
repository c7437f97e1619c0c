"""Deployments shared by queries: one queue, batches across queries, the deployment graph's order
and cycles (against an event-by-event brute force), seeds per deployment, the plan's shares."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from circinus.plan.file import PlanFile
from circinus.simulate import (
    PoissonArrivals,
    SimulationRun,
    SimulationSettings,
    SimWorld,
    compile_plan,
    simulate_run,
)
from circinus.simulate import simulate as serve
from circinus.simulate.engine import deployment_order
from circinus.simulate.service import draw_service
from circinus.spec import build_index, parse_world

Build = Callable[..., SimWorld]


def _chain_world(pipelines: dict[str, list[str]], queries: list[tuple[str, str, float]],
                 work: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """One site and one box; operators ``x`` (10 ms) and ``y`` (8 ms), service cv 0.5;
    pipelines of stages in a chain (``pipelines[name]`` lists each stage's operator, stages
    named ``s0, s1, ...``); ``queries`` as ``(name, pipeline, rate)``."""
    work = work or {}
    return {
        "name": "chains", "hardware": [{"name": "cpu"}],
        "sites": [{"name": "s", "tier": "edge"}],
        "devices": [{"name": "box", "site": "s", "hardware": "cpu", "units": 64,
                     "price_per_unit_hour": 0.0}],
        "operators": [{"name": n, "profiles": [{"hardware": "cpu", "mean_ms": ms, "cv": 0.5}]}
                      for n, ms in (("x", 10.0), ("y", 8.0))],
        "pipelines": [{"name": name, "sources": [{"name": "src", "output_kb": 0}],
                       "stages": [{"name": f"s{i}", "operator": op} for i, op in enumerate(ops)],
                       "edges": [["src", "s0"]] + [[f"s{i}", f"s{i + 1}"]
                                                    for i in range(len(ops) - 1)],
                       "accuracy": {"rule": "none"}} for name, ops in pipelines.items()],
        "queries": [{"name": q, "pipeline": p, "sources": {"src": "s"}, "rate_rps": r,
                     "slo": {"latency_ms": 1000, "percentile": 50},
                     **({"work_scale": work[q]} if q in work else {})}
                    for q, p, r in queries],
    }


def _brute_force(sim: SimWorld, settings: SimulationSettings) -> list[np.ndarray]:
    """Event by event: every request of every query through its chain of deployments (one route
    each, batches of 1, transfers of 0), each deployment a FIFO queue served by its replicas,
    the ``k``-th request it starts taking the ``k``-th draw of the deployment's stream (the
    engine's documented seeding; gamma draws make ties of ready times impossible). Returns each
    query's measured latencies, s."""
    events: list[tuple[float, int, int, int, int]] = []  # (ready, seq, query, request, stage)
    arrivals = []
    for qi, q in enumerate(sim.queries):
        a = PoissonArrivals().times(rate=q.spec.rate_rps, until=settings.duration_s,
                                    extra=q.extra_arrivals,
                                    rng=np.random.default_rng([settings.seed, q.position, 0]))
        arrivals.append(a)
        for k, t in enumerate(a.tolist()):
            events.append((t, len(events), qi, k, 0))
    heapq.heapify(events)
    free = [[0.0] * d.replicas for d in sim.deployments]
    served = [0] * len(sim.deployments)
    total = [0] * len(sim.deployments)
    for q, a in zip(sim.queries, arrivals, strict=True):
        for st in q.stages:
            total[st.deployments[0]] += len(a)
    noise = [draw_service(np.random.default_rng([settings.seed, d.position, 2]), n, 1.0, d.cv)
             for d, n in zip(sim.deployments, total, strict=True)]
    done = [np.full(len(a), np.inf) for a in arrivals]
    seq = len(events)
    while events:
        t, _, qi, k, si = heapq.heappop(events)
        stage = sim.queries[qi].stages[si]
        (d,) = stage.deployments
        dep = sim.deployments[d]
        start = max(t, free[d][0])
        end = start + dep.mean_s * stage.work * noise[d][served[d]]
        served[d] += 1
        heapq.heapreplace(free[d], end)
        if si + 1 < len(sim.queries[qi].stages):
            heapq.heappush(events, (end, seq, qi, k, si + 1))
            seq += 1
        else:
            done[qi][k] = end
    lo, hi = settings.window
    return [(f - a)[(a >= lo) & (a < hi)] for f, a in zip(done, arrivals, strict=True)]


@pytest.mark.parametrize("replicas", [1, 2])
def test_cycle_of_deployments_matches_brute_force(build: Build, replicas: int) -> None:
    # a crosses x then y, b crosses y then x (a cycle x -> y -> x), c crosses x twice (x feeds
    # itself): x is busy 80 %, y 40 % with one replica; the rounds must reach the exact system.
    world = _chain_world({"xy": ["x", "y"], "yx": ["y", "x"], "xx": ["x", "x"]},
                         [("a", "xy", 30.0), ("b", "yx", 20.0), ("c", "xx", 10.0)],
                         work={"b": {"s1": 1.5}})
    stages = {"a": [("s0", ["x@box"]), ("s1", ["y@box"])],
              "b": [("s0", ["y@box"]), ("s1", ["x@box"])],
              "c": [("s0", ["x@box"]), ("s1", ["x@box"])]}
    sim = build(world, stages, {"x@box": ("x", "box", replicas, 1),
                                "y@box": ("y", "box", replicas, 1)})
    order, cyclic = deployment_order(sim)
    assert cyclic and sorted(order) == [0, 1]
    settings = SimulationSettings(duration_s=120.0, seed=4)
    run: SimulationRun = simulate_run(sim, arrivals=PoissonArrivals(), settings=settings)
    assert run.result.cyclic and run.result.converged
    for got, want in zip(run.latencies_ms, _brute_force(sim, settings), strict=True):
        assert got == pytest.approx(want * 1000.0, abs=1e-6)
    cut = serve(sim, arrivals=PoissonArrivals(),
                settings=settings.model_copy(update={"max_link_rounds": 2}))
    assert cut.link_rounds == 2 and not cut.converged


def test_acyclic_graph_is_one_pass(build: Build) -> None:
    world = _chain_world({"xy": ["x", "y"]}, [("a", "xy", 30.0), ("b", "xy", 20.0)])
    stages = {q: [("s0", ["x@box"]), ("s1", ["y@box"])] for q in ("a", "b")}
    sim = build(world, stages, {"y@box": ("y", "box", 1, 1), "x@box": ("x", "box", 1, 1)})
    assert deployment_order(sim) == ([1, 0], False)  # x feeds y, whatever the plan's order
    settings = SimulationSettings(duration_s=120.0, seed=4)
    run = simulate_run(sim, arrivals=PoissonArrivals(), settings=settings)
    assert not run.result.cyclic and run.result.link_rounds == 0 and run.result.converged
    for got, want in zip(run.latencies_ms, _brute_force(sim, settings), strict=True):
        assert got == pytest.approx(want * 1000.0, abs=1e-6)


def test_a_query_is_not_moved_by_queries_elsewhere(build: Build) -> None:
    # Arrivals and routes are seeded by the query's position in the world, service times by
    # the deployment's position in the plan: another query on another deployment changes
    # nothing for q0.
    world = _chain_world({"x": ["x"]}, [("a", "x", 30.0), ("b", "x", 20.0)])
    alone = build(world, {"a": [("s0", ["x@box"])]}, {"x@box": ("x", "box", 1, 1)})
    both = build(world, {"a": [("s0", ["x@box"])], "b": [("s0", ["x@box-2"])]},
                 {"x@box": ("x", "box", 1, 1), "x@box-2": ("x", "box", 2, 1)})
    settings = SimulationSettings(duration_s=200.0, seed=2)
    a = simulate_run(alone, arrivals=PoissonArrivals(), settings=settings)
    b = simulate_run(both, arrivals=PoissonArrivals(), settings=settings)
    assert np.array_equal(a.latencies_ms[0], b.latencies_ms[0])
    assert a.result.queries[0] == b.result.queries[0]


def test_batches_mix_the_work_of_their_queries(shared_queue: Build) -> None:
    # Two queries at 20 req/s, work 1 and 3, in batches of 2 of a 10 ms batch: a batch's time
    # is 10 ms x the mean work of its two requests, so on average 10 x 2 ms, and the replica
    # is busy 40/2 batches/s x 20 ms = 40 %.
    sim = shared_queue(rates=(20.0, 20.0), work=(1.0, 3.0), mean_ms=4.0, batch_ms={2: 10.0},
                       cv=0.0, batch=2)
    result = serve(sim, arrivals=PoissonArrivals(),
                   settings=SimulationSettings(duration_s=2_000, seed=1))
    (dep,) = result.deployments
    assert dep.queries == 2 and dep.batch == 2 and dep.replicas == 1
    assert dep.utilization == pytest.approx(0.4, rel=0.02)
    assert dep.predicted_utilization == pytest.approx(0.4)
    assert dep.requests == pytest.approx(40 * 1_800, rel=0.02)
    assert result.devices[0].busy_units == pytest.approx(0.4, rel=0.02)
    assert all(q.max_utilization == dep.utilization for q in result.queries)


def test_requests_follow_the_plans_shares(make_plan: Callable[..., PlanFile]) -> None:
    world = _chain_world({"x": ["x"]}, [("a", "x", 40.0)])
    world["devices"].append({"name": "box2", "site": "s", "hardware": "cpu", "units": 4,
                             "price_per_unit_hour": 0.0})
    plan = make_plan(world, {"a": [("s0", "x", [("box", 1), ("box2", 1)], 1)]})
    data = plan.model_dump()
    data["queries"][0]["route"][0]["deployments"][0]["share"] = 0.2
    data["queries"][0]["route"][0]["deployments"][1]["share"] = 0.8
    sim = compile_plan(build_index(parse_world(world)), PlanFile.model_validate(data))
    result = serve(sim, arrivals=PoissonArrivals(),
                   settings=SimulationSettings(duration_s=1_000, seed=0))
    served = [d.requests for d in result.deployments]
    assert served[0] / sum(served) == pytest.approx(0.2, abs=0.01)
    assert result.deployments[1].utilization == pytest.approx(0.8 * 40 * 0.010, rel=0.03)
