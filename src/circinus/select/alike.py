"""LPs of the selection over classes of alike queries: one column per candidate of a class.

NOTE: queries of one site and group have the same candidates (the same plans, estimates, use
and cost) and, in generated worlds and most real ones, the same weight. Such queries are
*alike*: any solution of the selection's LP can give each of them the mean of their values,
candidate by candidate, without changing the objective or any row. So the LP over classes,
``z[c,k]`` the share of class ``c``'s ``n_c`` members on its candidate ``k``, columns ``n_c``
times a member's, one row ``sum_k z[c,k] <= 1`` (or ``= 1``) per class, has the same optimum and
the same duals of the capacity rows as the LP over queries, with as many columns as classes
have candidates instead of queries. 100,000 generated queries fall into
far fewer classes than queries (module :mod:`circinus.select.lp` measures it).

Its solution is spread back over the members (:meth:`Alike.spread`): class ``c``'s candidate
``k`` carries ``v = n_c z[c,k]`` members' worth; ``floor(v)`` members take it whole, one after
another in query order, and the fractions left are poured over the next members, filling each
to 1. A class then has at most as many fractional members as candidates with a fraction, and
the vertex's fractional classes are at most its binding capacity rows: the rounding
(:mod:`circinus.select.rounding`) sees what it would see on the LP over queries.

Example: three alike queries with candidates ``a`` and ``b`` and ``z = (0.5, 0.5)``: ``v =
(1.5, 1.5)``; the first query takes ``a``, the second ``b``, and the third gets ``0.5`` of each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csc_array, csr_array, vstack

from circinus.select.flat import FlatProblem
from circinus.select.highs import LpSolution, solve_lp

_TINY = 1e-12  # a member's share below this is no share


@dataclass(frozen=True)
class Alike:
    """Classes of alike queries of a :class:`FlatProblem` (see the module note)."""

    label: np.ndarray
    """The class of each query; ``-1`` for a query without candidates."""
    first: np.ndarray
    """The first member (in query order) of each class: its candidates are the class's."""

    @property
    def size(self) -> int:
        """Number of classes."""
        return len(self.first)

    @staticmethod
    def of(flat: FlatProblem) -> Alike:
        """The classes of ``flat``'s queries: the same weight and, candidate by candidate, the
        same cost and resource use (compared exactly)."""
        label = np.full(flat.nq, -1, dtype=np.int64)
        seen: dict[tuple[object, ...], int] = {}
        firsts: list[int] = []
        cost, columns, weight, bounds = (flat.cost.tolist(), flat.columns,
                                         flat.query_weight.tolist(), flat.first.tolist())
        for q in range(flat.nq):
            lo, hi = bounds[q], bounds[q + 1]
            if lo == hi:
                continue
            key = (weight[q], tuple(cost[lo:hi]), columns[lo:hi])
            c = seen.get(key)
            if c is None:
                c = seen[key] = len(firsts)
                firsts.append(q)
            label[q] = c
        return Alike(label, np.array(firsts, dtype=np.int64))

    def columns(self, flat: FlatProblem) -> int:
        """Columns of the LP over the classes: the candidates of one member of each."""
        return int((flat.first[self.first + 1] - flat.first[self.first]).sum())

    def counts(self, queries: np.ndarray) -> np.ndarray:
        """Members of each class among ``queries`` (query indices, each at most once)."""
        lab = self.label[queries]
        return np.bincount(lab[lab >= 0], minlength=self.size)

    def solve(self, flat: FlatProblem, c: np.ndarray, a: csr_array | csc_array, b: np.ndarray,
              *,
              queries: np.ndarray, equal: bool, deadline: float,
              simplex: bool = False, warm: bool = False) -> LpSolution | None:
        """The LP ``min c x`` over the candidates of ``queries`` (ascending), at most one each
        (exactly one with ``equal``), within ``a x <= b`` (``a``'s columns are ``flat``'s
        candidates), solved over the classes (module note); ``None`` when not solved by
        ``deadline``. Returns the solution spread over ``flat``'s candidates, the duals of
        ``a``'s rows only; with ``warm``, its :attr:`~circinus.select.highs.LpSolution.again`
        solves it for other ``b`` (warm-started, :func:`~circinus.select.highs.solve_lp`)."""
        n = self.counts(queries)
        live = np.flatnonzero(n)
        reps = self.first[live]
        lo, hi = flat.first[reps], flat.first[reps + 1]
        width = hi - lo
        cols = (np.concatenate([np.arange(s, e) for s, e in zip(lo.tolist(), hi.tolist(),
                                                                 strict=True)])
                if len(live) else np.zeros(0, dtype=np.int64))
        which = np.repeat(np.arange(len(live)), width)  # the class row of each column
        scale = n[live][which].astype(float)
        block = csc_array(a)[:, cols] @ csr_array(
            (scale, (np.arange(len(cols)), np.arange(len(cols)))), shape=(len(cols), len(cols)))
        one = csr_array((np.ones(len(cols)), (which, np.arange(len(cols)))),
                        shape=(len(live), len(cols)))
        cc = c[cols] * scale
        ones = np.ones(0 if equal else len(live))  # the class rows above a's, if inequalities
        if equal:
            lp = solve_lp(cc, csr_array(block), b, a_eq=one, b_eq=np.ones(len(live)),
                          deadline=deadline, simplex=simplex, warm=warm)
        else:
            lp = solve_lp(cc, vstack([one, block]).tocsr(), np.concatenate([ones, b]),
                          deadline=deadline, simplex=simplex, warm=warm)

        def spread(lp: LpSolution | None) -> LpSolution | None:
            if lp is None:
                return None
            resolve = lp.again
            again = None if resolve is None else (
                lambda b, deadline: spread(resolve(np.concatenate([ones, b]), deadline)))
            return LpSolution(self.spread(flat, queries, live, cols, lp.x * scale),
                              lp.objective, lp.duals[len(ones):], again)

        return spread(lp)

    def spread(self, flat: FlatProblem, queries: np.ndarray, live: np.ndarray, cols: np.ndarray,
               worth: np.ndarray) -> np.ndarray:
        """The values over ``flat``'s candidates of the class solution ``worth`` (members'
        worth per column ``cols`` of the classes ``live``), spread over each class's members
        among ``queries`` (module note)."""
        x = np.zeros(flat.n)
        lab = self.label[queries]
        order = np.argsort(lab, kind="stable")
        order = order[lab[order] >= 0]
        members = np.split(queries[order], np.searchsorted(lab[order], live)[1:])
        offset = 0
        for c, mine in zip(live.tolist(), members, strict=True):
            rep = int(self.first[c])
            width = int(flat.first[rep + 1] - flat.first[rep])
            values = worth[offset:offset + width]
            offset += width
            base = flat.first[mine]
            at = 0
            fractions = []
            for k, v in enumerate(values.tolist()):
                whole = min(math.floor(v + 1e-9), len(mine) - at)
                if whole > 0:
                    x[base[at:at + whole] + k] = 1.0
                    at += whole
                if v - whole > _TINY:
                    fractions.append((k, v - whole))
            room = 1.0
            for k, v in fractions:
                while v > _TINY and at < len(mine):
                    t = min(v, room)
                    x[base[at] + k] += t
                    v -= t
                    room -= t
                    if room <= _TINY:
                        at, room = at + 1, 1.0
        return x
