"""The per-query search interface: from queries to small sets of candidate plans."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from circinus.estimate.base import BaseEstimator, Estimate
from circinus.plan.records import QueryPlan
from circinus.spec.models import PlannerSettings, Query


@dataclass(frozen=True)
class Candidate:
    """A plan of one query that meets its SLO, with its estimate."""

    plan: QueryPlan
    estimate: Estimate


@dataclass(frozen=True)
class QueryCandidates:
    """The outcome of searching one query."""

    query: str
    candidates: tuple[Candidate, ...]
    """Plans meeting the query's SLO, cheapest first, none dominated by another in cost and
    resource use. Empty when no plan meets the SLO."""
    reason: str | None
    """Why there is no candidate (the SLO dimension that cannot be met), else ``None``."""
    evaluations: int
    """Complete plans whose end-to-end performance was estimated for this query (what a
    Vulcan-style planner profiles at every step). Work shared by a group of queries is billed
    to one of them, so the sum over queries is the total work."""


class BaseSearch(ABC):
    """Finds candidate plans per query.

    Implementations read the world only through the estimator's index and must be
    deterministic. ``search`` may share work between queries of the same batch; it never raises
    for a query that has no plan (that query gets an empty candidate set and a reason).

    A search whose :attr:`splittable` is true answers each query from its group alone
    (:meth:`groups`), so its groups may be searched apart, by other instances built the same
    way (:mod:`circinus.parallel`).
    """

    splittable: ClassVar[bool] = False
    """Whether :meth:`groups` splits a batch (see :meth:`groups`)."""

    def __init__(self, *, estimator: BaseEstimator, settings: PlannerSettings) -> None:
        self.estimator = estimator
        self.settings = settings

    @abstractmethod
    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        """Candidates for every query of ``queries``, in the same order."""

    def groups(self, queries: Sequence[Query]) -> list[list[int]]:
        """Indices of ``queries`` in groups that are searched independently, each in query
        order, groups in order of their first query: for any union of whole groups, ``search``
        of those queries (in query order) by a fresh instance with an estimator of the same
        index and settings gives every query what ``search(queries)`` gives it, candidates,
        reason and billed evaluations alike. Read-only.

        The default, one group of every query, is for a search whose answer for a query
        depends on the queries before it (an online one); it is not :attr:`splittable`.
        """
        return [list(range(len(queries)))] if queries else []
