"""The nearest admissible SLO of a rejected query, at the current load.

NOTE: for a rejected query and one objective of its SLO (``latency_ms``, ``min_accuracy`` or
``max_cost_per_hour``), the *nearest admissible value* is the least relaxed bound that would get
the query admitted into the capacity the admitted queries leave, the other objectives and every
other query's plan unchanged. "Admitted" means what the planner itself would do with the
relaxed query: search it, take its candidates, and admit it if one of them fits the residual
capacity (what :class:`~circinus.online.OnlinePlanner` does on an arrival). So a suggestion is
never a plan the planner would not offer.

The values worth trying are the ones the query's plans take. For searches that expose their
plan space (:meth:`~circinus.search.exhaustive.ExhaustiveSearch.plan_space`: Circinus's and the
exhaustive search) the space of the query with every objective removed is enumerated once per
group of interchangeable queries (same pipeline, rate, work and percentile, sources at
isomorphic sites, as the search groups them), with each plan's latency, accuracy, cost and
resource use as arrays. For an objective, the *thresholds* are the values of that objective
over the plans that meet the other two objectives and fit the residual capacity (clipped to the
current bound), from the least relaxed. Below the first threshold no plan the search could offer
both meets the relaxed SLO and fits, so no smaller relaxation can admit the query; each threshold
is then checked for real by taking the relaxed query's candidates from the space
(:meth:`~circinus.search.exhaustive.ExhaustiveSearch.shortlist`, the same rule as
``search([query])``) and testing whether one fits. The first that passes is the answer; usually
the first threshold does, and a later one only when the candidate list (at most
``candidates_per_query`` plans) leaves the fitting plan out. Up to ``max_checks`` thresholds are
tried; past them the objective is reported as not helping.

Two checks come first, because at full load most rejected queries have no fitting plan at all,
whatever their SLO: every stage must find room for its fewest replicas on some device the query
may use (and a first stage with no room at its source's site needs the source stream's bandwidth
on a link out of it); then the plan space is enumerated with each device capped at the units it
has left (cheap when little is left) and its plans are checked against every residual capacity.
When no plan fits, no relaxation can help: every objective is reported as not helping without
enumerating the whole space.

The answer is reported rounded to 4 significant digits in the relaxing direction (up for latency
and cost, down for accuracy) when the rounded bound still admits the query, else exactly: e.g.
a plan at 212.3417 ms gives ``latency_ms: 212.4``, and 212.3 (one unit tighter in the last digit)
is below the plan and does not admit it. That unit is the tolerance of the minimality claim.

Searches without a plan space (the baselines) get the same rule over the candidates of the query
searched with the objective removed, each threshold checked by a search of the relaxed query;
the first threshold that admits is then narrowed by bisection on the grid of 4 significant digits
between the current bound and it (each step one search of the relaxed query), refined on the
answer's own grid where it is of a smaller magnitude, which is minimal to one unit in the 4th
significant digit of the answer when admission is monotone in the bound.

All of this is in terms of what the admitted queries leave, a :class:`~circinus.whynot.residual.
Residual`. With shared deployments (:mod:`circinus.whynot.residual`) use does not add up plan by
plan, so the array paths above (for dedicated replicas) give way to exact ones:

* a candidate *fits* when adding it to the selection's ledger fits, and is *admitted* when it
  also meets the relaxed SLO at the state its deployments would then be in (their replicas,
  rate and mix of work, as the planner's deployment check estimates them; its co-tenants are
  taken to keep their SLOs). Its value of an objective is the worse of its search estimate
  (which the search filters by) and that one: alone on a new deployment a plan pays its whole
  replicas, not its share;
* :meth:`NearestSlo._room` counts a shared stage as placeable where a deployment of its
  operator has room for its load, or where one replica more fits; the enumeration within the
  residual units allows each device the headroom of its deployments too (a plan's shares there
  may exceed what is left without adding a replica). Both remain necessary conditions;
* a query admitted as it is (its candidates kept out by checks of a selection since changed)
  gets its own bounds, from one check;
* an objective's thresholds come from the query's enumeration within the residual units with
  the other objectives as they are and this one removed, which holds every plan that fits and
  meets them and is pruned by the latency bound unless latency is relaxed (then the plans
  within twice the bound come first, from a pruned enumeration, and all of them only if
  needed). The plans that may fit by the arithmetic of :mod:`circinus.whynot.shared` are tried
  exactly, from the least relaxed bound on their value, only as far as thresholds are asked
  for;
* each threshold is checked on the candidates the search gives the relaxed query, taken from a
  plan space of its group enumerated with an SLO no tighter (the relaxed bound rounded as it
  would be reported, which usually serves the rounded check too; the second time an objective
  needs a looser one, without it).
"""


