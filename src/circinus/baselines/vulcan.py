"""Vulcan-style baseline: per-query Bayesian optimisation over the joint plan space.

NOTE: Vulcan (Zhang et al., "Vulcan: Automatic Query Planning for Live ML Analytics",
NSDI'24) tunes each query's pipeline on its own with Bayesian optimisation, profiling the
complete candidate plan at every step, and admits queries first-come-first-served. Here every
query gets an in-memory optuna study with a seeded TPE sampler (``settings.seed`` + the query's
position) over the joint space of :func:`~circinus.baselines.space.plan_space`: per stage a
categorical over its configurations, then a categorical over that configuration's placement
options (a conditional parameter, so the sampler learns about configurations and placements
separately). A trial is one complete plan, estimated once with ``estimator.estimate`` (our
stand-in for a profiling run). Its objective is the plan's cost when it meets the SLO and fits
the world's capacities on its own; otherwise :data:`INFEASIBLE` plus the summed relative
violations (latency, accuracy, cost, capacity), so that trials nearer feasibility rank better
and every feasible plan ranks before every infeasible one. The budget is :attr:`trials`
per query (fewer when the space has fewer plans). No knowledge is shared between queries: that
is the point of the baseline. Pair it with the ``fcfs`` selector.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import ClassVar

import optuna

from circinus.baselines.space import PerQuerySearch, Pick, PlanSpace, plan_space
from circinus.estimate.base import EPS, Estimate
from circinus.search.base import QueryCandidates
from circinus.search.placements import eligible_devices
from circinus.search.shortlist import Evaluated, admissible, overfill, shortlist
from circinus.spec.models import Query, Slo

INFEASIBLE = 1e9
"""Objective floor of a plan missing its SLO or overfilling a device ($/h, above any plan)."""
_MAX_VIOLATION = 1e3  # cap per dimension, so a saturated (infinite-latency) plan stays finite


class BayesOptSearch(PerQuerySearch):
    """Per-query TPE search over configurations and placements (see module note)."""

    trials: ClassVar[int] = 60
    """Trials (complete plans estimated) per query."""
    selector: ClassVar[str] = "fcfs"
    """Registry key of the selector this baseline is meant to run with."""

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        with _quiet_optuna():
            return super().search(queries)

    def _search_one(self, position: int, query: Query) -> QueryCandidates:
        index = self.estimator.index
        space = plan_space(index, self.settings, query,
                           eligible_devices(index, query, self.settings.tiers))
        _, best_accuracy = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        budget = 0 if space.empty else min(self.trials, space.size())
        tried: list[Evaluated] = []
        if budget:
            sampler = optuna.samplers.TPESampler(seed=self.settings.seed + position)
            study = optuna.create_study(direction="minimize", sampler=sampler)
            study.optimize(lambda trial: self._trial(trial, query, space, tried),
                           n_trials=budget)
        return shortlist(query, tried, index=index, settings=self.settings,
                         best_accuracy=best_accuracy, evaluations=len(tried),
                         scope=f"among the {len(tried)} plans tried")

    def _trial(self, trial: optuna.Trial, query: Query, space: PlanSpace,
               tried: list[Evaluated]) -> float:
        """Suggest one complete plan, estimate it, record it and return its objective."""
        picks: list[Pick] = []
        for stage, choices in zip(space.stages, space.choices, strict=True):
            c = trial.suggest_categorical(f"{stage}/config", list(range(len(choices))))
            config, options = choices[c]
            o = trial.suggest_categorical(f"{stage}/{c}/option", list(range(len(options))))
            picks.append((config, options[o]))
        plan = space.plan(query, picks)
        est = self.estimator.estimate(query, plan)
        tried.append((plan, est))
        return self._objective(query, est)

    def _objective(self, query: Query, est: Estimate) -> float:
        """Cost of an admissible plan, else :data:`INFEASIBLE` + its summed violations."""
        index = self.estimator.index
        if admissible(query, est, index=index, settings=self.settings):
            return est.cost_per_hour
        excess = [*_violations(query.slo, est), overfill(index, est),
                  max(0.0, est.max_utilization / self.settings.max_utilization - 1.0)]
        return INFEASIBLE + sum(min(v, _MAX_VIOLATION) for v in excess)


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
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
