"""The global selection interface: at most one candidate per query within every capacity."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from circinus.estimate.base import EPS
from circinus.search.base import QueryCandidates
from circinus.select.deployments import DeploymentSpec, deployment_table, ledger
from circinus.spec.index import WorldIndex

Resource = tuple[str, str]
"""``("device", name)``, ``("memory", device)`` or ``("link", "src->dst")``."""


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

    @staticmethod
    def build(index: WorldIndex, candidates: Sequence[QueryCandidates]) -> SelectionProblem:
        """The problem of ``candidates`` (in query order) under ``index``'s capacities."""
        specs = {q.name: q for q in index.world.queries}
        plans = [c.plan for qc in candidates for c in qc.candidates]
        pipes = [specs[qc.query].pipeline for qc in candidates for _ in qc.candidates]
        return SelectionProblem(tuple(candidates),
                                tuple(specs[c.query].weight for c in candidates),
                                dict(index.capacities), deployment_table(index, plans, pipes))

    def use(self, chosen: Sequence[int | None]) -> dict[Resource, float]:
        """Total use of every resource by ``chosen`` (a candidate index or ``None`` per
        query), shared deployments in whole replicas."""
        if self.deployments:
            return dict(ledger(self, chosen).used)
        total: dict[Resource, float] = {}
        for qc, k in zip(self.candidates, chosen, strict=True):
            if k is not None:
                for r, amount in qc.candidates[k].estimate.usage().items():
                    total[r] = total.get(r, 0.0) + amount
        return total

    def cost(self, chosen: Sequence[int | None]) -> float:
        """Cost per hour of ``chosen``, shared deployments in whole replicas."""
        if self.deployments:
            return ledger(self, chosen).cost
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
    """``optimal``, ``time_limit`` (feasible, not proven), ``rounded`` (the LP relaxation
    rounded and improved; the gap is against the LP's proven bound) or ``greedy`` (fallback)."""
    seconds: float

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
