"""The composition of latencies over a pipeline DAG: maxima at joins, forks counted once."""

from __future__ import annotations

import math
from typing import Any

import pytest
from scipy.integrate import quad
from scipy.special import gammainc

from circinus.estimate.join import latency_moments, max_moments
from circinus.spec import build_index, parse_world
from circinus.spec.index import PipelineIndex


def test_maximum_of_exponentials_has_the_order_statistic_moments() -> None:
    # Max of n iid Exp(mean 20): mean 20 * H_n, variance 400 * sum 1/k^2 (Renyi).
    for n in (2, 3, 5):
        mean, var = max_moments([(20.0, 400.0)] * n)
        assert mean == pytest.approx(20 * sum(1 / k for k in range(1, n + 1)), rel=1e-4)
        assert var == pytest.approx(400 * sum(1 / k**2 for k in range(1, n + 1)), rel=3e-3)


def test_maximum_with_a_constant_matches_quadrature() -> None:
    # max(20, X), X gamma with mean 19 and variance 4: E[max^k] = 20^k + int_20 k t^(k-1) P(X>t).
    shape, scale = 19**2 / 4, 4 / 19

    def moment(k: int) -> float:
        return 20.0**k + quad(lambda t: k * t ** (k - 1) * (1 - gammainc(shape, t / scale)),
                              20, 80)[0]

    mean, var = max_moments([(20.0, 0.0), (19.0, 4.0)])
    assert mean == pytest.approx(moment(1), rel=1e-5)
    assert var == pytest.approx(moment(2) - moment(1) ** 2, rel=1e-2)


def test_maximum_edge_cases() -> None:
    assert max_moments([]) == (0.0, 0.0)
    assert max_moments([(7.0, 3.0)]) == (7.0, 3.0)
    assert max_moments([(20.0, 0.0), (20.0, 0.0)]) == (20.0, 0.0)
    # A branch surely done long before the other changes nothing.
    assert max_moments([(5.0, 1.0), (100.0, 400.0)]) == (100.0, 400.0)
    assert max_moments([(1.0, 1.0), (math.inf, math.inf)]) == (math.inf, math.inf)
    a = max_moments([(10.0, 30.0), (12.0, 5.0), (9.0, 50.0)])
    b = max_moments([(9.0, 50.0), (10.0, 30.0), (12.0, 5.0)])
    assert a == pytest.approx(b, rel=1e-12)
    assert a[0] > 12.0


def _pipeline(sources: list[str], edges: list[list[str]]) -> PipelineIndex:
    stages = sorted({b for _, b in edges} | {a for a, _ in edges} - set(sources))
    world: dict[str, Any] = {
        "name": "dag", "hardware": [{"name": "cpu"}], "sites": [{"name": "s", "tier": "edge"}],
        "devices": [{"name": "box", "site": "s", "hardware": "cpu", "units": 1,
                     "price_per_unit_hour": 0.0}],
        "operators": [{"name": "op", "profiles": [{"hardware": "cpu", "mean_ms": 1.0}]}],
        "pipelines": [{"name": "p", "sources": [{"name": n, "output_kb": 1} for n in sources],
                       "stages": [{"name": n, "operator": "op"} for n in stages],
                       "edges": edges, "accuracy": {"rule": "none"}}],
        "queries": [],
    }
    return build_index(parse_world(world)).pipelines["p"]


def test_forks_are_immediate_dominators() -> None:
    diamond = _pipeline(["cam"], [["cam", "a"], ["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]])
    assert diamond.forks == {"d": "a"}
    two = _pipeline(["img", "mic"], [["img", "x"], ["mic", "y"], ["x", "z"], ["y", "z"]])
    assert two.forks == {"z": None}
    # A source feeding two branches is their fork; a nested diamond has its own.
    nested = _pipeline(["cam"], [["cam", "b"], ["cam", "c"], ["c", "e"], ["c", "f"],
                                 ["e", "g"], ["f", "g"], ["b", "h"], ["g", "h"]])
    assert nested.forks == {"g": "c", "h": "cam"}


def test_a_chain_adds_moments() -> None:
    chain = _pipeline(["cam"], [["cam", "a"], ["a", "b"]])
    got = latency_moments(chain, {"a": (2.0, 1.0), "b": (3.0, 2.0)},
                          {("cam", "a"): (0.5, 0.1), ("a", "b"): (1.0, 0.0)})
    assert got == pytest.approx((6.5, 3.1))


def test_a_fork_is_counted_once() -> None:
    # cam -> a -> {b, c} -> d: latency a + max(b, c) + d. a's variance is shared by both
    # branches and must not widen their maximum; b and c are constants 5 and 3.
    diamond = _pipeline(["cam"], [["cam", "a"], ["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]])
    free = {e: (0.0, 0.0) for e in [("cam", "a"), ("a", "b"), ("a", "c"), ("b", "d"),
                                    ("c", "d")]}
    got = latency_moments(diamond, {"a": (10.0, 100.0), "b": (5.0, 0.0), "c": (3.0, 0.0),
                                    "d": (1.0, 0.5)}, free)
    assert got == pytest.approx((16.0, 100.5))
    # Two independent exponential branches of mean 20 after the fork: mean 30, variance 500.
    got = latency_moments(diamond, {"a": (10.0, 100.0), "b": (20.0, 400.0),
                                    "c": (20.0, 400.0), "d": (0.0, 0.0)}, free)
    assert got == pytest.approx((40.0, 600.0), rel=2e-3)
