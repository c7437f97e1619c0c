"""Calibration: what serving adds to every stage call, as the world's ``runtime`` section.

``circinus calibrate`` measures it one of two ways. The *probe* (the default) serves the plan's
deployments and routes with every operator replaced by one that does nothing, so that what a
request takes is the engine's own overhead (handle calls, serialisation, batching and the
ingress): :func:`overhead_of`. ``--served`` serves the plan itself (or reads what ``circinus
serve --json`` measured of it, ``--from``) and takes what its requests took beyond the plan's
prediction: :func:`residual_of`.

NOTE (the fit): a request of a pipeline of ``k`` stages makes ``k`` stage calls, and the
estimator adds ``k`` times the per-call mean and variance to what it predicts of the operators
and links (``(m0, v0)``, and a third moment the overhead adds nothing to), then reads the
latency at the SLO percentile off the (shifted) gamma of the total moments. The figures are
fitted to what that rule must reproduce, per query: the mean call overhead that gives the
measured mean, ``(mean - m0) / k``, and the variance per call that puts the rule's quantile at
the query's SLO percentile on the measured one. The variance is fitted to the tail rather than
taken from the sample variance, because the engine's overhead is skewed beyond a gamma: a few
calls that wait for a busy core inflate the sample variance, and a gamma with that variance
still falls short of the measured 95th percentile (served digits: mean 26 ms, p95 42 ms; the
moments' gamma gave 29 ms). The per-query figures are pooled by their weighted median
(weights: answered requests), so that half the queries are predicted above what they measured
and half below.

NOTE (several runs): a query's latency at its SLO percentile, read off one run, carries the
sampling error of a high quantile, about ``1.45 / sqrt(n)`` of it for an exponential tail (250
requests: 9 %), and a run as a whole can be slower than the next (served digits on 2 cores,
nothing else running: the same plan's queries 11.7 % above their predictions in one run, 20.7 %
in another). The served fit therefore takes any number of runs of the same plan, each query of
each run one figure in the weighted median: two runs halve the weight any one of them has.
The runs may be of different plans (each with the figures it was planned and served with):
their queries then call the tiers in other proportions, which is what tells the tiers apart.

NOTE (per tier): each query's calls are counted per tier of the called replica's site (a stage
split over several deployments counts its shares), and the figures of the tiers are fitted
jointly: the per-call excess of each query (its mean, and its variance as above, per call) is
the mix of the tiers' figures by its calls' shares, and the tiers' figures minimise the sum of
|excess - mix| weighted by answered requests, each figure >= 0 (a linear programme). It is the
multi-tier form of the weighted median above, and with one tier it is that median, so a world
served on one tier gets the world-wide figure for that tier: robust to a query or a run that
measured far off, as the median is, where least squares would follow it. A tier is fitted only
when the queries call the tiers in proportions that tell them apart (the shares of the runs'
queries span the tiers); else, and for a tier no query calls, no figure of its own is written
and the tier keeps the world-wide figure, which stays the weighted median over all queries.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from circinus.errors import SpecError
from circinus.estimate.queueing import quantile
from circinus.runtime.results import Record, ServeResult
from circinus.spec.models import HopFigures, RuntimeSettings, TierFigures

if TYPE_CHECKING:
    from circinus.plan.file import PlanFile

IDENTITY = "circinus.runtime.probe:identity"
"""Implementation every operator of the probe runs."""


def identity(config: dict[str, Any]) -> Any:
    """An operator that answers its inputs unchanged, whatever its knobs."""
    return lambda batch: list(batch)


@dataclass(frozen=True)
class Observed:
    """What one query's answered requests took: their count, mean and the latency at the
    query's SLO ``percentile`` (ms)."""

    requests: int
    mean_ms: float
    at_percentile_ms: float
    percentile: float


def observed_of(records: Sequence[Record], percentiles: Mapping[str, float]
                ) -> dict[str, Observed]:
    """Per query of ``percentiles`` (query -> SLO percentile), what its answered ``records``
    took; queries with fewer than two answers are left out."""
    out = {}
    for query, pct in percentiles.items():
        lat = np.array([r.latency_s for r in records
                        if r.query == query and math.isfinite(r.latency_s)]) * 1e3
        if len(lat) < 2:
            continue
        at = float(np.quantile(lat, pct / 100.0, method="inverted_cdf"))
        out[query] = Observed(len(lat), float(lat.mean()), at, pct)
    return out


