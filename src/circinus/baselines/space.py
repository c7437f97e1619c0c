"""The plan space of one query as the baselines see it: no pruning beyond the SLO's accuracy.

NOTE: the baselines reproduce planners that do not know Circinus's tricks, so their space is the
plain one: every configuration of every operator (no dominance pruning) and, per configuration,
every placement option of :func:`~circinus.search.placements.stage_options` on the devices the
query may reach. Accuracy-feasible configuration vectors are the one piece of decomposition all
of them share (each paper filters variants by accuracy before placing them); they are computed
once per (pipeline, accuracy floor) by :class:`~circinus.search.vectors.VectorCache`.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from circinus.estimate.base import BaseEstimator
from circinus.plan.records import QueryPlan, StagePlan
from circinus.search.base import BaseSearch, QueryCandidates
from circinus.search.placements import Option, stage_options
from circinus.search.vectors import VectorCache
from circinus.spec.index import ConfigKey, WorldIndex
from circinus.spec.models import Device, PlannerSettings, Query

Pick = tuple[ConfigKey, Option]
"""One stage's decision: its configuration and placement option."""


@dataclass(frozen=True)
class PlanSpace:
    """Per stage (topological order), the configurations that can run and their options."""

    stages: tuple[str, ...]
    choices: tuple[tuple[tuple[ConfigKey, tuple[Option, ...]], ...], ...]
    """``choices[i]``: ``(configuration, options)`` of stage ``stages[i]``, configurations in
    the operator's order, each with at least one option."""

    @property
    def empty(self) -> bool:
        """Whether some stage cannot run anywhere (the query has no plan at all)."""
        return any(not c for c in self.choices)

    def size(self) -> int:
        """Number of complete plans (e.g. 2 stages with 3 and 4 options in all: 12)."""
        return math.prod(sum(len(opts) for _, opts in c) for c in self.choices)

    def options(self, stage: int, config: ConfigKey) -> tuple[Option, ...]:
        """The options of configuration ``config`` of stage number ``stage`` (may be empty)."""
        return next((opts for c, opts in self.choices[stage] if c == config), ())

    def plan(self, query: Query, picks: Sequence[Pick]) -> QueryPlan:
        """The plan of ``query`` making ``picks`` (one per stage, in order)."""
        return QueryPlan(query.name, tuple(
            StagePlan(stage, config, opt.batch, opt.placement, opt.level)
            for stage, (config, opt) in zip(self.stages, picks, strict=True)
        ))


def plan_space(index: WorldIndex, settings: PlannerSettings, query: Query,
               devices: Sequence[Device], *, single_device: bool = False,
               fewest_replicas: bool = False) -> PlanSpace:
    """The plan space of ``query`` on ``devices``; ``single_device`` keeps only options that
    put a stage on one device, ``fewest_replicas`` only the first (fewest-replica) option of
    each batch size, set of devices and utilisation level (a shared deployment's level is the
    target of its autoscaling, not extra replicas)."""
    pipe = index.pipelines[query.pipeline]
    choices = []
    for stage in pipe.order:
        op = index.operators[pipe.operator_of[stage]]
        per_config = []
        for config in op.configs:
            opts = tuple(o for o in stage_options(index, settings, query, stage, config, devices)
                         if not single_device or len(o.placement) == 1)
            if fewest_replicas:
                first: dict[tuple[int, tuple[str, ...], float | None], Option] = {}
                for o in opts:
                    first.setdefault((o.batch, tuple(r.device for r in o.placement), o.level), o)
                opts = tuple(first.values())
            if opts:
                per_config.append((config, opts))
        choices.append(tuple(per_config))
    return PlanSpace(pipe.order, tuple(choices))


class PerQuerySearch(BaseSearch):
    """Base of the baselines: every query is searched on its own, nothing is shared.

    Subclasses implement :meth:`_search_one`; ``position`` is the query's index in the batch,
    which stochastic searches add to ``settings.seed`` so that each query has its own stream.
    """

    selector: ClassVar[str] = "milp"
    """Registry key of the selector this baseline is meant to run with."""

    def __init__(self, *, estimator: BaseEstimator, settings: PlannerSettings) -> None:
        super().__init__(estimator=estimator, settings=settings)
        self._vectors = VectorCache(estimator)

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        return [self._search_one(i, q) for i, q in enumerate(queries)]

    @abstractmethod
    def _search_one(self, position: int, query: Query) -> QueryCandidates:
        """Candidates of ``query``, the ``position``-th of the batch."""
