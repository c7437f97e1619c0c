"""Placement options of one stage: which devices, how many replicas, which batch size.

NOTE: a device is eligible for a query's stage when it has a profile for the configuration's
hardware class and its site is a query source's site or one link away from one (an edge box
serves the queries whose data it holds or can receive). Single-device options take the fewest
replicas that keep utilisation under the bound, plus up to ``extra_replicas`` more for latency
headroom. Multi-device options (``max_devices_per_operator > 1``) put one replica on each of
several devices and are kept only when *minimal*: dropping any device would break the bound, so
no device is paid for that the rate does not need.

A *shared* stage (:func:`is_shared`) gets one option per utilisation level instead of the extra
replicas: on each device, ``Replicas.count`` is the fewest replicas its deployment can have with
this query on it at that level (the query's load over the level, rounded up), the state its
latency is estimated against (:mod:`circinus.estimate.analytic`); spreads are the minimal
device sets at the level. The selection sizes the deployment (at least every count of its
queries, which its load implies). Extra replicas per query were measured too (a larger pool at
one utilisation waits less): with two levels they cost 2.4-6x the search time (gen-1000: 83 s
against 11.5 s) and admitted no more (edge-cloud-vision 203 against 201, gen-1000 1,000 against
999), so they are not offered. With the planner's ``sharing: mixed`` a shared stage is also offered
replicas of its own, as a dedicated one is (measured: meeting-companion admits 90 sessions
against 74 shared and 78 dedicated; a generated world of 1,000 queries 757 against 770 shared,
its search twice as long).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from circinus.estimate.analytic import batch_service_ms
from circinus.estimate.base import EPS
from circinus.plan.records import Placement, Replicas
from circinus.spec.index import ConfigKey, WorldIndex
from circinus.spec.models import Device, LatencyProfile, Operator, PlannerSettings, Query


@dataclass(frozen=True)
class Option:
    """One way to run a stage: batch size, placement and, for a shared stage, the utilisation
    level of the deployments it joins."""

    batch: int
    placement: Placement
    level: float | None = None


def levels(settings: PlannerSettings) -> tuple[float, ...]:
    """Utilisation levels a shared deployment may be sized for, highest first:
    ``max_utilization x k / n`` for ``k = n..1`` (0.8 and 2 levels: 0.8, 0.4)."""
    n = settings.utilization_levels
    return tuple(settings.max_utilization * k / n for k in range(n, 0, -1))


def is_shared(settings: PlannerSettings, query: Query, operator: Operator) -> bool:
    """Whether ``query``'s stage running ``operator`` joins shared deployments: unless the query
    or the operator asks for ``dedicated``, an explicit ``shared`` of either, else the
    planner's ``sharing``."""
    asked = (query.sharing, operator.sharing)
    if "dedicated" in asked:
        return False
    return "shared" in asked or settings.sharing != "dedicated"


def eligible_devices(index: WorldIndex, query: Query,
                     tiers: tuple[str, ...] = ("edge", "cloud")) -> list[Device]:
    """Devices a query may use: in ``tiers``, at a source's site or one link away from one."""
    origins = set(query.sources.values())
    return [
        d for d in index.world.devices
        if index.sites[d.site].tier in tiers
        and any(index.reachable(site, d.site) for site in origins)
    ]


def stage_options(index: WorldIndex, settings: PlannerSettings, query: Query, stage: str,
                  config: ConfigKey, devices: Sequence[Device]) -> list[Option]:
    """Every placement option of ``stage`` in ``config`` for ``query`` (see module note)."""
    pipe = index.pipelines[query.pipeline]
    op = index.operators[pipe.operator_of[stage]]
    scale = query.work_scale.get(stage, 1.0)
    rate = pipe.rate(query, stage)
    profiled = [(d, op.profiles[config, d.hardware]) for d in devices
                if (config, d.hardware) in op.profiles]
    batches = sorted({1, *(b for _, p in profiled for b in p.batch_ms)})
    out: list[Option] = []
    shared = is_shared(settings, query, op.spec)
    for batch in batches:
        for dev, prof in profiled:
            if shared:
                out.extend(_joined(dev, prof, batch, rate, scale, settings))
            if not shared or settings.sharing == "mixed":
                out.extend(_single(dev, prof, batch, rate, scale, settings))
        if settings.max_devices_per_operator > 1:
            for level in levels(settings) if shared else (None,):
                out.extend(_spread(profiled, batch, rate, scale, settings, level))
    return out


def replica_rate(profile: LatencyProfile, batch: int, scale: float) -> float | None:
    """Requests per second one replica serves at ``batch`` (``None`` if not profiled)."""
    ms = batch_service_ms(profile, batch)
    return None if ms is None else batch * 1000.0 / (ms * scale)


def _single(dev: Device, prof: LatencyProfile, batch: int, rate: float, scale: float,
            settings: PlannerSettings) -> Iterator[Option]:
    per_replica = replica_rate(prof, batch, scale)
    if per_replica is None:
        return
    fewest = max(1, math.ceil(rate / (per_replica * settings.max_utilization) - EPS))
    most = _most(dev, prof)
    for count in range(fewest, min(most, fewest + settings.extra_replicas) + 1):
        yield Option(batch, (Replicas(dev.name, count),))


def _most(dev: Device, prof: LatencyProfile) -> int:
    """Replicas of ``prof`` that fit on ``dev`` (units and memory)."""
    most = math.floor(dev.units / prof.units + EPS)
    if dev.memory_gb is not None and prof.memory_gb > 0:
        most = min(most, math.floor(dev.memory_gb / prof.memory_gb + EPS))
    return most


def _joined(dev: Device, prof: LatencyProfile, batch: int, rate: float, scale: float,
            settings: PlannerSettings) -> Iterator[Option]:
    """Per level, the shared deployment on ``dev`` with the fewest replicas this query needs at
    that level (see the module note)."""
    per_replica = replica_rate(prof, batch, scale)
    if per_replica is None:
        return
    most = _most(dev, prof)
    for level in levels(settings):
        fewest = max(1, math.ceil(rate / (per_replica * level) - EPS))
        if fewest <= most:
            yield Option(batch, (Replicas(dev.name, fewest),), level)


def _spread(profiled: Sequence[tuple[Device, LatencyProfile]], batch: int, rate: float,
            scale: float, settings: PlannerSettings, level: float | None = None
            ) -> Iterator[Option]:
    rated = []
    for dev, prof in profiled:
        per_replica = replica_rate(prof, batch, scale)
        if per_replica is not None and prof.units <= dev.units + EPS:
            rated.append((dev.name, per_replica))
    need = rate / (settings.max_utilization if level is None else level)
    for size in range(2, min(settings.max_devices_per_operator, len(rated)) + 1):
        for combo in itertools.combinations(rated, size):
            total = sum(r for _, r in combo)
            if total + EPS < need or total - min(r for _, r in combo) + EPS >= need:
                continue  # too slow, or not minimal (the slowest device is not needed)
            yield Option(batch, tuple(sorted(Replicas(name, 1) for name, _ in combo)), level)
