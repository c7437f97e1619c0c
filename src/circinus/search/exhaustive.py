"""Exhaustive per-query search with simple pruning, shared by identical queries.

NOTE: queries with the same pipeline, source sites, rate, per-stage work and SLO percentile are
the same search problem up to their SLO bounds, so the plan space is enumerated once per such
*group* and each
member filters it by its own SLO. Enumeration runs over the accuracy-feasible configuration
vectors only (accuracy depends on configurations, never on placement), then over each stage's
placement options (:mod:`circinus.search.placements`) depth-first in topological order, skipping
combinations that overfill a device within the query and partial plans whose summed mean
latency already exceeds the group's loosest latency bound (a mean above the bound puts every
percentile >= 64 above it too, so this prune is exact for such percentiles).

Each member then keeps a small candidate set: walking its SLO-feasible plans from the cheapest,
a plan is kept unless a kept plan is no more expensive and uses no more of any resource. The
cheapest plan is always kept, and the others differ in the resources they occupy, which is what
the global selection needs to trade between queries.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from circinus.estimate.base import EPS, Estimate
from circinus.plan.records import QueryPlan, StagePlan
from circinus.search.base import BaseSearch, Candidate, QueryCandidates
from circinus.search.placements import Option, eligible_devices, stage_options
from circinus.spec.index import ConfigKey
from circinus.spec.models import Query

_PRUNE_PERCENTILE = 64.0  # gamma quantiles at or above this are >= the mean (see NOTE)
_SCAN_LIMIT = 5000  # feasible plans examined per query when picking its candidates


@dataclass
class _Pool:
    """All plans enumerated for one group, as parallel arrays."""

    plans: list[tuple[tuple[str, ...], tuple[StagePlan, ...]]]
    estimates: list[Estimate]
    latency: np.ndarray
    accuracy: np.ndarray
    cost: np.ndarray
    best_accuracy: float | None


class ExhaustiveSearch(BaseSearch):
    """Enumerates every plan of each query group (see module note)."""

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        groups: dict[tuple[object, ...], list[int]] = {}
        for i, q in enumerate(queries):
            key = (q.pipeline, tuple(sorted(q.sources.items())), q.rate_rps,
                   tuple(sorted(q.work_scale.items())), q.slo.percentile)
            groups.setdefault(key, []).append(i)
        out: list[QueryCandidates | None] = [None] * len(queries)
        for members in groups.values():
            pool = self._enumerate([queries[i] for i in members])
            for i in members:
                out[i] = self._pick(queries[i], pool)
        return [r for r in out if r is not None]

    # -- enumeration -------------------------------------------------------------------------

    def _config_vectors(self, query: Query, floor: float | None
                        ) -> tuple[list[dict[str, ConfigKey]], float | None]:
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        stages = pipe.order
        choices = [index.operators[pipe.operator_of[s]].configs for s in stages]
        vectors, best = [], None
        for combo in itertools.product(*choices):
            configs = dict(zip(stages, combo, strict=True))
            acc = self.estimator.accuracy(query.pipeline, configs)
            if acc is not None:
                best = acc if best is None else max(best, acc)
            if floor is None or (acc is not None and acc >= floor - EPS):
                vectors.append(configs)
        return vectors, best

    def _enumerate(self, members: Sequence[Query]) -> _Pool:
        rep = members[0]
        index = self.estimator.index
        pipe = index.pipelines[rep.pipeline]
        floors = [q.slo.min_accuracy for q in members]
        floor = None if any(f is None for f in floors) else min(f for f in floors if f is not None)
        bounds = [q.slo.latency_ms for q in members]
        prune_ms = math.inf
        if all(b is not None for b in bounds) and all(
            q.slo.percentile >= _PRUNE_PERCENTILE for q in members
        ):
            prune_ms = max(b for b in bounds if b is not None)
        devices = eligible_devices(index, rep)
        capacity = {d.name: d.units for d in devices}
        vectors, best_acc = self._config_vectors(rep, floor)
        option_cache: dict[tuple[str, ConfigKey], list[Option]] = {}
        plans: list[tuple[tuple[str, ...], tuple[StagePlan, ...]]] = []
        estimates: list[Estimate] = []
        for configs in vectors:
            per_stage = []
            for stage in pipe.order:
                key = (stage, configs[stage])
                if key not in option_cache:
                    option_cache[key] = stage_options(index, self.settings, rep, stage,
                                                      configs[stage], devices)
                per_stage.append(option_cache[key])
            for stage_plans in self._combine(rep, pipe.order, configs, per_stage, capacity,
                                             prune_ms):
                plan = QueryPlan(query=rep.name, stages=stage_plans)
                est = self.estimator.estimate(rep, plan)
                if math.isfinite(est.latency_mean_ms) or rep.slo.latency_ms is None:
                    plans.append((tuple(s.stage for s in stage_plans), stage_plans))
                    estimates.append(est)
        return _Pool(
            plans=plans,
            estimates=estimates,
            latency=np.array([e.latency_ms for e in estimates], dtype=float),
            accuracy=np.array([np.nan if e.accuracy is None else e.accuracy
                               for e in estimates], dtype=float),
            cost=np.array([e.cost_per_hour for e in estimates], dtype=float),
            best_accuracy=best_acc,
        )

    def _combine(self, query: Query, order: Sequence[str], configs: dict[str, ConfigKey],
                 per_stage: Sequence[list[Option]], capacity: dict[str, float],
                 prune_ms: float) -> list[tuple[StagePlan, ...]]:
        """Depth-first product of stage options within device capacity and the latency prune."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        out: list[tuple[StagePlan, ...]] = []
        used: dict[str, float] = {}
        chosen: list[StagePlan] = []
        finish: dict[str, float] = {}  # summed mean sojourn along the slowest path, seconds

        def dfs(depth: int) -> None:
            if depth == len(order):
                out.append(tuple(chosen))
                return
            stage = order[depth]
            op = index.operators[pipe.operator_of[stage]]
            for opt in per_stage[depth]:
                need = [(r.device, r.count * op.profiles[configs[stage],
                         index.devices[r.device].hardware].units) for r in opt.placement]
                if any(used.get(d, 0.0) + u > capacity[d] + EPS for d, u in need):
                    continue
                est = self.estimator.stage(query, stage, configs[stage], opt.batch, opt.placement)
                start = max((finish.get(p, 0.0) for p in pipe.preds[stage]), default=0.0)
                if (start + est.mean_s) * 1e3 > prune_ms + EPS or not math.isfinite(est.mean_s):
                    continue
                finish[stage] = start + est.mean_s
                for d, u in need:
                    used[d] = used.get(d, 0.0) + u
                chosen.append(StagePlan(stage, configs[stage], opt.batch, opt.placement))
                dfs(depth + 1)
                chosen.pop()
                for d, u in need:
                    used[d] -= u

        dfs(0)
        return out

    # -- per-query choice --------------------------------------------------------------------

    def _pick(self, query: Query, pool: _Pool) -> QueryCandidates:
        slo = query.slo
        n = len(pool.estimates)
        ok_acc = np.ones(n, dtype=bool)
        if slo.min_accuracy is not None:
            ok_acc = np.nan_to_num(pool.accuracy, nan=-np.inf) >= slo.min_accuracy - EPS
        ok_lat = np.ones(n, dtype=bool)
        if slo.latency_ms is not None:
            ok_lat = pool.latency <= slo.latency_ms + EPS
        ok_cost = np.ones(n, dtype=bool)
        if slo.max_cost_per_hour is not None:
            ok_cost = pool.cost <= slo.max_cost_per_hour + EPS
        feasible = np.flatnonzero(ok_acc & ok_lat & ok_cost)
        if feasible.size == 0:
            return QueryCandidates(query.name, (), _reason(query, pool, ok_acc, ok_lat), n)
        order = feasible[np.argsort(pool.cost[feasible], kind="stable")][:_SCAN_LIMIT]
        kept: list[int] = []
        for i in order:
            if not any(_dominates(pool.estimates[k], pool.estimates[i]) for k in kept):
                kept.append(int(i))
                if len(kept) == self.settings.candidates_per_query:
                    break
        cands = tuple(
            Candidate(QueryPlan(query.name, pool.plans[k][1]), pool.estimates[k]) for k in kept
        )
        return QueryCandidates(query.name, cands, None, n)


