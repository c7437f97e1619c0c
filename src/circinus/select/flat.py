"""The selection problem as arrays, and a packing of chosen candidates into its capacities.

NOTE: every selector that works at scale needs the same three things: the candidates numbered
``0..n-1`` in query order (query ``q`` owns ``first[q]:first[q+1]``), their weights, costs and
resource use as a sparse matrix, and a cheap exact test "does candidate ``j`` still fit". A
:class:`Packing` keeps the capacity left per row as plain Python floats, since the test runs
once per candidate per pass and touches two or three rows. Capacities are held to
``cap + slack``, half the tolerance of :meth:`Selection.fits`, so float drift in the running
totals can never turn into a selection the planner rejects.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import numpy as np
from scipy.sparse import csc_array, csr_array

from circinus.collector import paused
from circinus.estimate.base import EPS, Estimate
from circinus.select.base import BaseSelector, Resource, Selection, SelectionProblem


class DeadlinePassed(Exception):
    """Raised inside a kernel when its deadline passes; the caller keeps what it has."""


@dataclass(frozen=True)
class FlatProblem:
    """The candidates of a :class:`SelectionProblem` as arrays (see the module note)."""

    first: np.ndarray
    """``nq + 1`` offsets: query ``q`` owns candidates ``first[q]:first[q+1]``."""
    owner: np.ndarray
    """The query of each candidate."""
    weight: np.ndarray
    """The weight of each candidate's query."""
    query_weight: np.ndarray
    """The weight of each query."""
    cost: np.ndarray
    """Cost per hour of each candidate."""
    usage: csc_array
    """Resource use, one row per capacity (``rows``), one column per candidate."""
    rows: tuple[Resource, ...]
    cap: np.ndarray
    """Capacity of each row."""
    columns: tuple[tuple[tuple[int, float], ...], ...]
    """Per candidate, its nonzero ``(row, amount)`` pairs (the usage matrix's columns)."""

    @property
    def n(self) -> int:
        """Number of candidates."""
        return len(self.owner)

    @cached_property
    def by_cost(self) -> np.ndarray:
        """The candidates, each query's cheapest first (ties by index), in query order: query
        ``q``'s are ``by_cost[first[q]:first[q+1]]`` (sorted once: the rounding's passes
        asked for each admitted query's order anew, in Python, about a second at 100,000
        generated queries)."""
        return np.lexsort((np.arange(self.n), self.cost, self.owner))

    @property
    def nq(self) -> int:
        """Number of queries."""
        return len(self.first) - 1

    def of(self, q: int) -> range:
        """The candidates of query ``q``."""
        return range(int(self.first[q]), int(self.first[q + 1]))

    def limit(self) -> np.ndarray:
        """What :meth:`Selection.fits` allows each row: ``cap (1 + EPS) + EPS``."""
        return self.cap * (1 + EPS) + EPS

    def query_rows(self) -> csr_array:
        """The ``nq x n`` matrix of "at most one candidate per query" rows."""
        return csr_array((np.ones(self.n), (self.owner, np.arange(self.n))),
                         shape=(self.nq, self.n))


def flatten(problem: SelectionProblem) -> FlatProblem:
    """The arrays of ``problem``, built whatever the clock says: every selector at scale needs
    them for its greedy floor (:func:`circinus.select.lp.greedy_packing`). The queries of a
    site and group share their estimates: each distinct estimate's column is built once, and
    the candidates' columns are picked from those (one pass over the candidates in Python)."""
    rows = tuple(sorted(problem.capacity))
    row_of = {r: i for i, r in enumerate(rows)}
    first = [0]
    pick: list[int] = []  # per candidate, its estimate among the distinct ones
    distinct: dict[int, int] = {}
    estimates: list[Estimate] = []
    for qc in problem.candidates:
        for cand in qc.candidates:
            est = cand.estimate
            u = distinct.get(id(est))
            if u is None:
                u = distinct[id(est)] = len(estimates)
                estimates.append(est)
            pick.append(u)
        first.append(len(pick))
    made = [tuple(sorted((row_of[r], a) for r, a in est.usage().items()
                         if r in row_of and a > 0)) for est in estimates]
    bounds = np.array(first, dtype=np.int64)
    own = np.repeat(np.arange(len(problem.candidates), dtype=np.int64), bounds[1:] - bounds[:-1])
    n = len(own)
    at = np.array(pick, dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum([len(col) for col in made])]).astype(np.int64)
    one = csc_array((np.array([a for col in made for _, a in col], dtype=float),
                     np.array([i for col in made for i, _ in col], dtype=np.int64), ptr),
                    shape=(len(rows), len(made)))
    qw = np.asarray(problem.weights, dtype=float).reshape(-1)
    return FlatProblem(
        first=bounds, owner=own,
        weight=qw[own], query_weight=qw,
        cost=np.array([est.cost_per_hour for est in estimates], dtype=float)[at] if n
        else np.zeros(0), usage=csc_array(one[:, at]) if n else csc_array((len(rows), 0)),
        rows=rows, cap=np.array([problem.capacity[r] for r in rows], dtype=float),
        columns=tuple(made[u] for u in pick),
    )


