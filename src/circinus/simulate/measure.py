"""From the engine's final state to the result file: latency percentiles, busy deployments,
devices and links, each over the measured window."""

from __future__ import annotations

import numpy as np

from circinus.simulate.deployment import DeploymentQueue
from circinus.simulate.model import SimQuery, SimWorld
from circinus.simulate.query import QueryFlow
from circinus.simulate.results import (
    DeploymentSimOut,
    DeviceSimOut,
    LatencyOut,
    LinkSimOut,
    QuerySimOut,
    SimulationResult,
    SimulationSettings,
)

PERCENTILES = (50.0, 90.0, 95.0, 99.0)
"""Latency percentiles reported for every query."""


def result_of(sim: SimWorld, settings: SimulationSettings, trace: str, flows: list[QueryFlow],
              queues: list[DeploymentQueue], *, rounds: int, converged: bool, cyclic: bool,
              wall: float) -> SimulationResult:
    """The result file of a finished simulation."""
    lo, hi = settings.window
    span = hi - lo
    busy_units = [0.0] * len(sim.devices)
    deployments = []
    for dep, queue in zip(sim.deployments, queues, strict=True):
        busy = queue.busy(settings.window)
        busy_units[dep.device] += busy * dep.units / span
        served, fill, wait = queue.waits(settings.window)
        deployments.append(DeploymentSimOut(
            name=dep.name, device=sim.devices[dep.device], sharing=dep.sharing,
            queries=queue.queries, replicas=dep.replicas, batch=dep.batch, requests=served,
            utilization=busy / (dep.replicas * span),
            predicted_utilization=dep.predicted_utilization, mean_fill_ms=_ms(fill),
            mean_queue_ms=_ms(wait)))
    queries = [_query_out(q, flow.latency(settings.window),
                          max((deployments[d].utilization for st in q.stages
                               for d in st.deployments), default=0.0))
               for q, flow in zip(sim.queries, flows, strict=True) if q.measured]
    devices = [
        DeviceSimOut(name=name, capacity_units=cap, allocated_units=alloc, busy_units=busy,
                     utilization=busy / alloc if alloc > 0 else None)
        for name, cap, alloc, busy in zip(sim.devices, sim.capacity_units, sim.allocated_units,
                                          busy_units, strict=True)
    ]
    met = [q for q in queries if q.slo_met]
    return SimulationResult(
        world=sim.world, trace=trace, seed=settings.seed, duration_s=settings.duration_s,
        warmup_s=lo, total_queries=sim.total_queries, admitted=len(queries), met=len(met),
        goodput=sum(q.weight for q in met), predicted_goodput=sim.predicted_goodput,
        requests=sum(q.requests for q in queries),
        completed=sum(q.completed for q in queries), share_links=settings.share_links,
        link_rounds=rounds, converged=converged, cyclic=cyclic, wall_seconds=wall,
        queries=queries, deployments=deployments, devices=devices,
        links=_links_out(sim, flows, lo, hi))


def _ms(seconds: float | None) -> float | None:
    if seconds is None or not np.isfinite(seconds):
        return None
    return float(seconds) * 1000.0


def _query_out(query: SimQuery, lat: np.ndarray, util: float) -> QuerySimOut:
    spec, slo, pred = query.spec, query.spec.slo, query.predicted
    if len(lat):
        qs = np.quantile(lat, [p / 100 for p in (*PERCENTILES, slo.percentile)],
                         method="inverted_cdf")
        latency = LatencyOut(mean_ms=_ms(float(np.mean(lat))), p50_ms=_ms(qs[0]),
                             p90_ms=_ms(qs[1]), p95_ms=_ms(qs[2]), p99_ms=_ms(qs[3]),
                             at_slo_ms=_ms(qs[4]))
    else:
        latency = LatencyOut(mean_ms=None, p50_ms=None, p90_ms=None, p95_ms=None, p99_ms=None,
                             at_slo_ms=None)
    within = None
    latency_met = True
    if slo.latency_ms is not None:
        bound = slo.latency_ms / 1000.0
        within = float(np.mean(lat <= bound)) if len(lat) else None
        latency_met = latency.at_slo_ms is not None and latency.at_slo_ms <= slo.latency_ms
    accuracy_met = slo.min_accuracy is None or (
        pred.accuracy is not None and pred.accuracy >= slo.min_accuracy)
    cost_met = slo.max_cost_per_hour is None or pred.cost_per_hour <= slo.max_cost_per_hour
    return QuerySimOut(
        name=spec.name, pipeline=spec.pipeline, rate_rps=spec.rate_rps, weight=spec.weight,
        percentile=slo.percentile, slo_latency_ms=slo.latency_ms, requests=len(lat),
        completed=int(np.count_nonzero(np.isfinite(lat))), latency=latency, within_slo=within,
        predicted_latency_ms=pred.latency_ms, predicted_mean_ms=pred.latency_mean_ms,
        max_utilization=util, predicted_max_utilization=pred.max_utilization,
        latency_met=latency_met, slo_met=latency_met and accuracy_met and cost_met)


def _links_out(sim: SimWorld, flows: list[QueryFlow], lo: float, hi: float) -> list[LinkSimOut]:
    count = np.zeros(len(sim.links), dtype=np.int64)
    mbit = np.zeros(len(sim.links))
    seconds = np.zeros(len(sim.links))
    alone = np.zeros(len(sim.links))
    solo = np.array([min(ln.bandwidth_mbps, ln.capacity_mbps or np.inf) for ln in sim.links])
    rtt = np.array([ln.rtt_s for ln in sim.links])
    for flow in flows:
        for tr in flow.transfers.values():
            inside = (tr.start >= lo) & (tr.start < hi)
            links = tr.link[inside]
            np.add.at(count, links, 1)
            np.add.at(mbit, links, tr.mbit)
            np.add.at(seconds, links, tr.seconds[inside])
            np.add.at(alone, links, tr.mbit / solo[links] + rtt[links] / 2)
    out = []
    for i, ln in enumerate(sim.links):
        traffic = float(mbit[i]) / (hi - lo)
        n = int(count[i])
        out.append(LinkSimOut(
            src=ln.src, dst=ln.dst, transfers=n, traffic_mbps=traffic,
            capacity_mbps=ln.capacity_mbps,
            utilization=None if ln.capacity_mbps is None else traffic / ln.capacity_mbps,
            mean_transfer_ms=float(seconds[i]) / n * 1000 if n else None,
            mean_alone_ms=float(alone[i]) / n * 1000 if n else None))
    return out