def _dominates(a: Estimate, b: Estimate) -> bool:
    """``a`` costs no more than ``b`` and uses no more of any resource."""
    if a.cost_per_hour > b.cost_per_hour + EPS:
        return False
    for mine, theirs in ((a.device_units, b.device_units), (a.device_memory_gb,
                         b.device_memory_gb), (a.link_mbps, b.link_mbps)):
        other = dict(theirs)
        if any(v > other.get(k, 0.0) + EPS for k, v in mine):
            return False
    return True


def _reason(query: Query, pool: _Pool, ok_acc: np.ndarray, ok_lat: np.ndarray) -> str:
    slo = query.slo
    if len(pool.estimates) == 0 and slo.min_accuracy is None:
        return "placement: no reachable device can run every stage of the pipeline"
    if slo.min_accuracy is not None and not ok_acc.any():
        best = pool.best_accuracy
        if best is not None and best < slo.min_accuracy - EPS:
            return f"accuracy: best achievable {best:.4g} < required {slo.min_accuracy:.4g}"
        return "placement: no reachable device can run an accuracy-feasible configuration"
    if slo.latency_ms is not None and not (ok_acc & ok_lat).any():
        lat = pool.latency[ok_acc]
        best = float(lat.min()) if lat.size else math.inf
        shown = f"{best:.1f} ms" if math.isfinite(best) else "none within the bound"
        return (f"latency: best p{slo.percentile:g} at the required accuracy is {shown} "
                f"> {slo.latency_ms:g} ms")
    cheapest = float(pool.cost[ok_acc & ok_lat].min())
    return (f"cost: cheapest plan meeting latency and accuracy costs ${cheapest:.4g}/h "
            f"> ${slo.max_cost_per_hour:.4g}/h")
