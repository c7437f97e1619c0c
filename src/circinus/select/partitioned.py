"""Selection above ~10^5 candidates: parts solved apart, merged, repaired, with a proven bound.

NOTE: the exact path's cost grows faster than its candidates (the goodput LP, the rounding and
the fitting to whole replicas all run over every candidate at once), so above
:data:`PARTITION_ABOVE` candidates the queries are split into ``partitions`` parts, each part
gets a share of every capacity, and each is selected on its own by the exact path
(:class:`~circinus.select.milp.MilpSelector`: the MILP on small parts, the LP rounding on large
ones) and fitted to whole replicas within its shares; in parallel processes when ``workers``
are given. This is the partitioned optimisation of POP (Narayanan et al., "Solving Large-Scale
Granular Resource Allocation Problems Efficiently with POP", SOSP 2021), with two changes for
this problem's structure:

1. **Parts keep local resources whole.** A capacity row that queries of at most ``1 /
   partitions`` of the total weight can use is *local* (an edge box, or its uplink, and the
   queries of its site); queries joined by local rows form a group that goes to one part
   whole, so that row's capacity is not cut into pieces that each round up to whole replicas.
   Groups, largest first (ties in an order drawn from the seed), go to the part with the fewest
   candidates; a group larger than a part, and every query without a local row, is dealt out
   one query at a time in an order drawn from the seed, to the part with the fewest candidates
   (POP's random split).
2. **Each row is shared in proportion to the weight of the queries of each part that can use
   it**: a local row goes whole to its part, a row every query can use (the cloud pool) about
   ``1 / partitions`` to each.

The parts' choices are merged. The merge fits: each part stays within its shares, and a shared
deployment needs at most the sum of the parts' whole replicas (``ceil(a + b) <= ceil(a) +
ceil(b)``). Then the whole problem is repaired (:func:`~circinus.select.deployments.settle`,
or first fit without shared deployments): queries left out are offered what the parts left,
the shares they did not use and the replicas the merge saved.

**Bound.** The sum of the parts' bounds bounds only the split problem, not the whole one. For
any capacity prices ``y >= 0`` the Lagrangian ``L(y) = sum_q max(0, max_k w_q - y.a_qk) +
y.cap`` bounds every selection of the whole problem (:mod:`circinus.select.bounds`), and it
splits by query, so each part evaluates its queries' sum from its own arrays. ``y`` is taken
from the parts' LP duals: a local row's dual from its part, a shared row's the smallest ``L``
over the parts' duals, their weighted mean, and a golden-section search along it. With
parts alike (many sites per part) their duals agree and ``L`` is near the LP relaxation of the
whole problem. Where a part's LP was not solved, its local rows get 0 (a valid, weaker bound).

Example: two sites with a box of 2 units each, a pool of 2 units, four queries of weight 1 per
site, each needing a unit of its box or of the pool; ``partitions = 2``. Each site's queries
form a group (its box is used by half the weight: local), the pool's users are all queries
(shared). Part 1 gets site A's box whole and half the pool (1 unit), part 2 site B's box and
the other half: each admits 3 queries. The merge admits 6, and with the pool's duals 1 in both
parts ``L = 0 + 2 + 2 + 2 = 6``: proven optimal.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import csc_array

from circinus.collector import paused
from circinus.estimate.base import EPS
from circinus.select.base import Resource, Selection, SelectionProblem
from circinus.select.bounds import goodput_bound
from circinus.select.deployments import settle
from circinus.select.flat import FlatProblem, FlatSelector, flatten, weight_unit
from circinus.select.lp import alike_classes, greedy_selection
from circinus.spec.models import PlannerSettings

PARTITION_ABOVE: int = PlannerSettings.model_fields["partition_above"].default
"""Candidates above which :class:`~circinus.select.milp.MilpSelector` partitions by default
(planner setting ``partition_above``)."""
PARTITIONS: int = PlannerSettings.model_fields["partitions"].default
"""Parts of a partitioned selection by default (planner setting ``partitions``)."""
_WHOLE_SHARE = 0.3  # the whole problem's LP over classes must end by this share of the budget
_PARTS_SHARE = 0.8  # of the budget for the parts together; the rest merges, repairs, bounds
_GOLDEN_STEPS = 24  # golden-section steps per shared row of the bound's search


@dataclass(frozen=True)
class Split:
    """Which part each query goes to and each part's share of every capacity row."""

    parts: tuple[tuple[int, ...], ...]
    """Per part, its queries (indices into the problem), ascending."""
    rows: tuple[Resource, ...]
    """The capacity rows, sorted (the order of :func:`~circinus.select.flat.flatten`)."""
    shares: np.ndarray
    """``parts x rows``: each part's share of each row's capacity (a column sums to 1)."""

    def problem(self, problem: SelectionProblem, p: int) -> SelectionProblem:
        """Part ``p`` of ``problem``: its queries, their candidates and shared deployments,
        its share of every capacity row."""
        qs = self.parts[p]
        cands = tuple(problem.candidates[q] for q in qs)
        names = sorted({name for qc in cands for c in qc.candidates
                        for name, _ in c.estimate.deployment_load})
        return SelectionProblem(
            cands, tuple(problem.weights[q] for q in qs),
            {r: problem.capacity[r] * float(s) for r, s in zip(self.rows, self.shares[p],
                                                                strict=True)},
            {name: problem.deployments[name] for name in names})


