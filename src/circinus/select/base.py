"""The global selection interface: at most one candidate per query within every capacity."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from circinus.estimate.base import EPS, Estimate
from circinus.plan.records import QueryPlan
from circinus.search.base import QueryCandidates
from circinus.select.deployments import (
    DeploymentSpec,
    Ledger,
    deployment_table,
    ledger,
    own_use,
)
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings

_KINDS = ("kinds",)
"""The memo's key of the kinds :meth:`SelectionProblem.per_estimate` has worked out."""
_USE_FIELDS = ("device_units", "device_memory_gb", "link_mbps", "compute_cost_per_hour",
               "network_cost_per_hour", "deployment_load", "deployment_rate",
               "deployment_held", "deployment_floor", "deployment_burst")
"""The fields of an estimate that what :meth:`SelectionProblem.per_estimate` works out may
read (its use, cost and deployments): equal for an alias (:meth:`SelectionProblem.alias`)."""
Resource = tuple[str, str]
"""``("device", name)``, ``("memory", device)`` or ``("link", "src->dst")``."""
_T = TypeVar("_T")


@dataclass(frozen=True)
class SelectionProblem:
    """What the selector chooses from: candidates per query, their weights, the capacities and
    the shared deployments the candidates join.

    A candidate's usage counts its share of each shared deployment (``load / level`` replicas'
    worth); :meth:`use` and :meth:`cost` count whole replicas per deployment
    (:mod:`circinus.select.deployments`). Without shared deployments both are plain sums.
    """

    candidates: tuple[QueryCandidates, ...]
    weights: tuple[float, ...]
    capacity: dict[Resource, float]
    deployments: Mapping[str, DeploymentSpec] = field(default_factory=dict)
    """Every shared deployment some candidate joins, by resource name."""
    _memo: dict[object, object] = field(default_factory=dict, init=False, compare=False,
                                        repr=False)
    """What is worked out once per problem (per distinct estimate, :meth:`per_estimate`; the
    last ledger of :meth:`use` and :meth:`cost`); a problem made by :func:`dataclasses.replace`
    starts empty, one made by :meth:`with_candidates` keeps the per-estimate part."""

    @staticmethod
    def build(index: WorldIndex, candidates: Sequence[QueryCandidates]) -> SelectionProblem:
        """The problem of ``candidates`` (in query order) under ``index``'s capacities."""
        specs = {q.name: q for q in index.world.queries}
        plans: list[QueryPlan] = []
        pipes: list[str] = []
        known: set[str] = set()
        seen: set[int] = set()  # estimates looked at (alike queries share theirs)
        for qc in candidates:  # only plans that join a deployment not met before
            for c in qc.candidates:
                if id(c.estimate) in seen:
                    continue
                seen.add(id(c.estimate))
                joins = c.estimate.deployment_load
                if joins and not all(name in known for name, _ in joins):
                    plans.append(c.plan)
                    pipes.append(specs[qc.query].pipeline)
                    known.update(name for name, _ in joins)
        return SelectionProblem(tuple(candidates),
                                tuple(specs[c.query].weight for c in candidates),
                                dict(index.capacities), deployment_table(index, plans, pipes))

    @property
    def candidate_count(self) -> int:
        """Candidates over every query (what the selectors' size thresholds count)."""
        return sum(len(qc.candidates) for qc in self.candidates)

    def own(self, q: int, k: int) -> tuple[dict[Resource, float], float]:
        """:func:`~circinus.select.deployments.own_use` of candidate ``k`` of query ``q``
        (memoised per estimate; do not mutate)."""
        return self.per_estimate(q, k, "own", lambda est: own_use(est, self.deployments))

    def per_estimate(self, q: int, k: int, kind: str, make: Callable[[Estimate], _T]) -> _T:
        """``make(estimate)`` of candidate ``k`` of query ``q``, worked out once per distinct
        estimate and ``kind`` (alike queries share their candidates' estimates; memoised,
        do not mutate)."""
        est = self.candidates[q].candidates[k].estimate
        key = (kind, id(est))
        hit = self._memo.get(key)
        if hit is None or hit[0] is not est:  # type: ignore[index]
            hit = self._memo[key] = (est, make(est))
            kinds = self._memo.setdefault(_KINDS, set())
            kinds.add(kind)  # type: ignore[attr-defined]
        return hit[1]  # type: ignore[index,no-any-return]

    def with_candidates(self, candidates: Sequence[QueryCandidates], *,
                        capacity: Mapping[Resource, float] | None = None,
                        again: Iterable[tuple[Estimate, Estimate]] = ()) -> SelectionProblem:
        """This problem with ``candidates`` instead (the same queries and deployments; the
        same capacities, or ``capacity`` over the same rows), keeping what was worked out per
        estimate (:meth:`per_estimate`: it depends only on the estimate, the deployments and
        which capacity rows there are), so that a check that changes a few queries'
        candidates does not work out every other one again. ``again``: ``(before, after)``
        pairs of a plan's estimate and its estimate made anew (at other link loads), each
        :meth:`alias`-ed where it uses and costs the same."""
        out = replace(self, candidates=tuple(candidates))
        if capacity is not None:
            assert capacity.keys() == self.capacity.keys(), "other capacity rows"
            out = replace(out, capacity=dict(capacity))
        out._memo.update((key, value) for key, value in self._memo.items()
                         if isinstance(key, tuple))  # per estimate (not the book, the stash)
        for before, after in again:
            out.alias(after, before)
        return out

    def alias(self, estimate: Estimate, like: Estimate) -> bool:
        """Where ``estimate`` uses and costs what ``like`` does (every field of
        :data:`_USE_FIELDS` equal: a plan estimated again at other link loads, by an estimator
        of the same deployments' state), what was worked out for ``like`` per estimate is
        noted for it too, and is not worked out again (at 100,000 generated queries the link
        check's repair looked up ~0.5 s of these anew). Whether it was: an estimate of the
        plan by an estimator of another state (sized deployments: other held shares) is not
        an alias."""
        if not all(getattr(estimate, f) == getattr(like, f) for f in _USE_FIELDS):
            return False
        for kind in self._memo.get(_KINDS, ()):  # type: ignore[attr-defined]
            hit = self._memo.get((kind, id(like)))
            if hit is not None and hit[0] is like:  # type: ignore[index]
                self._memo[kind, id(estimate)] = (estimate, hit[1])  # type: ignore[index]
        return True

    def stash(self, key: str, value: object) -> None:
        """Keep ``value`` for one later :meth:`take` (a selector's state that a later step
        may go on from: the goodput LP's solver, :data:`~circinus.select.lp.GOODPUT_LP`)."""
        self._memo[f"stash {key}"] = value

    def take(self, key: str) -> object | None:
        """What was :meth:`stash`-ed under ``key`` (forgotten here), or ``None``."""
        return self._memo.pop(f"stash {key}", None)

    def book(self, chosen: Sequence[int | None]) -> Ledger:
        """The exact ledger of ``chosen`` (:func:`~circinus.select.deployments.ledger`),
        kept for the next call with the same choices: the checks ask for the use and cost of
        one selection several times, and a ledger of 10,000 queries takes about a second to
        build. Read-only: :meth:`Ledger.add` and :meth:`Ledger.remove` on it would falsify
        the next answer (build one with :func:`ledger` to change)."""
        key = tuple(chosen)
        last = self._memo.get("book")
        if last is not None and last[0] == key:  # type: ignore[index]
            return last[1]  # type: ignore[index,no-any-return]
        return self.keep(ledger(self, key))

    def keep(self, book: Ledger) -> Ledger:
        """Keep ``book`` (a ledger of this problem that its maker is done changing) as the
        one :meth:`book` gives for its choices."""
        key = tuple(book.chosen.get(q) for q in range(len(self.candidates)))
        self._memo["book"] = (key, book)
        return book

    def use(self, chosen: Sequence[int | None]) -> dict[Resource, float]:
        """Total use of every resource by ``chosen`` (a candidate index or ``None`` per
        query), shared deployments in whole replicas."""
        if self.deployments:
            return dict(self.book(chosen).used)
        total: dict[Resource, float] = {}
        for qc, k in zip(self.candidates, chosen, strict=True):
            if k is not None:
                for r, amount in qc.candidates[k].estimate.usage().items():
                    total[r] = total.get(r, 0.0) + amount
        return total

    def cost(self, chosen: Sequence[int | None]) -> float:
        """Cost per hour of ``chosen``, shared deployments in whole replicas."""
        if self.deployments:
            return self.book(chosen).cost
        return sum(qc.candidates[k].estimate.cost_per_hour
                   for qc, k in zip(self.candidates, chosen, strict=True) if k is not None)


