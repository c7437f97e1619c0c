"""Proven bounds on the selection: a goodput ceiling and a cost floor from any LP duals.

NOTE: relax the capacity rows with multipliers ``y >= 0`` and what is left splits by query: each
query picks its best candidate on its own. So for *any* ``y >= 0``

    goodput(S) <= L(y) = sum_q max(0, max_k w_q - y.a_qk) + y.cap

for every selection ``S`` within the capacities, and at the LP's optimal duals ``L`` equals the
LP optimum (the per-query choice polytope is integral). The bound is computed here from the
duals rather than read from the solver, so it is proven whatever tolerances the solver used;
poor duals only make it weaker. The cost floor is the same argument applied to ``min cost``
with goodput held by one more row: for capacity prices ``y >= 0`` and a goodput price
``nu >= 0``, ``sum_q min(0, min_k c_qk + y.a_qk - nu w_q) - y.cap + nu G`` is below the cost of
every selection of goodput at least ``G``; the best ``nu`` for given ``y`` is found in closed
form (:func:`cheapest_reach`), so any prices (a cost LP's duals, or none) give a floor.
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


def cheapest_reach(flat: FlatProblem, goodput: float, y: np.ndarray | None = None) -> float:
    """The best cost floor of goodput ``goodput`` for the capacity prices ``y >= 0`` (none:
    0), over every ``nu``: each query priced at its cheapest ``c_qk + y.a_qk``, the cheapest
    queries taken until their weight reaches ``goodput`` (the last one in part), minus
    ``y.cap``. With ``y = 0``: the cost of ``goodput`` if capacities were unlimited.

    Example: queries of weight 1 priced 1, 2 and 5: goodput 2.5 costs ``1 + 2 + 0.5 * 5``.
    """
    has = flat.first[1:] > flat.first[:-1]
    price = flat.cost if y is None else flat.cost + flat.usage.T @ y
    low = -per_query_max(flat, -price)[has]
    w = flat.query_weight[has]
    order = np.lexsort((np.arange(len(w)), low / np.maximum(w, EPS)))
    reach = np.cumsum(w[order])
    k = int(np.searchsorted(reach, goodput))
    if k >= len(order):
        total = float(low.sum())
    else:
        part = goodput - (reach[k - 1] if k else 0.0)
        total = float(low[order[:k]].sum() + low[order[k]] * part / w[order[k]])
    return total - (0.0 if y is None else float(y @ flat.limit()))
