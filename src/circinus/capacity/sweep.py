"""Goodput and cost against one device's capacity, the others held at the suggested additions.

NOTE: per device (the ones that grow first, then the ones whose next unit is worth most), a
few capacities from today's to past the suggested one; at each, the LP rounding (fast, so every
point has an answer) and then the joint MILP (:meth:`~circinus.capacity.model.CapacityModel.best`)
with every addition fixed select the most goodput and then the cheapest plans; the better is
kept, and the suggested selection from the suggested capacity up, and the selection of the
point below (both still fit), where they are better still: a curve never falls as capacity
grows. It reuses the candidates of the capacity search (the world
at its largest) rather than searching again per point, so a point is what the selection makes
of those candidates: the suggested point's goodput is the joint MILP's, which the verifying
plan of the grown world may exceed or (rarely) miss.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from circinus.capacity.marginal import UnitValue
from circinus.capacity.model import CapacityModel, Sizing
from circinus.select.deployments import settle
from circinus.select.lp import LpRoundSelector

QUICK_SHARE = 0.3
"""Share of a point's time for the LP rounding that gives it an answer fast; the joint MILP
gets the rest and is kept where it does better."""
MIN_QUICK_S = 0.5
MAX_PANELS = 6
"""Most devices swept (one panel each)."""


@dataclass(frozen=True)
class SweepPoint:
    """The selection at one capacity of the swept device."""

    units: float
    """Units of the swept device."""
    goodput: float | None
    """Weighted admitted queries (``None``: no answer in the point's time)."""
    plan_cost_per_hour: float | None
    """Cost of the selected plans, $/h."""
    added_cost_per_hour: float
    """Cost of every addition at this point (the swept device's and the others'), $/h."""


@dataclass(frozen=True)
class Sweep:
    """One device's curve."""

    name: str
    units_now: float
    units_suggested: float
    points: tuple[SweepPoint, ...]


def swept(sizing: Sizing, values: Sequence[UnitValue], names: Sequence[str],
          most: Sequence[int] | None = None) -> list[str]:
    """Which devices to sweep: those that grow, then those whose next unit is worth most
    today, then the others, at most :data:`MAX_PANELS` (``names``: every growable device;
    ``most``: the most units each may get, a device that may get none is left out)."""
    if most is not None:
        names = [n for n, m in zip(names, most, strict=True) if m > 0]
    out = [n for n in names if n in sizing.additions]
    worth = sorted((v for v in values if v.goodput_per_unit > 1e-9 and v.name not in out),
                   key=lambda v: -v.goodput_per_unit)
    out += [v.name for v in worth if v.name in names]
    out += [n for n in names if n not in out]
    return out[:MAX_PANELS]


def grid(added: int, most: int, points: int) -> list[int]:
    """Up to ``points`` whole additions from 0 past ``added`` (twice it, at least two more),
    within ``most``, always holding 0 and ``added``.

    Example: ``grid(3, 100, 5)`` is ``[0, 2, 3, 4, 6]``.
    """
    top = min(most, max(2 * added, added + 2))
    if top <= 0:
        return [0]
    count = max(2, points)
    steps = {round(i * top / (count - 1)) for i in range(count)}
    steps.add(added)
    out = sorted(steps)
    while len(out) > max(points, 2):  # drop the point nearest another, never 0, added or top
        gaps = [(out[i + 1] - out[i - 1], i) for i in range(1, len(out) - 1)
                if out[i] not in (added,)]
        if not gaps:
            break
        out.pop(min(gaps)[1])
    return out


def sweep(model: CapacityModel, sizing: Sizing, names: Sequence[str], *, points: int,
          deadline: float) -> tuple[Sweep, ...]:
    """The curves of the devices ``names`` (see the module note); the time to ``deadline`` (a
    :func:`time.monotonic` instant) is shared evenly among the points left."""
    growables = {g.name: (i, g) for i, g in enumerate(model.cp.growables)}
    plan = [(name, grid(sizing.additions.get(name, 0), model.cp.most_added[growables[name][0]],
                        points)) for name in names]
    left = sum(len(g) for _, g in plan)
    out = []
    for name, steps in plan:
        _, g = growables[name]
        row: list[SweepPoint] = []
        for added in steps:
            fixed = {**sizing.additions, name: added}
            cost = sum(growables[n][1].price_per_unit_hour * a for n, a in fixed.items())
            share = max(0.0, deadline - time.monotonic()) / max(left, 1)
            problem = model.cp.at(fixed)
            quick = settle(problem, LpRoundSelector().select(
                problem, time_limit_s=max(QUICK_SHARE * share, MIN_QUICK_S)))
            found = model.best(time.monotonic() + share, fixed=fixed)
            left -= 1
            goodput, plan_cost = quick.goodput, quick.cost_per_hour
            answers = [] if found is None else [found]
            if added >= sizing.additions.get(name, 0):  # the suggested selection still fits
                answers.append(sizing)
            for a in answers:
                if (a.goodput, -a.plan_cost_per_hour) > (goodput, -plan_cost):
                    goodput, plan_cost = a.goodput, a.plan_cost_per_hour
            if row and row[-1].goodput is not None and row[-1].plan_cost_per_hour is not None \
                    and (row[-1].goodput, -row[-1].plan_cost_per_hour) > (goodput, -plan_cost):
                # the selection of the point below still fits here (capacity only grew)
                goodput, plan_cost = row[-1].goodput, row[-1].plan_cost_per_hour
            row.append(SweepPoint(g.units + added, goodput, plan_cost, cost))
        out.append(Sweep(name, g.units, g.units + sizing.additions.get(name, 0), tuple(row)))
    return tuple(out)
