"""The simulator against queueing theory: one stage, one device, Poisson arrivals; one query,
or several sharing one deployment (one queue, batches across queries).

Tolerances are two and a half to five standard deviations of the estimate over seeds 0-9
(measured: M/M/1 mean 0.6 %, M/D/1 0.1 %, M/M/3 1.1 %, batch 0.2 %; shared M/M/1 0.45 %, fill
wait of shared batches 0.4 %, shared M/M/3 1.0 %, its queueing 1.7 % at these durations).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from scipy.optimize import brentq
from scipy.special import gammainc

from circinus.estimate import AnalyticEstimator
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.simulate import PoissonArrivals, SimulationResult, SimulationSettings, SimWorld
from circinus.simulate import simulate as serve
from circinus.spec import build_index, parse_world


def _run(sim: SimWorld, duration: float, seed: int = 3) -> SimulationResult:
    return serve(sim, arrivals=PoissonArrivals(),
                 settings=SimulationSettings(duration_s=duration, seed=seed))


def _erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load ``a`` (from the textbook sum)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def test_mm1_mean_and_p90(queue: Callable[..., SimWorld]) -> None:
    lam, mu = 60.0, 100.0  # rho 0.6; sojourn ~ Exp(mu - lam): mean 25 ms, p90 25 ln 10 ms
    result = _run(queue(rate=lam, mean_ms=1000 / mu, cv=1.0), duration=20_000)
    lat = result.queries[0].latency
    assert lat.mean_ms == pytest.approx(1000 / (mu - lam), rel=0.02)
    assert lat.p90_ms == pytest.approx(1000 * math.log(10) / (mu - lam), rel=0.02)
    assert lat.p99_ms == pytest.approx(1000 * math.log(100) / (mu - lam), rel=0.04)
    assert result.queries[0].max_utilization == pytest.approx(lam / mu, rel=0.01)


def test_md1_mean(queue: Callable[..., SimWorld]) -> None:
    lam, mu = 60.0, 100.0  # Pollaczek-Khinchine: Wq = rho / (2 mu (1 - rho)) = 7.5 ms
    rho = lam / mu
    result = _run(queue(rate=lam, mean_ms=1000 / mu, cv=0.0), duration=20_000)
    expected = 1000 * (rho / (2 * mu * (1 - rho)) + 1 / mu)
    assert result.queries[0].latency.mean_ms == pytest.approx(expected, rel=0.01)


def test_mm3_mean(queue: Callable[..., SimWorld]) -> None:
    lam, mu, c = 240.0, 100.0, 3  # rho 0.8
    result = _run(queue(rate=lam, mean_ms=1000 / mu, cv=1.0, replicas=c), duration=5_000)
    wq = _erlang_c(c, lam / mu) / (c * mu - lam)
    assert result.queries[0].latency.mean_ms == pytest.approx(1000 * (wq + 1 / mu), rel=0.03)


def test_batch_fill_wait(queue: Callable[..., SimWorld]) -> None:
    # Batches of 4 at 40 req/s served in a constant 5 ms: batches hardly ever queue, so a
    # request waits for the J = 0..3 arrivals after it (uniform), each Exp(40), then 5 ms.
    lam, b, service = 40.0, 4, 0.005
    result = _run(queue(rate=lam, mean_ms=2.0, cv=0.0, batch=b, batch_ms={b: 5.0}),
                  duration=5_000)
    lat = result.queries[0].latency
    assert lat.mean_ms == pytest.approx(1000 * ((b - 1) / (2 * lam) + service), rel=0.01)

    def below(t: float) -> float:  # P(fill wait <= t): mixture of Erlang(j, lam), j = 0..b-1
        return sum(1.0 if j == 0 else float(gammainc(j, lam * t)) for j in range(b)) / b

    p90 = brentq(lambda t: below(t) - 0.9, 0.0, 10.0)
    assert lat.p90_ms == pytest.approx(1000 * (p90 + service), rel=0.02)
    assert lat.p50_ms is not None and lat.p50_ms >= 1000 * service


def test_saturated_queue_grows(queue: Callable[..., SimWorld]) -> None:
    result = _run(queue(rate=120.0, mean_ms=10.0, cv=0.0), duration=60)
    q = result.queries[0]
    assert q.max_utilization == pytest.approx(1.0, abs=1e-3)
    assert q.latency.p99_ms is not None and q.latency.p99_ms > 5_000  # 20 % overload for 54 s
    assert not q.slo_met


def test_join_of_two_mm1_branches_and_the_estimator(build: Callable[..., SimWorld]) -> None:
    # cam -> x, cam -> y (each M/M/1, 10 ms, 50 req/s: sojourn Exp(mean 20 ms)) -> z (~0 ms).
    # A request leaves z when both branches are done. Both queues see the same arrivals, so
    # their sojourns are positively correlated and the mean is Nelson & Tantawi's exact
    # two-server fork-join result (1988), (12 - rho) / 8 / (mu - lambda) = 28.75 ms, below the
    # 30 ms of two independent Exp(20 ms). The estimator lets the branches share the part of
    # their waits the arrivals drive (join.common_wait): within 1.5 % of it.
    world: dict[str, Any] = {
        "name": "join", "hardware": [{"name": "cpu"}],
        "sites": [{"name": "s", "tier": "edge"}],
        "devices": [{"name": f"box{i}", "site": "s", "hardware": "cpu", "units": 1,
                     "price_per_unit_hour": 0.0} for i in range(3)],
        "operators": [{"name": "work", "profiles": [{"hardware": "cpu", "mean_ms": 10.0,
                                                     "cv": 1.0}]},
                      {"name": "fuse", "profiles": [{"hardware": "cpu", "mean_ms": 0.001,
                                                     "cv": 0.0}]}],
        "pipelines": [{"name": "p", "sources": [{"name": "cam", "output_kb": 0}],
                       "stages": [{"name": "x", "operator": "work"},
                                  {"name": "y", "operator": "work"},
                                  {"name": "z", "operator": "fuse"}],
                       "edges": [["cam", "x"], ["cam", "y"], ["x", "z"], ["y", "z"]],
                       "accuracy": {"rule": "none"}}],
        "queries": [{"name": "q", "pipeline": "p", "sources": {"cam": "s"}, "rate_rps": 50.0,
                     "slo": {"latency_ms": 1000, "percentile": 95}}],
    }
    stages = [("x", "work", [("box0", 1)], 1), ("y", "work", [("box1", 1)], 1),
              ("z", "fuse", [("box2", 1)], 1)]
    lat = _run(build(world, {"q": stages}), duration=4_000).queries[0].latency
    rho = 0.5
    assert lat.mean_ms == pytest.approx((12 - rho) / 8 * 20.0, rel=0.02)

    index = build_index(parse_world(world))
    plan = QueryPlan("q", tuple(StagePlan(s, (), 1, (Replicas(d[0][0], 1),))
                                for s, _, d, _ in stages))
    got = AnalyticEstimator(index=index).estimate(index.world.queries[0], plan)
    assert got.latency_mean_ms == pytest.approx((12 - rho) / 8 * 20.0, rel=0.015)
    assert got.latency_mean_ms < 29.5  # independent branches: 30
    assert lat.p95_ms is not None
    assert got.latency_ms == pytest.approx(lat.p95_ms, rel=0.05)


def test_two_queries_share_one_mm1_queue(shared_queue: Callable[..., SimWorld]) -> None:
    # Poisson streams of 20 and 40 req/s into one exponential server of mu = 100/s: one M/M/1
    # queue at rho 0.6, and every request sees the merged queue, so both queries' mean sojourn
    # is 1 / (mu - l1 - l2) = 25 ms. On a dedicated replica each, 1 / (mu - li): 12.5, 16.7 ms.
    l1, l2, mu = 20.0, 40.0, 100.0
    shared = _run(shared_queue(rates=(l1, l2), mean_ms=1000 / mu, cv=1.0), duration=20_000)
    for q in shared.queries:
        assert q.latency.mean_ms == pytest.approx(1000 / (mu - l1 - l2), rel=0.03)
    (dep,) = shared.deployments
    assert dep.utilization == pytest.approx((l1 + l2) / mu, rel=0.01)
    assert dep.mean_queue_ms == pytest.approx(1000 * (l1 + l2) / mu / (mu - l1 - l2), rel=0.04)
    alone = _run(shared_queue(rates=(l1, l2), mean_ms=1000 / mu, cv=1.0, shared=False),
                 duration=20_000)
    for q, lam in zip(alone.queries, (l1, l2), strict=True):
        assert q.latency.mean_ms == pytest.approx(1000 / (mu - lam), rel=0.03)


def test_batches_fill_from_every_query(shared_queue: Callable[..., SimWorld]) -> None:
    # Batches of 4, constant 5 ms, shared by queries at 15 and 25 req/s: the merged stream of
    # 40 req/s fills the batches, so a request of either query waits (b - 1) / (2 x 40) = 37.5 ms
    # for its batch; dedicated, each fills from its own stream: 100 ms and 60 ms.
    l1, l2, b, service = 15.0, 25.0, 4, 0.005
    world = {"mean_ms": 2.0, "cv": 0.0, "batch": b, "batch_ms": {b: 1000 * service}}
    shared = _run(shared_queue(rates=(l1, l2), **world), duration=5_000)
    (dep,) = shared.deployments
    assert dep.mean_fill_ms == pytest.approx(1000 * (b - 1) / (2 * (l1 + l2)), rel=0.015)
    for q in shared.queries:
        assert q.latency.mean_ms == pytest.approx(1000 * ((b - 1) / (2 * (l1 + l2)) + service),
                                                  rel=0.015)
    alone = _run(shared_queue(rates=(l1, l2), shared=False, **world), duration=5_000)
    for d, lam in zip(alone.deployments, (l1, l2), strict=True):
        assert d.mean_fill_ms == pytest.approx(1000 * (b - 1) / (2 * lam), rel=0.015)


def test_mm3_shared_by_three_queries(shared_queue: Callable[..., SimWorld]) -> None:
    # Three queries at 60, 80 and 100 req/s on one deployment of 3 exponential replicas of
    # mu = 100/s: one M/M/3 queue at rho 0.8; each query's mean is the Erlang C wait + 1/mu.
    rates, mu, c = (60.0, 80.0, 100.0), 100.0, 3
    lam = sum(rates)
    result = _run(shared_queue(rates=rates, mean_ms=1000 / mu, cv=1.0, replicas=c),
                  duration=5_000)
    wq = _erlang_c(c, lam / mu) / (c * mu - lam)
    (dep,) = result.deployments
    assert dep.mean_queue_ms == pytest.approx(1000 * wq, rel=0.05)
    for q in result.queries:
        assert q.latency.mean_ms == pytest.approx(1000 * (wq + 1 / mu), rel=0.03)
