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
between the current bound and it (each step one search of the relaxed query), which is minimal
to one unit of that grid when admission is monotone in the bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from circinus.estimate.analytic import KB_PER_S_TO_MBPS
from circinus.estimate.base import EPS, Estimate
from circinus.search.base import BaseSearch, QueryCandidates
from circinus.search.decomposed import site_classes
from circinus.search.exhaustive import ExhaustiveSearch, PlanPool
from circinus.search.placements import eligible_devices, replica_rate
from circinus.spec.models import Device, LatencyProfile, Query, Slo
from circinus.whynot.binding import Resource, binding_of, scarcest
from circinus.whynot.records import OBJECTIVES, Objective, Relaxation, WhyNot

_DIGITS = 4  # significant digits of a reported bound (see NOTE)
_CACHED = 128  # plan spaces kept per kind (each up to a few MB)
_T = TypeVar("_T")
_SloKey = tuple[float | None, float | None, float | None]


@dataclass
class _Space:
    """One group's plan space with every objective removed, in its representative's names."""

    rep: Query
    pool: PlanPool
    keys: list[Resource]
    """Every resource some plan of the pool uses."""
    use: np.ndarray
    """Plans x ``keys``: what each plan uses of each resource."""
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
    change. Not thread-safe.
    """

    def __init__(self, *, search: BaseSearch, max_checks: int = 16) -> None:
        self.search = search
        self.max_checks = max_checks
        self._classes = site_classes(search.estimator.index)
        self._spaces: dict[tuple[object, ...], _Space] = {}
        self._fitting: dict[tuple[object, ...], PlanPool] = {}

    def explain(self, query: Query, found: QueryCandidates, reason: str, *,
                capacity: Mapping[Resource, float], used: Mapping[Resource, float],
                nearest: bool = True) -> WhyNot:
        """Why ``query`` (searched as ``found``, rejected for ``reason``) is not admitted.

        Args:
            capacity: every constrained resource and its capacity.
            used: what the admitted queries use of each resource (``query`` not among them).
            nearest: also compute the nearest admissible SLO (the costly part).
        """
        binding = binding_of(reason)
        resource = None
        if binding == "capacity" and found.candidates:
            lacking = scarcest(found.candidates, capacity, used)
            resource = None if lacking is None else lacking[0]
        relaxations = None
        if nearest:
            hopeless = not self._may_fit(query, capacity, used)
            relaxations = tuple(
                Relaxation(obj, float(bound),
                           None if hopeless else self._nearest(query, obj, capacity, used))
                for obj in OBJECTIVES if (bound := getattr(query.slo, obj)) is not None)
        return WhyNot(binding, resource, relaxations)

    def nearest(self, query: Query, objective: Objective, capacity: Mapping[Resource, float],
                used: Mapping[Resource, float]) -> float | None:
        """The nearest admissible bound of ``objective`` for ``query`` (see module note), or
        ``None`` when no value of it alone admits the query. ``query``'s SLO must set it."""
        assert getattr(query.slo, objective) is not None, f"{query.name}: no {objective}"
        if not self._may_fit(query, capacity, used):
            return None
        return self._nearest(query, objective, capacity, used)

    def _nearest(self, query: Query, objective: Objective, capacity: Mapping[Resource, float],
                 used: Mapping[Resource, float]) -> float | None:
        current = getattr(query.slo, objective)
        if isinstance(self.search, ExhaustiveSearch):
            space, rename = self._space(query)
            values = self._thresholds(space, rename, query.slo, objective, capacity, used)

            def admits(bound: float) -> bool:
                return self._admits_space(space, rename, query.slo, objective, bound, capacity,
                                          used)
        else:
            values = self._generic_thresholds(query, objective, capacity, used)

            def admits(bound: float) -> bool:
                found = self.search.search([_relaxed(query, objective, bound)])[0]
                return any(_fits(c.estimate.usage(), capacity, used) for c in found.candidates)

        lower = objective == "min_accuracy"
        ordered = sorted({min(v, current) if lower else max(v, current) for v in values},
                         reverse=lower)
        for bound in ordered[:self.max_checks]:
            if admits(bound):
                if not isinstance(self.search, ExhaustiveSearch):
                    return _bisect(admits, current, bound, down=lower)
                shown = _round_relaxed(bound, down=lower)
                return shown if shown == bound or admits(shown) else bound
        return None

    def _may_fit(self, query: Query, capacity: Mapping[Resource, float],
                 used: Mapping[Resource, float]) -> bool:
        """Whether some plan of the query, whatever its SLO, may fit what is left: a quick
        necessary condition (:meth:`_room`), then, for searches with a plan space, whether any
        plan enumerated within the devices' residual units fits every residual capacity. Only
        then is the whole plan space needed (its thresholds are among those plans)."""
        if not self._room(query, capacity, used):
            return False
        if not isinstance(self.search, ExhaustiveSearch):
            return True
        index = self.search.estimator.index
        units = {d.name: max(0.0, _left(("device", d.name), capacity, used))
                 for d in eligible_devices(index, query, self.search.settings.tiers)}
        key = (query.pipeline, tuple(sorted(query.sources.items())), query.rate_rps,
               tuple(sorted(query.work_scale.items())), query.slo.percentile,
               tuple(sorted(units.items())))
        pool = self._fitting.get(key)
        if pool is None:
            rep = query.model_copy(update={"slo": Slo(percentile=query.slo.percentile)})
            pool = _remember(self._fitting, key, self.search.plan_space(rep, units=units))
        return any(_fits(dict(usage), capacity, used) for usage in pool.usage)

    def _room(self, query: Query, capacity: Mapping[Resource, float],
              used: Mapping[Resource, float]) -> bool:
        """Whether every stage of the query could get its fewest replicas on some device it may
        use, given what is left (one replica per device when a stage may be spread).

        Every plan needs that, so when some stage cannot, no relaxation can help and the plan
        space need not be enumerated (the common case at full load).
        """
        index = self.search.estimator.index
        settings = self.search.settings
        pipe = index.pipelines[query.pipeline]
        devices = eligible_devices(index, query, settings.tiers)
        placeable = {}
        for stage in pipe.order:
            op = index.operators[pipe.operator_of[stage]]
            scale = query.work_scale.get(stage, 1.0)
            placeable[stage] = [dev for dev in devices if self._fits_one(
                op.profiles.values(), dev, query.rate_rps, scale, capacity, used)]
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
                mbps = query.rate_rps * pipe.source_kb[pred] * KB_PER_S_TO_MBPS
                if not any(_left(("link", f"{site}->{dev.site}"), capacity, used) + EPS >= mbps
                           for dev in placeable[stage]):
                    return False
        return True

    def _fits_one(self, profiles: Iterable[LatencyProfile], dev: Device, rate: float,
                  scale: float, capacity: Mapping[Resource, float],
                  used: Mapping[Resource, float]) -> bool:
        """Whether some configuration's fewest replicas fit on ``dev`` (see :meth:`_room`)."""
        settings = self.search.settings
        units = _left(("device", dev.name), capacity, used) + EPS
        memory = _left(("memory", dev.name), capacity, used) + EPS
        for prof in profiles:
            if prof.hardware != dev.hardware:
                continue
            if settings.max_devices_per_operator > 1:
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

    # -- plan spaces -------------------------------------------------------------------------

    def _space(self, query: Query) -> tuple[_Space, _Renaming]:
        """The plan space of ``query``'s group and the renaming into ``query``'s names."""
        assert isinstance(self.search, ExhaustiveSearch)
        sites = list(query.sources.items())
        pattern = tuple(next(i for i, (_, s) in enumerate(sites) if s == site)
                        for _, site in sites)
        key = (query.pipeline, tuple(sorted((src, self._classes[site][0]) for src, site in sites)),
               pattern, query.rate_rps, tuple(sorted(query.work_scale.items())),
               query.slo.percentile)
        space = self._spaces.get(key)
        if space is None:
            rep = query.model_copy(update={"slo": Slo(percentile=query.slo.percentile)})
            pool = self.search.plan_space(rep)
            keys = sorted({res for usage in pool.usage for res, _ in usage})
            col = {res: j for j, res in enumerate(keys)}
            use = np.zeros((len(pool), len(keys)))
            for i, usage in enumerate(pool.usage):
                for res, amount in usage:
                    use[i, col[res]] = amount
            space = _remember(self._spaces, key, _Space(rep, pool, keys, use))
        devices: dict[str, str] = {}
        site_map: dict[str, str] = {}
        for src, site in space.rep.sources.items():
            mine = query.sources[src]
            if mine != site:
                site_map[site] = mine
                devices.update(zip(self._classes[site][1], self._classes[mine][1], strict=True))
        return space, _Renaming(devices, site_map)

    def _thresholds(self, space: _Space, rename: _Renaming, slo: Slo, objective: Objective,
                    capacity: Mapping[Resource, float], used: Mapping[Resource, float]
                    ) -> list[float]:
        """Values of ``objective`` over the space's plans that meet the other objectives of
        ``slo`` and fit the residual capacity."""
        pool = space.pool
        residual = np.array([_left(rename(res), capacity, used) for res in space.keys])
        ok = (space.use <= residual + EPS).all(axis=1) if space.keys else np.ones(len(pool), bool)
        accuracy = np.nan_to_num(pool.accuracy, nan=-np.inf)
        if objective != "latency_ms" and slo.latency_ms is not None:
            ok &= pool.latency <= slo.latency_ms + EPS
        if objective != "min_accuracy" and slo.min_accuracy is not None:
            ok &= accuracy >= slo.min_accuracy - EPS
        if objective != "max_cost_per_hour" and slo.max_cost_per_hour is not None:
            ok &= pool.cost <= slo.max_cost_per_hour + EPS
        values = {"latency_ms": pool.latency, "min_accuracy": accuracy,
                  "max_cost_per_hour": pool.cost}[objective][ok]
        return [float(v) for v in values if math.isfinite(v)]

    def _admits_space(self, space: _Space, rename: _Renaming, slo: Slo, objective: Objective,
                      bound: float, capacity: Mapping[Resource, float],
                      used: Mapping[Resource, float]) -> bool:
        """Whether the candidates of the query with ``objective`` set to ``bound`` include one
        that fits the residual capacity."""
        relaxed = slo.model_copy(update={objective: bound})
        key = (relaxed.latency_ms, relaxed.min_accuracy, relaxed.max_cost_per_hour)
        usages = space.shortlists.get(key)
        if usages is None:
            assert isinstance(self.search, ExhaustiveSearch)
            found = self.search.shortlist(space.rep.model_copy(update={"slo": relaxed}),
                                          space.pool)
            usages = space.shortlists[key] = [c.estimate.usage() for c in found.candidates]
        return any(_fits({rename(r): v for r, v in usage.items()}, capacity, used)
                   for usage in usages)

    def _generic_thresholds(self, query: Query, objective: Objective,
                            capacity: Mapping[Resource, float], used: Mapping[Resource, float]
                            ) -> list[float]:
        """Thresholds from the candidates a search without a plan space finds for the query
        with ``objective`` removed."""
        found = self.search.search([_relaxed(query, objective, None)])[0]
        out = []
        for cand in found.candidates:
            value = _value(cand.estimate, objective)
            if value is not None and _fits(cand.estimate.usage(), capacity, used):
                out.append(value)
        return out


