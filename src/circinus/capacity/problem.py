"""The joint problem of capacity planning: the selection problem of a world at its largest, and
how far each growable device may grow.

A :class:`CapacityProblem` holds the candidates found with every growable device at all the
units it may get, and bounds each addition by what any selection could use of the device
(:func:`most_use`): the joint MILP (:mod:`circinus.capacity.model`) then needs no limit of our
choosing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from circinus.capacity.resources import Growable
from circinus.estimate.base import EPS
from circinus.select.base import Resource, SelectionProblem
from circinus.select.deployments import replicas


@dataclass(frozen=True)
class CapacityProblem:
    """The selection problem of a world whose growable devices have all the units they may
    get, and how each may grow."""

    problem: SelectionProblem
    """Candidates found with every growable device at :attr:`Growable.most` units; the
    capacities of the growable rows are ``units + most addition``."""
    growables: tuple[Growable, ...]
    most_added: tuple[int, ...]
    """Per growable, the most units the selection may add (:func:`most_use`)."""

    @property
    def total_weight(self) -> float:
        """Weight of every query of the world."""
        return float(sum(self.problem.weights))

    def today(self) -> SelectionProblem:
        """The selection problem at today's capacities (a new device at 0 units)."""
        return self.at({})

    def at(self, additions: Mapping[str, float]) -> SelectionProblem:
        """The selection problem with ``additions`` (device name -> units added)."""
        capacity = dict(self.problem.capacity)
        for g in self.growables:
            units = g.units + additions.get(g.name, 0)
            capacity["device", g.name] = units
            if g.memory_per_unit_gb is not None and ("memory", g.name) in capacity:
                capacity["memory", g.name] = g.memory_per_unit_gb * units
        return replace(self.problem, capacity=capacity)

    @staticmethod
    def build(problem: SelectionProblem, growables: Sequence[Growable]) -> CapacityProblem:
        """``problem`` (found on the world with every growable at its most) with each
        growable's capacity cut to what any selection could use of it."""
        used = most_use(problem)
        capacity = dict(problem.capacity)
        added = []
        for g in growables:
            need = used.get(("device", g.name), 0.0)
            room = g.most - g.units
            memory = ("memory", g.name)
            if g.memory_per_unit_gb and memory in capacity:
                need = max(need, used.get(memory, 0.0) / g.memory_per_unit_gb)
            most = max(0, min(math.ceil(need - g.units - EPS), math.floor(room + EPS)))
            added.append(most)
            capacity["device", g.name] = g.units + most
            if g.memory_per_unit_gb is not None and memory in capacity:
                capacity[memory] = g.memory_per_unit_gb * (g.units + most)
        return CapacityProblem(replace(problem, capacity=capacity), tuple(growables),
                               tuple(added))


def most_use(problem: SelectionProblem) -> dict[Resource, float]:
    """An upper bound on what any selection of ``problem`` uses of each device and memory row:
    every query's largest own use, plus every shared deployment at the replicas the largest
    loads of all queries on it would need (or its largest floor)."""
    out: dict[Resource, float] = {}
    load: dict[str, float] = {}
    floor: dict[str, int] = {}
    for q, qc in enumerate(problem.candidates):
        own: dict[Resource, float] = {}
        most_load: dict[str, float] = {}
        for k, cand in enumerate(qc.candidates):
            use, _ = problem.own(q, k)
            for r, v in use.items():
                own[r] = max(own.get(r, 0.0), v)
            for name, v in cand.estimate.deployment_load:
                most_load[name] = max(most_load.get(name, 0.0), v)
            for name, f in cand.estimate.deployment_floor:
                floor[name] = max(floor.get(name, 1), f)
        for r, v in own.items():
            out[r] = out.get(r, 0.0) + v
        for name, v in most_load.items():
            load[name] = load.get(name, 0.0) + v
    for name, v in load.items():
        spec = problem.deployments[name]
        count = max(replicas(v, spec.level), floor.get(name, 1))
        dev = spec.key.device
        out["device", dev] = out.get(("device", dev), 0.0) + count * spec.units
        out["memory", dev] = out.get(("memory", dev), 0.0) + count * spec.memory_gb
    return out



def needed(g: Growable, used: dict[Resource, float]) -> int:
    """Whole units ``g`` must gain to hold ``used`` (units, and memory where it counts)."""
    need = used.get(("device", g.name), 0.0) - g.units
    if g.memory_per_unit_gb:
        need = max(need, (used.get(("memory", g.name), 0.0) - g.memory_per_unit_gb * g.units)
                   / g.memory_per_unit_gb)
    return max(0, math.ceil(need / (1 + EPS) - EPS))
