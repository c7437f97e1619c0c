"""Nexus-style baseline: shared GPU deployments, latency split per stage, batch-aware packing.

NOTE: follows Nexus (Shen et al., "Nexus: A GPU Cluster Engine for Accelerating DNN-Based Video
Analysis", SOSP'19): a cluster scheduler that serves *sessions* (a model with a latency SLO and
a request rate) on shared GPUs, choosing each session's batch size from its latency budget and
packing sessions onto GPUs ("squishy bin packing"); for a query that chains several models, its
query analysis first splits the query's latency SLO into per-stage budgets, by a dynamic
program that minimises the GPUs the stages need. Here, on Circinus's world and records:

1. *Variants.* Nexus serves the models an application names; a query here names an accuracy
   floor, so each query takes its accuracy-feasible configuration vector with the lowest
   summed compute cost per request on the cluster (:meth:`NexusSearch._vector`).
2. *Latency split.* The query's latency SLO, less the largest transfer time of a source
   message into the cluster, is split over the stages by a dynamic program on a grid of
   :attr:`NexusSearch.grid` budgets (:func:`split`): a stage given budget ``L`` runs at the
   largest batch ``b`` (and on the device) for which Nexus's bound holds, ``l(b) + max(l(b),
   (b - 1) / rate) <= L`` (a request may wait for the batch in service, or for its own batch
   to fill, then for its batch: ``l(b)`` the batch's service time), at the cost per hour of the
   replicas its rate needs there; the program minimises the summed cost so that every
   source-to-sink path's budgets fit. It is exact on chains and in-trees; a stage feeding
   several others gets the tightest of the budgets their subtrees give it. Nexus's bound
   assumes batches run back to back as scheduled; under random arrivals batches also queue, so
   when the cheapest plan within the budgets misses the SLO by Circinus's estimator, the split
   is redone on 80 % of the budget, up to :attr:`NexusSearch.margins` splits in all (as an
   operator would tune Nexus's latency margin; without it most of its plans miss their SLO).
3. *Packing.* Each stage is a session: ``(operator, configuration, batch)`` at the stage's
   rate (the query's, or its source's own, times the stage's visits per request: a branch's
   probability, a fan-out's objects; :func:`~circinus.estimate.flow.stage_rates`), which also
   weighs the per-request compute cost of step 1.
   Sessions of the same model at the same batch share a deployment on a device (Circinus's
   shared deployments, sized at the highest utilisation level for the load of all its
   sessions: Nexus merges sessions of one model onto the same GPUs). Queries are packed in
   decreasing order of their busiest session (first-fit decreasing), each session best fit: on
   the device whose budget bound holds where it adds the fewest units (joining a deployment
   with headroom adds none), then the cheapest per request. A query is placed whole or not at
   all.

Departures: Nexus packs sessions of *different* models onto one GPU by time-sharing its duty
cycle; a Circinus replica runs one configuration, so different models share a device's units,
not a replica's time. Nexus runs on a GPU cluster: here the cluster is the cloud tier (a world
without one leaves Nexus nothing). Each query's plan is its only candidate; pair it with
``fcfs``, which admits what the packing placed (the estimator has the last word on latency).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from circinus.estimate.analytic import batch_service_ms
from circinus.estimate.base import EPS, BaseEstimator
from circinus.estimate.flow import stage_rates
from circinus.estimate.queueing import transfer_seconds
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.search.base import BaseSearch, Candidate, QueryCandidates
from circinus.search.placements import eligible_devices, is_shared, levels
from circinus.search.shortlist import admissible, no_candidate_reason
from circinus.search.vectors import Vector, VectorCache
from circinus.select.deployments import replicas
from circinus.spec.index import ConfigKey, WorldIndex
from circinus.spec.models import Device, PlannerSettings, Query


@dataclass(frozen=True)
class Choice:
    """One way to run a stage: its batch and device, with its latency bound and cost."""

    batch: int
    device: str
    bound_ms: float
    """Nexus's latency bound ``l(b) + max(l(b), (b - 1) / rate)``, ms."""
    cost: float
    """$/h of the replicas the query's rate needs (fractional: the session's share)."""
    load: float
    """Busy replicas the session puts on its deployment."""
    units: float
    """Units of the device one replica takes."""
    memory_gb: float