def _remember(cache: dict[tuple[object, ...], _T], key: tuple[object, ...], value: _T) -> _T:
    """Store ``value`` in ``cache``, forgetting the oldest entry beyond :data:`_CACHED` (the
    caches of a long-running online planner stay bounded)."""
    if len(cache) >= _CACHED:
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


def _left(res: Resource, capacity: Mapping[Resource, float],
          used: Mapping[Resource, float]) -> float:
    cap = capacity.get(res)
    return math.inf if cap is None else cap - used.get(res, 0.0)


def _fits(usage: Mapping[Resource, float], capacity: Mapping[Resource, float],
          used: Mapping[Resource, float]) -> bool:
    """Whether a plan using ``usage`` fits what ``used`` leaves of ``capacity``."""
    return all(used.get(r, 0.0) + v <= capacity[r] + EPS for r, v in usage.items()
               if r in capacity)


def _unit(value: float) -> int:
    """The exponent of the last of :data:`_DIGITS` significant digits of ``value``."""
    return math.floor(math.log10(abs(value))) - (_DIGITS - 1)


def _bisect(admits: Callable[[float], bool], current: float, found: float, *,
            down: bool) -> float:
    """The least relaxed bound on the grid of :data:`_DIGITS` significant digits of ``found``
    between ``current`` and ``found`` (which admits), by bisection; assumes that admission is
    monotone in the bound, as it is for a search that sees every plan."""
    if found == 0 or admits(current):
        return current
    exp = _unit(found)
    step, sign = 10.0 ** exp, -1.0 if down else 1.0

    def value(k: int) -> float:
        v = sign * k * step
        return round(v, -exp) if exp < 0 else v

    lo = math.floor(sign * current / step + 1e-9)
    hi = math.ceil(sign * found / step - 1e-9)
    if not admits(value(hi)):
        return found
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if admits(value(mid)):
            hi = mid
        else:
            lo = mid
    return value(hi)


def _round_relaxed(value: float, *, down: bool) -> float:
    """``value`` to :data:`_DIGITS` significant digits, rounded up (or ``down``): 212.3417 ->
    212.4, and with ``down`` 0.70318 -> 0.7031."""
    if value == 0 or not math.isfinite(value):
        return value
    exp = _unit(value)
    step = 10.0 ** exp
    steps = math.floor(value / step + 1e-9) if down else math.ceil(value / step - 1e-9)
    return round(steps * step, -exp) if exp < 0 else float(steps * step)

