"""Fan-out and branches: the count law, the estimator's terms against queueing theory and the
simulator, the rates and traffic they imply, and the plan file."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from circinus.estimate import AnalyticEstimator
from circinus.estimate.flow import max_iid_moments, mixture_quantile
from circinus.estimate.queueing import batch_queue_sojourn
from circinus.plan.file import to_plan_file
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.planner import Planner
from circinus.simulate import PoissonArrivals, SimulationSettings, compile_plan, simulate
from circinus.spec import build_index, load_world, parse_world
from circinus.spec.counts import count_pmf, draw_counts
from circinus.spec.index import WorldIndex

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _world(*, fanout: dict[str, float] | None = None, branch: dict[str, float] | None = None,
           rate: float = 5.0, det_ms: float = 20.0, cls_ms: float = 10.0, cls_cv: float = 0.0,
           slo_ms: float = 10_000.0, percentile: float = 95.0) -> dict[str, Any]:
    """One box of 8 cores; ``camera -> det -> cls`` (det fans out when ``fanout`` is given),
    or with ``branch``: ``camera -> det -> {slow, fast} -> cls``."""
    ops: list[dict[str, Any]] = [
        {"name": "det", "profiles": [{"hardware": "cpu", "mean_ms": det_ms, "cv": 0.0}],
         "output_kb": 0.0, "accuracy": 1.0},
        {"name": "cls", "profiles": [{"hardware": "cpu", "mean_ms": cls_ms, "cv": cls_cv}],
         "accuracy": 1.0},
    ]
    stages = [{"name": "det", "operator": "det"}, {"name": "cls", "operator": "cls"}]
    edges = [["camera", "det"], ["det", "cls"]]
    pipe: dict[str, Any] = {"name": "p", "sources": [{"name": "camera", "output_kb": 0}],
                            "stages": stages, "edges": edges}
    if fanout is not None:
        ops[0]["fanout"] = [fanout]
    if branch is not None:
        ops += [{"name": "slow", "profiles": [{"hardware": "cpu", "mean_ms": 50.0, "cv": 0.0}],
                 "accuracy": 0.9},
                {"name": "fast", "profiles": [{"hardware": "cpu", "mean_ms": 10.0, "cv": 0.0}],
                 "accuracy": 0.5}]
        stages += [{"name": "slow", "operator": "slow"}, {"name": "fast", "operator": "fast"}]
        pipe["edges"] = [["camera", "det"], ["det", "slow"], ["det", "fast"], ["slow", "cls"],
                         ["fast", "cls"]]
        pipe["branches"] = [{"at": "det", "to": branch}]
    return {
        "name": "flow", "hardware": [{"name": "cpu"}],
        "sites": [{"name": "edge", "tier": "edge"}],
        "devices": [{"name": "box", "site": "edge", "hardware": "cpu", "units": 8,
                     "price_per_unit_hour": 0.01}],
        "operators": ops, "pipelines": [pipe],
        "queries": [{"name": "q", "pipeline": "p", "sources": {"camera": "edge"},
                     "rate_rps": rate, "slo": {"latency_ms": slo_ms, "percentile": percentile}}],
        "planner": {"sharing": "dedicated", "extra_replicas": 0, "time_limit_s": 10},
    }


def _index(world: dict[str, Any]) -> WorldIndex:
    return build_index(parse_world(copy.deepcopy(world)))


def _one_replica_each(index: WorldIndex) -> QueryPlan:
    pipe = index.pipelines["p"]
    return QueryPlan("q", tuple(StagePlan(s, (), 1, (Replicas("box", 1),), None)
                                for s in pipe.order))


# -- the count law -----------------------------------------------------------------------------


@pytest.mark.parametrize(("mean", "cv"), [(7.7, 0.9), (4.0, 0.5), (4.0, 0.0), (2.5, 0.0),
                                          (3.0, 1 / math.sqrt(3.0)), (0.0, 0.0), (12.0, 0.1)])
def test_count_law_has_the_mean_and_variance(mean: float, cv: float) -> None:
    ks, ps = count_pmf(mean, cv)
    assert ps.sum() == pytest.approx(1.0)
    m = float(np.dot(ks, ps))
    v = float(np.dot(ks.astype(float) ** 2, ps)) - m * m
    frac = mean - math.floor(mean)
    least = frac * (1 - frac)  # two integers around the mean: the least variance possible
    assert m == pytest.approx(mean, abs=1e-6)
    assert v == pytest.approx(max((cv * mean) ** 2, least), rel=1e-4, abs=1e-9)
    draws = draw_counts(np.random.default_rng(0), mean, cv, 200_000)
    assert draws.mean() == pytest.approx(mean, rel=0.01, abs=0.01)
    assert draws.var() == pytest.approx(max((cv * mean) ** 2, least), rel=0.03, abs=0.01)


def test_count_law_pools_a_long_tail() -> None:
    ks, ps = count_pmf(1000.0, 10.0)
    assert len(ks) <= 400
    assert float(np.dot(ks, ps)) == pytest.approx(1000.0, rel=0.01)


# -- estimator terms against theory ------------------------------------------------------------


def test_maximum_of_iid_exponentials() -> None:
    # max of k Exp(1): mean H_k, variance sum 1/i^2
    out = max_iid_moments([(1.0, (1.0, 1.0, 2.0))], np.array([0, 1, 2, 5]))
    assert out[0].tolist() == [0.0, 0.0, 0.0]
    for row, k in zip(out[1:], (1, 2, 5), strict=True):
        assert row[0] == pytest.approx(sum(1 / i for i in range(1, k + 1)), rel=2e-3)
        assert row[1] == pytest.approx(sum(1 / i**2 for i in range(1, k + 1)), rel=5e-3)


def test_mixture_quantile_reads_the_slow_branch() -> None:
    # 90 % at 50 ms, 10 % at 250 ms (constants): the 95th percentile is 250
    assert mixture_quantile([(0.9, (0.05, 0.0, 0.0)), (0.1, (0.25, 0.0, 0.0))], 0.95) == (
        pytest.approx(0.25, rel=1e-6))
    assert mixture_quantile([(0.9, (0.05, 0.0, 0.0)), (0.1, (0.25, 0.0, 0.0))], 0.85) == (
        pytest.approx(0.05, rel=1e-6))


def test_burst_on_an_idle_replica_is_served_one_after_another() -> None:
    # k = 3 always, 10 ms each, one replica, almost no load: 20 + 3 x 10 = 50 ms
    index = _index(_world(fanout={"mean": 3, "cv": 0}, rate=0.001))
    est = AnalyticEstimator(index=index).estimate(index.world.queries[0],
                                                  _one_replica_each(index))
    assert est.latency_mean_ms == pytest.approx(50.0, rel=1e-3)
    assert est.latency_ms == pytest.approx(50.0, rel=1e-3)


def test_burst_wait_is_the_batch_poisson_queue() -> None:
    # M^X/D/1 with X = 3, s = 10 ms, 10 bursts/s (rho 0.3): a burst waits lam E[T^2] /
    # (2 (1 - rho)) = 6.43 ms, then takes 30 ms; det (deterministic, rho 0.002) adds ~0.1 ms.
    lam, s, k = 10.0, 0.010, 3
    rho = lam * k * s
    head = lam * (k * s) ** 2 / (2 * (1 - rho))
    det = 0.0001 + lam * 1e-8 / (2 * (1 - lam * 1e-4))
    index = _index(_world(fanout={"mean": k, "cv": 0}, rate=lam, det_ms=0.1, cls_ms=10.0))
    query = index.world.queries[0]
    est = AnalyticEstimator(index=index).estimate(query, _one_replica_each(index))
    theory_ms = (head + k * s + det) * 1e3
    assert est.latency_mean_ms == pytest.approx(theory_ms, rel=0.01)
    result = Planner().plan(index)
    assert result.outcomes[0].admitted
    sim = simulate(compile_plan(index, to_plan_file(index, result)), arrivals=PoissonArrivals(),
                   settings=SimulationSettings(duration_s=2_000, seed=1))
    lat = sim.queries[0].latency
    assert lat.mean_ms == pytest.approx(theory_ms, rel=0.02)


def test_rates_traffic_and_cost_follow_the_objects() -> None:
    index = _index(_world(fanout={"mean": 6.3, "cv": 0.9}, rate=4.0))
    result = Planner().plan(index)
    doc = to_plan_file(index, result)
    (q,) = doc.queries
    visits = {r.stage: r.visits for r in q.route}
    assert visits == {"det": 1.0, "cls": pytest.approx(6.3)}
    cls = [d for d in doc.deployments if d.operator == "cls"]
    assert sum(d.rate_rps for d in cls) == pytest.approx(4.0 * 6.3)
    assert max(d.utilization for d in cls) == pytest.approx(
        4.0 * 6.3 * 0.010 / sum(d.replicas for d in cls), rel=1e-6)


@pytest.mark.parametrize(("mean", "cv", "rate"), [(4.0, 0.8, 5.0), (6.3, 0.9, 3.0),
                                                   (2.5, 0.0, 8.0), (4.0, 0.8, 18.0)])
def test_fanout_percentile_matches_the_simulator(mean: float, cv: float, rate: float) -> None:
    index = _index(_world(fanout={"mean": mean, "cv": cv}, rate=rate, det_ms=30.0,
                          cls_ms=8.0, cls_cv=0.2))
    result = Planner().plan(index)
    assert result.outcomes[0].admitted
    doc = to_plan_file(index, result)
    sim = simulate(compile_plan(index, doc), arrivals=PoissonArrivals(),
                   settings=SimulationSettings(duration_s=3_600, seed=2))
    predicted = doc.queries[0].predicted
    assert predicted is not None and predicted.latency_ms is not None
    measured = sim.queries[0].latency
    assert measured.at_slo_ms == pytest.approx(predicted.latency_ms, rel=0.10)
    assert measured.mean_ms == pytest.approx(predicted.latency_mean_ms, rel=0.10)


def test_branch_latency_is_a_mixture_and_rates_scale() -> None:
    index = _index(_world(branch={"slow": 0.3, "fast": 0.7}, rate=2.0, det_ms=5.0,
                          cls_ms=5.0))
    query = index.world.queries[0]
    est = AnalyticEstimator(index=index).estimate(query, _one_replica_each(index))
    # 5 + (50 | 10) + 5 ms, 30 % slow: mean 32 ms, p95 in the slow branch, ~60 ms
    assert est.latency_mean_ms == pytest.approx(32.0, rel=0.03)
    assert est.latency_ms == pytest.approx(60.0, rel=0.03)
    # accuracy: the product over the stages a request visits, mixed: 0.3 x 0.9 + 0.7 x 0.5
    assert est.accuracy == pytest.approx(0.62)
    result = Planner().plan(index)
    doc = to_plan_file(index, result)
    visits = {r.stage: r.visits for r in doc.queries[0].route}
    assert visits == {"det": 1.0, "slow": pytest.approx(0.3), "fast": pytest.approx(0.7),
                      "cls": 1.0}
    rates = {d.operator: d.rate_rps for d in doc.deployments}
    assert rates["slow"] == pytest.approx(0.6) and rates["fast"] == pytest.approx(1.4)
    sim = simulate(compile_plan(index, doc), arrivals=PoissonArrivals(),
                   settings=SimulationSettings(duration_s=3_600, seed=4))
    measured = sim.queries[0].latency
    assert doc.queries[0].predicted is not None
    assert measured.at_slo_ms == pytest.approx(doc.queries[0].predicted.latency_ms, rel=0.10)
    assert measured.mean_ms == pytest.approx(doc.queries[0].predicted.latency_mean_ms,
                                             rel=0.05)
    served = {d.name: d.requests for d in sim.deployments}
    slow = [n for n in served if "slow" in n]
    fast = [n for n in served if "fast" in n]
    share = served[slow[0]] / (served[slow[0]] + served[fast[0]])
    assert share == pytest.approx(0.3, abs=0.02)


def test_a_request_without_objects_ends_at_the_fanout_stage() -> None:
    # mean 0: no object ever goes on; the latency is det's alone, M/D/1 at 1 req/s x 20 ms
    index = _index(_world(fanout={"mean": 0.0}, rate=1.0, det_ms=20.0))
    est = AnalyticEstimator(index=index).estimate(index.world.queries[0],
                                                  _one_replica_each(index))
    md1_ms = 20.0 + 1.0 * 0.020**2 / (2 * (1 - 0.020)) * 1e3
    assert est.latency_mean_ms == pytest.approx(md1_ms, rel=1e-3)
    result = Planner().plan(index)
    sim = simulate(compile_plan(index, to_plan_file(index, result)),
                   arrivals=PoissonArrivals(), settings=SimulationSettings(duration_s=600))
    assert sim.queries[0].latency.mean_ms == pytest.approx(md1_ms, rel=0.01)


def test_poisson_requests_wait_behind_bursts() -> None:
    # One replica, batch 1, constant 10 ms, 30 req/s whose arrivals have index of dispersion
    # 3 (e.g. bursts of a fan-out): the mean wait is lam s^2 I / (2 (1 - rho)).
    lam, s, disp = 30.0, 0.010, 3.0
    soj = batch_queue_sojourn(rate=lam, batch=1, batch_service=s, service_cv=0.0, replicas=1,
                              dispersion=disp)
    assert soj.mean - s == pytest.approx(lam * s * s * disp / (2 * (1 - lam * s)), rel=1e-9)


def test_each_object_sends_its_own_message() -> None:
    index = build_index(load_world(EXAMPLES / "camera-objects.yaml"))
    query = next(q for q in index.world.queries if q.name == "gate-1")
    det = index.operators["detect"].configs[0]  # yolov5n: 4.7 objects of 12 KB per frame
    cls = index.operators["classify"].configs[1]
    plan = QueryPlan("gate-1", (StagePlan("det", det, 1, (Replicas("street-box", 1),), None),
                                StagePlan("cls", cls, 1, (Replicas("gpu-pool", 1),), None)))
    est = AnalyticEstimator(index=index).estimate(query, plan)
    mbps = dict(est.link_mbps)[("street", "region")]
    assert mbps == pytest.approx(query.rate_rps * 4.7 * 12 * 8.192e-3)
    assert est.network_cost_per_hour == pytest.approx(
        query.rate_rps * 4.7 * 12 * 3600 / 1024**2 * 0.02)