class NexusSearch(BaseSearch):
    """Latency split + batch-aware packing of sessions on the cloud tier (module note)."""

    grid: ClassVar[int] = 24
    """Budget steps of the latency split."""
    margins: ClassVar[int] = 8
    """Splits tried, the budget shrunk by :attr:`shrink` each time, until the cheapest plan
    within the budgets meets the latency SLO by Circinus's estimator (module note)."""
    shrink: ClassVar[float] = 0.8
    selector: ClassVar[str] = "fcfs"
    """Registry key of the selector this baseline is meant to run with."""

    def __init__(self, *, estimator: BaseEstimator, settings: PlannerSettings) -> None:
        super().__init__(estimator=estimator, settings=settings)
        self._vectors = VectorCache(estimator)

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        index = self.estimator.index
        level = levels(self.settings)[0]
        split = [self._split(query, level) for query in queries]
        ready = {q: s for q, s in enumerate(split) if not isinstance(s, str)}
        order = sorted(ready, key=lambda q: -max(c.load for cs in ready[q][1] for c in cs))
        packer = _Packer(index.world.devices, level)
        placed: dict[int, list[Choice]] = {}
        for q in order:
            vector, choices = ready[q]
            pipe = index.pipelines[queries[q].pipeline]
            sessions = [(pipe.operator_of[s], c, opts)
                        for s, c, opts in zip(pipe.order, vector, choices, strict=True)]
            got = packer.place(sessions)
            if got is not None:
                placed[q] = got
        return [self._candidates(query, split[q], placed.get(q), level)
                for q, query in enumerate(queries)]

    def _cluster(self, query: Query) -> list[Device]:
        index = self.estimator.index
        if "cloud" not in self.settings.tiers:
            return []
        return [d for d in eligible_devices(index, query, ("cloud",))]

    def _vector(self, query: Query, devices: Sequence[Device]) -> Vector | None:
        """The accuracy-feasible vector with the lowest summed compute cost per request."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        feasible, _ = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        best: tuple[float, Vector] | None = None
        for vector in feasible:
            total = 0.0
            rates = stage_rates(pipe, index.operators, query,
                                dict(zip(pipe.order, vector, strict=True)))
            for stage, config in zip(pipe.order, vector, strict=True):
                op = index.operators[pipe.operator_of[stage]]
                per = [op.profiles[config, d.hardware].mean_ms * op.profiles[
                    config, d.hardware].units * d.price_per_unit_hour
                    for d in devices if (config, d.hardware) in op.profiles]
                total += min(per, default=math.inf) * rates[stage] / query.rate_rps
            if math.isfinite(total) and (best is None or total < best[0] - EPS):
                best = (total, vector)
        return None if best is None else best[1]

    def _split(self, query: Query, level: float) -> tuple[Vector, list[list[Choice]]] | str:
        """The query's vector and, per stage, its choices within the budget the split gives
        it (cheapest first); or why it has none."""
        index = self.estimator.index
        devices = self._cluster(query)
        vector = self._vector(query, devices)
        feasible, best_accuracy = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        if not feasible:
            return no_candidate_reason(query, [], best_accuracy, "")
        if vector is None:
            return ("placement: no accuracy-feasible configuration runs on the cloud tier "
                    "(Nexus serves from a GPU cluster)")
        pipe = index.pipelines[query.pipeline]
        rates = stage_rates(pipe, index.operators, query,
                            dict(zip(pipe.order, vector, strict=True)))
        options = {stage: _choices(index, query, stage, config, devices, level, rates[stage])
                   for stage, config in zip(pipe.order, vector, strict=True)}
        slo = query.slo.latency_ms if query.slo.latency_ms is not None else math.inf
        budget = slo - 1000.0 * self._ingress_s(query, devices)
        if not math.isfinite(budget):
            budget = max((c.bound_ms for cs in options.values() for c in cs), default=0.0) * (
                len(pipe.order) + 1)
        preds = {s: tuple(pipe.preds[s]) for s in pipe.order}
        first: tuple[Vector, list[list[Choice]]] | None = None
        for attempt in range(self.margins):
            budgets = split(pipe.order, preds, options, budget * self.shrink**attempt, self.grid)
            if budgets is None:
                break
            within = [sorted((c for c in options[s] if c.bound_ms <= budgets[s] + EPS),
                             key=lambda c: c.cost) for s in pipe.order]
            first = first or (vector, within)
            est = self.estimator.estimate(query, self._plan(query, vector, [c[0] for c in within],
                                                            level))
            if "latency" not in est.violations(query.slo):
                return vector, within
        if first is None:
            return (f"latency: no batch split of its {slo:g} ms over the stages meets Nexus's "
                    "batching bound on the cloud tier")
        return first

    def _plan(self, query: Query, vector: Vector, picks: Sequence[Choice], level: float
              ) -> QueryPlan:
        """The plan running each stage on its pick: a shared deployment at ``level`` unless
        the query or operator asks for dedicated replicas."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        stages = []
        for stage, config, c in zip(pipe.order, vector, picks, strict=True):
            op = index.operators[pipe.operator_of[stage]]
            shared = is_shared(self.settings, query, op.spec)
            at = level if shared else self.settings.max_utilization
            stages.append(StagePlan(stage, config, c.batch,
                                    (Replicas(c.device, max(1, math.ceil(c.load / at - EPS))),),
                                    level if shared else None))
        return QueryPlan(query.name, tuple(stages))

    def _ingress_s(self, query: Query, devices: Sequence[Device]) -> float:
        """Largest time for a source message to reach the cluster, s (0 without devices)."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        worst = 0.0
        for source, site in query.sources.items():
            best = math.inf
            for d in devices:
                link = index.link(site, d.site)
                if d.site == site:
                    best = 0.0
                elif link is not None:
                    best = min(best, transfer_seconds(pipe.source_message_kb(query, source),
                                                      link.bandwidth_mbps, link.rtt_ms))
            worst = max(worst, best if math.isfinite(best) else 0.0)
        return worst

    def _candidates(self, query: Query, split: tuple[Vector, list[list[Choice]]] | str,
                    placed: list[Choice] | None, level: float) -> QueryCandidates:
        index = self.estimator.index
        if isinstance(split, str):
            return QueryCandidates(query.name, (), split, 0)
        vector, _ = split
        if placed is None:
            return QueryCandidates(query.name, (), (
                "capacity: the cloud tier has no room left for one of its sessions once the "
                "busier queries are packed"), 0)
        plan = self._plan(query, vector, placed, level)
        est = self.estimator.estimate(query, plan)
        if admissible(query, est, index=index, settings=self.settings):
            return QueryCandidates(query.name, (Candidate(plan, est),), None, 1)
        _, best_accuracy = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        return QueryCandidates(query.name, (), no_candidate_reason(
            query, [est], best_accuracy, "the plan of Nexus's split and packing"), 1)


def _choices(index: WorldIndex, query: Query, stage: str, config: ConfigKey,
             devices: Sequence[Device], level: float, rate: float) -> list[Choice]:
    """Every (batch, device) of ``stage`` in ``config`` on the cluster, with its bound, for
    ``rate`` requests per second (the stage's: :func:`~circinus.estimate.flow.stage_rates`)."""
    op = index.operators[index.pipelines[query.pipeline].operator_of[stage]]
    scale = query.work_scale.get(stage, 1.0)
    out = []
    for d in devices:
        prof = op.profiles.get((config, d.hardware))
        if prof is None:
            continue
        for batch in sorted({1, *prof.batch_ms}):
            ms = batch_service_ms(prof, batch)
            if ms is None:
                continue
            ms *= scale
            fill_ms = 1000.0 * (batch - 1) / rate
            load = rate * ms / 1000.0 / batch
            out.append(Choice(batch, d.name, ms + max(ms, fill_ms),
                              load / level * prof.units * d.price_per_unit_hour, load,
                              prof.units, prof.memory_gb))
    return out


def split(stages: Sequence[str], preds: Mapping[str, tuple[str, ...]],
          options: Mapping[str, Sequence[Choice]], budget: float, grid: int
          ) -> dict[str, float] | None:
    """Per stage its latency budget, ms: the split of ``budget`` (on ``grid`` steps) that
    minimises the summed cost of each stage's cheapest choice within its budget, every path
    from a source to the sink within ``budget``; ``None`` when no split fits (module note).

    Example: a chain a -> b, budget 100 on 4 steps, ``a`` costing 4 within 25 ms and 1 within
    50, ``b`` 3 within 50 and 1 within 75: a 25 + b 75 costs 5, a 50 + b 50 costs 4 (chosen).
    """
    if budget <= 0:
        return None
    step = budget / grid
    inside = set(stages)
    succ: dict[str, list[str]] = {s: [] for s in stages}
    for s in stages:
        for p in preds[s]:
            if p in inside:
                succ[p].append(s)

    def cheapest(stage: str, k: int) -> float:
        """Cost of the cheapest choice of ``stage`` within ``k`` steps."""
        return min((c.cost for c in options[stage] if c.bound_ms <= k * step + EPS),
                   default=math.inf)

    memo: dict[tuple[str, int], tuple[float, int]] = {}

    def best(stage: str, k: int) -> tuple[float, int]:
        """(cost, own steps) of the subtree ending at ``stage`` finishing within ``k``."""
        if (stage, k) in memo:
            return memo[stage, k]
        out = (math.inf, 0)
        for own in range(1, k + 1):
            here = cheapest(stage, own)
            if not math.isfinite(here):
                continue
            total = here + sum(best(p, k - own)[0] for p in preds[stage] if p in inside)
            if total < out[0] - EPS:
                out = (total, own)
        memo[stage, k] = out
        return out

    sinks = [s for s in stages if not succ[s]]
    if any(not math.isfinite(best(s, grid)[0]) for s in sinks):
        return None
    budgets: dict[str, float] = {}

    def assign(stage: str, k: int) -> None:
        _, own = best(stage, k)
        budgets[stage] = min(budgets.get(stage, math.inf), own * step)
        for p in preds[stage]:
            if p in inside:
                assign(p, k - own)

    for s in sinks:
        assign(s, grid)
    return budgets


class _Packer:
    """Shared deployments per device, filled best fit (module note)."""

    def __init__(self, devices: Sequence[Device], level: float) -> None:
        self.level = level
        self.free = {d.name: float(d.units) for d in devices}
        self.free_gb = {d.name: math.inf if d.memory_gb is None else float(d.memory_gb)
                        for d in devices}
        self.load: dict[tuple[str, ConfigKey, str, int], float] = {}

    def place(self, sessions: Sequence[tuple[str, ConfigKey, Sequence[Choice]]]
              ) -> list[Choice] | None:
        """Place every session ``(operator, configuration, choices)`` of one query, each on
        its best-fit choice, or none of them; returns the choices made."""
        saved = (dict(self.free), dict(self.free_gb), dict(self.load))
        out = []
        for operator, config, options in sessions:
            fits = []
            for c in options:
                key = (operator, config, c.device, c.batch)
                now = self.load.get(key, 0.0)
                extra = max(replicas(now + c.load, self.level),
                            replicas(c.load, self.level)) - replicas(now, self.level)
                if (extra * c.units <= self.free.get(c.device, 0.0) + EPS
                        and extra * c.memory_gb <= self.free_gb.get(c.device, 0.0) + EPS):
                    fits.append((extra * c.units, c.cost, c, key, extra))
            if not fits:
                self.free, self.free_gb, self.load = saved
                return None
            _, _, c, key, extra = min(fits, key=lambda f: (f[0], f[1]))
            self.load[key] = self.load.get(key, 0.0) + c.load
            self.free[c.device] -= extra * c.units
            self.free_gb[c.device] -= extra * c.memory_gb
            out.append(c)
        return out
