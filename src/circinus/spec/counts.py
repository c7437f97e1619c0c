"""The law of a fan-out's object count, as the world format defines it (``FanOut``).

NOTE: a fan-out gives the mean ``m`` and the coefficient of variation ``cv`` of the number of
objects ``k`` one request becomes (what published detector figures give: objects per image and
their spread), so the format fixes one law per pair, the same for the estimator and the
simulator. With the variance ``v = (cv m)^2``:

* ``v >= m``: the negative binomial of mean ``m`` and variance ``v`` (counts of objects in
  natural images are over-dispersed; ``v = m`` is the Poisson);
* ``v < m``: the mix, with weight ``w = (m - v) / (m - v0)``, of the two integers around ``m``
  (``floor(m)`` and ``floor(m) + 1``, with the mean ``m``: the least variance ``v0 =
  f (1 - f)`` a count of mean ``m`` can have, ``f`` the fractional part) and of the Poisson of
  mean ``m``; a ``v`` below ``v0`` is raised to it (``cv 0`` with ``m = 2.5``: 2 or 3, half each).

Example: ``m = 7.7, cv = 0.8`` is a negative binomial of variance 37.9; ``m = 3, cv = 0`` is 3.
"""

from __future__ import annotations

import math

import numpy as np

TAIL = 1e-9
"""Probability left out at the top of a count's support (the rest is renormalised)."""
MAX_POINTS = 400
"""Most distinct counts :func:`count_pmf` returns; beyond it, neighbouring counts are pooled."""


def _parts(mean: float, cv: float) -> tuple[str, float, float]:
    """``(family, a, b)``: ``("nbinom", r, p)``, ``("poisson", m, 0)`` or ``("mix", w, 0)``."""
    var = (cv * mean) ** 2
    if mean <= 0:
        return "mix", 1.0, 0.0
    if var > mean * (1 + 1e-12):
        r = mean * mean / (var - mean)
        return "nbinom", r, r / (r + mean)
    if var >= mean * (1 - 1e-12):
        return "poisson", mean, 0.0
    frac = mean - math.floor(mean)
    least = frac * (1 - frac)
    weight = 1.0 if var <= least else (mean - var) / (mean - least)
    return "mix", weight, 0.0


def count_pmf(mean: float, cv: float) -> tuple[np.ndarray, np.ndarray]:
    """The counts ``k`` and their probabilities (summing to 1), for a fan-out of ``mean`` and
    ``cv`` (module note); at most :data:`MAX_POINTS` of them, a pool of neighbouring counts
    represented by its probability-weighted mean count, rounded."""
    family, a, b = _parts(mean, cv)
    base = math.floor(mean)
    frac = mean - base
    if family == "mix" and a >= 1.0:
        ks = np.array([base, base + 1], dtype=np.int64)
        ps = np.array([1 - frac, frac])
    else:
        from scipy import stats  # (here: a third of a second of every command's start)

        law = stats.nbinom(a, b) if family == "nbinom" else stats.poisson(mean)
        top = int(law.ppf(1 - TAIL)) + 1
        ks = np.arange(0, max(top, base + 2) + 1, dtype=np.int64)
        ps = np.asarray(law.pmf(ks), dtype=float)
        if family == "mix":
            two = np.zeros(len(ks))
            two[base] += 1 - frac
            two[base + 1] += frac
            ps = a * two + (1 - a) * ps
    keep = ps > 0
    ks, ps = ks[keep], ps[keep] / ps[keep].sum()
    if len(ks) > MAX_POINTS:
        edges = np.searchsorted(np.cumsum(ps), np.linspace(0, 1, MAX_POINTS + 1)[1:-1])
        pooled_k, pooled_p = [], []
        for part_k, part_p in zip(np.split(ks, edges), np.split(ps, edges), strict=True):
            if len(part_k):
                pooled_p.append(part_p.sum())
                pooled_k.append(round(float(np.dot(part_k, part_p) / part_p.sum())))
        ks, ps = np.array(pooled_k, dtype=np.int64), np.array(pooled_p)
    return ks, ps


def draw_counts(rng: np.random.Generator, mean: float, cv: float, n: int) -> np.ndarray:
    """``n`` independent counts of the fan-out's law (module note), as integers."""
    family, a, b = _parts(mean, cv)
    if family == "nbinom":
        return np.asarray(rng.negative_binomial(a, b, size=n), dtype=np.int64)
    if family == "poisson":
        return np.asarray(rng.poisson(mean, size=n), dtype=np.int64)
    base = math.floor(mean)
    two = base + (rng.random(n) < mean - base)
    if a >= 1.0:
        return np.asarray(two, dtype=np.int64)
    poisson = rng.poisson(mean, size=n)
    return np.asarray(np.where(rng.random(n) < a, two, poisson), dtype=np.int64)
