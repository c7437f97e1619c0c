"""End-to-end latency of a pipeline DAG: sums along edges, maxima where branches join.

NOTE: a request leaves a stage when the stage has served it, and a stage starts on a request
only when every input has arrived, so the latency is the sink's *completion time* ``C``:

    C(source) = 0,    C(v) = max over preds p of (C(p) + transfer(p, v))  +  sojourn(v).

Each stage sojourn and transfer is summarised by its mean, variance and third central moment
(its first three cumulants), assumed independent of the others, and every completion time is
carried as such a triple; a sum adds all three.
A maximum is where the pair is not enough: the largest *mean* of the branches (what a chain-wise
composition would take) underestimates it: two independent exponential branches of mean 20 ms
take 30 ms on average, not 20. So at a join the branches are taken as independent (shifted)
gamma variables with their moments, and the three moments of their maximum are integrated from
``P(max <= t) = prod_i F_i(t)`` (:func:`max_moments`); the sum downstream is again a triple,
and the percentile is read off the shifted gamma with the sink's moments (as for a chain,
:func:`circinus.estimate.queueing.quantile`). For the maximum of two exponentials of
mean 20 this gives a 99th percentile of 104.3 ms against the exact 105.9.

Branches that leave one stage share its completion time, which must not be counted as if each
branch had its own copy. Every join therefore splits at its *fork*, the nearest node all its
inputs descend through (its immediate dominator; :attr:`circinus.spec.index.PipelineIndex.
forks`): each input's moments minus the fork's are the independent part of that branch, their
maximum is integrated, and the fork's moments are added back. This is exact in the two moments
for series-parallel pipelines (given the gamma shapes); branches from different sources have no
fork and are independent outright.

Past their fork the branches are still not independent: every branch sees the same requests
(all sources of a request emit at its arrival), so a burst of arrivals lengthens the queues of
all of them at once. Given the stages' waits, the first stage of each branch contributes the
part of its wait's variance that the arrivals drive to a component *common* to all branches
(:func:`common_wait`), which is split off and added back like the fork's moments. For two
M/M/1 branches at 30-90 % load the mean of the maximum comes within 1 % of Nelson and
Tantawi's fork-join result (independence: 3-8 % high), and for two cv-0.1 stages at 75 % and
65 %, whose waits the arrivals drive almost alone, the mean is 1.8 % and the p95 0.6 % above
the simulator's (independence: 14.8 % and 4.7 %; tests/estimate/test_join_correlation.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import gammainc, gammaincinv, ndtr, ndtri

from circinus.estimate.queueing import gamma_fit, raw_to_central
from circinus.spec.index import PipelineIndex

Moments = tuple[float, float, float]
"""``(mean, variance, third central moment)`` of a time, in any unit used consistently."""

_TAIL = 1e-9  # probability left outside the integration range at either end
_GRID = 257  # integration points over the range where the maximum's CDF rises
_PROBS = np.concatenate([np.linspace(0.005, 0.995, 100), [1e-6, 1e-4, 1e-3, 0.999, 0.9999]])
"""Quantiles of each part added to the integration grid."""


def max_moments(parts: Sequence[Moments]) -> Moments:
    """Mean, variance and third central moment of the maximum of independent shifted gamma
    variables with these moments (:func:`circinus.estimate.queueing.gamma_fit`).

    A zero variance is a constant; an infinite moment gives ``(inf, inf, inf)``. Example:
    two exponentials of mean 20 (variance 400, third moment 16,000) have a maximum of mean 30,
    variance 500 and third moment 18,000 (an exponential of mean 10 plus one of mean 20).
    Memoised: a search meets the same branches under every choice for the stages after them.
    """
    return _max_moments(tuple((float(m), float(v), float(t)) for m, v, t in parts))


@functools.lru_cache(maxsize=1 << 16)
def _max_moments(parts: tuple[Moments, ...]) -> Moments:
    if not parts:
        return 0.0, 0.0, 0.0
    if any(not all(np.isfinite(x) for x in p) for p in parts):
        return np.inf, np.inf, np.inf
    if len(parts) == 1:
        return parts[0]
    fits = [(math.inf, 0.0, m) if v <= m * m * 1e-12 else (*gamma_fit(m, v, t),)
            for m, v, t in parts]
    sds = [math.sqrt(v) for _, v, _ in parts]
    quantiles = [_quantiles(f, p[0], sd) for f, p, sd in zip(fits, parts, sds, strict=True)]
    ends = np.array([float(q[0]) for q in quantiles])
    highs = np.array([float(q[1]) for q in quantiles])
    lo = float(ends.max())
    # A branch surely done by the time the slowest may start changes nothing.
    live = highs > lo
    first = int(np.argmax(ends))
    if not live.any() or (live.sum() == 1 and live[first]):
        return parts[int(np.argmax(highs))]
    hi = float(highs.max())
    # An even grid, refined at every live part's quantiles: a very skewed part (shape < 1)
    # rises steeply just after its start, where an even grid alone is too coarse.
    points = [np.linspace(lo, hi, _GRID)]
    for i in np.flatnonzero(live):
        points.append(quantiles[i][2:])
    t = np.unique(np.clip(np.concatenate(points), lo, hi))
    cdf = np.ones_like(t)
    for i in np.flatnonzero(live):
        cdf = cdf * _cdf(fits[i], parts[i][0], sds[i], t)
    tail = 1.0 - cdf
    # E[M^k] = lo^k + int_lo^hi k t^(k-1) P(M > t) dt, by the trapezoidal rule (P(M > t) is
    # ~1 at lo and ~0 at hi).
    dt = np.diff(t)
    raw = []
    for k in (1, 2, 3):
        f = k * t ** (k - 1) * tail
        raw.append(lo ** k + float(np.sum(0.5 * (f[1:] + f[:-1]) * dt)))
    mean, var, third = raw_to_central(*raw)
    return float(mean), float(max(var, 0.0)), float(third)


def _ppf(fit: tuple[float, float, float], mean: float, sd: float, q: float) -> float:
    """The ``q``-quantile of a fitted part (constant, normal or shifted gamma)."""
    shape, scale, shift = fit
    if math.isinf(shape):
        return mean + sd * float(ndtri(q)) if sd > 0 else mean
    return shift + scale * float(gammaincinv(shape, q))


_AT = np.concatenate([[_TAIL, 1.0 - _TAIL], _PROBS])
"""The probabilities :func:`_quantiles` gives a part's quantiles at."""


