"""The plan space of one query as the baselines see it: no pruning beyond the SLO's accuracy.

NOTE: the baselines reproduce planners that do not know Circinus's tricks, so their space is the
plain one: every configuration of every operator (no dominance pruning) and, per configuration,
every placement option of :func:`~circinus.search.placements.stage_options` on the devices the
query may reach. Accuracy-feasible configuration vectors are the one piece of decomposition all
of them share (each paper filters variants by accuracy before placing them); they are computed
once per (pipeline, accuracy floor) by :class:`~circinus.search.vectors.VectorCache`.

Each stage's options are sized at the rate the estimator gives the stage
(:func:`~circinus.estimate.flow.at_rate`): the query's (or its source's own) rate times the
stage's visits per request, the probability that a request takes a branch to it times, after a
fan-out, the objects per request. The objects per request follow the fan-out stage's
configuration, so a pipeline with a fan-out has one space per configuration of that stage
(:func:`plan_spaces`), the stages after it sized for that configuration's objects.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from circinus.estimate.base import BaseEstimator
from circinus.estimate.flow import at_rate
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
    fanout: tuple[int, ConfigKey] | None = None
    """``(position, configuration)`` of the fan-out stage when the space holds only that
    configuration of it, the stages after it sized for its objects (:func:`plan_spaces`)."""
    visits: tuple[float, ...] = ()
    """``visits[i]``: sub-requests per request at stage ``stages[i]`` (all 1 when empty)."""
    certain: frozenset[str] = frozenset()
    """The stages every request visits exactly once (no branch skips them, no fan-out
    multiplies them): a stage whose mean alone is above the latency bound puts every request
    above it only there; a pipeline without branches or fan-out has all its stages here."""

    def rated(self, query: Query, stage: int) -> Query:
        """``query`` as stage number ``stage`` sees it: its rate times the stage's visits."""
        return at_rate(query, self.visits[stage]) if self.visits else query

    def holds(self, configs: Sequence[ConfigKey]) -> bool:
        """Whether plans whose first stages run ``configs`` (a prefix of a vector, in stage
        order) are in this space: they agree with its fan-out configuration, if it is known
        by then."""
        if self.fanout is None:
            return True
        at, config = self.fanout
        return len(configs) <= at or configs[at] == config

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
               fewest_replicas: bool = False, fanout: ConfigKey | None = None) -> PlanSpace:
    """The plan space of ``query`` on ``devices``; ``single_device`` keeps only options that
    put a stage on one device, ``fewest_replicas`` only the first (fewest-replica) option of
    each batch size, set of devices and utilisation level (a shared deployment's level is the
    target of its autoscaling, not extra replicas). Each stage's options are sized at its
    visits per request (module note); with a fan-out, at the objects of ``fanout``, the
    configuration of the fan-out stage the space then holds alone (its first configuration when
    ``None``; :func:`plan_spaces` gives them all)."""
    pipe = index.pipelines[query.pipeline]
    fan = pipe.fanout_stage
    if fan is not None and fanout is None:
        fanout = index.operators[pipe.operator_of[fan]].configs[0]
    k_mean = 1.0 if fan is None or fanout is None else (
        index.operators[pipe.operator_of[fan]].fanout[fanout][0])
    visits, _ = pipe.visits(k_mean)
    choices = []
    for stage in pipe.order:
        op = index.operators[pipe.operator_of[stage]]
        rated = at_rate(query, visits[stage])
        per_config = []
        for config in op.configs:
            if stage == fan and config != fanout:
                continue
            opts = tuple(o for o in stage_options(index, settings, rated, stage, config, devices)
                         if not single_device or len(o.placement) == 1)
            if fewest_replicas:
                first: dict[tuple[int, tuple[str, ...], float | None], Option] = {}
                for o in opts:
                    first.setdefault((o.batch, tuple(r.device for r in o.placement), o.level), o)
                opts = tuple(first.values())
            if opts:
                per_config.append((config, opts))
        choices.append(tuple(per_config))
    position = None if fan is None or fanout is None else (pipe.order.index(fan), fanout)
    certain = frozenset(s for s in pipe.order if s not in pipe.scope and abs(
        sum(oc.prob for oc in pipe.outcomes if s in oc.stages) - 1.0) <= 1e-9)
    return PlanSpace(pipe.order, tuple(choices), position,
                     tuple(visits[s] for s in pipe.order), certain)


def plan_spaces(index: WorldIndex, settings: PlannerSettings, query: Query,
                devices: Sequence[Device], *, single_device: bool = False,
                fewest_replicas: bool = False) -> tuple[PlanSpace, ...]:
    """The plan space of ``query`` (:func:`plan_space`) as one space per configuration of its
    pipeline's fan-out stage, each sized for that configuration's objects; one space without a
    fan-out. Together they hold every plan once."""
    pipe = index.pipelines[query.pipeline]
    fans = (None,) if pipe.fanout_stage is None else tuple(
        index.operators[pipe.operator_of[pipe.fanout_stage]].configs)
    return tuple(plan_space(index, settings, query, devices, single_device=single_device,
                            fewest_replicas=fewest_replicas, fanout=f) for f in fans)


def space_of(spaces: Sequence[PlanSpace], configs: Sequence[ConfigKey]) -> PlanSpace:
    """The space of ``spaces`` (:func:`plan_spaces`) that holds plans whose first stages run
    ``configs``: the first when the prefix does not reach the fan-out stage (the stages before
    it have the same options in every space)."""
    return next((s for s in spaces if s.holds(configs)), spaces[0])


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