def observed_from_result(result: ServeResult) -> dict[str, Observed]:
    """Per served query, what ``circinus serve --json`` measured of it (queries with fewer than
    two answers, or whose latency at the SLO percentile is unbounded, are left out)."""
    out = {}
    for q in result.queries:
        lat = q.latency
        if q.completed < 2 or lat.mean_ms is None or lat.at_slo_ms is None:
            continue
        out[q.name] = Observed(q.completed, lat.mean_ms, lat.at_slo_ms, q.percentile)
    return out


def falling_behind(records: Sequence[Record]) -> str | None:
    """Why ``records`` (the measured requests of one run) show an engine that did not keep up
    with its load, or None: more than 1 % of the requests unanswered, or the last third of the
    run's requests taking on average more than 1.5 times as long as the first third (a queue
    that grows)."""
    if not records:
        return None
    lost = sum(not math.isfinite(r.latency_s) for r in records) / len(records)
    if lost > 0.01:
        return f"{lost:.0%} of the requests unanswered"
    ordered = sorted(records, key=lambda r: r.due_s)
    third = len(ordered) // 3
    if third < 10:
        return None
    first = float(np.mean([r.latency_s for r in ordered[:third]]))
    last = float(np.mean([r.latency_s for r in ordered[-third:]]))
    if last > 1.5 * first:
        return (f"requests took {first * 1e3:.0f} ms on average early in the run and "
                f"{last * 1e3:.0f} ms late")
    return None


@dataclass(frozen=True)
class Predicted:
    """What the plan predicted for one query: its stage count and latency moments (ms), the
    world's runtime section included."""

    stages: int
    mean_ms: float
    var_ms2: float
    third_ms3: float | None = None
    """Third central moment (None: the plain gamma of mean and variance); the engine's overhead
    adds none to it."""
    calls: Mapping[str, float] | None = None
    """Stage calls per request per tier of the called replica's site (summing to ``stages``;
    None: not known, the query counts for the world-wide figure only)."""


def calls_of(plan: PlanFile, query: str) -> dict[str, float]:
    """Stage calls a request of ``query`` makes per tier, from its route in ``plan`` (a stage
    split over deployments on several tiers counts each its share)."""
    return calls_by_query(plan).get(query, {})


def calls_by_query(plan: PlanFile) -> dict[str, dict[str, float]]:
    """:func:`calls_of` of every query of ``plan``, in one pass over it."""
    tiers = {d.name: d.tier for d in plan.deployments}
    out: dict[str, dict[str, float]] = {}
    for q in plan.queries:
        calls = out.setdefault(q.name, {})
        for step in q.route:
            for share in step.deployments:
                tier = tiers[share.deployment]
                calls[tier] = calls.get(tier, 0.0) + share.share
    return out


@dataclass(frozen=True)
class Run:
    """One served run for the fit: what it measured per query, what its plan predicted per
    query, and the runtime figures those predictions included (None: none)."""

    observed: Mapping[str, Observed]
    predicted: Mapping[str, Predicted]
    base: RuntimeSettings | None


def overhead_of(observed: Mapping[str, Observed], stages: Mapping[str, int], *,
                calls: Mapping[str, Mapping[str, float]] | None = None,
                note: str = "") -> RuntimeSettings:
    """The per-call overhead the probe's requests show (see module): nothing but the engine
    is predicted, so the whole of each query's latency is spread over its ``stages``
    (``calls``: per query, its calls per tier, for figures per tier).

    Raises:
        SpecError: no request of the probe was answered.
    """
    if not any(q in observed for q in stages):
        raise SpecError("calibrate: no request of the probe was answered; check the cluster "
                        "(`ray status`) and try a lower rate or a longer --duration")
    calls = calls or {}
    predicted = {q: Predicted(k, 0.0, 0.0, calls=calls.get(q)) for q, k in stages.items()}
    return fit_runs([Run(observed, predicted, None)], note=note)


