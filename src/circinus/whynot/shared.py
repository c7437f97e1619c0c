"""Plans of a plan space against what a selection with shared deployments leaves, as arrays.

NOTE: checking each plan of a plan space against the selection's ledger one by one
(:meth:`~circinus.whynot.residual.Residual.trials`) is exact but slow; over a whole space the
ledger's arithmetic is done column by column instead. For a plan putting load ``x`` on a
deployment of level ``l`` that now carries load ``L`` on ``R`` replicas, the replicas it adds
are ``ceil((L + x) / l) - R`` (none while ``L + x <= R l``); its dedicated use is its usage
less its shares (``x / l`` replicas' worth of units and memory per deployment). A plan *may
fit* when dedicated use plus added replicas fit every row. Once on the deployment it holds
``R' x / (L + x)`` of its ``R'`` replicas, so it costs at least its usage's cost with each
share ``x / l`` replaced by that.

These are bounds, not the verdict: a deployment may need more replicas than its load asks
(the ledger has the last word), so :func:`bounds` never rejects a plan that fits and never
prices one above what it costs; the plans it keeps are tried exactly.

Example: ``L = 1.0``, ``R = 2`` at ``l = 0.8``: a plan with ``x = 0.5`` adds no replica
(1.5 / 0.8 = 1.875 -> 2) and holds 2 x 0.5 / 1.5 = 0.667 replicas (its share said 0.625).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from circinus.estimate.base import EPS
from circinus.plan.records import QueryPlan
from circinus.search.exhaustive import PlanPool, Usage
from circinus.select.deployments import LOAD_TOLERANCE
from circinus.spec.models import Query
from circinus.whynot.residual import Residual

Resource = tuple[str, str]

_ROWS = ("device", "memory", "link")
_KINDS = (*_ROWS, "deployment")


@dataclass(frozen=True)
class PoolUse:
    """What each plan of a pool uses, as a matrix over the pool's distinct usages (many plans
    use exactly the same)."""

    keys: list[Resource]
    """Every capacity row (device, memory, link) and deployment some plan of the pool uses."""
    distinct: np.ndarray
    """Distinct usages x ``keys``."""
    row: np.ndarray
    """Per plan, its row of ``distinct``."""

    @classmethod
    def of(cls, pool: PlanPool) -> PoolUse:
        """The matrix of ``pool``."""
        ids: dict[Usage, int] = {}
        row = np.fromiter((ids.setdefault(u, len(ids)) for u in pool.usage), dtype=np.int64,
                          count=len(pool))
        keys = sorted({res for usage in ids for res, _ in usage if res[0] in _KINDS})
        col = {res: j for j, res in enumerate(keys)}
        distinct = np.zeros((len(ids), len(keys)))
        for usage, i in ids.items():
            for res, amount in usage:
                j = col.get(res)
                if j is not None:
                    distinct[i, j] = amount
        return cls(keys, distinct, row)


def bounds(query: Query, pool: PlanPool, use: PoolUse,
           residual: Residual) -> tuple[np.ndarray, np.ndarray]:
    """For each plan of ``pool`` (of ``query``, in its names): whether it may fit what
    ``residual`` leaves, and a lower bound on its cost once on its deployments (see the
    module note)."""
    deps = [(j, name) for j, (kind, name) in enumerate(use.keys) if kind == "deployment"]
    unknown = {name for _, name in deps if not residual.knows(name)}
    for plan, usage in zip(pool.plans, pool.usage, strict=True):
        if not unknown:
            break
        if any(kind == "deployment" and name in unknown for (kind, name), _ in usage):
            residual.learn(query.pipeline, [QueryPlan(query.name, plan)])
            unknown = {name for name in unknown if not residual.knows(name)}
    rows = [r for r in use.keys if r[0] in _ROWS]
    for _, name in deps:
        spec = residual.spec(name)
        rows.append(("device", spec.key.device))
        if spec.memory_gb > 0:
            rows.append(("memory", spec.key.device))
    rows = sorted(set(rows))
    col = {r: j for j, r in enumerate(rows)}
    n = len(use.distinct)
    own = np.zeros((n, len(rows)))
    for j, res in enumerate(use.keys):
        if res in col:
            own[:, col[res]] = use.distinct[:, j]
    held_by = set(use.keys)
    added = np.zeros_like(own)
    extra = np.zeros(n)  # cost on the deployments beyond the shares the usage's cost counts
    for j, name in deps:
        spec = residual.spec(name)
        load = use.distinct[:, j]
        share = load / spec.level
        dev, mem = ("device", spec.key.device), ("memory", spec.key.device)
        own[:, col[dev]] -= share * spec.units
        if mem in held_by:  # as own_use: a memory row only where the plan's usage has one
            own[:, col[mem]] -= share * spec.memory_gb
        now, count = residual.sized(name)
        total = now + load
        after = np.where(total > EPS,
                         np.maximum(1.0, np.ceil(total / spec.level - LOAD_TOLERANCE)), 0.0)
        steps = np.where(load > 0, after - count, 0.0)
        added[:, col[dev]] += steps * spec.units
        if spec.memory_gb > 0:
            added[:, col[mem]] += steps * spec.memory_gb
        holds = np.where(load > 0, after * load / np.where(total > 0, total, 1.0), 0.0)
        extra += (holds - share) * spec.price_per_hour
    change = np.where(own > EPS, own, 0.0) + added
    cap = np.array([residual.capacity.get(r, np.inf) for r in rows])
    used = np.array([residual.used.get(r, 0.0) for r in rows])
    fit = ((change <= 0) | (used + change <= cap * (1 + 0.5 * EPS) + 0.5 * EPS)).all(axis=1)
    return (np.asarray(fit, dtype=bool)[use.row],
            np.asarray(pool.cost, dtype=float) + extra[use.row])


def ascending(order: list[int], least: np.ndarray,
              exact: Callable[[list[int]], list[float | None]], *,
              chunk: int) -> Iterator[float]:
    """The exact values of the plans ``order`` (sorted by ``least``, a lower bound on each
    plan's value) in ascending order, trying them ``chunk`` at a time with ``exact`` (which
    gives each its value, ``None`` to drop it), and only once no plan still untried can come
    before the next value given.

    E.g. bounds ``[1, 2, 5]`` whose plans are worth ``[4, 3, 5]``: the first two are tried,
    3 is given, then 4; the third is tried only when asked for the value after 4.
    """
    heap: list[float] = []
    pos = 0
    while True:
        while pos < len(order) and (not heap or least[order[pos]] <= heap[0]):
            some = order[pos:pos + chunk]
            pos += len(some)
            for value in exact(some):
                if value is not None:
                    heapq.heappush(heap, value)
        if not heap:
            return
        yield heapq.heappop(heap)
