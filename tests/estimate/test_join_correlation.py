"""Branches fed by the same arrivals wait together: the join's maximum against fork-join
theory and the simulator's FIFO queues."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from circinus.estimate.join import branch_head, common_wait, latency_moments
from circinus.estimate.queueing import Sojourn, batch_queue_sojourn, quantile
from circinus.simulate.queues import fifo_starts
from circinus.simulate.service import draw_service
from circinus.spec import build_index, parse_world
from tinyworld import dag_pipeline

_FORK = dag_pipeline(["cam"], [["cam", "b"], ["cam", "c"], ["b", "d"], ["c", "d"]])
_EDGES = {e: (0.0, 0.0, 0.0) for e in [("cam", "b"), ("cam", "c"), ("b", "d"), ("c", "d")]}


def _join(b: Sojourn, c: Sojourn, *, correlated: bool) -> tuple[float, float, float]:
    stages = {"b": (b.mean, b.var, b.third), "c": (c.mean, c.var, c.third),
              "d": (0.0, 0.0, 0.0)}
    waits = {"b": (b.wait, b.arrival_share), "c": (c.wait, c.arrival_share),
             "d": ((0.0, 0.0, 0.0), 0.0)}
    return latency_moments(_FORK, stages, _EDGES, waits=waits if correlated else None)


def test_branch_heads() -> None:
    nested = dag_pipeline(["cam"], [["cam", "b"], ["cam", "c"], ["c", "e"], ["c", "f"],
                                 ["e", "g"], ["f", "g"], ["b", "h"], ["g", "h"]])
    assert branch_head(nested, "g", "cam") == "c"
    assert branch_head(nested, "b", "cam") == "b"
    assert branch_head(nested, "e", "c") == "e"
    assert branch_head(nested, "c", "c") is None
    two = dag_pipeline(["img", "mic"], [["img", "x"], ["mic", "y"], ["x", "z"], ["y", "z"]])
    assert branch_head(two, "y", None) == "y"


def test_common_wait_edge_cases() -> None:
    w = ((1.0, 3.0, 14.0), 0.5)
    assert common_wait([w]) == (0.0, 0.0, 0.0)
    assert common_wait([w, None]) == (0.0, 0.0, 0.0)
    assert common_wait([w, ((0.0, 0.0, 0.0), 1.0)]) == (0.0, 0.0, 0.0)
    _, var, third = common_wait([w, w])
    assert var == pytest.approx(0.75) and 0 < third < 14.0  # a_i a_j sd_i sd_j
    # Never more than the smaller wait's variance.
    assert common_wait([((1.0, 1.0, 2.0), 1.0), ((5.0, 100.0, 2e3), 1.0)])[1] == pytest.approx(
        1.0)


@pytest.mark.parametrize("rho", [0.3, 0.5, 0.7, 0.9])
def test_symmetric_mm1_fork_join_mean(rho: float) -> None:
    # Two M/M/1 queues fed by one Poisson stream: E[max] = (12 - rho) / 8 mean sojourns
    # (Nelson and Tantawi, IEEE Trans. Computers 37(6), 1988). With the shared wait the
    # prediction is within 1.5 % (independence: 1.5 mean sojourns, 3-8 % high).
    s = batch_queue_sojourn(rate=rho, batch=1, batch_service=1.0, service_cv=1.0, replicas=1)
    exact = (12 - rho) / 8 * s.mean
    assert _join(s, s, correlated=True)[0] == pytest.approx(exact, rel=0.015)
    assert _join(s, s, correlated=False)[0] == pytest.approx(1.5 * s.mean, rel=1e-3)


def test_low_variance_fork_join_matches_the_simulator() -> None:
    # Two single-server stages of cv 0.1 at 75 % and 65 % load fed by the same Poisson
    # requests (200,000): their waits move together. The mean and p95 of the slower branch
    # are within 3 % with the shared wait (+1.8 %, +0.6 %); taken as independent, +14.8 % and
    # +4.7 %.
    rng = np.random.default_rng(7)
    n = 200_000
    arrivals = np.cumsum(rng.exponential(1.0, n))
    done = []
    for r in (0.75, 0.65):
        service = draw_service(rng, n, r, 0.1)
        done.append(fifo_starts(arrivals, service, 1) + service - arrivals)
    latency = np.maximum(*done)
    b = batch_queue_sojourn(rate=1.0, batch=1, batch_service=0.75, service_cv=0.1, replicas=1)
    c = batch_queue_sojourn(rate=1.0, batch=1, batch_service=0.65, service_cv=0.1, replicas=1)
    corr = _join(b, c, correlated=True)
    ind = _join(b, c, correlated=False)
    sim_mean, sim_p95 = float(np.mean(latency)), float(np.quantile(latency, 0.95))
    assert corr[0] == pytest.approx(sim_mean, rel=0.03)
    assert quantile(*corr[:2], 0.95, corr[2]) == pytest.approx(sim_p95, rel=0.03)
    assert ind[0] > 1.1 * sim_mean


def _fusion(*, mic_rate: float | None, join_sink: bool) -> dict[str, Any]:
    """camera -> x, mic -> y (cv 0.2 each), joined by ``z`` (cv 0, after it ``w``) or by
    ``done`` (no operator); ``mic`` at a rate of its own when ``mic_rate`` is given."""
    query: dict[str, Any] = {"name": "q", "pipeline": "p",
                             "sources": {"camera": "edge", "mic": "edge"}, "rate_rps": 20.0,
                             "slo": {"latency_ms": 1000, "percentile": 95}}
    if mic_rate is not None:
        query["source_rate_rps"] = {"mic": mic_rate}
    tail = ([{"name": "done"}], [["x", "done"], ["y", "done"]]) if join_sink else (
        [{"name": "z", "operator": "fuse"}, {"name": "w", "operator": "fuse"}],
        [["x", "z"], ["y", "z"], ["z", "w"]])
    return {
        "name": "fusion", "hardware": [{"name": "cpu"}],
        "sites": [{"name": "edge", "tier": "edge"}],
        "devices": [{"name": "box", "site": "edge", "hardware": "cpu", "units": 8,
                     "price_per_unit_hour": 0.01}],
        "operators": [
            {"name": "slow", "profiles": [{"hardware": "cpu", "mean_ms": 30, "cv": 0.2}],
             "output_kb": 0},
            {"name": "fast", "profiles": [{"hardware": "cpu", "mean_ms": 20, "cv": 0.2}],
             "output_kb": 0},
            {"name": "fuse", "profiles": [{"hardware": "cpu", "mean_ms": 25, "cv": 0}],
             "output_kb": 0}],
        "pipelines": [{"name": "p", "sources": [{"name": "camera", "output_kb": 0},
                                                {"name": "mic", "output_kb": 0}],
                       "stages": [{"name": "x", "operator": "slow"},
                                  {"name": "y", "operator": "fast"}, *tail[0]],
                       "edges": [["camera", "x"], ["mic", "y"], *tail[1]],
                       "accuracy": {"rule": "none"}}],
        "queries": [query],
        "planner": {"sharing": "dedicated", "extra_replicas": 0, "time_limit_s": 10},
    }


@pytest.mark.parametrize(("mic_rate", "join_sink"), [(None, False), (5.0, False), (None, True),
                                                      (5.0, True)])
def test_the_search_composes_a_join_as_the_estimator_does(mic_rate: float | None,
                                                          join_sink: bool) -> None:
    # Every plan's latency as the exhaustive search composes it (stage by stage, carrying the
    # arrival SCV and the branches' waits) is the estimator's, with a source at a rate of its
    # own (its branch not waited for) and with an operator-less join sink.
    from circinus.estimate import AnalyticEstimator
    from circinus.search.exhaustive import ExhaustiveSearch

    world = parse_world(_fusion(mic_rate=mic_rate, join_sink=join_sink))
    est = AnalyticEstimator(index=build_index(world))
    pool = ExhaustiveSearch(estimator=est, settings=world.planner).plan_space(world.queries[0])
    assert len(pool) > 0
    for i in range(len(pool)):
        assert pool.latency[i] == pytest.approx(pool.estimate(i).latency_ms, rel=1e-9)


def test_arrival_scv_reaches_plain_pipelines_only() -> None:
    # The stage after the join (behind smooth stages) is estimated at an SCV below 1 in the
    # plain pipeline; a pipeline with branches is estimated Poisson-fed throughout.
    from circinus.estimate import AnalyticEstimator
    from circinus.plan.records import QueryPlan, Replicas, StagePlan
    from circinus.spec.index import ConfigKey
    from circinus.spec.models import Query

    seen: list[float] = []

    class Spy(AnalyticEstimator):
        def stage(self, query: Query, stage: str, config: ConfigKey, batch: int,
                  placement: Any, level: float | None = None,
                  arrival_scv: float = 1.0) -> Any:
            seen.append(arrival_scv)
            return super().stage(query, stage, config, batch, placement, level, arrival_scv)

    def estimate(world: dict[str, Any]) -> float:
        index = build_index(parse_world(world))
        plan = QueryPlan("q", tuple(StagePlan(s, (), 1, (Replicas("box", 1),), None)
                                    for s in index.pipelines["p"].order))
        return Spy(index=index).estimate(index.world.queries[0], plan).latency_ms

    def chain(branch: bool) -> dict[str, Any]:
        # camera -> a -> b -> e, or with ``branch``: camera -> a -> b -> {c, d} -> e.
        world = _fusion(mic_rate=None, join_sink=False)
        world["queries"][0]["sources"] = {"camera": "edge"}
        pipe = world["pipelines"][0]
        pipe["sources"] = pipe["sources"][:1]
        names = ["a", "b", "c", "d", "e"] if branch else ["a", "b", "e"]
        pipe["stages"] = [{"name": n, "operator": "fuse" if n == "e" else "slow"}
                          for n in names]
        pipe["edges"] = [["camera", "a"], ["a", "b"]] + (
            [["b", "c"], ["b", "d"], ["c", "e"], ["d", "e"]] if branch else [["b", "e"]])
        if branch:
            pipe["branches"] = [{"at": "b", "to": {"c": 0.5, "d": 0.5}}]
        return world

    assert np.isfinite(estimate(chain(False)))
    assert min(seen) < 1.0
    seen.clear()
    assert np.isfinite(estimate(chain(True)))
    assert seen and set(seen) == {1.0}