def per_query_max(flat: FlatProblem, values: np.ndarray) -> np.ndarray:
    """The largest of ``values`` (one per candidate) per query; ``-inf`` for a query without
    candidates."""
    out = np.full(flat.nq, -np.inf)
    has = flat.first[1:] > flat.first[:-1]
    if flat.n:
        out[has] = np.maximum.reduceat(values, flat.first[:-1][has])
    return out


def weight_unit(weights: tuple[float, ...]) -> float | None:
    """The largest ``u`` of which every weight is a whole multiple (within 1e-9), if the weights
    are fractions with denominators up to 1,000; else ``None``.

    Example: ``(0.5, 1.0, 2.0)`` -> 0.5; ``(1.0, 2.0)`` -> 1.0; ``(1/3, 1.0)`` -> 1/3.
    """
    fracs = []
    for w in set(weights):
        f = Fraction(w).limit_denominator(1000)
        if abs(float(f) - w) > 1e-9 * max(1.0, abs(w)):
            return None
        fracs.append(f)
    if not fracs:
        return None
    num = 0
    den = 1
    for f in fracs:
        den = den * f.denominator // math.gcd(den, f.denominator)
    for f in fracs:
        num = math.gcd(num, f.numerator * (den // f.denominator))
    return num / den if num else None


class Packing:
    """A feasible choice of at most one candidate per query, with the capacity left.

    Every method keeps the packing within ``cap + slack`` on every row (see the module note);
    :meth:`put` asserts it.
    """

    def __init__(self, flat: FlatProblem) -> None:
        self.flat = flat
        self.free: list[float] = list(flat.cap + 0.5 * (flat.cap * EPS + EPS))
        self.choice: list[int] = [-1] * flat.nq
        """The chosen candidate of each query, ``-1`` when not admitted."""

    def copy(self) -> Packing:
        """An independent copy."""
        out = Packing.__new__(Packing)
        out.flat, out.free, out.choice = self.flat, list(self.free), list(self.choice)
        return out

    def fits(self, j: int) -> bool:
        """Whether candidate ``j`` fits in what is left (its query's own choice still held)."""
        free = self.free
        return all(a <= free[i] for i, a in self.flat.columns[j])

    def fits_instead(self, j: int) -> bool:
        """Whether candidate ``j`` fits once its query's current choice is released."""
        held = self.choice[int(self.flat.owner[j])]
        if held < 0:
            return self.fits(j)
        back = dict(self.flat.columns[held])
        free = self.free
        return all(a <= free[i] + back.get(i, 0.0) for i, a in self.flat.columns[j])

    def put(self, j: int) -> None:
        """Choose candidate ``j`` for its query (releasing its previous choice)."""
        q = int(self.flat.owner[j])
        self.drop(q)
        assert self.fits(j), f"candidate {j} does not fit"
        for i, a in self.flat.columns[j]:
            self.free[i] -= a
        self.choice[q] = j

    def drop(self, q: int) -> None:
        """Release query ``q``'s choice, if any."""
        held = self.choice[q]
        if held >= 0:
            for i, a in self.flat.columns[held]:
                self.free[i] += a
            self.choice[q] = -1

    def chosen(self) -> np.ndarray:
        """The chosen candidates (indices into the flat arrays)."""
        return np.array([j for j in self.choice if j >= 0], dtype=np.int64)

    def goodput(self) -> float:
        """Sum of the weights of the admitted queries."""
        return float(self.flat.weight[self.chosen()].sum())

    def cost(self) -> float:
        """Sum of the costs of the chosen candidates."""
        return float(self.flat.cost[self.chosen()].sum())


class FlatSelector(BaseSelector):
    """A selector that works on a problem's arrays: :meth:`select` builds them
    (:func:`flatten`) and hands them to :meth:`select_flat`, which a caller that already holds
    them (another selector choosing among methods) calls directly."""

    def select(self, problem: SelectionProblem, *, time_limit_s: float) -> Selection:
        start = time.monotonic()
        with paused():
            return self.select_flat(flatten(problem), problem, start=start,
                                    time_limit_s=time_limit_s)

    @abstractmethod
    def select_flat(self, flat: FlatProblem, problem: SelectionProblem, *, start: float,
                    time_limit_s: float) -> Selection:
        """:meth:`select` on the arrays ``flat`` of ``problem``, the budget counted from
        ``start`` (a :func:`time.monotonic` instant)."""

