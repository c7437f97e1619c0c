"""The marginal value of one more unit of each resource, from the goodput LP's duals.

NOTE: the selection's LP relaxation (``max sum w x`` over candidates, at most one per query,
every capacity row respected; :mod:`circinus.select.lp`) has a dual price ``y_r >= 0`` per
capacity row: the goodput the relaxation would gain per unit more of ``r``, for small changes.
A unit added to a device that states its memory also brings memory, so its value is
``y_units + m y_memory`` (``m`` the memory per unit). The relaxation counts shared deployments
in shares of replicas and queries in fractions, so this is a first-order guide ("one more
gpu-pool unit admits about 3.2 more queries"), not a promise: whole replicas and whole queries
make the real gain a step function (``circinus capacity``'s plot shows it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import vstack

from circinus.capacity.resources import Growable
from circinus.select.base import Resource, SelectionProblem
from circinus.select.flat import flatten
from circinus.select.highs import solve_lp


@dataclass(frozen=True)
class UnitValue:
    """What one more unit of a device admits, by the LP relaxation."""

    name: str
    """Device or pool."""
    goodput_per_unit: float
    """Weighted queries one more unit admits, about."""


def lp_unit_values(problem: SelectionProblem, *, deadline: float = math.inf
                   ) -> dict[Resource, float] | None:
    """The goodput LP's dual of every capacity row of ``problem`` (see the module note);
    ``None`` when the LP is not solved by ``deadline``."""
    flat = flatten(problem)
    if flat.n == 0:
        return dict.fromkeys(flat.rows, 0.0)
    rows = vstack([flat.query_rows(), flat.usage]).tocsr()
    lp = solve_lp(-flat.weight, rows, np.concatenate([np.ones(flat.nq), flat.cap]),
                  deadline=deadline)
    if lp is None:
        return None
    return dict(zip(flat.rows, lp.duals[flat.nq:].tolist(), strict=True))


def unit_values(duals: Mapping[Resource, float], growables: Sequence[Growable]
                ) -> tuple[UnitValue, ...]:
    """Per growable device, the value of one more unit given the capacity rows' ``duals``
    (units row plus its memory row times the memory a unit brings)."""
    out = []
    for g in growables:
        value = duals.get(("device", g.name))
        if value is None:
            continue
        if g.memory_per_unit_gb:
            value += g.memory_per_unit_gb * duals.get(("memory", g.name), 0.0)
        out.append(UnitValue(g.name, max(0.0, value)))
    return tuple(out)