from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from circinus.estimate.analytic import KB_PER_S_TO_MBPS, AnalyticEstimator
from circinus.estimate.base import EPS, Estimate
from circinus.estimate.flow import least_stage_rates
from circinus.plan.records import QueryPlan, StagePlan
from circinus.search.base import BaseSearch, Candidate, QueryCandidates
from circinus.search.decomposed import site_classes
from circinus.search.exhaustive import ExhaustiveSearch, PlanPool
from circinus.search.placements import eligible_devices, is_shared, replica_rate
from circinus.spec.index import OperatorIndex
from circinus.spec.models import Device, LatencyProfile, Query, Slo
from circinus.whynot.binding import Resource, binding_of, scarcest
from circinus.whynot.grid import bisect, distinct, round_relaxed
from circinus.whynot.records import OBJECTIVES, Objective, Relaxation, WhyNot
from circinus.whynot.residual import Residual, Trial
from circinus.whynot.shared import PoolUse, ascending, bounds

_CACHED = 128  # plan spaces kept per kind (each up to a few MB)
_CHUNK = 8  # plans of a plan space tried exactly at once (one copy of the ledger each)
_RELAXED = 16  # plan spaces at a relaxed bound kept (each up to a few MB)
_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)
_SloKey = tuple[float | None, float | None, float | None]


@dataclass
class _Space:
    """One group's plan space with every objective removed, in its representative's names."""

    rep: Query
    pool: PlanPool
    use: PoolUse
    """What each plan uses of each resource."""
    shortlists: dict[_SloKey, list[dict[Resource, float]]] = field(default_factory=dict)
    """Per SLO: the resource use of each candidate the search gives (memo)."""


@dataclass(frozen=True)
class _Renaming:
    """From a representative's device and site names to a member's."""

    devices: dict[str, str]
    sites: dict[str, str]

    def __call__(self, res: Resource) -> Resource:
        kind, name = res
        if kind == "link":
            src, _, dst = name.partition("->")
            return kind, f"{self.sites.get(src, src)}->{self.sites.get(dst, dst)}"
        return kind, self.devices.get(name, name)


