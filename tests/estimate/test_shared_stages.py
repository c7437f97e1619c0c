"""Hand-computed checks of shared stages: the worst state of a level before the deployments are
sized, the real state after, cross-query batching and each query's share of the replicas.

Every expected number is written out as queueing arithmetic in the test (M/M/1, M/M/2 and the
batch fill wait ``(b - 1) / (2 lambda)``), not by calling the estimator another way. Profiles in
ms, sojourns in s.
"""

from __future__ import annotations

from typing import Any

import pytest

from circinus.estimate import AnalyticEstimator
from circinus.estimate.analytic import DeploymentState
from circinus.estimate.queueing import batch_queue_sojourn
from circinus.plan.records import DeploymentKey, Replicas
from circinus.spec import Query, build_index, parse_world

WORLD: dict[str, Any] = {
    "hardware": [{"name": "gpu", "kind": "gpu"}],
    "sites": [{"name": "cloud", "tier": "cloud"}],
    "devices": [{"name": "pool", "site": "cloud", "hardware": "gpu", "units": 16,
                 "price_per_unit_hour": 2.0}],
    "operators": [{"name": "enc", "profiles": [
        # 10 ms per request, exponential (cv 1); a batch of 4 takes 20 ms; a replica: 0.5 unit.
        {"hardware": "gpu", "mean_ms": 10, "cv": 1.0, "batch_ms": {4: 20}, "units": 0.5}],
        "accuracy": 0.9}],
    "pipelines": [{"name": "p", "sources": [{"name": "in", "output_kb": 0}],
                   "stages": [{"name": "enc", "operator": "enc"}], "edges": [["in", "enc"]]}],
    "queries": [{"name": "a", "pipeline": "p", "sources": {"in": "cloud"}, "rate_rps": 10}],
}
MU = 100.0  # requests per second one replica serves at batch 1


def _estimator() -> AnalyticEstimator:
    return AnalyticEstimator(index=build_index(parse_world(WORLD)))


def _query(rate: float, scale: float = 1.0) -> Query:
    return Query(name="q", pipeline="p", sources={"in": "cloud"}, rate_rps=rate,
                 work_scale={} if scale == 1.0 else {"enc": scale})


def _name(batch: int, level: float) -> str:
    return DeploymentKey("enc", (), "pool", batch, level).resource


def test_before_sizing_a_shared_stage_is_estimated_at_its_level() -> None:
    # 10 req/s alone would be M/M/1 at 10 % busy; the deployment may be sized to run at the
    # level, 0.5: M/M/1 at rho 0.5 has mean sojourn 1 / (mu (1 - rho)) = 1 / 50 s.
    st = _estimator().stage(_query(10.0), "enc", (), 1, (Replicas("pool", 1),), 0.5)
    assert st.mean_s == pytest.approx(1 / (MU * (1 - 0.5)))
    assert st.var_s2 == pytest.approx((1 / 50) ** 2)  # exponential sojourn
    assert st.utilization == 0.5
    # Its load is 10 / 100 = 0.1 busy replica; it holds 0.1 / 0.5 = 0.2 of a replica's units
    # (0.5 each) and cost (0.5 x $2/h each).
    assert dict(st.deployments) == {_name(1, 0.5): pytest.approx(0.1)}
    assert dict(st.deployment_held) == {_name(1, 0.5): pytest.approx(0.2)}
    assert dict(st.units) == {"pool": pytest.approx(0.2 * 0.5)}
    assert st.cost_per_hour == pytest.approx(0.2 * 0.5 * 2.0)
    # Alone with its fewest replica: one whole replica.
    assert st.solo_cost_per_hour == pytest.approx(1 * 0.5 * 2.0)


def test_a_larger_query_is_bounded_with_its_own_fewest_replicas() -> None:
    # 150 req/s = 1.5 busy replicas: at level 0.8 it needs ceil(1.5 / 0.8) = 2 replicas, and is
    # estimated as M/M/2 at rho 0.8: Erlang C = 2 rho^2 / (1 + rho) = 0.7111, wait
    # C / (2 mu - lambda) with lambda = 160, sojourn wait + 1 / mu.
    rho, lam = 0.8, 160.0
    c_wait = 2 * rho**2 / (1 + rho)
    st = _estimator().stage(_query(150.0), "enc", (), 1, (Replicas("pool", 2),), 0.8)
    assert st.mean_s == pytest.approx(c_wait / (2 * MU - lam) + 1 / MU)


