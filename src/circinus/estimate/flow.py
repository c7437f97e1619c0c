"""Pipelines whose requests fan out into objects or take branches: rates and latency.

NOTE: two features make a request's way through a pipeline random (docs/world-format.md,
"Fan-out" and "Branches"):

* a **branch** point sends each request along one of its listed edges with its probability
  (or along none of them with the rest). The *outcomes* (a choice at every branch point) are
  enumerated with their probabilities (:attr:`~circinus.spec.index.PipelineIndex.outcomes`);
  a stage is visited with the probability of the outcomes that visit it, so its rate is the
  query's times that (:func:`flow_of`), and the latency is the **mixture** of the outcomes'
  latencies, each composed over the stages and edges that outcome takes
  (:func:`outcome_moments`, sums along edges and maxima at joins as in
  :mod:`circinus.estimate.join`).
* a **fan-out** stage ``F`` turns each request into ``k`` objects, ``k`` drawn from the law of
  its configuration (:mod:`circinus.spec.counts`); the stage after it, ``D``, serves them as
  ``k`` sub-requests that arrive together (a burst), and so do the stages after ``D``, one
  sub-request per object. Stages after ``F`` run ``E[k]`` times as often as a request arrives.
  The request completes when its last object is done, so, conditioning on ``k``, its latency
  is ``C(F) + Y_k`` where ``C(F)`` is ``F``'s completion time and ``Y_k`` = the transfer to
  ``D`` + the completion of a burst of ``k`` at ``D`` (:meth:`~circinus.estimate.base.
  BaseEstimator.burst`: the burst waits behind the work queued before it, then its ``k``
  sub-requests are served on the replicas in parallel, in rounds of batches) + the maximum of
  ``k`` independent copies of the time from ``D`` to the sink (``0`` when ``D`` is the sink);
  ``Y_0 = 0``: a request without objects is done when ``F`` is. The latency is the mixture
  over ``k`` of these sums.

The percentile is read off the mixture itself (each component a shifted gamma with its three
moments, :func:`mixture_quantile`), not off one gamma of the mixture's moments: a rare slow
branch or a rare large burst puts the tail in one component. Worked example: a branch taken
one time in ten that adds 200 ms to a 50 ms pipeline (constant times) has p95 250 ms; the
shifted gamma of the mixture's three moments would read 191 ms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc, ndtr

from circinus.estimate.join import Moments, _cdf, _ppf, max_moments
from circinus.estimate.queueing import gamma_fit, mixture
from circinus.spec.counts import count_pmf
from circinus.spec.index import ConfigKey, OperatorIndex, Outcome, PipelineIndex
from circinus.spec.models import MIN_RATE_RPS, Query

_ZERO: Moments = (0.0, 0.0, 0.0)
_GRID = 2049  # integration points of the maximum of k copies


@dataclass(frozen=True)
class Flow:
    """How often a request visits each stage and crosses each edge, for one configuration
    vector of a pipeline."""

    stage: dict[str, float]
    """Sub-requests per request at each stage (branch probability x objects)."""
    edge: dict[tuple[str, str], float]
    """Messages per request on each edge ``(from, to)`` (``from`` may be a source)."""
    counts: tuple[np.ndarray, np.ndarray] | None
    """The fan-out's counts ``k`` and their probabilities; ``None`` without fan-out."""
    k_mean: float = 1.0
    k_square: float = 1.0
    """``E[k^2]`` of the fan-out's count."""


def flow_of(pipe: PipelineIndex, operators: Mapping[str, OperatorIndex],
            configs: Mapping[str, ConfigKey]) -> Flow:
    """The visits of each stage and edge of ``pipe`` with stage configurations ``configs``.

    Example: a branch point sending 30 % of requests to ``ocr`` gives ``ocr`` 0.3; a detector
    with a fan-out of mean 7.7 gives the stage after it 7.7.
    """
    if pipe.fanout_stage is None:
        stage, edge = pipe.visits()
        return Flow(stage, edge, None)
    k_mean, cv = operators[pipe.operator_of[pipe.fanout_stage]].fanout[
        configs[pipe.fanout_stage]]
    stage, edge = pipe.visits(k_mean)
    ks, ps = count_pmf(k_mean, cv)
    k_square = float(np.dot(ps, ks.astype(float) ** 2))
    return Flow(stage, edge, (ks, ps), k_mean, k_square)


def at_rate(query: Query, visits: float) -> Query:
    """``query`` as seen by a stage or edge visited ``visits`` times per request: its rate
    times ``visits`` (at least the format's least rate, so that a stage no request reaches
    is still sized as the least loaded one). The same object when ``visits`` is 1."""
    if visits == 1.0:
        return query
    return query.model_copy(update={"rate_rps": max(query.rate_rps * visits, MIN_RATE_RPS)})


