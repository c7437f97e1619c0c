"""What the online planner plans with: the search, estimator and explainer of the current
topology, the selector, and the time and work they have spent.

A capacity change rebuilds them (their caches are valid for one topology only); the time spent
and the kernel evaluations carry over, so the planner's result reports its whole history as the
batch planner reports one run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from circinus.errors import SpecError
from circinus.estimate.analytic import AnalyticEstimator
from circinus.planner import SEARCHES, SELECTORS
from circinus.search.base import BaseSearch, QueryCandidates
from circinus.select.base import BaseSelector, Selection, SelectionProblem
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings, Query
from circinus.whynot import NearestSlo


class PlanningTools:
    """The search, estimator, selector and explainer of one topology (see module note).

    Args:
        index: the topology (devices and links; no queries needed).
        search: registry key of the per-query search (:data:`circinus.planner.SEARCHES`).
        selector: registry key of the global selector (:data:`circinus.planner.SELECTORS`).
        settings: the planner settings they run with.

    Raises :class:`~circinus.errors.SpecError` for an unknown registry key.
    """

    def __init__(self, index: WorldIndex, *, search: str, selector: str,
                 settings: PlannerSettings) -> None:
        if search not in SEARCHES:
            raise SpecError(f"unknown search {search!r}; choose from {sorted(SEARCHES)}")
        if selector not in SELECTORS:
            raise SpecError(f"unknown selector {selector!r}; choose from {sorted(SELECTORS)}")
        self.search_key, self.selector_key, self.settings = search, selector, settings
        self.seconds = {"search": 0.0, "select": 0.0, "why_not": 0.0}
        """Wall time spent searching, selecting and explaining rejections so far, s."""
        self.kernels = 0
        """Kernel evaluations of the estimators of earlier topologies and of the checks."""
        self._make(index)

    def rebuild(self, index: WorldIndex) -> None:
        """Search, estimator and explainer for ``index`` (their caches start empty)."""
        self.kernels += self.estimator.kernel_evaluations
        self._make(index)

    def _make(self, index: WorldIndex) -> None:
        self.index = index
        self.estimator = AnalyticEstimator(index=index)
        self.search: BaseSearch = SEARCHES[self.search_key](estimator=self.estimator,
                                                            settings=self.settings)
        self.explainer = NearestSlo(search=self.search)

    @property
    def kernel_evaluations(self) -> int:
        """Kernel evaluations so far, of every estimator and check."""
        return self.kernels + self.search.estimator.kernel_evaluations

    def selector(self) -> BaseSelector:
        """A fresh instance of the global selector."""
        return SELECTORS[self.selector_key]()

    def find(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        """The candidates of ``queries`` (timed)."""
        t0 = time.monotonic()
        found = self.search.search(queries)
        self.seconds["search"] += time.monotonic() - t0
        return found

    def reselect(self, problem: SelectionProblem) -> Selection:
        """The selector's answer to ``problem`` within the settings' budget (timed)."""
        t0 = time.monotonic()
        sel = self.selector().select(problem, time_limit_s=self.settings.time_limit_s)
        self.seconds["select"] += time.monotonic() - t0
        return sel
