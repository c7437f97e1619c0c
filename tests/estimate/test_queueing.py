"""Hand-computed checks of the queueing kernels (Erlang B and C, sojourn moments, transfer,
shared-link slowdown, quantile).

Every expected value below is written out as arithmetic from a textbook formula named in the
comment next to it; none is obtained by calling the code under test another way.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import waitlaw
from circinus.estimate.queueing import (
    batch_queue_sojourn,
    erlang_b,
    erlang_c,
    mg1_wait_moments,
    quantile,
    shared_link_slowdown,
    transfer_seconds,
)

Z99 = 2.3263478740408408  # standard normal 99th percentile (tables)

# --------------------------------------------------------------------------------- erlang_c


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9, 0.999])
def test_erlang_c_one_server_is_the_utilisation(rho: float) -> None:
    # M/M/1: P(wait) = rho.
    assert erlang_c(1, rho) == pytest.approx(rho, rel=1e-12)


def test_erlang_c_two_servers_known_values() -> None:
    # C(c, a) = (a^c/c! * c/(c-a)) / (sum_{k<c} a^k/k! + a^c/c! * c/(c-a)).
    # c=2, a=1: top = 1/2 * 2 = 1, bottom = (1 + 1) + 1 = 3 -> 1/3.
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    # c=2, a=1.5: top = 2.25/2 * 2/0.5 = 4.5, bottom = (1 + 1.5) + 4.5 = 7 -> 9/14.
    assert erlang_c(2, 1.5) == pytest.approx(9 / 14, rel=1e-12)


def test_erlang_c_no_load_never_waits() -> None:
    assert erlang_c(3, 0.0) == 0.0


def test_erlang_c_is_stable_for_a_thousand_servers() -> None:
    c, a = 1000, 900.0
    got = erlang_c(c, a)
    assert math.isfinite(got)
    assert 0.0 < got < 1.0
    # Independent check: the closed form above in log space, log(a^k/k!) = k ln a - ln k!.
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    peak = max([*logs, top])
    bottom = sum(math.exp(x - peak) for x in logs) + math.exp(top - peak)
    assert got == pytest.approx(math.exp(top - peak) / bottom, rel=1e-9)


# ------------------------------------------------------------------------ batch_queue_sojourn


def test_mm1_sojourn_is_exponential_with_rate_mu_minus_lambda() -> None:
    # M/M/1, lam = 0.5, mu = 1: sojourn ~ Exp(mu - lam): mean 1/0.5 = 2, variance 1/0.5^2 = 4.
    soj = batch_queue_sojourn(rate=0.5, batch=1, batch_service=1.0, service_cv=1.0, replicas=1)
    assert soj.mean == pytest.approx(1 / (1.0 - 0.5), rel=1e-12)
    assert soj.var == pytest.approx(1 / (1.0 - 0.5) ** 2, rel=1e-12)
    assert soj.utilization == pytest.approx(0.5 / 1.0, rel=1e-12)


def test_mm1_sojourn_at_thirty_percent_load() -> None:
    # lam = 30/s, service 10 ms (mu = 100/s): mean 1/70 s, variance 1/70^2 s^2.
    soj = batch_queue_sojourn(rate=30.0, batch=1, batch_service=0.01, service_cv=1.0, replicas=1)
    assert soj.mean == pytest.approx(1 / (100 - 30), rel=1e-12)
    assert soj.var == pytest.approx(1 / (100 - 30) ** 2, rel=1e-12)
    assert soj.utilization == pytest.approx(30 * 0.01, rel=1e-12)


def test_mm2_mean_wait_is_erlang_c_over_c_mu_minus_lambda() -> None:
    # M/M/2, lam = 1, mu = 1: Wq = C(2, 1) / (2*1 - 1) = (1/3) / 1; sojourn mean = 1/3 + 1.
    soj = batch_queue_sojourn(rate=1.0, batch=1, batch_service=1.0, service_cv=1.0, replicas=2)
    assert soj.mean == pytest.approx(1 / 3 + 1.0, rel=1e-12)
    assert soj.utilization == pytest.approx(1.0 * 1.0 / 2, rel=1e-12)


def test_md1_mean_wait_is_pollaczek_khinchine() -> None:
    # M/D/1, lam = 0.5, S = 1 (mu = 1, rho = 0.5): Wq = rho / (2 mu (1 - rho)) = 0.5 / (2*0.5).
    soj = batch_queue_sojourn(rate=0.5, batch=1, batch_service=1.0, service_cv=0.0, replicas=1)
    rho, mu = 0.5, 1.0
    assert soj.mean == pytest.approx(rho / (2 * mu * (1 - rho)) + 1 / mu, rel=1e-12)
    # Service is deterministic, so all variance is the wait's, M/D/1's exact one (Takacs):
    # E[W^2] = 2 Wq^2 + lam S^3 / (3 (1 - rho)) = 0.5 + 1/3, variance 0.583 (the "none, or
    # exponential at the Cramer-Lundberg rate" law of several replicas would give 0.546).
    assert soj.var == pytest.approx(2 * 0.5**2 + 0.5 / (3 * 0.5) - 0.5**2, rel=1e-12)
    assert waitlaw.moments(0.5, waitlaw.decay(0.5, 1.0, 0.0))[1] == pytest.approx(0.5459, rel=1e-3)


@pytest.mark.parametrize(("rho", "cv"), [(0.05, 0.0), (0.05, 0.1), (0.3, 0.5), (0.8, 0.1),
                                         (0.5, 1.0), (0.9, 2.0)])
def test_mg1_wait_moments_are_takacs(rho: float, cv: float) -> None:
    lam, s = rho, 1.0
    mean, var, third = mg1_wait_moments(lam, s, cv)
    e2, e3, e4 = (s**2 * (1 + cv**2), s**3 * (1 + cv**2) * (1 + 2 * cv**2),
                  s**4 * (1 + cv**2) * (1 + 2 * cv**2) * (1 + 3 * cv**2))
    w1 = lam * e2 / (2 * (1 - rho))  # Pollaczek-Khinchine
    w2 = 2 * w1**2 + lam * e3 / (3 * (1 - rho))  # Takacs
    w3 = lam / (1 - rho) * (3 * e2 / 2 * w2 + 3 * e3 / 3 * w1 + e4 / 4)
    assert mean == pytest.approx(w1, rel=1e-12)
    assert var == pytest.approx(w2 - w1**2, rel=1e-12)
    assert third == pytest.approx(w3 - 3 * w1 * w2 + 2 * w1**3, rel=1e-12)
    if cv == 1.0:  # M/M/1: 0 w.p. 1 - rho, else exponential of rate mu - lam
        theta = 1 / (1 - lam)
        assert var == pytest.approx(2 * rho * theta**2 - w1**2, rel=1e-12)


def test_one_replica_at_low_load_has_the_residual_service_tail() -> None:
    # A 5 %-busy replica of near-constant service (23.5 ms, cv 0.1, 2 req/s) and 7.46 ms of
    # transfer: p99 of the sojourn against a long Lindley recursion (50.1 ms). The wait's
    # exact moments give 47.6 (-5 %); the "none, or exponential" law gave 44.3 (-12 %).
    s, cv, lam, hop = 0.023512, 0.1, 2.0, 0.00746
    soj = batch_queue_sojourn(rate=lam, batch=1, batch_service=s, service_cv=cv, replicas=1)
    rng = np.random.default_rng(0)
    n = 400_000
    gaps = rng.exponential(1 / lam, n)
    svc = rng.gamma(1 / cv**2, s * cv**2, n)
    wait = np.zeros(n)
    for i in range(1, n):
        wait[i] = max(0.0, wait[i - 1] + svc[i - 1] - gaps[i])
    simulated = float(np.quantile(wait + svc + hop, 0.99))
    predicted = quantile(soj.mean + hop, soj.var, 0.99, soj.third)
    assert predicted == pytest.approx(simulated, rel=0.07)
    assert predicted > 0.93 * simulated


def test_mg1_mean_wait_is_pollaczek_khinchine() -> None:
    # M/G/1, lam = 0.5, E[S] = 1, cv = 0.5: Wq = lam E[S^2] / (2 (1 - rho))
    #   = 0.5 * (1 + 0.25) / (2 * 0.5) = 0.625.
    soj = batch_queue_sojourn(rate=0.5, batch=1, batch_service=1.0, service_cv=0.5, replicas=1)
    assert soj.mean == pytest.approx(0.5 * (1 + 0.5**2) / (2 * (1 - 0.5)) + 1.0, rel=1e-12)


def test_batching_wait_on_a_lightly_loaded_group() -> None:
    # lam = 100/s, b = 4, batch service 1 ms, deterministic, one replica.
    # Fill: (b - 1) / (2 lam) = 3 / 200 = 0.015 s.
    # Batches: lam_b = 25/s, a = 25 * 0.001 = 0.025, C = 0.025 (one server),
    #   Wq = C / (mu - lam_b) * (ca2 + cs2) / 2 = 0.025 / (1000 - 25) * (1/4 + 0) / 2.
    soj = batch_queue_sojourn(rate=100.0, batch=4, batch_service=0.001, service_cv=0.0, replicas=1)
    fill = (4 - 1) / (2 * 100.0)
    wq = 0.025 / (1000 - 25) * (1 / 4) / 2
    assert soj.mean == pytest.approx(fill + wq + 0.001, rel=1e-12)
    assert soj.utilization == pytest.approx(25 * 0.001, rel=1e-12)
    # Lightly loaded: the batch fill dominates everything but the service itself.
    assert soj.mean - 0.001 == pytest.approx(fill, rel=1e-3)


def test_batching_fill_variance_includes_the_interarrival_spread() -> None:
    # lam = 1/s, b = 2: half the requests wait 0, half wait Exp(1): E[W] = 0.5, E[W^2] = 0.5*2,
    # Var = 1 - 0.25 = 0.75 = (b-1)(b+7)/12 for b = 2.
    # Batches: lam_b = 0.5, service 10 ms deterministic: a = 0.005 = C (one server),
    #   Wq = 0.005 / (100 - 0.5) * (1/2 + 0) / 2, the wait's law as the estimator's.
    soj = batch_queue_sojourn(rate=1.0, batch=2, batch_service=0.01, service_cv=0.0, replicas=1)
    wq = 0.005 / (100 - 0.5) * (1 / 2) / 2
    wait_var = waitlaw.moments(wq, waitlaw.decay(1.0, 0.01, 0.0, batch=2))[1]
    fill_var = (2 - 1) * (2 + 7) / 12 / 1.0**2
    assert soj.var == pytest.approx(fill_var + wait_var, rel=1e-9)


@pytest.mark.parametrize(
    ("rate", "batch", "service", "replicas", "rho"),
    [
        (1.0, 1, 1.0, 1, 1.0),  # exactly saturated: 1 * 1 / 1
        (3.0, 1, 1.0, 2, 1.5),  # overloaded pair: 3 * 1 / 2
        (40.0, 4, 0.1, 1, 1.0),  # batches: 40/4 * 0.1 / 1
    ],
)
def test_saturated_group_has_infinite_sojourn(
    rate: float, batch: int, service: float, replicas: int, rho: float
) -> None:
    soj = batch_queue_sojourn(
        rate=rate, batch=batch, batch_service=service, service_cv=1.0, replicas=replicas
    )
    assert soj.mean == math.inf
    assert soj.var == math.inf
    assert soj.utilization == pytest.approx(rho, rel=1e-12)


# --------------------------------------------------------------------------- transfer_seconds


def test_transfer_seconds_uses_kib_and_megabits() -> None:
    # 125 KB = 125 * 1024 * 8 bit = 1,024,000 bit over 8.192e6 bit/s = 0.125 s.
    assert transfer_seconds(125.0, 8.192, 0.0) == pytest.approx(0.125, rel=1e-12)
    # 200 KB over 100 Mbit/s with a 2 ms RTT: 200*1024*8 / 1e8 + 2/2 ms = 0.016384 + 0.001.
    assert transfer_seconds(200.0, 100.0, 2.0) == pytest.approx(
        200 * 1024 * 8 / 100e6 + 0.002 / 2, rel=1e-12
    )


def test_transfer_seconds_without_bandwidth_is_half_the_rtt() -> None:
    # No bandwidth limit: the size is irrelevant, only RTT/2 = 30/2 ms remains.
    assert transfer_seconds(1e6, None, 30.0) == pytest.approx(0.015, rel=1e-12)
    assert transfer_seconds(1e6, None, 0.0) == 0.0


# -------------------------------------------------------------------------------- quantile


def test_quantile_of_exponential_is_mean_times_log_hundred() -> None:
    # Exp with mean m (variance m^2): P(X > x) = exp(-x/m) = 0.01 -> x = m ln 100.
    assert quantile(2.0, 4.0, 0.99) == pytest.approx(2.0 * math.log(100), rel=1e-9)
    # Median: x = m ln 2.
    assert quantile(3.0, 9.0, 0.5) == pytest.approx(3.0 * math.log(2), rel=1e-9)


def test_quantile_of_erlang_two() -> None:
    # Gamma(shape 2, scale 1): mean 2, var 2, CDF 1 - e^-x (1 + x); at x = 3, q = 1 - 4 e^-3.
    assert quantile(2.0, 2.0, 1 - 4 * math.exp(-3)) == pytest.approx(3.0, rel=1e-9)


def test_quantile_without_variance_is_the_mean() -> None:
    assert quantile(0.25, 0.0, 0.99) == 0.25
    assert quantile(0.0, 0.0, 0.99) == 0.0


def test_quantile_of_infinite_moments_is_infinite() -> None:
    assert quantile(math.inf, math.inf, 0.99) == math.inf
    assert quantile(1.0, math.inf, 0.99) == math.inf


def test_quantile_tends_to_the_normal_for_large_shape() -> None:
    # mean 1000, var 1 -> shape 1e6: q99 ~ mean + z99 * sd with sd = 1.
    got = quantile(1000.0, 1.0, 0.99)
    assert (got - 1000.0) / 1.0 == pytest.approx(Z99, rel=0.01)


# ---------------------------------------------------------------------- shared_link_slowdown


def test_erlang_b_known_values() -> None:
    # B(c, a) = (a^c / c!) / sum_{k<=c} a^k / k!.
    assert erlang_b(0, 3.0) == 1.0
    assert erlang_b(1, 1.0) == pytest.approx(1 / 2, rel=1e-12)  # 1 / (1 + 1)
    assert erlang_b(2, 1.0) == pytest.approx(0.5 / 2.5, rel=1e-12)  # (1/2) / (1 + 1 + 1/2)


@pytest.mark.parametrize("rho", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_one_transfer_of_capacity_is_processor_sharing(rho: float) -> None:
    # M/G/1-PS: the mean sojourn of a job of size x is x / (1 - rho).
    assert shared_link_slowdown(rho, 1.0) == pytest.approx(1 / (1 - rho), rel=1e-12)


@pytest.mark.parametrize(("offered", "erlang"), [(1.0, 1 / 3), (1.5, 9 / 14)])
def test_two_transfers_of_capacity_is_mm2(offered: float, erlang: float) -> None:
    # M/M/2 (insensitive: the same for any size law): E[N] = a + C(2, a) rho / (1 - rho), and
    # the slowdown is E[N] / a. C(2, 1) = 1/3 and C(2, 1.5) = 9/14 (see erlang_c above), so at
    # rho = 0.5 the slowdown is (1 + 1/3) / 1 = 4/3 and at rho = 0.75 it is
    # (1.5 + 9/14 * 3) / 1.5 = 16/7.
    rho = offered / 2
    mean_in_flight = offered + erlang * rho / (1 - rho)
    assert shared_link_slowdown(rho, 2.0) == pytest.approx(mean_in_flight / offered, rel=1e-12)
    assert shared_link_slowdown(0.5, 2.0) == pytest.approx(4 / 3, rel=1e-12)
    assert shared_link_slowdown(0.75, 2.0) == pytest.approx(16 / 7, rel=1e-12)


def test_a_capacity_of_one_and_a_half_transfers() -> None:
    # c = 1.5, rho = 0.5: a = 0.75; the chain's weights are 1, a, then a * rho^(n-1) for n >= 2
    # (rate min(n, 1.5) = 1.5 beyond one). Z = 1 + 0.75 / (1 - 0.5) = 2.5 and
    # sum n w_n = 0.75 * sum_n n 0.5^(n-1) = 0.75 * 4 = 3, so E[N] = 1.2 and S = 1.2 / 0.75.
    assert shared_link_slowdown(0.5, 1.5) == pytest.approx(1.6, rel=1e-12)


@pytest.mark.parametrize(("rho", "servers"), [(0.3, 1.3), (0.8, 2.5), (0.95, 3.7), (0.6, 10.0)])
def test_slowdown_matches_the_chain_summed_term_by_term(rho: float, servers: float) -> None:
    # The birth-death chain with rates min(n, c), summed directly far into its tail.
    offered = rho * servers
    weight, total, in_flight = 1.0, 1.0, 0.0
    for n in range(1, 5000):
        weight *= offered / min(n, servers)
        total += weight
        in_flight += n * weight
    assert shared_link_slowdown(rho, servers) == pytest.approx(
        in_flight / total / offered, rel=1e-9)


def test_a_capacity_below_one_transfer_slows_even_a_lone_transfer() -> None:
    # C = 0.8 B: a lone transfer gets C, 1.25 times slower; then processor sharing at rate C.
    assert shared_link_slowdown(0.0, 0.8) == pytest.approx(1.25, rel=1e-12)
    assert shared_link_slowdown(0.5, 0.8) == pytest.approx(1.25 / 0.5, rel=1e-12)


def test_slowdown_limits() -> None:
    assert shared_link_slowdown(0.0, 3.0) == 1.0
    assert shared_link_slowdown(0.5, 1000.0) == pytest.approx(1.0, abs=1e-12)
    assert shared_link_slowdown(1.0, 2.0) == math.inf
    assert shared_link_slowdown(1.2, 1.0) == math.inf


def test_slowdown_grows_with_load_and_falls_with_capacity() -> None:
    rhos = [i / 20 for i in range(20)]
    for servers in (0.7, 1.0, 1.2, 2.0, 3.5, 8.0):
        values = [shared_link_slowdown(rho, servers) for rho in rhos]
        assert values == sorted(values)
    for rho in (0.2, 0.6, 0.9):
        values = [shared_link_slowdown(rho, c) for c in (1.0, 1.2, 2.0, 3.5, 8.0)]
        assert values == sorted(values, reverse=True)