def residual_of(observed: Mapping[str, Observed] | Sequence[Mapping[str, Observed]],
                predicted: Mapping[str, Predicted], base: RuntimeSettings | None, *,
                note: str = "") -> RuntimeSettings:
    """The per-call overhead that makes the plan's predictions match what serving it measured
    (``observed``: one run, or several runs of the same plan, pooled; see module).

    NOTE: the plan was predicted with ``base`` (the world's runtime section, or none); taking
    ``base``'s share out of each prediction leaves what the plan predicts of the operators and
    links, and the figures are fitted anew on top of it (see module). It folds into the per-call
    figure whatever the model misses on this cluster at its load (the engine's overhead, and
    operators slower than their profiles when the machine is busy); a prediction above what was
    measured lowers it, never below zero.

    Example: base 10 ms, a 3-stage query predicted at 40 ms mean (10 of them the operators)
    measured at 70 ms: the per-call mean becomes (70 - 10) / 3 = 20 ms.

    Raises:
        SpecError: no request was answered.
    """
    runs = [observed] if isinstance(observed, Mapping) else list(observed)
    return fit_runs([Run(run, predicted, base) for run in runs], note=note)


def fit_runs(runs: Sequence[Run], *, note: str = "") -> RuntimeSettings:
    """The per-call figures, world-wide and per tier, that make the runs' predictions match
    what they measured (see module), each run's own ``base`` taken out of its predictions.

    Raises:
        SpecError: no request was answered.
    """
    if not any(q in run.observed for run in runs for q in run.predicted):
        raise SpecError("calibrate: no request of the plan was answered; check the cluster "
                        "(`ray status`) and try a longer --duration")
    rows: list[_Row] = []
    for run in runs:
        for query, pred in run.predicted.items():
            obs = run.observed.get(query)
            if obs is None or pred.stages < 1:
                continue
            rows.append(_row(_plain(pred, run.base), obs))
    mean_ms = _weighted_median([r.mean for r in rows], [r.weight for r in rows])
    var_ms2 = _weighted_median([r.var for r in rows], [r.weight for r in rows])
    engine = next((run.base.engine for run in runs if run.base is not None), "ray-serve")
    tiers = _tier_fit(rows)
    return RuntimeSettings(
        engine=engine, hop_mean_ms=round(mean_ms, 4), hop_sd_ms=round(math.sqrt(var_ms2), 4),
        samples=int(sum(r.weight for r in rows)),
        tiers=TierFigures(**tiers) if tiers else None, note=note)


def _plain(pred: Predicted, base: RuntimeSettings | None) -> Predicted:
    """``pred`` without what ``base`` added to it: its figures for each of the query's calls
    (the world-wide figure for calls of no known tier)."""
    if base is None:
        return pred
    if pred.calls:
        mean0 = var0 = 0.0
        for tier, n in pred.calls.items():
            m, sd = base.figures(tier)
            mean0, var0 = mean0 + n * m, var0 + n * sd * sd
    else:
        mean0, var0 = pred.stages * base.hop_mean_ms, pred.stages * base.hop_sd_ms ** 2
    return Predicted(pred.stages, max(0.0, pred.mean_ms - mean0),
                     max(0.0, pred.var_ms2 - var0), pred.third_ms3, pred.calls)


@dataclass(frozen=True)
class _Row:
    """One query of one run: its per-call excess mean and variance, its requests, and its
    calls' shares per tier (None: not known)."""

    mean: float
    var: float
    weight: float
    shares: Mapping[str, float] | None


def _row(pred: Predicted, obs: Observed) -> _Row:
    """The per-call figures ``obs`` shows on top of ``pred`` (the prediction without any engine
    overhead; see module)."""
    k = pred.stages
    hop_mean = max(0.0, (obs.mean_ms - pred.mean_ms) / k)
    total_mean = pred.mean_ms + k * hop_mean
    total_var = _variance_at(total_mean, obs.at_percentile_ms, obs.percentile / 100.0,
                             pred.third_ms3)
    calls = pred.calls or {}
    total = sum(calls.values())
    shares = {t: n / total for t, n in calls.items() if n > 0} if total > 0 else None
    return _Row(hop_mean, max(0.0, (total_var - pred.var_ms2) / k), float(obs.requests),
                shares)


TIERS = ("edge", "cloud")