def test_batches_fill_from_the_query_alone_before_sizing_and_from_all_after() -> None:
    # Batch 4 at 20 ms: before sizing the fill wait is (b - 1) / (2 lambda_own) = 3 / 20 s; on a
    # sized deployment with 40 req/s from all its queries it is 3 / 80 s.
    est = _estimator()
    placement = (Replicas("pool", 1),)
    alone = est.stage(_query(10.0), "enc", (), 4, placement, 0.8)
    worst = batch_queue_sojourn(rate=0.8 * 4 / 0.020, batch=4, batch_service=0.020,
                                service_cv=1.0, replicas=1)
    assert alone.mean_s == pytest.approx(worst.mean - 3 / (2 * 0.8 * 4 / 0.020) + 3 / 20)
    sized = est.with_deployments({_name(4, 0.8): DeploymentState(1, 40.0)})
    real = sized.stage(_query(10.0), "enc", (), 4, placement, 0.8)
    # Batches of 4 arrive at 10/s, each served in 20 ms (rho 0.2, service cv 1): M/M/1 of
    # batches with Allen-Cunneen's (ca^2 + cs^2) / 2 = (1/4 + 1) / 2.
    rho = 10 * 0.020
    wait = rho / (1 / 0.020 - 10) * (0.25 + 1) / 2
    assert real.mean_s == pytest.approx(3 / 80 + wait + 0.020)
    assert real.utilization == pytest.approx(rho)


def test_a_sized_deployment_pools_its_replicas() -> None:
    # Three queries of 60 req/s on one deployment of 2 replicas: lambda = 180, rho = 0.9; M/M/2
    # wait C / (2 mu - lambda) with C = 2 rho^2 / (1 + rho).
    rho = 0.9
    c_wait = 2 * rho**2 / (1 + rho)
    sized = _estimator().with_deployments({_name(1, 0.8): DeploymentState(2, 180.0)})
    st = sized.stage(_query(60.0), "enc", (), 1, (Replicas("pool", 1),), 0.8)
    assert st.mean_s == pytest.approx(c_wait / (200 - 180) + 1 / MU)
    # Its share: a third of the work, so a third of the 2 replicas (0.5 unit, $2/h each).
    assert dict(st.deployment_held) == {_name(1, 0.8): pytest.approx(2 / 3)}
    assert st.cost_per_hour == pytest.approx(2 / 3 * 0.5 * 2.0)


def test_heavier_co_tenants_lengthen_the_batches() -> None:
    # Half the requests take twice the work (multiplier 2), half 1: E[s] = 1.5, E[s^2] = 2.5.
    # A light query's batch of 4 takes 20 ms x (1 + 3 x 1.5) / 4; the queue sees batches of
    # 30 ms with cs^2 = (1 + 1)(1 + 0.25 / (4 x 2.25)) - 1.
    state = DeploymentState(1, 20.0, scale_mean=1.5, scale_sq=2.5)
    sized = _estimator().with_deployments({_name(4, 0.8): state})
    st = sized.stage(_query(10.0), "enc", (), 4, (Replicas("pool", 1),), 0.8)
    cs2 = 2 * (1 + 0.25 / 9) - 1
    expect = batch_queue_sojourn(rate=20.0, batch=4, batch_service=0.030,
                                 service_cv=cs2**0.5, replicas=1,
                                 own_service=0.020 * (1 + 3 * 1.5) / 4)
    assert st.mean_s == pytest.approx(expect.mean)
    assert expect.mean == pytest.approx(3 / 40 + (20 / 4 * 0.030) / (1 / 0.030 - 5) * (
        0.25 + cs2) / 2 + 0.020 * 5.5 / 4)


def test_a_level_of_one_bounds_nothing_and_the_query_is_estimated_alone() -> None:
    # 10 req/s on one replica alone: M/M/1 at rho 0.1, sojourn 1 / (mu - lambda) = 1/90 s.
    st = _estimator().stage(_query(10.0), "enc", (), 1, (Replicas("pool", 1),), 1.0)
    assert st.mean_s == pytest.approx(1 / 90)
