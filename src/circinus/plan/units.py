"""Capacity a stage's placement occupies on each of its devices, and how its load splits.

A pure function of a decision record and the world's look-up index; the plan file reports these
units for every replica group. Worked example: two replicas of a configuration whose profile on
the device's hardware needs 0.5 units occupy ``2 x 0.5 = 1.0`` unit of that device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from circinus.plan.records import Placement
    from circinus.spec.index import ConfigKey, OperatorIndex, WorldIndex


def placement_units(index: WorldIndex, op: OperatorIndex, config: ConfigKey,
                    placement: Placement) -> tuple[tuple[str, float], ...]:
    """``(device, units)`` a stage in ``config`` occupies on each device of ``placement``:
    replicas x the units one replica of that configuration needs on the device's hardware."""
    return tuple((r.device, r.count * op.profiles[config, index.devices[r.device].hardware].units)
                 for r in placement)


def placement_shares(index: WorldIndex, op: OperatorIndex, config: ConfigKey, batch: int,
                     placement: Placement) -> tuple[tuple[str, float], ...]:
    """``(device, share)`` of a stage's requests sent to each device of ``placement``: in
    proportion to what its replicas serve, ``count x batch / batch time`` (what a
    capacity-weighted balancer does), unless the placement states its shares. E.g. one replica
    at 10 ms and one at 30 ms per request share 0.75 / 0.25."""
    if placement and placement[0].share is not None:
        return tuple((r.device, float(r.share or 0.0)) for r in placement)
    rates = []
    for r in placement:
        prof = op.profiles[config, index.devices[r.device].hardware]
        ms = prof.mean_ms if batch == 1 else prof.batch_ms[batch]
        rates.append((r.device, r.count * batch / ms))
    total = sum(v for _, v in rates)
    return tuple((d, v / total) for d, v in rates)


def fill_shares(rates: Sequence[tuple[str, str, float]], rate: float, bound: float,
                sites: Sequence[str]) -> tuple[float, ...] | None:
    """The split that fills the devices of ``sites[0]`` to utilisation ``bound`` first, then
    those of ``sites[1]``, and so on (within a site in proportion to capacity).

    ``rates`` holds ``(device, site, requests per second its replicas serve)`` per replica group
    of a placement; the result is each group's share, in that order, or ``None`` when the split
    leaves a group without load (the placement without it is the same split for less) or
    cannot place all of ``rate``. Worked example: an edge box serving 6 req/s and a cloud GPU
    serving 20, 10 req/s in all, bound 0.8, edge first: the box takes 4.8 req/s (share 0.48),
    the GPU the remaining 5.2 (0.52), against 0.23 / 0.77 in proportion to capacity.
    """
    left = 1.0
    out = [0.0] * len(rates)
    for site in sites:
        here = [i for i, (_, s, _) in enumerate(rates) if s == site]
        room = sum(rates[i][2] for i in here)
        take = min(left, bound * room / rate)
        for i in here:
            out[i] = take * rates[i][2] / room
        left -= take
    if left > 1e-9 or min(out) <= 1e-9:
        return None
    return tuple(out)
