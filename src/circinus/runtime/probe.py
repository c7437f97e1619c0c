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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from circinus.errors import SpecError
from circinus.estimate.queueing import quantile
from circinus.runtime.results import Record, ServeResult
from circinus.spec.models import RuntimeSettings

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


def overhead_of(observed: Mapping[str, Observed], stages: Mapping[str, int], *,
                note: str = "") -> RuntimeSettings:
    """The per-call overhead the probe's requests show (see module): nothing but the engine
    is predicted, so the whole of each query's latency is spread over its ``stages``.

    Raises:
        SpecError: no request of the probe was answered.
    """
    if not any(q in observed for q in stages):
        raise SpecError("calibrate: no request of the probe was answered; check the cluster "
                        "(`ray status`) and try a lower rate or a longer --duration")
    return _fit([observed], {q: Predicted(k, 0.0, 0.0) for q, k in stages.items()}, None,
                note=note)


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
    if not any(q in run for run in runs for q in predicted):
        raise SpecError("calibrate: no request of the plan was answered; check the cluster "
                        "(`ray status`) and try a longer --duration")
    mean0 = 0.0 if base is None else base.hop_mean_ms
    var0 = 0.0 if base is None else base.hop_sd_ms ** 2
    plain = {q: Predicted(p.stages, max(0.0, p.mean_ms - p.stages * mean0),
                          max(0.0, p.var_ms2 - p.stages * var0), p.third_ms3)
             for q, p in predicted.items()}
    return _fit(runs, plain, base, note=note)


def _fit(runs: Sequence[Mapping[str, Observed]], plain: Mapping[str, Predicted],
         base: RuntimeSettings | None, *, note: str) -> RuntimeSettings:
    """Per-call mean and sd fitted per query and run on top of ``plain`` (the predictions
    without any engine overhead) and pooled by weighted median (see module)."""
    means, variances, weights = [], [], []
    for query, pred in plain.items():
        for obs in (run.get(query) for run in runs):
            if obs is None or pred.stages < 1:
                continue
            k = pred.stages
            hop_mean = max(0.0, (obs.mean_ms - pred.mean_ms) / k)
            total_mean = pred.mean_ms + k * hop_mean
            total_var = _variance_at(total_mean, obs.at_percentile_ms, obs.percentile / 100.0,
                                     pred.third_ms3)
            means.append(hop_mean)
            variances.append(max(0.0, (total_var - pred.var_ms2) / k))
            weights.append(obs.requests)
    mean_ms = _weighted_median(means, weights)
    sd_ms = math.sqrt(_weighted_median(variances, weights))
    engine = "ray-serve" if base is None else base.engine
    return RuntimeSettings(engine=engine, hop_mean_ms=round(mean_ms, 4),
                           hop_sd_ms=round(sd_ms, 4), samples=int(sum(weights)), note=note)


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
    doc = runtime.model_dump(mode="json")
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
