"""Vulcan-style baseline: per-query Bayesian optimisation, planned against the capacity left.

NOTE: follows Vulcan (Zhang et al., "Vulcan: Automatic Query Planning for Live ML Analytics",
NSDI'24): each query is planned on its own when it arrives, by Bayesian optimisation over the
joint space of its pipeline's configurations and placements, profiling the complete candidate
plan at every step (the paper's query planner; its figures count these profiling runs as the
search cost), on the resources the queries before it left. Here:

* *Arrival order, capacity left.* :class:`OnlineBayesOptSearch` (``vulcan``) plans the queries
  in the order they are listed, each against what the earlier choices left
  (:class:`~circinus.baselines.online.Room`); its choice is the query's only candidate, so
  first-come-first-served admission (``fcfs``) keeps it. :class:`BayesOptSearch`
  (``vulcan-alone``) plans every query against the empty world and hands its admissible plans
  (cheapest first, :func:`~circinus.search.shortlist.shortlist`) to Circinus's global
  selector: the bench's ``vulcan+select``.
* *Space.* The space of :func:`~circinus.baselines.space.plan_space` restricted to the
  accuracy-feasible configuration vectors, the filter every baseline gets (accuracy does not
  depend on placement, and each paper filters variants by accuracy first). It is a tree of
  optuna categoricals: per stage the configurations that continue a feasible prefix (one
  parameter per prefix, so that each keeps a fixed set of choices), then that configuration's
  placement options (a conditional parameter, so the sampler learns about configurations and
  placements separately). One in-memory study per query, TPE with ``settings.seed`` + the
  query's position.
* *Trials.* A trial is one complete plan, estimated once with ``estimator.estimate`` (our
  stand-in for a profiling run). Its objective is the plan's cost when it meets the SLO, keeps
  the utilisation bound and fits the capacity left; otherwise :data:`INFEASIBLE` plus the
  summed relative violations (latency, accuracy, cost, excess over the capacity left,
  utilisation), so that trials nearer feasibility rank better and every feasible plan ranks
  before every infeasible one. Vulcan's utility weighs accuracy, latency and cost against each
  other; with hard SLOs and accuracy already filtered, the cheapest feasible plan is its best.
  The budget is :attr:`OnlineBayesOptSearch.trials` per query (fewer when the space has fewer
  plans); the cheapest feasible trial is the query's plan.

Departures: Vulcan profiles on the real pipeline and adapts online after deployment; here a
profiling run is an estimate and a query, once admitted, keeps its plan. Nothing is shared
between queries: that is the point of the baseline.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from circinus.baselines.online import ArrivalOrderSearch, Room
from circinus.baselines.space import Pick, PlanSpace, plan_spaces, space_of
from circinus.estimate.base import EPS, Estimate
from circinus.plan.records import QueryPlan
from circinus.search.base import QueryCandidates
from circinus.search.placements import eligible_devices
from circinus.search.shortlist import Evaluated, admissible, overfill
from circinus.search.vectors import Vector
from circinus.spec.index import ConfigKey
from circinus.spec.models import Query, Slo

if TYPE_CHECKING:
    import optuna

INFEASIBLE = 1e9
"""Objective floor of a plan missing its SLO or overfilling a device ($/h, above any plan)."""
_MAX_VIOLATION = 1e3  # cap per dimension, so a saturated (infinite-latency) plan stays finite

Tree = dict[tuple[ConfigKey, ...], list[ConfigKey]]
"""Per feasible prefix of configurations, the configurations that continue it."""


class OnlineBayesOptSearch(ArrivalOrderSearch):
    """Per-query TPE search against the capacity left (see module note)."""

    trials: ClassVar[int] = 60
    """Trials (complete plans estimated) per query."""

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        with _quiet_optuna():
            return super().search(queries)

    def _plan(self, position: int, query: Query, room: Room | None
              ) -> tuple[list[Evaluated], str, str]:
        index = self.estimator.index
        spaces = plan_spaces(index, self.settings, query,
                             eligible_devices(index, query, self.settings.tiers))
        vectors, _ = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        tree, plans = _feasible_tree(spaces, vectors)
        budget = min(self.trials, plans)
        tried: list[Evaluated] = []
        if budget:
            import optuna  # (only here: a tenth of a second of every command's start)

            sampler = optuna.samplers.TPESampler(seed=self.settings.seed + position)
            study = optuna.create_study(direction="minimize", sampler=sampler)
            study.optimize(lambda trial: self._trial(trial, query, spaces, tree, room, tried),
                           n_trials=budget)
        ranked = sorted(tried, key=lambda item: item[1].cost_per_hour)
        return ranked, f"among the {len(tried)} plans tried", (
            "placement: no reachable device can serve every stage of an accuracy-feasible "
            "configuration at its rate")

    def _trial(self, trial: optuna.Trial, query: Query, spaces: Sequence[PlanSpace],
               tree: Tree, room: Room | None, tried: list[Evaluated]) -> float:
        """Suggest one complete plan, estimate it, record it and return its objective (the
        options of a stage after a fan-out are those of the fan-out's configuration, a
        parameter of their own)."""
        picks: list[Pick] = []
        prefix: tuple[ConfigKey, ...] = ()
        space = spaces[0]
        for s, stage in enumerate(space.stages):
            choices = tree[prefix]
            name = f"{stage}/config/" + "|".join(",".join(map(str, c)) for c in prefix)
            config = choices[trial.suggest_categorical(name, list(range(len(choices))))]
            prefix = (*prefix, config)
            space = space_of(spaces, prefix)
            options = space.options(s, config)
            c = next(k for k, (cfg, _) in enumerate(space.choices[s]) if cfg == config)
            after = space.fanout is not None and s > space.fanout[0]
            key = f"{stage}/{c}/option" + (f"/{spaces.index(space)}" if after else "")
            o = trial.suggest_categorical(key, list(range(len(options))))
            picks.append((config, options[o]))
        plan = space.plan(query, picks)
        est = self.estimator.estimate(query, plan)
        tried.append((plan, est))
        return self._objective(query, plan, est, room)

    def _objective(self, query: Query, plan: QueryPlan, est: Estimate, room: Room | None
                   ) -> float:
        """Cost of an admissible plan that fits, else :data:`INFEASIBLE` + its violations."""
        index = self.estimator.index
        excess = 0.0 if room is None else room.overfill(query, plan, est)
        if excess <= EPS and admissible(query, est, index=index, settings=self.settings):
            return est.cost_per_hour
        over = [*_violations(query.slo, est), overfill(index, est), excess,
                max(0.0, est.max_utilization / self.settings.max_utilization - 1.0)]
        return INFEASIBLE + sum(min(v, _MAX_VIOLATION) for v in over)


class BayesOptSearch(OnlineBayesOptSearch):
    """Vulcan's per-query search with every query alone on the empty world, its admissible
    plans handed to a global selector (``vulcan+select``; see module note)."""

    online: ClassVar[bool] = False
    selector: ClassVar[str] = "milp"


def _feasible_tree(spaces: Sequence[PlanSpace], vectors: Sequence[Vector]
                   ) -> tuple[Tree, int]:
    """The accuracy-feasible vectors whose every configuration can run somewhere, as a tree of
    prefixes, and the number of complete plans they have (e.g. vectors ``(a, x)`` and
    ``(a, y)`` with 2, 3 and 4 options: ``{(): [a], (a,): [x, y]}`` and ``2 x 3 + 2 x 4``),
    each vector counted in the space of ``spaces`` that holds it."""
    tree: Tree = {}
    plans = 0
    for vector in vectors:
        space = space_of(spaces, vector)
        counts = [{c: len(opts) for c, opts in choices} for choices in space.choices]
        if not all(c in n for c, n in zip(vector, counts, strict=True)):
            continue
        plans += math.prod(n[c] for c, n in zip(vector, counts, strict=True))
        for i, config in enumerate(vector):
            nxt = tree.setdefault(vector[:i], [])
            if config not in nxt:
                nxt.append(config)
    return tree, plans


def _violations(slo: Slo, est: Estimate) -> Iterator[float]:
    """Relative excess of ``est`` over each bound of ``slo`` (0 when met); e.g. a p99 of
    500 ms against a 400 ms bound gives 0.25."""
    if slo.latency_ms is not None:
        yield max(0.0, est.latency_ms / slo.latency_ms - 1.0)
    if slo.min_accuracy is not None:
        if est.accuracy is None:
            yield 1.0
        else:
            yield max(0.0, (slo.min_accuracy - est.accuracy) / max(abs(slo.min_accuracy), EPS))
    if slo.max_cost_per_hour is not None:
        yield max(0.0, est.cost_per_hour - slo.max_cost_per_hour) / max(
            slo.max_cost_per_hour, EPS)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Silence optuna's per-trial log lines for the duration, then restore its verbosity."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
