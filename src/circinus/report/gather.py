"""The data behind the report's figures, from a world, its plan file and a simulation.

Each function reads only its arguments and returns the records :mod:`circinus.report.plots`
draws. What the planner predicted is recomputed with the same estimator the planner uses
(:class:`~circinus.estimate.analytic.AnalyticEstimator`); what was served comes from the
simulator (:func:`circinus.simulate.simulate_run`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence

import numpy as np

from circinus.estimate.analytic import AnalyticEstimator
from circinus.plan.file import PlanFile, QueryOut
from circinus.report.plots import (
    DeviceUse,
    FrontierPanel,
    LatencyPanel,
    LinkUse,
    pareto_front,
)
from circinus.search.decomposed import DecomposedSearch
from circinus.search.exhaustive import ExhaustiveSearch
from circinus.simulate import SimulationResult, SimulationRun
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings, Query

SPACE_POINTS = 40_000
"""At most this many plans of a group's plan space are drawn (a seeded sample; the frontier is
computed over all of them)."""


def _pick(keys: Sequence[Hashable], count: int) -> list[int]:
    """Up to ``count`` positions, first those whose key was not picked yet (in order), then
    the rest in order: a varied sample that stays deterministic."""
    seen: set[Hashable] = set()
    first = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            first.append(i)
    firsts = set(first)
    return (first + [i for i in range(len(keys)) if i not in firsts])[:count]


# -- frontiers ---------------------------------------------------------------------------------


def frontier_panels(index: WorldIndex, planfile: PlanFile, *, count: int = 4,
                    settings: PlannerSettings | None = None, seed: int = 0) -> list[FrontierPanel]:
    """Up to ``count`` groups of interchangeable queries (same pipeline, source sites, rate,
    work and SLO), varied in pipeline and SLO: each group's whole plan space, the candidates
    the planner's search keeps for it, and the plans chosen for its admitted members."""
    settings = settings or index.world.planner
    queries = index.world.queries
    groups: dict[tuple[object, ...], list[Query]] = {}
    for q in queries:
        key = (q.pipeline, tuple(sorted(q.sources.items())), q.rate_rps,
               tuple(sorted(q.work_scale.items())), q.slo.percentile, q.slo.latency_ms,
               q.slo.min_accuracy, q.slo.max_cost_per_hour,
               tuple(sorted(q.source_rate_rps.items())),
               tuple(sorted(q.source_output_kb.items())))
        groups.setdefault(key, []).append(q)
    members = list(groups.values())
    chosen = _pick([(g[0].pipeline, g[0].slo.percentile, g[0].slo.latency_ms) for g in members],
                   count)
    outs = {q.name: q for q in planfile.queries}
    estimator = AnalyticEstimator(index=index)
    search = DecomposedSearch(estimator=estimator, settings=settings)
    space = ExhaustiveSearch(estimator=estimator, settings=settings)
    rng = np.random.default_rng(seed)
    panels = []
    for gi in chosen:
        group = members[gi]
        rep = group[0]
        unbounded = rep.model_copy(update={"slo": rep.slo.model_copy(
            update={"latency_ms": None, "max_cost_per_hour": None})})
        pool = space.plan_space(unbounded)
        points = np.column_stack([pool.cost, pool.latency]).reshape(-1, 2)
        points = points[np.all(np.isfinite(points), axis=1)]
        cands = search.search([rep])[0].candidates
        picked = {(o.predicted.cost_per_hour, o.predicted.latency_ms)
                  for o in (outs[q.name] for q in group)
                  if o.admitted and o.predicted is not None and o.predicted.latency_ms is not None}
        panels.append(FrontierPanel(
            title=f"{rep.pipeline} @ {', '.join(sorted(set(rep.sources.values())))}, "
                  f"{rep.rate_rps:g} req/s",
            percentile=rep.slo.percentile, slo_latency_ms=rep.slo.latency_ms,
            min_accuracy=rep.slo.min_accuracy, max_cost_per_hour=rep.slo.max_cost_per_hour,
            space=_sample(points, rng),
            candidates=np.array([(c.estimate.cost_per_hour, c.estimate.latency_ms)
                                 for c in cands]).reshape(-1, 2),
            chosen=np.array(sorted(picked)).reshape(-1, 2),
            members=len(group), admitted=sum(outs[q.name].admitted for q in group)))
    return panels