def _quantiles(fit: tuple[float, float, float], mean: float, sd: float) -> np.ndarray:
    """The quantiles of a fitted part (constant, normal or shifted gamma) at every
    probability of :data:`_AT`: where the integration range starts and ends, then the grid's
    refinement points (:data:`_PROBS`).

    NOTE: they are the standard law's quantiles (:func:`_standard`, by shape), shifted and
    scaled. Inverting the incomplete gamma function is most of the integral's cost, and a
    part recurs under many joins: a search combines each branch's options with every option
    of the others, and the link check estimates again only the branch whose link is slowed.
    """
    shape, scale, shift = fit
    if math.isinf(shape):
        return mean + sd * _standard(math.inf) if sd > 0 else np.full(len(_AT), mean)
    return shift + scale * _standard(shape)


@functools.lru_cache(maxsize=1 << 14)
def _standard(shape: float) -> np.ndarray:
    """The quantiles of the standard gamma of ``shape`` at :data:`_AT` (the standard normal's
    for ``inf``); read-only, shared by every call."""
    out = np.asarray(ndtri(_AT) if math.isinf(shape) else gammaincinv(shape, _AT), dtype=float)
    out.flags.writeable = False
    return out


def _cdf(fit: tuple[float, float, float], mean: float, sd: float,
         t: np.ndarray) -> np.ndarray:
    shape, scale, shift = fit
    if math.isinf(shape):
        if sd <= 0:
            return (t >= mean).astype(float)
        return np.asarray(ndtr((t - mean) / sd))
    return np.asarray(gammainc(shape, np.maximum(t - shift, 0.0) / scale))


Wait = tuple[Moments, float]
"""A stage's wait in its queue of batches and the part of its variability its arrivals drive
(:attr:`circinus.estimate.base.StageEstimate.wait_s`, ``arrival_share``)."""


