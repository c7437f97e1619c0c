"""Placement options of one stage: which devices, how many replicas, which batch size.

NOTE: a device is eligible for a query's stage when it has a profile for the configuration's
hardware class and its site is a query source's site or one link away from one (an edge box
serves the queries whose data it holds or can receive). Single-device options take the fewest
replicas that keep utilisation under the bound, plus up to ``extra_replicas`` more for latency
headroom. Multi-device options (``max_devices_per_operator > 1``) put one replica on each of
several devices and are kept only when *minimal*: dropping any device would break the bound, so
no device is paid for that the rate does not need.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from circinus.estimate.analytic import batch_service_ms
from circinus.estimate.base import EPS
from circinus.plan.records import Placement, Replicas
from circinus.spec.index import ConfigKey, OperatorIndex, WorldIndex
from circinus.spec.models import Device, LatencyProfile, PlannerSettings, Query


@dataclass(frozen=True)
class Option:
    """One way to run a stage: batch size and placement."""

    batch: int
    placement: Placement


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
    op = index.operators[index.pipelines[query.pipeline].operator_of[stage]]
    scale = query.work_scale.get(stage, 1.0)
    profiled = [(d, op.profiles[config, d.hardware]) for d in devices
                if (config, d.hardware) in op.profiles]
    batches = sorted({1, *(b for _, p in profiled for b in p.batch_ms)})
    out: list[Option] = []
    for batch in batches:
        for dev, prof in profiled:
            out.extend(_single(dev, prof, batch, query.rate_rps, scale, settings))
        if settings.max_devices_per_operator > 1:
            out.extend(_spread(profiled, batch, query.rate_rps, scale, settings))
    return out


def placement_units(index: WorldIndex, op: OperatorIndex, config: ConfigKey,
                    placement: Placement) -> tuple[tuple[str, float], ...]:
    """``(device, units)`` a stage in ``config`` occupies on each device of ``placement``:
    replicas x the units one replica of that configuration needs on the device's hardware."""
    return tuple((r.device, r.count * op.profiles[config, index.devices[r.device].hardware].units)
                 for r in placement)


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
    most = math.floor(dev.units / prof.units + EPS)
    if dev.memory_gb is not None and prof.memory_gb > 0:
        most = min(most, math.floor(dev.memory_gb / prof.memory_gb + EPS))
    for count in range(fewest, min(most, fewest + settings.extra_replicas) + 1):
        yield Option(batch, (Replicas(dev.name, count),))


def _spread(profiled: Sequence[tuple[Device, LatencyProfile]], batch: int, rate: float,
            scale: float, settings: PlannerSettings) -> Iterator[Option]:
    rated = []
    for dev, prof in profiled:
        per_replica = replica_rate(prof, batch, scale)
        if per_replica is not None and prof.units <= dev.units + EPS:
            rated.append((dev.name, per_replica))
    need = rate / settings.max_utilization
    for size in range(2, min(settings.max_devices_per_operator, len(rated)) + 1):
        for combo in itertools.combinations(rated, size):
            total = sum(r for _, r in combo)
            if total + EPS < need or total - min(r for _, r in combo) + EPS >= need:
                continue  # too slow, or not minimal (the slowest device is not needed)
            yield Option(batch, tuple(sorted(Replicas(name, 1) for name, _ in combo)))
