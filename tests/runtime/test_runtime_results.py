"""Served figures from recorded requests, and the load's schedule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from circinus.plan.file import PlanFile
from circinus.runtime.load import LoadSettings, schedule, tree_rss_gb
from circinus.runtime.results import (
    IntervalOut,
    Record,
    latency_out,
    median_abs_error,
    query_out,
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
