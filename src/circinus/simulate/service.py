"""Service times of one replica group: the profile's mean and variability, drawn from a gamma.

NOTE: a batch's service time is gamma-distributed with the profiled mean (``batch_ms[b]``, or
``mean_ms`` for a batch of one) times the query's ``work_scale`` for the stage, and the profile's
coefficient of variation. The gamma is the natural positive, right-skewed law fixed by a mean
and a cv: cv = 1 is the exponential (M/M/c), cv = 0 a constant (M/D/c). The cv is read from
``p90_ms`` when given, by the normal fit the world format states.
"""

from __future__ import annotations

import numpy as np

from circinus.spec.models import LatencyProfile

Z90 = 1.2815515655446004
"""The standard normal distribution's 90th percentile."""


def profile_cv(profile: LatencyProfile) -> float:
    """Coefficient of variation of a profile's service time.

    With ``p90_ms`` it is ``(p90 - mean) / (1.2816 * mean)``, floored at 0; otherwise the
    profile's ``cv``. Example: mean 40 ms, p90 48 ms -> cv 0.156.
    """
    if profile.p90_ms is None:
        return profile.cv
    return max(0.0, profile.p90_ms - profile.mean_ms) / (Z90 * profile.mean_ms)


def batch_mean_ms(profile: LatencyProfile, batch: int) -> float | None:
    """Mean service time of a batch of ``batch`` requests, ms; ``None`` when not profiled."""
    if batch == 1:
        return profile.mean_ms
    return profile.batch_ms.get(batch)


def draw_service(rng: np.random.Generator, n: int, mean_s: float, cv: float) -> np.ndarray:
    """``n`` service times, seconds: gamma with mean ``mean_s`` and coefficient of variation
    ``cv`` (shape ``1/cv^2``, scale ``mean * cv^2``); ``cv == 0`` gives the constant ``mean_s``.

    Example: ``cv=1`` draws exponentials, whose standard deviation equals their mean.
    """
    if cv <= 0.0:
        return np.full(n, mean_s)
    shape = 1.0 / (cv * cv)
    return rng.gamma(shape, mean_s / shape, size=n)
