"""The oracle: every plan of a small world, each estimated whole, for the exact selection.

NOTE: the oracle answers "what is the best the cost model allows?" on worlds small enough to
enumerate, so it shares nothing with the searches under test but the objective: the world
index and the estimator (which define latency, accuracy, cost and resource use). It uses none
of their enumeration, pruning or shortlisting. Per query it enumerates the *whole* plan space of
the world format:

* every configuration vector of the pipeline (no dominance between configurations; accuracy is
  checked on the complete plan like every other objective), each replica share a profile lists
  being a configuration of its own (:mod:`circinus.spec.shares`), so every share is tried;
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
* every split of a placement over several sites worth considering (the split is a decision:
  a balancer routes any shares): in proportion to the devices' capacity, and each order of
  its sites filled to the utilisation bound in turn (:func:`~circinus.plan.units.
  fill_shares`). A plan's traffic cost is linear in a stage's site shares (the other stages
  fixed), so its least over the shares the devices allow lies at one of these orders; within a
  site the split moves no traffic and stays proportional.

Every complete plan is estimated by :meth:`BaseEstimator.estimate` (no incremental sums, no
latency prune) and is a candidate when its latency is finite, it meets the query's SLO, fits
every capacity of the world alone (its shared deployments' shares, and their replicas in whole:
a deployment has at least a stage's replicas, whoever joins it) and keeps every replica group
under the utilisation bound. A query none of whose plans fits alone is rejected for
placement, not for the SLO the plans that do not fit would miss.
Of these, a plan is dropped only when another is no dearer and uses no more of any resource
(the :class:`~circinus.search.base.QueryCandidates` contract, exact for the selection: wherever
the dropped plan fits, the other fits and costs no more). There is no cap on the number of
candidates; the selection is the exact MILP (registry key ``exact``).

Size limit: :data:`MAX_PLANS` complete plans per query, counted in closed form (an upper bound:
some fills leave a device idle and are not enumerated) before anything is estimated, at about
20-40 µs per plan estimated on one core; a query above it stops the search with a
:class:`~circinus.errors.TooLargeError` naming the query and its count. E.g. a query of the
tiny world of the tests has 760 plans with one device per stage and dedicated replicas;
JellyBean's VQA instance (9 workers, spreads over up to 9) has billions.
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
from circinus.plan.units import fill_shares
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
        placed = False  # some plan at the required accuracy runs, whether it fits or not
        for stages in space.plans():
            plan = QueryPlan(query.name, stages)
            e = est.estimate(query, plan)
            if not math.isfinite(e.latency_ms):
                continue
            placed = placed or "accuracy" not in e.violations(query.slo)
            if not self._fits_whole(query, stages):
                continue  # a plan that cannot run even alone says nothing of the SLO
            seen.append(e)
            if self._admissible(query, e):
                feasible.append((plan, e))
        kept = _undominated(feasible)
        if kept:
            return QueryCandidates(query.name, tuple(Candidate(p, e) for p, e in kept), None,
                                   space.size)
        reason = no_candidate_reason(query, seen, space.best_accuracy, "")
        floor = query.slo.min_accuracy
        if not any("accuracy" not in e.violations(query.slo) for e in seen) and (
                floor is None or (space.best_accuracy is not None
                                  and space.best_accuracy >= floor - EPS)):
            need = "" if floor is None else f" meeting the accuracy bound {floor:g}"
            reason = (f"placement: no plan{need} fits the units of the devices the query may "
                      "use in whole replicas, at any latency; add units or allow another tier"
                      if placed else
                      f"placement: no device the query may use runs every stage of a "
                      f"configuration{need}; add a device of its hardware or allow its tier")
        return QueryCandidates(query.name, (), reason, space.size)

    def _fits_whole(self, query: Query, stages: Sequence[StagePlan]) -> bool:
        """Whether ``stages`` fit every device's units in whole replicas with ``query`` alone:
        a shared deployment has at least the stage's replicas (``Replicas.count``) whoever
        joins it, counted once for the stages of the query on it."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        whole: dict[str, float] = {}
        seen: set[tuple[object, ...]] = set()
        for st in stages:
            op = index.operators[pipe.operator_of[st.stage]]
            for r in st.placement:
                if st.level is not None:
                    key = (op.spec.name, st.config, r.device, st.batch, st.level)
                    if key in seen:
                        continue
                    seen.add(key)
                units = r.count * op.profiles[st.config, index.devices[r.device].hardware].units
                whole[r.device] = whole.get(r.device, 0.0) + units
        return all(u <= index.devices[d].units + EPS for d, u in whole.items())

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
        out: list[tuple[float | None, ...]] = []
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
        """At most how many placement options stage ``k`` has in ``config``, in closed form:
        per batch and level, per set of sites, the placements of at most
        ``max_devices_per_operator`` devices using exactly those sites (products of the sites'
        elementary symmetric sums of their devices' count ranges), times the splits of that
        many sites (``1 + n!`` for ``n >= 2``: some fills may leave a device idle and are not
        enumerated)."""
        top = self.settings.max_devices_per_operator
        sites = sorted({d.site for d in self.devices})
        total = 0
        for batch in self._batches(k, config):
            per_site = []
            for site in sites:
                e = [1] + [0] * top  # e[j]: sum over j-sets of the product of their counts
                for d in self.devices:
                    if d.site == site:
                        m = self._counts(k, config, batch, d)
                        for j in range(top, 0, -1):
                            e[j] += e[j - 1] * m
                per_site.append(e)
            for n in range(1, len(sites) + 1):
                for chosen in itertools.combinations(per_site, n):
                    poly = [1] + [0] * top  # placements by size, every chosen site used
                    for e in chosen:
                        poly = [sum(poly[i] * e[j - i] for i in range(j) if j - i >= 1)
                                for j in range(top + 1)]
                    total += sum(poly) * (1 + math.factorial(n) if n > 1 else 1) * len(
                        self.levels[k])
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
                            rate = self.pipe.rate(self.query, stage)
                            if level is not None and (
                                    rate > level * capacity * (1 + EPS) + EPS):
                                continue
                            yield StagePlan(stage, config, batch, placement, level)
                            for split in self._splits(k, config, batch, placement, level):
                                yield StagePlan(stage, config, batch, split, level)

    def _splits(self, k: int, config: ConfigKey, batch: int, placement: tuple[Replicas, ...],
                level: float | None) -> Iterator[tuple[Replicas, ...]]:
        """The placement split otherwise than in proportion to capacity: for each order of its
        sites, each filled to the utilisation bound before the next (the vertices of the
        shares it allows, up to the split within a site, which moves no traffic)."""
        devices = self.index.devices
        sites = sorted({devices[r.device].site for r in placement})
        if len(sites) < 2:
            return
        scale = self.query.work_scale.get(self.pipe.order[k], 1.0)
        rates = [(r.device, devices[r.device].site, r.count * batch * 1000.0 / (
            self._service_ms(k, config, devices[r.device], batch) * scale)) for r in placement]
        bound = self.settings.max_utilization if level is None else level
        for order in itertools.permutations(sites):
            shares = fill_shares(rates, self.pipe.rate(self.query, self.pipe.order[k]), bound,
                                 order)
            if shares is not None:
                yield tuple(Replicas(r.device, r.count, x)
                            for r, x in zip(placement, shares, strict=True))

    def plans(self) -> Iterator[tuple[StagePlan, ...]]:
        """Every complete plan, configuration vector by vector."""
        for vector in self._vectors():
            per_stage = [self.options(k, c) for k, c in enumerate(vector)]
            yield from itertools.product(*per_stage)

