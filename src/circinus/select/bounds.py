"""Proven bounds on the selection: a goodput ceiling and a cost floor from any LP duals.

NOTE: relax the capacity rows with multipliers ``y >= 0`` and what is left splits by query: each
query picks its best candidate on its own. So for *any* ``y >= 0``

    goodput(S) <= L(y) = sum_q max(0, max_k w_q - y.a_qk) + y.cap

for every selection ``S`` within the capacities, and at the LP's optimal duals ``L`` equals the
LP optimum (the per-query choice polytope is integral). The bound is computed here from the
duals rather than read from the solver, so it is proven whatever tolerances the solver used;
poor duals only make it weaker. The cost floor is the same argument applied to
``min cost`` with goodput held by one more row (multiplier ``nu``).
"""

from __future__ import annotations

import math

import numpy as np

from circinus.estimate.base import EPS
from circinus.select.flat import FlatProblem, per_query_max


def trivial_bound(flat: FlatProblem) -> float:
    """The goodput of admitting every query that has a candidate."""
    has = flat.first[1:] > flat.first[:-1]
    return float(flat.query_weight[has].sum())


def goodput_bound(flat: FlatProblem, y: np.ndarray, unit: float | None) -> float:
    """``L(y)`` (module note), down to a whole multiple of ``unit`` when the weights have one.

    Example: one pool of 2 units and three queries of weight 1, each needing 1 unit: with
    ``y = 1`` every reduced weight is 0 and ``L = 0 + 1 * 2 = 2``; with ``y = 0``, ``L = 3``.
    """
    reduced = flat.weight - flat.usage.T @ y
    bound = float(np.maximum(per_query_max(flat, reduced), 0.0).sum() + y @ flat.limit())
    if unit is not None:
        bound = math.floor(bound / unit + 1e-9) * unit
    return bound


def cost_floor(flat: FlatProblem, y: np.ndarray, nu: float, goodput: float) -> float:
    """A floor on the cost of any selection of goodput at least ``goodput``, for any
    ``y, nu >= 0``: ``sum_q min(0, min_k c_qk + y.a_qk - nu w_q) - y.cap + nu goodput``.

    Example: two queries of weight 1 costing 1 and 3, no capacity in the way (``y = 0``): with
    ``nu = 3`` the reduced costs are -2 and 0, so the floor of goodput 2 is ``-2 + 6 = 4``.
    """
    reduced = flat.cost + flat.usage.T @ y - nu * flat.weight
    low = -per_query_max(flat, -reduced)
    return float(np.minimum(low[np.isfinite(low)], 0.0).sum() - y @ flat.limit() + nu * goodput)


def cheapest_reach(flat: FlatProblem, goodput: float) -> float:
    """The cost of reaching ``goodput`` if capacities were unlimited (a fractional knapsack
    over each query's cheapest candidate): a cost floor that needs no LP."""
    has = flat.first[1:] > flat.first[:-1]
    low = -per_query_max(flat, -flat.cost)[has]
    w = flat.query_weight[has]
    order = np.lexsort((np.arange(len(w)), low / np.maximum(w, EPS)))
    reach = np.cumsum(w[order])
    k = int(np.searchsorted(reach, goodput))
    if k >= len(order):
        return float(low.sum())
    part = goodput - (reach[k - 1] if k else 0.0)
    return float(low[order[:k]].sum() + low[order[k]] * part / w[order[k]])