class NearestSlo:
    """Explains rejected queries and finds their nearest admissible SLO (see module note).

    Args:
        search: the search that produced the candidates; the same instance is reused so that
            its estimator's memo serves the relaxed searches.
        max_checks: thresholds tried per objective before the objective is reported as not
            helping.

    The plan spaces are cached per group of queries (the last :data:`_CACHED` of each kind) and
    stay valid as long as the world's devices and links do; make a new instance after they
    change. What is memoised about one :class:`Residual` is forgotten when another comes. Not
    thread-safe.
    """

    def __init__(self, *, search: BaseSearch, max_checks: int = 16) -> None:
        self.search = search
        self.max_checks = max_checks
        self._classes = site_classes(search.estimator.index)
        self._spaces: dict[tuple[object, ...], _Space] = {}
        self._fitting: dict[tuple[object, ...], PlanPool] = {}
        self._uses: dict[tuple[object, ...], PoolUse] = {}
        self._relaxed: dict[tuple[tuple[object, ...], Slo], PlanPool] = {}
        """Plan spaces by query group and the SLO they were enumerated with."""
        self._widened: set[tuple[object, ...]] = set()
        """Query groups, other objectives and objective whose bound was once relaxed past the
        plan spaces enumerated (the next time, the objective is left out)."""
        self._residual: Residual | None = None
        self._bounds: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray]] = {}
        """Per capped pool: :func:`~circinus.whynot.shared.bounds` at ``_residual``."""
        self._admitted: dict[tuple[object, ...], bool] = {}
        """Per relaxed query: whether it is admitted into ``_residual`` (shared mode)."""
        self._explained: dict[tuple[object, ...], tuple[Relaxation, ...]] = {}
        """Per class of alike queries (:meth:`alike`): their relaxations at ``_residual``."""

    def explain(self, query: Query, found: QueryCandidates, reason: str, *,
                capacity: Mapping[Resource, float] | None = None,
                used: Mapping[Resource, float] | None = None,
                residual: Residual | None = None, nearest: bool = True) -> WhyNot:
        """Why ``query`` (searched as ``found``, rejected for ``reason``) is not admitted.

        Args:
            capacity: every constrained resource and its capacity.
            used: what the admitted queries use of each resource (``query`` not among them),
                adding up plan by plan.
            residual: what the admitted queries leave, instead of ``capacity`` and ``used``
                (required where they join shared deployments, see :class:`Residual`).
            nearest: also compute the nearest admissible SLO (the costly part).
        """
        if residual is None:
            assert capacity is not None and used is not None, "give capacity and used"
            residual = Residual.additive(capacity, used)
        binding = binding_of(reason)
        resource = None
        if binding == "capacity" and found.candidates:
            lacking = scarcest(found.candidates, residual, query.pipeline)
            resource = None if lacking is None else lacking[0]
        relaxations = None
        if nearest:
            self._remember_residual(residual)
            key = self.alike(query)
            relaxations = self._explained.get(key)
            if relaxations is None:
                relaxations = self._explained[key] = self._relaxations(query, residual)
        return WhyNot(binding, resource, relaxations)

    @staticmethod
    def alike(query: Query) -> tuple[object, ...]:
        """What a query's nearest SLOs depend on besides what the admitted queries leave: all
        of it but its name (the plans of the group, :func:`_group`, and the SLO they are
        relaxed from). Queries with equal keys get the same relaxations, worked out once."""
        return (*_group(query), query.slo, query.weight)

    def knows(self, query: Query, residual: Residual) -> bool:
        """Whether the nearest SLOs of ``query``'s class (:meth:`alike`) at ``residual`` were
        worked out already (then :meth:`explain` with ``nearest`` costs no search)."""
        return residual is self._residual and self.alike(query) in self._explained

    def _relaxations(self, query: Query, residual: Residual) -> tuple[Relaxation, ...]:
        """Per objective ``query``'s SLO sets: its nearest admissible bound (module note)."""
        hopeless = not self._may_fit(query, residual)
        # With shared deployments a rejected query may well be admitted as it is (its
        # candidates kept out by the checks of a selection now changed): then every
        # objective's nearest bound is its own, found in one check.
        as_is = not hopeless and residual.shared and self._admits_as_is(query, residual)
        return tuple(
            Relaxation(obj, float(bound), None if hopeless else float(bound) if as_is
                       else self._nearest(query, obj, residual))
            for obj in OBJECTIVES if (bound := getattr(query.slo, obj)) is not None)

    def nearest(self, query: Query, objective: Objective, residual: Residual) -> float | None:
        """The nearest admissible bound of ``objective`` for ``query`` (see module note), or
        ``None`` when no value of it alone admits the query into what the admitted queries
        leave (``residual``). ``query``'s SLO must set it."""
        assert getattr(query.slo, objective) is not None, f"{query.name}: no {objective}"
        if not self._may_fit(query, residual):
            return None
        return self._nearest(query, objective, residual)

    def _nearest(self, query: Query, objective: Objective,
                 residual: Residual) -> float | None:
        self._remember_residual(residual)
        current = getattr(query.slo, objective)
        lower = objective == "min_accuracy"
        exhaustive = isinstance(self.search, ExhaustiveSearch)
        admits: Callable[[float], bool]
        values: Iterable[float]
        if exhaustive and not residual.shared:
            space, rename = self._space(query)
            values = sorted(self._thresholds(space, rename, query.slo, objective, residual),
                            reverse=lower)

            def admits(bound: float) -> bool:
                return self._admits_space(space, rename, query.slo, objective, bound,
                                          residual)
        elif exhaustive:
            values = self._shared_thresholds(query, objective, residual)

            def admits(bound: float) -> bool:
                return self._admits_pool(_relaxed(query, objective, bound), residual, objective)
        else:
            values = sorted(self._generic_thresholds(query, objective, residual),
                            reverse=lower)

            def admits(bound: float) -> bool:
                return self._admits_search(_relaxed(query, objective, bound), residual)

        for bound in distinct(values, current, lower, self.max_checks):
            if admits(bound):
                if not exhaustive:
                    return bisect(admits, current, bound, down=lower)
                shown = round_relaxed(bound, down=lower)
                return shown if shown == bound or admits(shown) else bound
        return None

    def _may_fit(self, query: Query, residual: Residual) -> bool:
        """Whether some plan of the query, whatever its SLO, may fit what is left: a quick
        necessary condition (:meth:`_room`), then, for searches with a plan space and use that
        adds up, whether any plan enumerated within the devices' residual units fits every
        residual capacity. Only then is the whole plan space needed (its thresholds are among
        those plans). With shared deployments each objective's own enumeration, pruned by the
        other objectives, says it instead (see module note)."""
        if not self._room(query, residual):
            return False
        if not isinstance(self.search, ExhaustiveSearch) or residual.shared:
            return True
        _, pool = self._capped(query, residual, Slo(percentile=query.slo.percentile))
        return any(residual.fits_usage(dict(usage)) for usage in pool.usage)

    def _capped(self, query: Query, residual: Residual, slo: Slo
                ) -> tuple[tuple[object, ...], PlanPool]:
        """The plan space of ``query`` with ``slo`` enumerated within the residual units of
        each device it may use, plus the headroom of the deployments there (a plan's shares
        there may exceed what is left without adding a replica, never what is left plus that
        headroom); with its cache key."""
        assert isinstance(self.search, ExhaustiveSearch)
        index = self.search.estimator.index
        units = {d.name: max(0.0, residual.left(("device", d.name))) + residual.headroom(d.name)
                 for d in eligible_devices(index, query, self.search.settings.tiers)}
        key = (*_group(query), slo.latency_ms, slo.min_accuracy, slo.max_cost_per_hour,
               tuple(sorted(units.items())))
        pool = self._fitting.get(key)
        if pool is None:
            pool = _remember(self._fitting, key, self.search.plan_space(
                query.model_copy(update={"slo": slo}), units=units))
        return key, pool

    def _room(self, query: Query, residual: Residual) -> bool:
        """Whether every stage of the query could get its fewest replicas on some device it may
        use, given what is left (one replica per device when a stage may be spread; a shared
        stage may also join a deployment of its operator with room for its load, or else
        needs at least one replica more, of a new deployment or an existing one).

        Every plan needs that, so when some stage cannot, no relaxation can help and the plan
        space need not be enumerated (the common case at full load).
        """
        index = self.search.estimator.index
        settings = self.search.settings
        pipe = index.pipelines[query.pipeline]
        devices = eligible_devices(index, query, settings.tiers)
        placeable = {}
        # Each stage's rate as the estimator sizes it (its visits per request: branches,
        # objects; a source's own rate), the least any configuration gives it.
        rates = least_stage_rates(pipe, index.operators, query)
        for stage in pipe.order:
            op = index.operators[pipe.operator_of[stage]]
            scale = query.work_scale.get(stage, 1.0)
            shared = is_shared(settings, query, op.spec)
            rate = rates[stage]
            placeable[stage] = [dev for dev in devices if (
                shared and self._joins(op, dev, rate, scale, residual)) or self._fits_one(
                op.profiles.values(), dev, rate, scale, residual, one=shared)]
            if not placeable[stage]:
                return False
        # A first stage that has no room at its source's site receives the whole source
        # stream over a link out of that site.
        for stage in pipe.order:
            for pred in pipe.preds[stage]:
                if pred not in pipe.source_kb:
                    continue
                site = query.sources[pred]
                if any(dev.site == site for dev in placeable[stage]):
                    continue
                mbps = (pipe.rate(query, pred) * pipe.source_message_kb(query, pred)
                        * KB_PER_S_TO_MBPS)
                if not any(residual.left(("link", f"{site}->{dev.site}")) + EPS >= mbps
                           for dev in placeable[stage]):
                    return False
        return True

    def _joins(self, op: OperatorIndex, dev: Device, rate: float, scale: float,
               residual: Residual) -> bool:
        """Whether a stage of ``op`` may join a deployment on ``dev`` without a replica more
        (see :meth:`_room`): one with room for the stage's load there, or any with headroom
        when a stage may be spread (its load on one device is then any part of it)."""
        spare = residual.spare(op.spec.name, dev.name)
        if not spare or self.search.settings.max_devices_per_operator > 1:
            return bool(spare)
        for key, room in spare:
            prof = op.profiles.get((key.config, dev.hardware))
            per_replica = None if prof is None else replica_rate(prof, key.batch, scale)
            if per_replica is not None and rate / per_replica <= room + EPS:
                return True
        return False

    def _fits_one(self, profiles: Iterable[LatencyProfile], dev: Device, rate: float,
                  scale: float, residual: Residual, *, one: bool = False) -> bool:
        """Whether some configuration's fewest replicas (one replica with ``one``) fit on
        ``dev`` (see :meth:`_room`)."""
        settings = self.search.settings
        units = residual.left(("device", dev.name)) + EPS
        memory = residual.left(("memory", dev.name)) + EPS
        for prof in profiles:
            if prof.hardware != dev.hardware:
                continue
            if one or settings.max_devices_per_operator > 1:
                count = 1
            else:
                best = max((r for b in (1, *prof.batch_ms)
                            if (r := replica_rate(prof, b, scale)) is not None), default=0.0)
                if best <= 0:
                    continue
                count = max(1, math.ceil(rate / (best * settings.max_utilization) - EPS))
            if count * prof.units <= units and count * prof.memory_gb <= memory:
                return True
        return False

    # -- plan spaces (dedicated replicas) ----------------------------------------------------

    def _space(self, query: Query) -> tuple[_Space, _Renaming]:
        """The plan space of ``query``'s group and the renaming into ``query``'s names."""
        assert isinstance(self.search, ExhaustiveSearch)
        sites = list(query.sources.items())
        pattern = tuple(next(i for i, (_, s) in enumerate(sites) if s == site)
                        for _, site in sites)
        key = (query.pipeline, tuple(sorted((src, self._classes[site][0]) for src, site in sites)),
               pattern, query.rate_rps, tuple(sorted(query.work_scale.items())),
               query.slo.percentile, tuple(sorted(query.source_rate_rps.items())),
               tuple(sorted(query.source_output_kb.items())))
        space = self._spaces.get(key)
        if space is None:
            rep = query.model_copy(update={"slo": Slo(percentile=query.slo.percentile)})
            pool = self.search.plan_space(rep)
            space = _remember(self._spaces, key, _Space(rep, pool, PoolUse.of(pool)))
        devices: dict[str, str] = {}
        site_map: dict[str, str] = {}
        for src, site in space.rep.sources.items():
            mine = query.sources[src]
            if mine != site:
                site_map[site] = mine
                devices.update(zip(self._classes[site][1], self._classes[mine][1], strict=True))
        return space, _Renaming(devices, site_map)

    def _thresholds(self, space: _Space, rename: _Renaming, slo: Slo, objective: Objective,
                    residual: Residual) -> list[float]:
        """Values of ``objective`` over the space's plans that meet the other objectives of
        ``slo`` and fit the residual capacity (use adding up)."""
        pool, use = space.pool, space.use
        left = np.array([residual.left(rename(res)) for res in use.keys])
        ok = np.asarray((use.distinct <= left + EPS).all(axis=1), dtype=bool)[use.row]
        accuracy = np.nan_to_num(pool.accuracy, nan=-np.inf)
        ok &= _meets_others(pool.latency, accuracy, pool.cost, slo, objective)
        values = {"latency_ms": pool.latency, "min_accuracy": accuracy,
                  "max_cost_per_hour": pool.cost}[objective][ok]
        return [float(v) for v in values if math.isfinite(v)]

    def _admits_space(self, space: _Space, rename: _Renaming, slo: Slo, objective: Objective,
                      bound: float, residual: Residual) -> bool:
        """Whether the candidates of the query with ``objective`` set to ``bound`` include one
        that fits the residual capacity (use adding up)."""
        relaxed = slo.model_copy(update={objective: bound})
        key = (relaxed.latency_ms, relaxed.min_accuracy, relaxed.max_cost_per_hour)
        usages = space.shortlists.get(key)
        if usages is None:
            assert isinstance(self.search, ExhaustiveSearch)
            found = self.search.shortlist(space.rep.model_copy(update={"slo": relaxed}),
                                          space.pool)
            usages = space.shortlists[key] = [c.estimate.usage() for c in found.candidates]
        return any(residual.fits_usage({rename(r): v for r, v in usage.items()})
                   for usage in usages)

    # -- exact paths (shared deployments, searches without a plan space) ---------------------

    def _shared_thresholds(self, query: Query, objective: Objective,
                           residual: Residual) -> Iterator[float]:
        """Values of ``objective`` over the plans that fit what is left and meet the other
        objectives, each the worse of its estimate and its estimate on its deployments as
        they would be, from the least relaxed (see module note). They come from the query's
        enumeration within the residual units (:meth:`_capped`) with the other objectives as
        they are and ``objective`` removed: complete, and pruned by the latency bound unless
        latency is the objective. Latency first takes the plans within twice its bound (a
        pruned enumeration, usually enough), then all."""
        current = getattr(query.slo, objective)
        sign = -1.0 if objective == "min_accuracy" else 1.0
        known: dict[tuple[StagePlan, ...], float | None] = {}
        given = -math.inf  # (sign x) values up to this were given
        for bound in ([2.0 * current, None] if objective == "latency_ms" else [None]):
            slo = query.slo.model_copy(update={objective: bound})
            key, pool = self._capped(query, residual, slo)
            limit = math.inf if bound is None or not pool.latency_pruned else sign * bound
            for value in self._pool_values(query, objective, key, pool, residual, known):
                if value > limit:
                    break
                if value > given:
                    yield sign * value
            if limit == math.inf:
                return
            given = limit

    def _pool_values(self, query: Query, objective: Objective, key: tuple[object, ...],
                     pool: PlanPool, residual: Residual,
                     known: dict[tuple[StagePlan, ...], float | None]) -> Iterator[float]:
        """The exact values (x -1 for accuracy: ascending is relaxing) of ``objective`` over
        the plans of the capped ``pool`` that may fit and meet the other objectives, ascending,
        each tried only when no plan still untried can come before it (``known``: the values
        of plans tried before, ``None`` for a plan that does not qualify)."""
        fit, cost = self._bounded(key, query, pool, residual)
        accuracy = np.nan_to_num(pool.accuracy, nan=-np.inf)
        ok = fit & _meets_others(pool.latency, accuracy, pool.cost, query.slo, objective)
        sign = -1.0 if objective == "min_accuracy" else 1.0
        least = sign * {"latency_ms": pool.latency, "min_accuracy": accuracy,
                        "max_cost_per_hour": np.maximum(pool.cost, cost)}[objective]
        plans = np.flatnonzero(ok & np.isfinite(least))
        order = plans[np.argsort(least[plans], kind="stable")].tolist()

        def exact(chunk: list[int]) -> list[float | None]:
            new = [i for i in chunk if pool.plans[i] not in known]
            cands = [Candidate(QueryPlan(query.name, pool.plans[i]), pool.estimate(i))
                     for i in new]
            for i, v in zip(new, self._values(query, objective, cands, residual), strict=True):
                known[pool.plans[i]] = None if v is None else sign * v
            return [known[pool.plans[i]] for i in chunk]

        return ascending(order, least, exact, chunk=_CHUNK)

    def _generic_thresholds(self, query: Query, objective: Objective,
                            residual: Residual) -> list[float]:
        """Thresholds from the candidates a search without a plan space finds for the query
        with ``objective`` removed."""
        found = self.search.search([_relaxed(query, objective, None)])[0]
        values = self._values(query, objective, found.candidates, residual)
        return [v for v in values if v is not None]

    def _values(self, query: Query, objective: Objective, cands: Sequence[Candidate],
                residual: Residual) -> list[float | None]:
        """Per candidate of ``query``: its value of ``objective`` if it fits what is left and
        meets the other objectives of ``query``'s SLO where it would run, else ``None``."""
        others = query.slo.model_copy(update={objective: None})
        out: list[float | None] = []
        for cand, trial in zip(cands, residual.trials(cands, query.pipeline), strict=True):
            real = self._joined(query, cand, trial)
            mine, there = _value(cand.estimate, objective), _value(real, objective)
            if not trial.fits or real.violations(others) or mine is None or there is None:
                out.append(None)
            else:
                out.append(min(mine, there) if objective == "min_accuracy" else max(mine, there))
        return out

    def _admits_pool(self, query: Query, residual: Residual,
                     objective: Objective | None = None) -> bool:
        """Whether ``query`` (its SLO relaxed in ``objective``, if given) has a candidate that
        fits what is left and meets its SLO where it would run. The candidates are the
        search's (:meth:`~circinus.search.exhaustive.ExhaustiveSearch.shortlist`) from a plan
        space of the query's group with an SLO no tighter than its (:meth:`_space_for`)."""
        assert isinstance(self.search, ExhaustiveSearch)
        key = (*_group(query), query.slo)
        hit = self._admitted.get(key)
        if hit is None:
            cands = self.search.shortlist(query, self._space_for(query, objective)).candidates
            hit = self._admitted[key] = self._admit(query, cands, residual)
        return hit

    def _space_for(self, query: Query, objective: Objective | None) -> PlanPool:
        """A plan space of ``query``'s group enumerated with an SLO no tighter than
        ``query``'s in any objective: one enumerated before, else one at ``query``'s SLO with
        ``objective`` rounded as it would be reported (the rounded bound is usually checked
        next) or, the second time ``objective`` needs a looser one, without it (then every
        further bound of it is served)."""
        assert isinstance(self.search, ExhaustiveSearch)
        group, slo = _group(query), query.slo
        for (g, enumerated), pool in self._relaxed.items():
            if g == group and _no_tighter(enumerated, slo):
                return pool
        looser = slo
        if objective is not None:
            bound = getattr(slo, objective)
            widen = (group, slo.model_copy(update={objective: None}), objective)
            if widen in self._widened:
                bound = None
            elif bound is not None:
                bound = round_relaxed(bound, down=objective == "min_accuracy")
                self._widened.add(widen)
            looser = slo.model_copy(update={objective: bound})
        return _remember(self._relaxed, (group, looser), self.search.plan_space(
            query.model_copy(update={"slo": looser})), limit=_RELAXED)

    def _admits_as_is(self, query: Query, residual: Residual) -> bool:
        """Whether ``query`` with its own SLO has a candidate that fits what is left and meets
        its SLO where it would run."""
        self._remember_residual(residual)
        if isinstance(self.search, ExhaustiveSearch):
            return self._admits_pool(query, residual)
        return self._admits_search(query, residual)

    def _admit(self, query: Query, cands: Sequence[Candidate], residual: Residual) -> bool:
        """Whether one of ``cands`` fits what is left and meets ``query``'s SLO where it
        would run."""
        return any(trial.fits and self._joined(query, cand, trial).meets(query.slo)
                   for cand, trial in zip(cands, residual.trials(cands, query.pipeline),
                                          strict=True))

    def _admits_search(self, query: Query, residual: Residual) -> bool:
        """Whether ``query``, searched on its own, has a candidate that fits what is left and
        meets its SLO where it would run."""
        key = (*_group(query), query.slo)
        hit = self._admitted.get(key)
        if hit is None:
            found = self.search.search([query])[0]
            hit = self._admitted[key] = self._admit(query, found.candidates, residual)
        return hit

    def _joined(self, query: Query, cand: Candidate, trial: Trial) -> Estimate:
        """``cand``'s estimate on its shared deployments in the state ``trial`` found them
        in (its own estimate when it joins none)."""
        est = self.search.estimator
        if not trial.states or not isinstance(est, AnalyticEstimator):
            return cand.estimate
        return est.with_deployments(trial.states).estimate(query, cand.plan)

    def _bounded(self, key: tuple[object, ...], query: Query, pool: PlanPool,
                 residual: Residual) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~circinus.whynot.shared.bounds` of the capped pool ``key`` (memo)."""
        self._remember_residual(residual)
        hit = self._bounds.get(key)
        if hit is None:
            use = self._uses.get(key)
            if use is None:
                use = _remember(self._uses, key, PoolUse.of(pool))
            hit = self._bounds[key] = bounds(query, pool, use, residual)
        return hit

    def _remember_residual(self, residual: Residual) -> None:
        """Forget what was memoised about another residual."""
        if residual is not self._residual:
            self._residual = residual
            self._bounds.clear()
            self._admitted.clear()
            self._widened.clear()
            self._explained.clear()


def _no_tighter(a: Slo, b: Slo) -> bool:
    """Whether SLO ``a`` is no tighter than ``b`` in any objective (a missing one is the
    loosest)."""
    return ((a.latency_ms is None or (b.latency_ms is not None and a.latency_ms >= b.latency_ms))
            and (a.min_accuracy is None or (b.min_accuracy is not None
                                            and a.min_accuracy <= b.min_accuracy))
            and (a.max_cost_per_hour is None or (b.max_cost_per_hour is not None
                                                 and a.max_cost_per_hour >= b.max_cost_per_hour)))


def _meets_others(latency: np.ndarray, accuracy: np.ndarray, cost: np.ndarray, slo: Slo,
                  objective: Objective) -> np.ndarray:
    """Which plans meet the objectives of ``slo`` other than ``objective``."""
    ok = np.ones(len(latency), dtype=bool)
    if objective != "latency_ms" and slo.latency_ms is not None:
        ok &= latency <= slo.latency_ms + EPS
    if objective != "min_accuracy" and slo.min_accuracy is not None:
        ok &= accuracy >= slo.min_accuracy - EPS
    if objective != "max_cost_per_hour" and slo.max_cost_per_hour is not None:
        ok &= cost <= slo.max_cost_per_hour + EPS
    return ok


def _group(query: Query) -> tuple[object, ...]:
    """What a query's plans depend on besides its SLO bounds (its name aside)."""
    return (query.pipeline, tuple(sorted(query.sources.items())), query.rate_rps,
            tuple(sorted(query.work_scale.items())), query.slo.percentile, query.sharing,
            tuple(sorted(query.source_rate_rps.items())),
            tuple(sorted(query.source_output_kb.items())))


def _remember(cache: dict[_K, _T], key: _K, value: _T, *, limit: int = _CACHED) -> _T:
    """Store ``value`` in ``cache``, forgetting the oldest entry beyond ``limit`` (the caches
    of a long-running online planner stay bounded)."""
    if len(cache) >= limit:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


def _relaxed(query: Query, objective: Objective, bound: float | None) -> Query:
    return query.model_copy(update={"slo": query.slo.model_copy(update={objective: bound})})


def _value(estimate: Estimate, objective: Objective) -> float | None:
    if objective == "latency_ms":
        return estimate.latency_ms if math.isfinite(estimate.latency_ms) else None
    if objective == "min_accuracy":
        return estimate.accuracy
    return estimate.cost_per_hour