def stage_rates(pipe: PipelineIndex, operators: Mapping[str, OperatorIndex], query: Query,
                configs: Mapping[str, ConfigKey]) -> dict[str, float]:
    """Requests per second each stage of ``pipe`` serves for ``query`` with stage
    configurations ``configs``, as the estimator sizes it: the stage's rate
    (:meth:`~circinus.spec.index.PipelineIndex.rate`: the query's, or its source's own) times
    its visits per request (:func:`flow_of`), at least the format's least rate.

    Example: 4 req/s into a detector of 4.7 objects per frame give its classifier 18.8.
    """
    visits = flow_of(pipe, operators, configs).stage
    return {s: pipe.rate(at_rate(query, visits[s]), s) for s in pipe.order}


def least_stage_rates(pipe: PipelineIndex, operators: Mapping[str, OperatorIndex],
                      query: Query) -> dict[str, float]:
    """Per stage of ``pipe``, the least of its :func:`stage_rates` over the configurations of
    the fan-out stage (the only ones its rates depend on): what every plan of ``query`` must
    serve there."""
    fan = pipe.fanout_stage
    if fan is None:
        return stage_rates(pipe, operators, query, {})
    each = [stage_rates(pipe, operators, query, {fan: c})
            for c in operators[pipe.operator_of[fan]].configs]
    return {s: min(r[s] for r in each) for s in pipe.order}


def outcome_moments(pipe: PipelineIndex, outcome: Outcome, stages: Mapping[str, Moments],
                    edges: Mapping[tuple[str, str], Moments], start: Mapping[str, Moments],
                    end: str) -> Moments:
    """Moments of the completion time of ``end`` in one outcome: as
    :func:`~circinus.estimate.join.latency_moments` over the stages the outcome visits and
    the edges it takes, from the nodes of ``start`` (their completion times given)."""
    done: dict[str, Moments] = dict(start)
    for stage in pipe.order:
        if stage not in outcome.stages or stage in start:
            continue
        inputs = []
        for pred in pipe.preds[stage]:
            if (pred, stage) not in outcome.edges:
                continue
            (cm, cv, ct), (em, ev, et) = done[pred], edges[pred, stage]
            inputs.append((cm + em, cv + ev, ct + et))
        if len(inputs) == 1:
            ready = inputs[0]
        else:
            fork = pipe.forks.get(stage)
            fm, fv, ft = done.get(fork, _ZERO) if fork is not None else _ZERO
            bm, bv, bt = max_moments([(m - fm, max(v - fv, 0.0), t - ft)
                                      for m, v, t in inputs])
            ready = (fm + bm, fv + bv, ft + bt)
        sm, sv, st = stages[stage]
        done[stage] = (ready[0] + sm, ready[1] + sv, ready[2] + st)
        if stage == end:
            break
    return done[end]


Burst = Callable[[np.ndarray], list[Moments]]
"""For each count ``k`` of an array, the moments of the completion time of a burst of ``k``
sub-requests at the stage after the fan-out, from their arrival there."""


def flow_components(pipe: PipelineIndex, flow: Flow, stages: Mapping[str, Moments],
                    edges: Mapping[tuple[str, str], Moments],
                    burst: Burst | None) -> list[tuple[float, Moments]]:
    """The end-to-end latency as a mixture: ``(probability, moments)`` per component (module
    note): one per outcome without fan-out; with it, one per count ``k`` (the outcomes before
    the fan-out stage mixed into its completion time)."""
    sources = {s: _ZERO for s in pipe.source_kb}
    if pipe.fanout_stage is None:
        return [(oc.prob, outcome_moments(pipe, oc, stages, edges, sources, pipe.sink))
                for oc in pipe.outcomes]
    assert flow.counts is not None and burst is not None
    fan = pipe.fanout_stage
    before = mixture([(oc.prob, outcome_moments(pipe, oc, stages, edges, sources, fan))
                      for oc in pipe.outcomes])
    (first,) = [s for s in pipe.order if fan in pipe.preds[s]]
    ks, ps = flow.counts
    bursts = burst(ks)
    hop = edges[fan, first]
    # After the first stage, per object: the time from its completion there to the sink's.
    rest: list[tuple[float, Moments]] = []
    if first != pipe.sink:
        local = dict(stages)
        local[first] = _ZERO
        for oc in pipe.object_outcomes:
            rest.append((oc.prob, outcome_moments(pipe, oc, local, edges, {first: _ZERO},
                                                  pipe.sink)))
    tails = max_iid_moments(rest, ks) if rest else None
    out: list[tuple[float, Moments]] = []
    for i, (k, p) in enumerate(zip(ks.tolist(), ps.tolist(), strict=True)):
        if p <= 0:
            continue
        if k == 0:
            out.append((p, before))
            continue
        parts = [before, hop, bursts[i]]
        if tails is not None:
            parts.append((float(tails[i, 0]), float(tails[i, 1]), float(tails[i, 2])))
        out.append((p, (sum(x[0] for x in parts), sum(x[1] for x in parts),
                        sum(x[2] for x in parts))))
    return out