def latency_moments(pipe: PipelineIndex, stages: Mapping[str, Moments],
                    edges: Mapping[tuple[str, str], Moments],
                    unwaited: frozenset[str] = frozenset(),
                    waits: Mapping[str, Wait] | None = None) -> Moments:
    """Moments of the end-to-end latency of ``pipe`` (see module note).

    ``stages`` holds each stage's sojourn, ``edges`` each ``(pred, stage)`` transfer (preds may
    be sources), ``waits`` each stage's wait (:data:`Wait`; without them the branches of a join
    are independent past their fork). Example: a chain sums them; two equal exponential
    branches from two sources into a free sink have the moments of their maximum. A sink
    without an operator is done when the last of its inputs is
    (:attr:`PipelineIndex.sink_inputs`). The nodes of ``unwaited`` (fed only by sources with
    their own rate, :meth:`PipelineIndex.unwaited`) make no request wait: a join takes their
    latest message as it is.
    """
    done: dict[str, Moments] = {src: (0.0, 0.0, 0.0) for src in pipe.source_kb}
    for stage in pipe.order:
        inputs: list[Moments] = []
        names: list[str] = []
        for pred in pipe.preds[stage]:
            if pred in unwaited and stage not in unwaited:
                continue
            (cm, cv, ct), (em, ev, et) = done[pred], edges[pred, stage]
            inputs.append((cm + em, cv + ev, ct + et))
            names.append(pred)
        fork = (pipe.forks.get(stage) if len(names) == len(pipe.preds[stage])
                else pipe.fork_of(tuple(names)))
        sm, sv, st = stages[stage]
        rm, rv, rt = _latest(pipe, inputs, names, fork, done, waits)
        done[stage] = (rm + sm, rv + sv, rt + st)
    ends = [e for e in pipe.ends if e not in unwaited]
    fork = (pipe.forks.get(pipe.sink) if len(ends) == len(pipe.ends)
            else pipe.fork_of(tuple(ends)))
    return _latest(pipe, [done[e] for e in ends], ends, fork, done, waits)


def _latest(pipe: PipelineIndex, inputs: Sequence[Moments], names: Sequence[str],
            fork: str | None, done: Mapping[str, Moments],
            waits: Mapping[str, Wait] | None) -> Moments:
    """Moments of the last of ``inputs`` (from the nodes ``names``) to arrive, all passing
    ``fork`` (``None``: none); with ``waits``, the branches' first stages' common wait
    (:func:`common_wait`) is shared by all of them like the part before the fork."""
    if len(inputs) == 1:
        return inputs[0]
    fm, fv, ft = (0.0, 0.0, 0.0) if fork is None else done[fork]
    if waits is not None:
        heads = [branch_head(pipe, name, fork) for name in names]
        _, shared_v, shared_t = common_wait([None if h is None else waits[h] for h in heads])
        fv, ft = fv + shared_v, ft + shared_t
    bm, bv, bt = max_moments([(m - fm, max(v - fv, 0.0), t - ft) for m, v, t in inputs])
    return fm + bm, fv + bv, ft + bt


def branch_head(pipe: PipelineIndex, pred: str, fork: str | None) -> str | None:
    """The first stage of the branch that enters a join from ``pred``: the stage after
    ``fork`` (or after a source, when the join has no fork) on the way back from ``pred``
    along first predecessors; ``None`` when ``pred`` is the fork or a source (no stage)."""
    node = pred
    if node == fork or node in pipe.source_kb:
        return None
    while True:
        before = pipe.preds[node]
        if fork in before or any(p in pipe.source_kb for p in before):
            return node
        node = before[0]


def common_wait(heads: Sequence[Wait | None]) -> Moments:
    """The part of the branches' times that their first stages' waits have in common, as
    moments ``(0, variance, third)`` of a component added to every branch (module note).

    Stages fed by the same arrivals wait together: a burst lengthens every queue it reaches.
    In heavy traffic a queue's workload follows the arrivals' noise plus its own service noise,
    so two such waits would be correlated by ``sqrt(a_i a_j)``, ``a`` the part of each wait's
    variability the arrivals drive (``c_A^2 / (c_A^2 + c_S^2)``); away from heavy traffic the
    waits are often zero and correlate less, and ``r = a_i a_j`` matches both ends checked
    (Nelson and Tantawi's M/M/1 fork-join, where the square root is 6-7 % low, and the
    simulator's low-variance branches, where ``a`` is near 1), giving a covariance
    ``r sd_i sd_j``. One component common to every branch carries the smallest pairwise
    covariance (and no more than any branch's wait variance), with a third moment scaled down
    from the branches' waits; the branches are independent beyond it. Example: two M/M/1
    queues at half load fed by one Poisson stream, each wait of variance 3 and ``a = 1/2``,
    share a component of variance 0.75.
    """
    if len(heads) < 2 or any(h is None for h in heads):
        return 0.0, 0.0, 0.0
    parts = [h for h in heads if h is not None]
    common = math.inf
    for i, ((_, vi, _), ai) in enumerate(parts):
        for (_, vj, _), aj in parts[i + 1:]:
            if not (math.isfinite(vi) and math.isfinite(vj)):
                return 0.0, 0.0, 0.0
            common = min(common, ai * aj * math.sqrt(vi * vj), vi, vj)
    if not common > 0.0:
        return 0.0, 0.0, 0.0
    third = min(t * (common / v) ** 1.5 for (_, v, t), _ in parts)
    return 0.0, common, max(third, 0.0)
