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
