"""The simulator against queueing theory: one stage, one device, Poisson arrivals.

Tolerances are about four standard deviations of the estimate over seeds (measured: M/M/1 mean
0.4 %, M/D/1 0.1 %, M/M/3 0.8 %, batch 0.2 % at these durations).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from scipy.optimize import brentq
from scipy.special import gammainc

from circinus.simulate import PoissonArrivals, SimulationResult, SimulationSettings, SimWorld
from circinus.simulate import simulate as serve


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
