"""The global selection interface: at most one candidate per query within every capacity."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from circinus.estimate.base import EPS
from circinus.search.base import QueryCandidates
from circinus.spec.index import WorldIndex

Resource = tuple[str, str]
"""``("device", name)``, ``("memory", device)`` or ``("link", "src->dst")``."""


@dataclass(frozen=True)
class SelectionProblem:
    """What the selector chooses from: candidates per query, their weights, the capacities."""

    candidates: tuple[QueryCandidates, ...]
    weights: tuple[float, ...]
    capacity: dict[Resource, float]

    @staticmethod
    def build(index: WorldIndex, candidates: Sequence[QueryCandidates]) -> SelectionProblem:
        """The problem of ``candidates`` (in query order) under ``index``'s capacities."""
        weights = {q.name: q.weight for q in index.world.queries}
        return SelectionProblem(tuple(candidates), tuple(weights[c.query] for c in candidates),
                                dict(index.capacities))


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
        """Total use of every resource by the chosen candidates."""
        total: dict[Resource, float] = {}
        for qc, k in zip(problem.candidates, self.chosen, strict=True):
            if k is not None:
                for r, amount in qc.candidates[k].estimate.usage().items():
                    total[r] = total.get(r, 0.0) + amount
        return total

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