def max_iid_moments(parts: Sequence[tuple[float, Moments]], ks: np.ndarray) -> np.ndarray:
    """Mean, variance and third central moment of the maximum of ``k`` independent copies of
    the mixture ``parts`` (each a shifted gamma with its moments), for every ``k`` of ``ks``
    (rows; ``k = 0`` gives zeros). Example: for the exponential of mean 1, ``k = 2`` gives mean
    1.5, variance 1.25."""
    out = np.zeros((len(ks), 3))
    if any(not all(math.isfinite(x) for x in m) for _, m in parts):
        out[ks > 0] = np.inf
        return out
    fits = [(math.inf, 0.0, m[0]) if m[1] <= m[0] * m[0] * 1e-12 else gamma_fit(*m)
            for _, m in parts]
    sds = [math.sqrt(m[1]) for _, m in parts]
    kmax = max(int(ks.max()), 1)
    lo = min(_ppf(f, m[0], sd, 1e-12) for f, (_, m), sd in zip(fits, parts, sds, strict=True))
    hi = max(_ppf(f, m[0], sd, 1 - 1e-9 / kmax)
             for f, (_, m), sd in zip(fits, parts, sds, strict=True))
    if hi <= lo:
        for i, k in enumerate(ks.tolist()):
            out[i] = (lo, 0.0, 0.0) if k > 0 else (0.0, 0.0, 0.0)
        return out
    t = np.linspace(lo, hi, _GRID)
    cdf = np.zeros_like(t)
    for (w, m), f, sd in zip(parts, fits, sds, strict=True):
        cdf += w * _cdf(f, m[0], sd, t)
    cdf = np.clip(cdf, 0.0, 1.0)
    live = ks > 0
    # E[M^j] = lo^j + int_lo^hi j t^(j-1) P(M > t) dt, P(M > t) = 1 - G(t)^k, every k at once.
    tail = 1.0 - cdf[None, :] ** ks[live].astype(float)[:, None]
    r1, r2, r3 = (lo ** j + np.trapezoid(j * t ** (j - 1) * tail, t, axis=1) for j in (1, 2, 3))
    out[live, 0] = r1
    out[live, 1] = np.maximum(r2 - r1 * r1, 0.0)
    out[live, 2] = r3 - 3 * r1 * r2 + 2 * r1 ** 3
    return out


def mixture_quantile(parts: Sequence[tuple[float, Moments]], q: float) -> float:
    """The ``q``-quantile of the mixture of shifted gammas with these weights and moments
    (:func:`~circinus.estimate.queueing.gamma_fit`; a normal where the shape is unbounded, a
    constant without variance), by bisection on the mixture's CDF."""
    live = [(w, m) for w, m in parts if w > 0]
    if not live or any(not all(math.isfinite(x) for x in m) for _, m in live):
        return math.inf
    fits = [(math.inf, 0.0, m[0]) if m[1] <= m[0] * m[0] * 1e-12 else gamma_fit(*m)
            for _, m in live]
    sds = [math.sqrt(m[1]) for _, m in live]
    weight = np.array([w for w, _ in live]) / sum(w for w, _ in live)
    shape = np.array([f[0] for f in fits])
    gam = np.isfinite(shape)
    g_shape, g_w = shape[gam], weight[gam]
    g_scale = np.array([f[1] for f in fits])[gam]
    g_shift = np.array([f[2] for f in fits])[gam]
    n_mean = np.array([m[0] for _, m in live])[~gam]
    n_sd = np.array(sds)[~gam]
    n_w = weight[~gam]

    def cdf(t: float) -> float:
        acc = float(np.dot(g_w, gammainc(g_shape, np.maximum(t - g_shift, 0.0) / g_scale)))
        if len(n_w):
            spread = n_sd > 0
            at = np.where(spread, ndtr((t - n_mean) / np.where(spread, n_sd, 1.0)),
                          (t >= n_mean).astype(float))
            acc += float(np.dot(n_w, at))
        return acc

    lo = min(_ppf(f, m[0], sd, 1e-9) for f, (_, m), sd in zip(fits, live, sds, strict=True))
    hi = max(_ppf(f, m[0], sd, 1 - 1e-9) for f, (_, m), sd in zip(fits, live, sds, strict=True))
    if hi <= lo:
        return max(0.0, lo)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if cdf(mid) < q:
            lo = mid
        else:
            hi = mid
    return max(0.0, 0.5 * (lo + hi))