@dataclass(frozen=True)
class Selection:
    """The chosen candidate per query and the solver's account of how good the choice is."""

    chosen: tuple[int | None, ...]
    """Index into each query's candidates, or ``None`` when the query is not admitted."""
    goodput: float
    """Weighted number of admitted queries."""
    cost_per_hour: float
    goodput_bound: float
    """Proven upper bound on the achievable goodput."""
    gap: float
    """Relative optimality gap on goodput, ``(bound - goodput) / bound`` (0 when proven)."""
    cost_gap: float
    """Relative gap of the cost among selections of this goodput (0 when proven)."""
    status: str
    """``optimal``, ``time_limit`` (feasible, not proven), ``stalled`` (feasible, not proven:
    the exact solver stopped when its incumbent stopped improving, before the budget ran
    out; :mod:`circinus.select.shared_milp`), ``rounded`` (the LP relaxation
    rounded and improved; the gap is against the LP's proven bound), ``partitioned`` (parts
    selected apart, merged and repaired; the gap is against a Lagrangian bound of the whole
    problem, :mod:`circinus.select.partitioned`) or ``greedy`` (fallback)."""
    seconds: float
    unit_values: tuple[tuple[Resource, float], ...] = ()
    """The goodput LP's dual of every capacity row it solved, ``(resource, value)``: about how
    much more goodput (weighted queries) one more unit of the resource (a device unit, a GB, a
    Mbit/s) would admit, in the relaxation (shares of replicas, fractional queries). Valid for
    small changes only, and 0 for a resource with room to spare. Empty when the selector solved
    no goodput LP (first come, first served; a budget spent before the LP)."""

    def used(self, problem: SelectionProblem) -> dict[Resource, float]:
        """Total use of every resource by the chosen candidates (:meth:`SelectionProblem.use`)."""
        return problem.use(self.chosen)

    def fits(self, problem: SelectionProblem) -> bool:
        """Whether no capacity is exceeded (within :data:`EPS` relative)."""
        return all(
            amount <= problem.capacity[r] * (1 + EPS) + EPS
            for r, amount in self.used(problem).items() if r in problem.capacity
        )


class BaseSelector(ABC):
    """Chooses at most one candidate per query, maximising goodput first and cost second.

    ``select`` must honour ``time_limit_s`` (returning its best answer so far) and never return
    a selection that exceeds a capacity.
    """

    @abstractmethod
    def select(self, problem: SelectionProblem, *, time_limit_s: float) -> Selection:
        """Solve ``problem`` within ``time_limit_s`` seconds."""

    def with_settings(self, settings: PlannerSettings) -> BaseSelector:
        """This selector as the planner ``settings`` configure it (a new one; by default
        itself: most selectors have nothing to configure)."""
        return self
