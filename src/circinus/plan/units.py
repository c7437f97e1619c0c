"""Capacity a stage's placement occupies on each of its devices, and how its load splits.

A pure function of a decision record and the world's look-up index; the plan file reports these
units for every replica group. Worked example: two replicas of a configuration whose profile on
the device's hardware needs 0.5 units occupy ``2 x 0.5 = 1.0`` unit of that device.
"""

from __future__ import annotations

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
    capacity-weighted balancer does). E.g. one replica at 10 ms and one at 30 ms per request
    share 0.75 / 0.25."""
    rates = []
    for r in placement:
        prof = op.profiles[config, index.devices[r.device].hardware]
        ms = prof.mean_ms if batch == 1 else prof.batch_ms[batch]
        rates.append((r.device, r.count * batch / ms))
    total = sum(v for _, v in rates)
    return tuple((d, v / total) for d, v in rates)
