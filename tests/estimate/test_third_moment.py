"""Third central moments of the queueing kernels and the shifted gamma, against theory."""

from __future__ import annotations

import math

import pytest
from scipy.optimize import brentq
from scipy.special import gammainc

from circinus.estimate.queueing import batch_queue_sojourn, mixture, quantile


def test_mm1_sojourn_has_the_exponential_third_moment() -> None:
    # M/M/1, lam 0.5, mu 1: sojourn Exp(0.5), third central moment 2 * 2^3.
    s = batch_queue_sojourn(rate=0.5, batch=1, batch_service=1.0, service_cv=1.0, replicas=1)
    assert (s.mean, s.var, s.third) == pytest.approx((2.0, 4.0, 16.0))
    assert quantile(s.mean, s.var, 0.99, s.third) == pytest.approx(2 * math.log(100))


def _md1_wait_cdf(t: float, lam: float) -> float:
    """P(W <= t) in M/D/1 with unit service (Erlang; Crommelin 1932):
    (1 - lam) sum_{k <= t} (lam (k - t))^k / k! e^(-lam (k - t))."""
    return (1 - lam) * sum((lam * (k - t)) ** k / math.factorial(k) * math.exp(-lam * (k - t))
                           for k in range(int(t) + 1))


@pytest.mark.parametrize("lam", [0.3, 0.5, 0.7])
def test_md1_sojourn_percentiles_match_the_exact_law(lam: float) -> None:
    # The wait's exact moments (Takacs), read off the shifted gamma: within 1 % of the exact
    # M/D/1 p95 and p99 (the gamma of mean and variance alone is 7-16 % low at p99).
    s = batch_queue_sojourn(rate=lam, batch=1, batch_service=1.0, service_cv=0.0, replicas=1)
    for q in (0.95, 0.99):
        exact = 1.0 + brentq(lambda t, q=q: _md1_wait_cdf(t, lam) - q, 1e-9, 12.0)
        assert quantile(s.mean, s.var, q, s.third) == pytest.approx(exact, rel=0.01)
    assert quantile(s.mean, s.var, 0.99) < 0.93 * exact


def test_batch_fill_third_moment() -> None:
    # Batches of 3 at 2 req/s, served instantly: the fill wait is Erlang(J, 2), J uniform on
    # 0..2; its raw moments are the averages of j(j+1).../2^k.
    s = batch_queue_sojourn(rate=2.0, batch=3, batch_service=1e-9, service_cv=0.0,
                            replicas=1)
    r1, r2, r3 = 3 / 3 / 2, (2 + 6) / 3 / 4, (6 + 24) / 3 / 8
    assert s.third == pytest.approx(r3 - 3 * r1 * r2 + 2 * r1**3, rel=1e-6)
    # The shifted gamma's p90 against the mixture's exact one.
    exact = brentq(lambda t: sum(1.0 if j == 0 else float(gammainc(j, 2 * t))
                                 for j in range(3)) / 3 - 0.9, 0, 20)
    assert quantile(s.mean, s.var, 0.9, s.third) == pytest.approx(exact, rel=0.1)


def test_mixture_of_moments() -> None:
    assert mixture([(0.5, (0.0, 0.0, 0.0)), (0.5, (2.0, 0.0, 0.0))]) == pytest.approx(
        (1.0, 1.0, 0.0))
    # Half an exponential of mean 1, half 0: raw 0.5, 1, 3.
    m, v, t = mixture([(0.5, (1.0, 1.0, 2.0)), (0.5, (0.0, 0.0, 0.0))])
    assert (m, v, t) == pytest.approx((0.5, 0.75, 3 - 3 * 0.5 * 1 + 2 * 0.125))
