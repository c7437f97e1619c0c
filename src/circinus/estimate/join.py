"""End-to-end latency of a pipeline DAG: sums along edges, maxima where branches join.

NOTE: a request leaves a stage when the stage has served it, and a stage starts on a request
only when every input has arrived, so the latency is the sink's *completion time* ``C``:

    C(source) = 0,    C(v) = max over preds p of (C(p) + transfer(p, v))  +  sojourn(v).

Each stage sojourn and transfer is summarised by its mean and variance, assumed independent of
the others, and every completion time is carried as a (mean, variance) pair; a sum adds both.
A maximum is where the pair is not enough: the largest *mean* of the branches (what a chain-wise
composition would take) underestimates it: two independent exponential branches of mean 20 ms
take 30 ms on average, not 20. So at a join the branches are taken as independent gamma
variables with their moments, and the mean and variance of their maximum are integrated from
``P(max <= t) = prod_i F_i(t)`` (:func:`max_moments`); the sum downstream is again a
(mean, variance) pair, and the percentile is read off a gamma with the sink's moments (as for a
chain, :func:`circinus.estimate.queueing.quantile`). For the maximum of two exponentials of
mean 20 this gives a 99th percentile of 104.3 ms against the exact 105.9.

Branches that leave one stage share its completion time, which must not be counted as if each
branch had its own copy. Every join therefore splits at its *fork*, the nearest node all its
inputs descend through (its immediate dominator; :attr:`circinus.spec.index.PipelineIndex.
forks`): each input's moments minus the fork's are the independent part of that branch, their
maximum is integrated, and the fork's moments are added back. This is exact in the two moments
for series-parallel pipelines (given the gamma shapes); branches from different sources have no
fork and are independent outright.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import gammainc, gammaincinv

from circinus.spec.index import PipelineIndex

Moments = tuple[float, float]
"""``(mean, variance)`` of a time, in any unit used consistently."""

_TAIL = 1e-9  # probability left outside the integration range at either end
_GRID = 257  # integration points over the range where the maximum's CDF rises


def max_moments(parts: Sequence[Moments]) -> Moments:
    """Mean and variance of the maximum of independent gamma variables with these moments.

    A zero variance is a constant; an infinite mean or variance gives ``(inf, inf)``. Example:
    two exponentials of mean 20 (variance 400) have a maximum of mean 30 and variance 500.
    Memoised: a search meets the same branches under every choice for the stages after them.
    """
    return _max_moments(tuple((float(m), float(v)) for m, v in parts))


@functools.lru_cache(maxsize=1 << 16)
def _max_moments(parts: tuple[Moments, ...]) -> Moments:
    if not parts:
        return 0.0, 0.0
    if any(not (np.isfinite(m) and np.isfinite(v)) for m, v in parts):
        return np.inf, np.inf
    if len(parts) == 1:
        return parts[0]
    m = np.array([p[0] for p in parts], dtype=float)
    v = np.array([p[1] for p in parts], dtype=float)
    fixed = v <= m * m * 1e-12  # constants
    shape = np.where(fixed, 1.0, m * m / np.where(fixed, 1.0, v))
    scale = np.where(fixed, 0.0, v / np.where(fixed, 1.0, m))
    ends = gammaincinv(shape[:, None], np.array([_TAIL, 1.0 - _TAIL])) * scale[:, None]
    ends[fixed] = m[fixed, None]
    lo = float(ends[:, 0].max())
    # A branch surely done by the time the slowest may start changes nothing.
    live = ends[:, 1] > lo
    first = int(np.argmax(ends[:, 0]))
    if not live.any() or (live.sum() == 1 and live[first]):
        return parts[int(np.argmax(ends[:, 1]))]
    t, h = np.linspace(lo, float(ends[:, 1].max()), _GRID, retstep=True)
    cdf = np.where(fixed[live, None], t >= m[live, None],
                   gammainc(shape[live, None], t / np.where(fixed, 1.0, scale)[live, None]))
    tail = 1.0 - cdf.prod(axis=0)
    # E[M] = lo + int_lo^hi P(M > t) dt and E[M^2] = lo^2 + int_lo^hi 2t P(M > t) dt, by
    # the trapezoidal rule (P(M > t) is ~1 at lo and ~0 at hi).
    mean = lo + h * (float(tail.sum()) - 0.5 * (tail[0] + tail[-1]))
    moment = 2.0 * t * tail
    second = lo * lo + h * (float(moment.sum()) - 0.5 * (moment[0] + moment[-1]))
    return float(mean), float(max(second - mean * mean, 0.0))


def latency_moments(pipe: PipelineIndex, stages: Mapping[str, Moments],
                    edges: Mapping[tuple[str, str], Moments]) -> Moments:
    """Moments of the end-to-end latency of ``pipe`` (see module note).

    ``stages`` holds each stage's sojourn, ``edges`` each ``(pred, stage)`` transfer (preds may
    be sources). Example: a chain sums them; two equal exponential branches from two sources
    into a free sink have the moments of their maximum.
    """
    done: dict[str, Moments] = {src: (0.0, 0.0) for src in pipe.source_kb}
    for stage in pipe.order:
        inputs = []
        for pred in pipe.preds[stage]:
            (cm, cv), (em, ev) = done[pred], edges[pred, stage]
            inputs.append((cm + em, cv + ev))
        if len(inputs) == 1:
            ready = inputs[0]
        else:
            fork = pipe.forks.get(stage)
            fm, fv = (0.0, 0.0) if fork is None else done[fork]
            bm, bv = max_moments([(m - fm, max(v - fv, 0.0)) for m, v in inputs])
            ready = (fm + bm, fv + bv)
        sm, sv = stages[stage]
        done[stage] = (ready[0] + sm, ready[1] + sv)
    return done[pipe.sink]