def split(problem: SelectionProblem, partitions: int, seed: int,
          flat: FlatProblem | None = None) -> Split:
    """The parts of ``problem`` (module note, points 1 and 2), deterministic for ``seed``;
    ``flat`` is its arrays if the caller has them."""
    flat = flatten(problem) if flat is None else flat
    rows = flat.rows
    weights = np.asarray(problem.weights, dtype=float)
    col = np.repeat(np.arange(flat.n), np.diff(flat.usage.indptr))
    pairs = np.unique(flat.owner[col] * len(rows) + flat.usage.indices)  # (query, row) used
    uses: list[list[int]] = [[] for _ in range(flat.nq)]  # per query, the rows it may use
    for q, i in zip((pairs // len(rows)).tolist(), (pairs % len(rows)).tolist(), strict=True):
        uses[q].append(i)
    user_weight = np.zeros(len(rows))
    for q, used in enumerate(uses):
        user_weight[used] += weights[q]
    local = user_weight <= weights.sum() / partitions + EPS
    root = list(range(len(rows)))  # union-find over the local rows

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for used in uses:
        mine = [i for i in used if local[i]]
        for i in mine[1:]:
            a, b = find(mine[0]), find(i)
            if a != b:
                root[max(a, b)] = min(a, b)
    size = [len(qc.candidates) for qc in problem.candidates]
    groups: dict[int, list[int]] = {}
    loose: list[int] = []
    for q, used in enumerate(uses):
        mine = [i for i in used if local[i]]
        if mine:
            groups.setdefault(find(mine[0]), []).append(q)
        else:
            loose.append(q)
    target = sum(size) / partitions
    whole = []
    for members in groups.values():
        if sum(size[q] for q in members) > target:
            loose.extend(members)
        else:
            whole.append(members)
    rng = np.random.default_rng(seed)
    tie = rng.permutation(len(whole))
    load = [0] * partitions
    parts: list[list[int]] = [[] for _ in range(partitions)]
    for g in sorted(range(len(whole)), key=lambda g: (-sum(size[q] for q in whole[g]), tie[g])):
        p = min(range(partitions), key=lambda p: (load[p], p))
        parts[p].extend(whole[g])
        load[p] += sum(size[q] for q in whole[g])
    loose.sort()
    for i in rng.permutation(len(loose)).tolist():
        q = loose[i]
        p = min(range(partitions), key=lambda p: (load[p], p))
        parts[p].append(q)
        load[p] += size[q]
    held = np.zeros((partitions, len(rows)))
    for p, qs in enumerate(parts):
        for q in qs:
            held[p, uses[q]] += weights[q]
    total = held.sum(axis=0)
    shares = np.where(total > 0, held / np.where(total > 0, total, 1.0), 1.0 / partitions)
    return Split(tuple(tuple(sorted(qs)) for qs in parts), rows, shares)


@dataclass(frozen=True)
class _Solved:
    """What one part's selection gives back (small enough to cross a process boundary)."""

    chosen: tuple[int | None, ...]
    status: str
    duals: np.ndarray | None
    """The part's LP duals per capacity row (in :attr:`Split.rows` order); ``None`` when its
    selector solved no LP."""
    first: np.ndarray
    weight: np.ndarray
    usage: csc_array
    """The part's arrays for the bound (:class:`~circinus.select.flat.FlatProblem`'s)."""
    seconds: float

    def term(self, y: np.ndarray) -> float:
        """``sum_q max(0, max_k w_q - y.a_qk)`` over the part's queries."""
        has = self.first[1:] > self.first[:-1]
        if not has.any():
            return 0.0
        reduced = self.weight - self.usage.T @ y
        best = np.maximum.reduceat(reduced, self.first[:-1][has])
        return float(np.maximum(best, 0.0).sum())


def _solve(sub: SelectionProblem, flat: FlatProblem, time_limit_s: float) -> _Solved:
    """Part ``sub`` (its arrays ``flat``) selected by the exact path (never partitioned
    again), in whole replicas."""
    from circinus.select.lp import LpRoundSelector
    from circinus.select.milp import LP_ABOVE, MilpSelector

    start = time.monotonic()
    with paused():
        if flat.n > LP_ABOVE:  # as MilpSelector would, on the arrays already built
            sel = LpRoundSelector().select_flat(flat, sub, start=start,
                                                time_limit_s=time_limit_s)
        else:
            sel = MilpSelector(partition_above=None).select(sub, time_limit_s=time_limit_s)
        sel = settle(sub, sel, deadline=start + time_limit_s)
    duals = None
    if sel.unit_values:
        values = dict(sel.unit_values)
        duals = np.array([max(values.get(r, 0.0), 0.0) for r in flat.rows])
    return _Solved(sel.chosen, sel.status, duals, flat.first, flat.weight, flat.usage,
                   time.monotonic() - start)


def part_arrays(flat: FlatProblem, queries: Sequence[int], share: np.ndarray) -> FlatProblem:
    """The arrays of the part of ``flat`` with ``queries`` (ascending) and ``share`` of each
    capacity row: its candidates' columns, nothing built again."""
    qs = np.asarray(queries, dtype=np.int64)
    counts = flat.first[qs + 1] - flat.first[qs]
    cols = (np.concatenate([np.arange(flat.first[q], flat.first[q + 1]) for q in qs.tolist()])
            if len(qs) else np.zeros(0, dtype=np.int64))
    first = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    owner = np.repeat(np.arange(len(qs), dtype=np.int64), counts)
    columns = flat.columns
    return FlatProblem(first=first, owner=owner, weight=flat.weight[cols],
                       query_weight=flat.query_weight[qs], cost=flat.cost[cols],
                       usage=csc_array(flat.usage[:, cols]), rows=flat.rows,
                       cap=flat.cap * share, columns=tuple(columns[j] for j in cols.tolist()))


_FORKED: list[tuple[SelectionProblem, FlatProblem, float]] = []
"""The parts a pool of forked workers solves (set just before the pool forks; read-only)."""


def _solve_forked(p: int) -> _Solved:
    sub, flat, limit = _FORKED[p]
    return _solve(sub, flat, limit)


class PartitionedSelector(FlatSelector):
    """Partitioned selection with a proven bound (see the module note); registry key
    ``partitioned``, and what :class:`~circinus.select.milp.MilpSelector` does above its
    ``partition_above`` candidates.

    Args:
        partitions: number of parts (at least 1; 1 is the exact path with this bound).
        seed: seed of the split's random orders.
        workers: processes solving parts at once (1: one after another in this process).
    """

    def __init__(self, *, partitions: int = PARTITIONS, seed: int = 0, workers: int = 1) -> None:
        if partitions < 1 or workers < 1:
            raise ValueError(f"partitions and workers must be >= 1, got {partitions}, {workers}")
        self.partitions = partitions
        self.seed = seed
        self.workers = workers

    def with_settings(self, settings: PlannerSettings) -> PartitionedSelector:
        """This selector with the settings' ``partitions`` and ``seed``."""
        return PartitionedSelector(partitions=settings.partitions, seed=settings.seed,
                                   workers=self.workers)

    def select_flat(self, flat: FlatProblem, problem: SelectionProblem, *, start: float,
                    time_limit_s: float) -> Selection:
        """:meth:`select` on the arrays ``flat`` of ``problem``, the budget counted from
        ``start`` (a :func:`time.monotonic` instant)."""
        with paused():
            if time.monotonic() > start + _PARTS_SHARE * time_limit_s:
                # No time for the parts: the greedy floor over the whole (never nothing).
                return _repaired(problem, greedy_selection(flat, start), start + time_limit_s)
            whole = whole_lp(problem, flat, start + _WHOLE_SHARE * time_limit_s)
            parts = split(problem, self.partitions, self.seed, flat)
            subs = [(parts.problem(problem, p), part_arrays(flat, qs, parts.shares[p]))
                    for p, qs in enumerate(parts.parts)]
            del flat
            solved = self._solve_all(subs, start + _PARTS_SHARE * time_limit_s)
            chosen: list[int | None] = [None] * len(problem.candidates)
            for qs, part in zip(parts.parts, solved, strict=True):
                for q, k in zip(qs, part.chosen, strict=True):
                    chosen[q] = k
            bound = _bound(problem, parts, solved)
            merged = _selection(problem, tuple(chosen), bound, start)
            if whole is not None:
                bound, values = whole
                merged = replace(merged, unit_values=values)
                if bound < merged.goodput_bound:
                    merged = _selection(problem, merged.chosen, bound, start,
                                        unit_values=values)
            return replace(_repaired(problem, merged, start + time_limit_s),
                           seconds=time.monotonic() - start)

    def _solve_all(self, subs: list[tuple[SelectionProblem, FlatProblem]],
                   deadline: float) -> list[_Solved]:
        """Every part solved by ``deadline``: one after another, each given its share of
        the time left by the parts before it (by candidates); or in a pool of forked
        workers, all at once, given the time to the deadline over the rounds the pool needs."""
        sizes = [flat.n for _, flat in subs]
        if self.workers > 1 and len(subs) > 1:
            rounds = math.ceil(len(subs) / self.workers)
            limit = max(deadline - time.monotonic(), 0.1) / rounds
            _FORKED[:] = [(sub, flat, limit) for sub, flat in subs]
            try:
                ctx = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(min(self.workers, len(subs)), mp_context=ctx) as pool:
                    return list(pool.map(_solve_forked, range(len(subs))))
            finally:
                _FORKED.clear()
        out = []
        for p, (sub, flat) in enumerate(subs):
            left = max(deadline - time.monotonic(), 0.1)
            out.append(_solve(sub, flat, left * sizes[p] / max(sum(sizes[p:]), 1)))
        return out


def _bound(problem: SelectionProblem, parts: Split, solved: Sequence[_Solved]) -> float:
    """The smallest Lagrangian bound found from the parts' duals (module note), down to a
    multiple of the weight unit; never above the weight of the queries with candidates."""
    trivial = float(sum(w for qc, w in zip(problem.candidates, problem.weights, strict=True)
                        if qc.candidates))
    if not parts.rows:
        return trivial
    cap = np.array([problem.capacity[r] for r in parts.rows], dtype=float)
    limit = cap * (1 + EPS) + EPS
    user = parts.shares > 0
    duals = np.array([s.duals if s.duals is not None else np.zeros(len(cap)) for s in solved])
    solo = user.sum(axis=0) <= 1  # rows one part alone uses
    own = np.where(user, duals, 0.0).max(axis=0)

    def lagrangian(y: np.ndarray) -> float:
        return sum(s.term(y) for s in solved) + float(y @ limit)

    options = [np.where(solo, own, duals[p]) for p in range(len(solved))]
    options.append(np.where(solo, own, (parts.shares * duals).sum(axis=0)))
    best = min(options, key=lagrangian)
    value = lagrangian(best)
    for r in np.flatnonzero(~solo & (duals.max(axis=0) > 0)).tolist():
        y = best.copy()
        lo, hi = 0.0, 2.0 * float(duals[:, r].max())
        for _ in range(_GOLDEN_STEPS):  # L is convex along each coordinate
            a, b = hi - 0.618 * (hi - lo), lo + 0.618 * (hi - lo)
            y[r] = a
            fa = lagrangian(y)
            y[r] = b
            fb = lagrangian(y)
            lo, hi = (lo, b) if fa <= fb else (a, hi)
        y[r] = (lo + hi) / 2
        if (found := lagrangian(y)) < value:
            best, value = y, found
    unit = weight_unit(problem.weights)
    if unit is not None:
        value = math.floor(value / unit + 1e-9) * unit
    return min(value, trivial)


def _selection(problem: SelectionProblem, chosen: tuple[int | None, ...], bound: float,
               start: float, unit_values: tuple[tuple[Resource, float], ...] = ()) -> Selection:
    goodput = float(sum(w for w, k in zip(problem.weights, chosen, strict=True)
                        if k is not None))
    bound = max(bound, goodput)
    return Selection(chosen=chosen, goodput=goodput, cost_per_hour=problem.cost(chosen),
                     goodput_bound=bound, gap=(bound - goodput) / bound if bound > EPS else 0.0,
                     cost_gap=1.0, status="partitioned", seconds=time.monotonic() - start,
                     unit_values=unit_values)


def whole_lp(problem: SelectionProblem, flat: FlatProblem, deadline: float
             ) -> tuple[float, tuple[tuple[Resource, float], ...]] | None:
    """The bound of the goodput LP of the whole problem and its duals per capacity row, when
    its queries fall into few classes of alike queries (:mod:`circinus.select.alike`) and it
    is solved by ``deadline``; else ``None``. It is the LP relaxation's own bound, the best a
    Lagrangian can give (module note), at the cost of one LP over the classes."""
    alike = alike_classes(flat)
    if alike is None:
        return None
    lp = alike.solve(flat, -flat.weight, flat.usage, flat.cap, queries=np.arange(flat.nq),
                     equal=False, deadline=deadline, simplex=True)
    if lp is None:
        return None
    return (goodput_bound(flat, lp.duals, weight_unit(problem.weights)),
            tuple(zip(flat.rows, lp.duals.tolist(), strict=True)))


def _repaired(problem: SelectionProblem, merged: Selection, deadline: float) -> Selection:
    """``merged`` within every capacity, then offered to the queries left out (module note):
    :func:`~circinus.select.deployments.settle` with shared deployments, else each query left
    out, heaviest first, takes its cheapest candidate that fits."""
    if problem.deployments:
        return settle(problem, merged, deadline=deadline)
    used = problem.use(merged.chosen)
    cap = problem.capacity

    def fits(use: dict[Resource, float]) -> bool:
        return all(used.get(r, 0.0) + a <= cap[r] * (1 + 0.5 * EPS) + 0.5 * EPS
                   for r, a in use.items() if r in cap and a > 0)

    chosen = list(merged.chosen)
    out = sorted((q for q, k in enumerate(chosen)
                  if k is None and problem.candidates[q].candidates),
                 key=lambda q: (-problem.weights[q], q))
    for i, q in enumerate(out):
        if i % 64 == 0 and time.monotonic() > deadline:
            break
        cands = problem.candidates[q].candidates
        for k in sorted(range(len(cands)), key=lambda k: (cands[k].estimate.cost_per_hour, k)):
            use = cands[k].estimate.usage()
            if fits(use):
                for r, a in use.items():
                    used[r] = used.get(r, 0.0) + a
                chosen[q] = k
                break
    if tuple(chosen) == merged.chosen:
        return merged
    goodput = float(sum(w for w, k in zip(problem.weights, chosen, strict=True) if k is not None))
    bound = max(merged.goodput_bound, goodput)
    return replace(merged, chosen=tuple(chosen), goodput=goodput,
                   cost_per_hour=problem.cost(chosen),
                   goodput_bound=bound, gap=(bound - goodput) / bound if bound > EPS else 0.0)
