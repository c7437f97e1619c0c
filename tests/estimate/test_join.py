"""The composition of latencies over a pipeline DAG: maxima at joins, forks counted once."""

from __future__ import annotations

import math

import pytest
from scipy.integrate import quad
from scipy.special import gammainc

from circinus.estimate.join import latency_moments, max_moments
from tinyworld import dag_pipeline


def test_maximum_of_exponentials_has_the_order_statistic_moments() -> None:
    # Max of n iid Exp(mean 20): the sum of independent Exp(mean 20 / k), k = 1..n (Renyi):
    # mean 20 H_n, variance 400 sum 1/k^2, third central moment 2 * 8000 sum 1/k^3.
    for n in (2, 3, 5):
        mean, var, third = max_moments([(20.0, 400.0, 16000.0)] * n)
        ks = range(1, n + 1)
        assert mean == pytest.approx(20 * sum(1 / k for k in ks), rel=1e-4)
        assert var == pytest.approx(400 * sum(1 / k**2 for k in ks), rel=3e-3)
        assert third == pytest.approx(16000 * sum(1 / k**3 for k in ks), rel=1e-2)


def test_maximum_with_a_constant_matches_quadrature() -> None:
    # max(20, X), X gamma with mean 19 and variance 4: E[max^k] = 20^k + int_20 k t^(k-1) P(X>t).
    shape, scale = 19**2 / 4, 4 / 19

    def moment(k: int) -> float:
        return 20.0**k + quad(lambda t: k * t ** (k - 1) * (1 - gammainc(shape, t / scale)),
                              20, 80)[0]

    # X's third central moment is the gamma's 2 k theta^3 = 2 * 4^2 / 19.
    mean, var, _ = max_moments([(20.0, 0.0, 0.0), (19.0, 4.0, 32 / 19)])
    assert mean == pytest.approx(moment(1), rel=1e-5)
    assert var == pytest.approx(moment(2) - moment(1) ** 2, rel=1e-2)


def test_maximum_of_skewed_parts_matches_quadrature() -> None:
    # A shifted gamma part (mean 10, variance 20, third 400: skewness 2.24, shape 0.8, start
    # 2.84) against a constant 12: E[max^k] = 12^k + int_12 k t^(k-1) P(X > t) dt.
    mean, var, third = 10.0, 20.0, 400.0
    skew = third / var**1.5
    shape, scale = 4 / skew**2, math.sqrt(var) * skew / 2
    shift = mean - shape * scale

    def moment(k: int) -> float:
        return 12.0**k + quad(lambda t: k * t ** (k - 1) * (
            1 - gammainc(shape, (t - shift) / scale)), 12, 400, limit=200)[0]

    got = max_moments([(12.0, 0.0, 0.0), (mean, var, third)])
    m1, m2, m3 = moment(1), moment(2), moment(3)
    assert got[0] == pytest.approx(m1, rel=1e-4)
    assert got[1] == pytest.approx(m2 - m1**2, rel=1e-2)
    assert got[2] == pytest.approx(m3 - 3 * m1 * m2 + 2 * m1**3, rel=3e-2)


def test_maximum_edge_cases() -> None:
    assert max_moments([]) == (0.0, 0.0, 0.0)
    assert max_moments([(7.0, 3.0, 1.0)]) == (7.0, 3.0, 1.0)
    assert max_moments([(20.0, 0.0, 0.0), (20.0, 0.0, 0.0)]) == (20.0, 0.0, 0.0)
    # A branch surely done long before the other changes nothing.
    assert max_moments([(5.0, 1.0, 0.0), (100.0, 400.0, 0.0)]) == (100.0, 400.0, 0.0)
    assert max_moments([(1.0, 1.0, 0.0), (math.inf, math.inf, math.inf)]) == (
        math.inf, math.inf, math.inf)
    a = max_moments([(10.0, 30.0, 0.0), (12.0, 5.0, 0.0), (9.0, 50.0, 0.0)])
    b = max_moments([(9.0, 50.0, 0.0), (10.0, 30.0, 0.0), (12.0, 5.0, 0.0)])
    assert a == pytest.approx(b, rel=1e-12)
    assert a[0] > 12.0


def test_forks_are_immediate_dominators() -> None:
    diamond = dag_pipeline(["cam"], [["cam", "a"], ["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]])
    assert diamond.forks == {"d": "a"}
    two = dag_pipeline(["img", "mic"], [["img", "x"], ["mic", "y"], ["x", "z"], ["y", "z"]])
    assert two.forks == {"z": None}
    # A source feeding two branches is their fork; a nested diamond has its own.
    nested = dag_pipeline(["cam"], [["cam", "b"], ["cam", "c"], ["c", "e"], ["c", "f"],
                                 ["e", "g"], ["f", "g"], ["b", "h"], ["g", "h"]])
    assert nested.forks == {"g": "c", "h": "cam"}


def test_a_chain_adds_moments() -> None:
    chain = dag_pipeline(["cam"], [["cam", "a"], ["a", "b"]])
    got = latency_moments(chain, {"a": (2.0, 1.0, 2.0), "b": (3.0, 2.0, 1.0)},
                          {("cam", "a"): (0.5, 0.1, 0.0), ("a", "b"): (1.0, 0.0, 0.0)})
    assert got == pytest.approx((6.5, 3.1, 3.0))


def test_a_fork_is_counted_once() -> None:
    # cam -> a -> {b, c} -> d: latency a + max(b, c) + d. a's variance is shared by both
    # branches and must not widen their maximum; b and c are constants 5 and 3.
    diamond = dag_pipeline(["cam"], [["cam", "a"], ["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]])
    free = {e: (0.0, 0.0, 0.0) for e in [("cam", "a"), ("a", "b"), ("a", "c"), ("b", "d"),
                                         ("c", "d")]}
    got = latency_moments(diamond, {"a": (10.0, 100.0, 2000.0), "b": (5.0, 0.0, 0.0),
                                    "c": (3.0, 0.0, 0.0), "d": (1.0, 0.5, 0.0)}, free)
    assert got == pytest.approx((16.0, 100.5, 2000.0))
    # Two independent exponential branches of mean 20 after the fork: mean 30, variance 500,
    # third moment 18,000 (Exp of mean 10 plus Exp of mean 20), plus a's exponential.
    got = latency_moments(diamond, {"a": (10.0, 100.0, 2000.0), "b": (20.0, 400.0, 16000.0),
                                    "c": (20.0, 400.0, 16000.0), "d": (0.0, 0.0, 0.0)}, free)
    assert got == pytest.approx((40.0, 600.0, 20000.0), rel=5e-3)