def _tier_fit(rows: Sequence[_Row]) -> dict[str, HopFigures]:
    """Figures of the tiers the rows tell apart (see module); none for the others."""
    known = [r for r in rows if r.shares]
    covered = [t for t in TIERS if any(t in (r.shares or {}) for r in known)]
    if not covered:
        return {}
    a = np.array([[(r.shares or {}).get(t, 0.0) for t in covered] for r in known])
    if np.linalg.matrix_rank(a, tol=0.05) < len(covered):
        return {}
    w = np.array([r.weight for r in known])
    means = _lad(a, np.array([r.mean for r in known]), w)
    variances = _lad(a, np.array([r.var for r in known]), w)
    return {t: HopFigures(hop_mean_ms=round(float(means[i]), 4),
                          hop_sd_ms=round(math.sqrt(float(variances[i])), 4),
                          samples=int(sum(r.weight for r in known if t in (r.shares or {}))))
            for i, t in enumerate(covered)}


def _lad(a: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x >= 0`` minimising ``sum(w * |a @ x - y|)`` (a linear programme: ``x`` and each row's
    over- and undershoot). With one column of ones it is the weighted median of ``y``, which
    it returns as :func:`_weighted_median` picks it (a linear programme may end anywhere on a
    tie)."""
    if a.shape[1] == 1 and np.allclose(a[:, 0], 1.0):
        return np.array([_weighted_median(list(y), list(w))])
    from scipy.optimize import linprog

    n, m = a.shape
    cost = np.concatenate([np.zeros(m), w, w])
    eq = np.hstack([a, np.eye(n), -np.eye(n)])
    found = linprog(cost, A_eq=eq, b_eq=y, bounds=[(0, None)] * (m + 2 * n), method="highs")
    if found.status != 0:  # pragma: no cover - always feasible (the slacks take any y)
        raise SpecError(f"calibrate: the per-tier fit failed ({found.message})")
    x: np.ndarray = np.maximum(np.asarray(found.x[:m], dtype=float), 0.0)
    return x


def _variance_at(mean: float, at: float, q: float, third: float | None = None) -> float:
    """The variance of the (shifted) gamma of this ``mean`` and ``third`` central moment whose
    ``q``-quantile is nearest ``at``.

    NOTE: at a fixed mean, a high quantile first grows with the variance, then falls (the mass
    crowds near zero: at q = 0.95 it peaks at cv 3.6, 5.8 times the mean); a median only
    falls. The fit keeps to the first branch, where a wider spread means a longer tail, and
    bisects on it; an ``at`` beyond the branch's reach gets its nearest end.
    """
    if mean <= 0.0:
        return 0.0
    grid = np.linspace(math.log(mean * mean * 1e-9), math.log(mean * mean * 1e4), 131)
    values = np.array([quantile(mean, math.exp(g), q, third) for g in grid])
    top = int(np.argmax(values))
    low, high = (grid[0], grid[top]) if top > 0 else (grid[0], grid[-1])
    rising = top > 0
    q_low, q_high = (quantile(mean, math.exp(low), q, third),
                     quantile(mean, math.exp(high), q, third))
    if (at <= q_low) if rising else (at >= q_low):
        return 0.0  # no spread needed (a fixed latency reaches it)
    if (at >= q_high) if rising else (at <= q_high):
        return math.exp(high)
    for _ in range(60):  # the quantile is monotone on [low, high]
        mid = (low + high) / 2
        if (quantile(mean, math.exp(mid), q, third) < at) == rising:
            low = mid
        else:
            high = mid
    return math.exp((low + high) / 2)


def _weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The smallest value with at least half the weight at or below it."""
    order = np.argsort(values)
    cum = np.cumsum(np.asarray(weights, dtype=float)[order])
    return float(np.asarray(values)[order][int(np.searchsorted(cum, cum[-1] / 2))])


_BLOCK = re.compile(r"^runtime:.*\n(?:[ \t]+.*\n|\n)*", re.MULTILINE)
"""The top-level ``runtime`` block of a YAML world: its line and the indented or blank ones
after it."""


def write_runtime(path: Path, runtime: RuntimeSettings) -> None:
    """Put ``runtime`` in the world file at ``path`` as its ``runtime`` section, replacing the
    one there (YAML: the other lines and comments stay as they are; JSON: rewritten)."""
    doc = runtime.document()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        import json

        data = json.loads(text)
        data["runtime"] = doc
        new = json.dumps(data, indent=2) + "\n"
    else:
        block = yaml.safe_dump({"runtime": doc}, sort_keys=False, width=100)
        kept = _BLOCK.sub("", text).rstrip("\n")
        new = f"{kept}\n\n{block}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)
