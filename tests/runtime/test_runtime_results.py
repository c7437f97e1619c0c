"""Served figures from recorded requests, and the load's schedule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from circinus.plan.file import PlanFile
from circinus.runtime.load import LoadSettings, schedule
from circinus.runtime.machine import tree_rss_gb
from circinus.runtime.results import (
    Comparison,
    IntervalOut,
    MachineOut,
    Record,
    ReplicaCheckOut,
    RunRecords,
    latency_out,
    median_abs_error,
    query_out,
    serve_result,
)
from circinus.simulate import PoissonArrivals
from circinus.spec.index import WorldIndex

Planned = tuple[Path, WorldIndex, PlanFile]


def test_latency_percentiles_are_empirical_and_unanswered_is_late() -> None:
    lat = np.array([0.001 * k for k in range(1, 101)])  # 1..100 ms
    out = latency_out(lat, 95.0)
    assert out.p50_ms == pytest.approx(50.0)
    assert out.p95_ms == pytest.approx(95.0)
    assert out.at_slo_ms == pytest.approx(95.0)
    lat[-10:] = math.inf
    assert latency_out(lat, 95.0).p95_ms is None
    assert latency_out(np.array([]), 95.0).p50_ms is None


def test_query_out_judges_latency_and_accuracy(digits_plan: Planned) -> None:
    _, _, plan = digits_plan
    q = next(q for q in plan.queries if q.name == "sorter-a")  # p95 <= 500 ms, accuracy >= 0.8
    assert q.predicted is not None and q.predicted.latency_ms is not None
    fast = [Record("sorter-a", k * 0.1, 0.010, k % 10 != 0) for k in range(100)]
    out = query_out(q, fast, accuracy_alpha=0.05, simulated_ms=12.0,
                    profiled=IntervalOut(value=0.9, low=0.85, high=0.95, n=300))
    assert out.slo_met and out.latency_met and out.accuracy_met
    assert out.accuracy is not None and out.accuracy.value == pytest.approx(0.9)
    assert out.accuracy.low < 0.9 < out.accuracy.high
    assert out.latency_error == pytest.approx((10.0 - q.predicted.latency_ms)
                                              / q.predicted.latency_ms)
    assert out.requests == out.completed == 100
    slow = [Record("sorter-a", k * 0.1, 0.6 if k % 10 == 0 else 0.01, True) for k in range(100)]
    assert not query_out(q, slow, accuracy_alpha=0.05, simulated_ms=None,
                         profiled=None).latency_met
    wrong = [Record("sorter-a", k * 0.1, 0.01, k % 2 == 0) for k in range(100)]
    out = query_out(q, wrong, accuracy_alpha=0.05, simulated_ms=None, profiled=None)
    assert out.latency_met and not out.accuracy_met and not out.slo_met


def test_the_accuracy_floor_is_judged_by_the_measured_interval(digits_plan: Planned) -> None:
    _, _, plan = digits_plan
    q = next(q for q in plan.queries if q.name == "sorter-a")  # accuracy >= 0.8
    # 76 of 100 right: the point estimate is below the floor, the interval reaches it
    near = [Record("sorter-a", k * 0.1, 0.01, k % 25 not in (0, 1, 2, 3, 4, 5)) for k in
            range(100)]
    out = query_out(q, near, accuracy_alpha=0.05, simulated_ms=None, profiled=None)
    assert out.accuracy is not None and out.accuracy.value == pytest.approx(0.76)
    assert out.accuracy.low < 0.8 < out.accuracy.high
    assert out.accuracy_met and out.slo_met
    # 70 of 100: the whole interval is below the floor
    far = [Record("sorter-a", k * 0.1, 0.01, k % 10 not in (0, 1, 2)) for k in range(100)]
    out = query_out(q, far, accuracy_alpha=0.05, simulated_ms=None, profiled=None)
    assert out.accuracy is not None and out.accuracy.high < 0.8
    assert not out.accuracy_met and not out.slo_met


def test_median_abs_error(digits_plan: Planned) -> None:
    _, _, plan = digits_plan
    q = next(q for q in plan.queries if q.admitted)
    assert q.predicted is not None and q.predicted.latency_ms is not None
    p = q.predicted.latency_ms
    outs = [query_out(q, [Record(q.name, 0.0, p * f / 1000.0, True)], accuracy_alpha=0.05,
                      simulated_ms=None, profiled=None) for f in (0.5, 1.1, 1.3)]
    assert median_abs_error(outs) == pytest.approx(0.3)
    assert median_abs_error([]) is None


def _run(seed: int, records: list[Record], load: float, misplaced: list[str]) -> RunRecords:
    return RunRecords(seed, records, dropped=seed, startup_s=10.0 + seed,
                      placement=ReplicaCheckOut(replicas=3, misplaced=misplaced),
                      machine=MachineOut(cores=2, load_before=load, load_after=load + 0.5,
                                         cpu_busy=load / 4, ray_memory_gb=1.0 + load))


def test_several_runs_are_reported_each_and_pooled_per_query(digits_plan: Planned) -> None:
    _, index, plan = digits_plan
    admitted = [q for q in plan.queries if q.admitted and q.predicted is not None]
    q = admitted[0]
    assert q.predicted is not None and q.predicted.latency_ms is not None
    p = q.predicted.latency_ms / 1000.0
    # run 1 measures every request 20 % slower than predicted, run 2 10 % faster, and the
    # warm-up (due before 1 s) is left out of both
    slow = [Record(q.name, 1.0 + k, p * 1.2, True) for k in range(40)]
    fast = [Record(q.name, 1.0 + k, p * 0.9, True) for k in range(40)]
    warm = [Record(q.name, 0.5, 100.0, False)]
    compare = Comparison(simulated_ms={}, simulated_goodput=None, profiled={},
                         accuracy_alpha=0.05)
    one = serve_result(index, plan, [_run(4, warm + slow, 1.0, [])], arrivals="poisson",
                       duration_s=60.0, warmup_s=1.0, compare=compare, address=None)
    out = serve_result(index, plan, [_run(4, warm + slow, 1.0, []),
                                     _run(5, warm + fast, 2.0, ["x: a (b)"])],
                       arrivals="poisson", duration_s=60.0, warmup_s=1.0, compare=compare,
                       address=None)
    assert [r.seed for r in out.runs] == [4, 5] and out.seed == 4
    assert [r.requests for r in out.runs] == [40, 40] and out.requests == 80
    (mine,) = (x for x in out.queries if x.name == q.name)
    first = next(x for x in out.runs[0].queries if x.name == q.name)
    second = next(x for x in out.runs[1].queries if x.name == q.name)
    assert first.latency_error == pytest.approx(0.2) and second.latency_error == pytest.approx(-0.1)
    assert first.mean_ms == pytest.approx(p * 1200.0)
    # 80 requests, half at 1.2 p and half at 0.9 p: the 95th percentile is a slow one
    assert mine.requests == 80 and mine.latency_error == pytest.approx(0.2)
    assert mine.latency.p50_ms == pytest.approx(p * 900.0)
    assert mine.accuracy is not None and mine.accuracy.n == 80
    # the whole over the runs: the slowest start, every replica, the first load before and
    # the last after, the mean busy fraction, the largest memory
    assert out.startup_s == 15.0 and out.dropped == 9
    assert out.placement.replicas == 6 and out.placement.misplaced == ["x: a (b)"]
    assert (out.machine.load_before, out.machine.load_after) == (1.0, 2.5)
    assert out.machine.cpu_busy == pytest.approx(0.375) and out.machine.ray_memory_gb == 3.0
    # one run alone: the same figures as the whole
    assert len(one.runs) == 1 and one.runs[0].median_latency_error == one.median_latency_error
    assert one.queries[0].requests == one.runs[0].queries[0].requests


def test_schedule_is_seeded_and_follows_the_rates(digits_plan: Planned) -> None:
    _, _, plan = digits_plan
    settings = LoadSettings(duration_s=200.0, seed=3)
    todo = schedule(plan, PoissonArrivals(), settings, {"digits": 50})
    assert todo == schedule(plan, PoissonArrivals(), settings, {"digits": 50})
    assert todo != schedule(plan, PoissonArrivals(), LoadSettings(duration_s=200.0, seed=4),
                            {"digits": 50})
    assert [a.due_s for a in todo] == sorted(a.due_s for a in todo)
    for q in plan.queries:
        n = sum(a.query == q.name for a in todo)
        assert abs(n - q.rate_rps * 200) < 5 * math.sqrt(q.rate_rps * 200)
    firsts = [a.input_id for a in todo if a.query == "sorter-a"][:50]
    assert sorted(firsts) == list(range(50))  # a permutation of the inputs, then again


def test_tree_rss_counts_this_process() -> None:
    assert 0.001 < tree_rss_gb() < 24
