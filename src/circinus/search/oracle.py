"""The oracle: every plan of a small world, each estimated whole, for the exact selection.

NOTE: the oracle answers "what is the best the cost model allows?" on worlds small enough to
enumerate, so it shares nothing with the searches under test but the objective: the world
index and the estimator (which define latency, accuracy, cost and resource use). It uses none
of their enumeration, pruning or shortlisting. Per query it enumerates the *whole* plan space of
the world format:

* every configuration vector of the pipeline (no dominance between configurations; accuracy is
  checked on the complete plan like every other objective);
* per stage and configuration, every batch size: 1 and each profiled on some hardware;
* per stage, every placement: each non-empty set of at most ``max_devices_per_operator``
  devices the query may use (in the settings' tiers, at a source's site or one link away from
  one: the world format's rule, docs/world-format.md) that run the configuration at that batch,
  with every replica count per device that fits it (units and memory); sets larger than the
  rate needs are included. A dedicated stage (``level`` ``None``) takes any such placement; a
  shared one takes it at every utilisation level of the settings whose bound its load keeps
  (``rate / capacity <= level``: each count is then at least the fewest replicas the level
  implies, as :class:`~circinus.plan.records.StagePlan` requires); ``sharing: mixed`` offers
  both;
* the load split is the estimator's (in proportion to the devices' capacity, which is what
  the plan records: :mod:`circinus.plan.records`).

Every complete plan is estimated by :meth:`BaseEstimator.estimate` (no incremental sums, no
latency prune) and is a candidate when its latency is finite, it meets the query's SLO, fits
every capacity of the world alone and keeps every replica group under the utilisation bound.
Of these, a plan is dropped only when another is no dearer and uses no more of any resource
(the :class:`~circinus.search.base.QueryCandidates` contract, exact for the selection: wherever
the dropped plan fits, the other fits and costs no more). There is no cap on the number of
candidates; the selection is the exact MILP (registry key ``exact``).

Size limit: :data:`MAX_PLANS` complete plans per query, counted in closed form before anything
is estimated (about 20-40 µs per plan estimated on one core); a query above it stops the
search with a :class:`~circinus.errors.TooLargeError` naming the query and its count.
E.g. the tiny world of the tests has 1,218 plans for a query with one device per stage;
JellyBean's VQA instance (9 workers, spreads over up to 9) has about 10^9.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np

from circinus.errors import TooLargeError
from circinus.estimate.analytic import batch_service_ms
from circinus.estimate.base import EPS, BaseEstimator, Estimate
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.search.base import BaseSearch, Candidate, QueryCandidates
from circinus.search.shortlist import no_candidate_reason
from circinus.spec.index import ConfigKey
from circinus.spec.models import Device, PlannerSettings, Query

MAX_PLANS = 100_000
"""Complete plans per query above which the oracle refuses the world (see module note)."""


class OracleSearch(BaseSearch):
    """Every plan of every query, estimated whole (see module note); registry key ``oracle``.

    Raises :class:`~circinus.errors.TooLargeError` from :meth:`search` when a query's plan space
    exceeds ``max_plans``.
    """

    def __init__(self, *, estimator: BaseEstimator, settings: PlannerSettings,
                 max_plans: int = MAX_PLANS) -> None:
        super().__init__(estimator=estimator, settings=settings)
        self.max_plans = max_plans

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        spaces = [_Space(self.estimator, self.settings, q) for q in queries]
        for q, space in zip(queries, spaces, strict=True):  # refuse before any work
            if space.size > self.max_plans:
                raise TooLargeError(
                    f"oracle: query {q.name!r} has {space.size:,} plans, more than the "
                    f"oracle's limit of {self.max_plans:,}; give it fewer devices, "
                    "configurations or max_devices_per_operator, or plan with --search circinus")
        return [self._candidates(q, space) for q, space in zip(queries, spaces, strict=True)]

    def _candidates(self, query: Query, space: _Space) -> QueryCandidates:
        est = self.estimator
        feasible: list[tuple[QueryPlan, Estimate]] = []
        seen: list[Estimate] = []
        for stages in space.plans():
            plan = QueryPlan(query.name, stages)
            e = est.estimate(query, plan)
            if not math.isfinite(e.latency_ms):
                continue
            seen.append(e)
            if self._admissible(query, e):
                feasible.append((plan, e))
        kept = _undominated(feasible)
        if kept:
            return QueryCandidates(query.name, tuple(Candidate(p, e) for p, e in kept), None,
                                   space.size)
        reason = no_candidate_reason(query, seen, space.best_accuracy, "")
        return QueryCandidates(query.name, (), reason, space.size)

    def _admissible(self, query: Query, e: Estimate) -> bool:
        if not e.meets(query.slo) or e.max_utilization > self.settings.max_utilization + EPS:
            return False
        cap = self.estimator.index.capacities
        return all(use <= cap[r] + EPS for r, use in e.usage().items() if r in cap)


def _undominated(plans: list[tuple[QueryPlan, Estimate]]) -> list[tuple[QueryPlan, Estimate]]:
    """``plans`` without those another is no dearer than and uses no more of any resource than
    (ties: the first in cost order stays), cheapest first."""
    if not plans:
        return []
    keys = sorted({r for _, e in plans for r in e.usage()})
    col = {r: j for j, r in enumerate(keys)}
    use = np.zeros((len(plans), len(keys)))
    for i, (_, e) in enumerate(plans):
        for r, v in e.usage().items():
            use[i, col[r]] = v
    cost = np.array([e.cost_per_hour for _, e in plans])
    order = np.argsort(cost, kind="stable")
    kept: list[int] = []
    for i in order.tolist():
        if kept and bool(np.any(np.all(use[kept] <= use[i] + EPS, axis=1))):
            continue  # kept plans are no dearer (cost order)
        kept.append(i)
    return [plans[i] for i in kept]


class _Space:
    """The plan space of one query: per stage and configuration its placement options."""

    def __init__(self, estimator: BaseEstimator, settings: PlannerSettings, query: Query
                 ) -> None:
        index = estimator.index
        self.index = index
        self.settings = settings
        self.query = query
        self.pipe = index.pipelines[query.pipeline]
        origins = set(query.sources.values())
        self.devices = [d for d in index.world.devices
                        if index.sites[d.site].tier in settings.tiers
                        and any(index.reachable(s, d.site) for s in origins)]
        self.ops = [index.operators[self.pipe.operator_of[s]] for s in self.pipe.order]
        self.levels = self._levels()
        # Plans = sum over vectors of the product of per-stage counts = product over stages of
        # the per-stage sums, since every vector of configurations is enumerated.
        self.size = math.prod(sum(self._count(k, c) for c in op.configs)
                              for k, op in enumerate(self.ops))
        self.estimator = estimator
        self._options: dict[tuple[int, ConfigKey], list[StagePlan]] = {}

    @property
    def best_accuracy(self) -> float | None:
        """The best accuracy of any configuration vector (``None``: none known)."""
        accs = [a for v in self._vectors() if (a := self.estimator.accuracy(
            self.query.pipeline, dict(zip(self.pipe.order, v, strict=True)))) is not None]
        return max(accs) if accs else None

    def _levels(self) -> list[tuple[float | None, ...]]:
        """Per stage: the levels it may take (``None``: dedicated)."""
        n, top = self.settings.utilization_levels, self.settings.max_utilization
        shared = tuple(top * k / n for k in range(n, 0, -1))
        out = []
        for stage in self.pipe.order:
            op = self.index.operators[self.pipe.operator_of[stage]].spec
            asked = (self.query.sharing, op.sharing)
            if "dedicated" in asked or (
                    "shared" not in asked and self.settings.sharing == "dedicated"):
                out.append((None,))
            elif self.settings.sharing == "mixed":  # a shared stage may also be dedicated
                out.append((None, *shared))
            else:
                out.append(shared)
        return out

    def _vectors(self) -> Iterator[tuple[ConfigKey, ...]]:
        return itertools.product(*(op.configs for op in self.ops))

    def _batches(self, k: int, config: ConfigKey) -> list[int]:
        op = self.ops[k]
        return sorted({1, *(b for (c, _), p in op.profiles.items() if c == config
                            for b in p.batch_ms)})

    def _counts(self, k: int, config: ConfigKey, batch: int, dev: Device) -> int:
        """Replica counts of ``config`` at ``batch`` that fit ``dev`` (0: it cannot run it)."""
        prof = self.ops[k].profiles.get((config, dev.hardware))
        if prof is None or batch_service_ms(prof, batch) is None:
            return 0
        most = math.floor(dev.units / prof.units + EPS)
        if dev.memory_gb is not None and prof.memory_gb > 0:
            most = min(most, math.floor(dev.memory_gb / prof.memory_gb + EPS))
        return max(0, most)

    def _service_ms(self, k: int, config: ConfigKey, dev: Device, batch: int) -> float:
        ms = batch_service_ms(self.ops[k].profiles[config, dev.hardware], batch)
        assert ms is not None  # only devices that run (config, batch) are offered
        return ms

    def _count(self, k: int, config: ConfigKey) -> int:
        """Placement options of stage ``k`` in ``config``, in closed form: per batch and level,
        the sum over device sets of at most ``max_devices_per_operator`` of the product of
        their count ranges (elementary symmetric sums)."""
        total = 0
        for batch in self._batches(k, config):
            m = [self._counts(k, config, batch, d) for d in self.devices]
            # e[j] = sum over j-sets of the product of their counts
            e = [1] + [0] * self.settings.max_devices_per_operator
            for mi in m:
                for j in range(len(e) - 1, 0, -1):
                    e[j] += e[j - 1] * mi
            total += sum(e[1:]) * len(self.levels[k])
        return total

    def options(self, k: int, config: ConfigKey) -> list[StagePlan]:
        """:meth:`_options_of`, memoised."""
        if (k, config) not in self._options:
            self._options[k, config] = list(self._options_of(k, config))
        return self._options[k, config]

    def _options_of(self, k: int, config: ConfigKey) -> Iterator[StagePlan]:
        """Every placement option of stage ``k`` in ``config`` (see module note); shared ones
        whose load exceeds their level are left out here (the estimate would not hold)."""
        stage = self.pipe.order[k]
        scale = self.query.work_scale.get(stage, 1.0)
        for batch in self._batches(k, config):
            ranged = [(d, n) for d in self.devices
                      if (n := self._counts(k, config, batch, d)) > 0]
            for size in range(1, min(self.settings.max_devices_per_operator, len(ranged)) + 1):
                for combo in itertools.combinations(ranged, size):
                    for counts in itertools.product(*(range(1, n + 1) for _, n in combo)):
                        placement = tuple(sorted(Replicas(d.name, c) for (d, _), c
                                                 in zip(combo, counts, strict=True)))
                        capacity = sum(
                            c * batch * 1000.0 / (self._service_ms(k, config, d, batch) * scale)
                            for (d, _), c in zip(combo, counts, strict=True))
                        for level in self.levels[k]:
                            if level is not None and (
                                    self.query.rate_rps > level * capacity * (1 + EPS) + EPS):
                                continue
                            yield StagePlan(stage, config, batch, placement, level)

    def plans(self) -> Iterator[tuple[StagePlan, ...]]:
        """Every complete plan, configuration vector by vector."""
        for vector in self._vectors():
            per_stage = [self.options(k, c) for k, c in enumerate(vector)]
            yield from itertools.product(*per_stage)