def _sample(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """At most :data:`SPACE_POINTS` of ``points``, always keeping their Pareto frontier."""
    if len(points) <= SPACE_POINTS:
        return points
    keep = rng.choice(len(points), size=SPACE_POINTS, replace=False)
    return np.concatenate([points[np.sort(keep)], pareto_front(points)])


# -- latency distributions ---------------------------------------------------------------------


def latency_panels(index: WorldIndex, planfile: PlanFile, run: SimulationRun, *,
                   count: int = 4) -> list[LatencyPanel]:
    """Up to ``count`` simulated queries: first the one whose measured latency at its SLO
    percentile exceeds the prediction most, then queries varied in pipeline, percentile and
    the tiers their plans use."""
    outs = {q.name: q for q in planfile.queries}
    sims = run.result.queries
    if not sims or count < 1:
        return []

    def ratio(i: int) -> float:
        pred, got = sims[i].predicted_latency_ms, sims[i].latency.at_slo_ms
        if pred is None or pred <= 0:
            return -math.inf
        return math.inf if got is None else got / pred

    worst = max(range(len(sims)), key=ratio)
    keys = [(s.pipeline, s.percentile, _tiers(outs[s.name])) for s in sims]
    order = [worst] + [i for i in _pick(keys, count) if i != worst]
    # The plan file's prediction: at the links' final utilisation (when the planner's link
    # check ran) and on the shared deployments as sized; unbounded ones are left out.
    panels = []
    for i in order[:count]:
        sim, out = sims[i], outs[sims[i].name]
        pred = out.predicted
        if pred is None or pred.latency_mean_ms is None or pred.latency_var_ms2 is None:
            continue
        third = pred.latency_third_ms3
        moments = (pred.latency_mean_ms, pred.latency_var_ms2,
                   math.nan if third is None else third)
        panels.append(LatencyPanel(
            query=sim.name,
            subtitle=f"{sim.pipeline}, {sim.rate_rps:g} req/s, {_tiers(out)}"
                     + (" (largest miss of the prediction)" if i == worst and ratio(i) > 1
                        else ""),
            percentile=sim.percentile, slo_latency_ms=sim.slo_latency_ms, moments=moments,
            simulated_ms=run.latencies_ms[i]))
    return panels


def _tiers(out: QueryOut) -> str:
    """The tiers a plan's stages run on, in stage order: ``edge → cloud``."""
    tiers = ["+".join(sorted({r.tier for r in op.placement})) for op in out.operators]
    return " → ".join(k for k, _ in itertools.groupby(tiers))


# -- resources ---------------------------------------------------------------------------------


def device_use(index: WorldIndex, planfile: PlanFile,
               result: SimulationResult | None = None) -> list[DeviceUse]:
    """Every device of the plan file: capacity, allocated units, predicted busy units (each
    deployment's units times its predicted utilisation) and, given a simulation, the measured
    busy units."""
    busy: dict[str, float] = {}
    for d in planfile.deployments:
        units = d.replicas * d.units_per_replica * d.utilization
        busy[d.device] = busy.get(d.device, 0.0) + units
    simulated = {} if result is None else {d.name: d.busy_units for d in result.devices}
    return [DeviceUse(name=d.name, tier=d.tier, capacity_units=d.capacity_units,
                      allocated_units=d.used_units, predicted_busy_units=busy.get(d.name, 0.0),
                      simulated_busy_units=simulated.get(d.name))
            for d in planfile.resources.devices]


def link_use(planfile: PlanFile, result: SimulationResult | None = None) -> list[LinkUse]:
    """Every link with a capacity that the plan or the simulation uses: planned and simulated
    mean traffic."""
    simulated = {} if result is None else {(ln.src, ln.dst): ln.traffic_mbps
                                           for ln in result.links}
    return [LinkUse(name=f"{ln.src} → {ln.dst}", capacity_mbps=ln.capacity_mbps,
                    planned_mbps=ln.used_mbps, simulated_mbps=simulated.get((ln.src, ln.dst)))
            for ln in planfile.resources.links
            if ln.capacity_mbps is not None and (ln.used_mbps > 0 or simulated.get(
                (ln.src, ln.dst), 0.0) > 0)]

