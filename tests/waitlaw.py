"""The law of a queue's wait the estimator takes, computed independently for the tests: "none,
or exponential" with mean ``Wq``, the exponential decaying at the Cramer-Lundberg rate of the
GI/G/1 queue (the root ``g > 0`` of ``E[e^(g S)] E[e^(-g A)] = 1``), found by bisection."""

from __future__ import annotations

import math


def decay(lam: float, service: float, cv: float, batch: int = 1) -> float:
    """The decay rate, 1/s, of one server taking batches of ``batch`` Poisson(``lam``)
    requests in a gamma time of mean ``service`` and coefficient of variation ``cv``."""

    def gap(g: float) -> float:
        mgf = g * service if cv == 0 else -math.log(1 - g * service * cv * cv) / (cv * cv)
        return mgf - batch * math.log(1 + g / lam)

    hi = 1.0 / service
    while gap(hi) < 0:
        hi *= 2 if cv == 0 else 1.0
        if cv > 0:
            hi = (hi + 1 / (service * cv * cv)) / 2
    lo = 1e-12
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) < 0 else (lo, mid)
    return (lo + hi) / 2


def moments(wq: float, rate: float) -> tuple[float, float, float]:
    """Mean, variance and third central moment of the wait: 0 w.p. ``1 - p``, else
    exponential of ``rate``, with ``p = min(1, wq * rate)`` (and mean ``wq``)."""
    p = min(1.0, wq * rate)
    theta = wq / p
    m2, m3 = p * 2 * theta**2, p * 6 * theta**3
    return wq, m2 - wq * wq, m3 - 3 * wq * m2 + 2 * wq**3


def mg1(lam: float, service: float, cv: float) -> tuple[float, float, float]:
    """Mean, variance and third central moment of the wait at one server fed single Poisson
    requests (M/G/1) with gamma service: Takacs's first three moments of the wait, written
    out (the law the estimator takes there)."""
    rho = lam * service
    e2 = service**2 * (1 + cv**2)
    e3 = e2 * service * (1 + 2 * cv**2)
    e4 = e3 * service * (1 + 3 * cv**2)
    w1 = lam * e2 / (2 * (1 - rho))
    w2 = 2 * w1**2 + lam * e3 / (3 * (1 - rho))
    w3 = lam / (1 - rho) * (1.5 * e2 * w2 + e3 * w1 + e4 / 4)
    return w1, w2 - w1**2, w3 - 3 * w1 * w2 + 2 * w1**3
