"""Exhaustive per-query search with simple pruning, shared by identical queries.

NOTE: queries with the same pipeline, source sites, rate, per-stage work and SLO percentile are
the same search problem up to their SLO bounds, so the plan space is enumerated once per such
*group* and each
member filters it by its own SLO. Enumeration runs over the accuracy-feasible configuration
vectors only (accuracy depends on configurations, never on placement), then over each stage's
placement options (:mod:`circinus.search.placements`) depth-first in topological order, skipping
combinations that overfill a device within the query and partial plans whose summed mean
latency along some path already exceeds the group's loosest latency bound (the end-to-end mean
is at least every path's, since a join waits for its slowest branch, and a mean above the bound
puts every percentile >= 64 above it too, so this prune is exact for such percentiles). Complete
plans are composed as :meth:`BaseEstimator.estimate` composes them (:mod:`circinus.estimate.
join`).

Each member then keeps a small candidate set: walking its SLO-feasible plans from the cheapest,
a plan is kept unless a kept plan is no more expensive and uses no more of any resource. The
cheapest plan is always kept, and the others differ in the resources they occupy, which is what
the global selection needs to trade between queries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from circinus.estimate.arrivals import inflow_scv
from circinus.estimate.base import EPS, BaseEstimator, Estimate, Shares, dominates
from circinus.estimate.flow import at_rate, flow_of
from circinus.estimate.join import Moments, Wait, latency_moments
from circinus.estimate.queueing import quantile
from circinus.plan.records import QueryPlan, StagePlan
from circinus.search.base import BaseSearch, Candidate, QueryCandidates
from circinus.search.grow import SEEDS, Grower, worth_growing
from circinus.search.placements import (
    Option,
    eligible_devices,
    levels,
    replica_rate,
    stage_options,
)
from circinus.search.shortlist import UNPLACED, explain
from circinus.search.vectors import VectorCache
from circinus.spec.index import ConfigKey, WorldIndex
from circinus.spec.models import Device, PlannerSettings, Query

_PRUNE_PERCENTILE = 64.0  # gamma quantiles at or above this are >= the mean (see NOTE)
_SCAN_LIMIT = 5000  # feasible plans examined per query when picking its candidates
_PLACEABLE_STEPS = 100_000  # placements tried to tell a query without room (see _placeable)
ROOMLESS = "placement: no placement of every stage at the query's rate fits the units of the "
"""How the reason of a query none of whose accuracy-feasible configuration vectors fits the
devices it may use, however slow, begins (e.g. a box with fewer units than the pipeline's
replicas); :func:`_roomless` names the devices and the units the smallest plan needs."""
RAISED_SHARE = 8
"""Raised plans (:meth:`ExhaustiveSearch._raised`) offered beside a query's candidates: at most
``candidates_per_query / RAISED_SHARE`` (at least one)."""


Usage = tuple[tuple[tuple[str, str], float], ...]
"""Resources a plan occupies: ``(("device" | "memory" | "link", name), amount)``, sorted."""
_Leaf = tuple[tuple[StagePlan, ...], float, float, Usage, float]
"""A complete plan with its latency at the SLO percentile (ms), cost ($/h), usage and cost were
its query alone on its shared deployments ($/h)."""


@dataclass
class PlanPool:
    """All plans enumerated for one group, as parallel arrays; estimates made on demand.

    Read-only for every user outside the search (only the memos of :meth:`estimate` and
    :meth:`device_set` fill in).
    """

    query: Query
    plans: list[tuple[StagePlan, ...]]
    latency: np.ndarray
    accuracy: np.ndarray
    cost: np.ndarray
    usage: list[Usage]
    solo: np.ndarray
    """Cost of each plan were its query alone on its shared deployments (its own fewest
    replicas there); the plan's cost for a plan without shared stages."""
    best_accuracy: float | None
    latency_pruned: bool
    """Whether some partial plan was cut for exceeding the group's loosest latency bound."""
    evaluations: int
    """Complete plans whose end-to-end performance was estimated to build the pool."""
    estimator: BaseEstimator
    unplaced: str | None = None
    """Why configuration vectors were left out for want of a device (some stage's
    configuration runs on no device the query may use), the reason given if no plan is left;
    ``None`` when none was."""
    _estimates: dict[int, Estimate] = field(default_factory=dict)
    _keys: _PoolKeys | None = None
    shortlists: dict[tuple[float | None, ...], list[int]] = field(default_factory=dict)
    """Memo of the search: kept plan indices by SLO bounds (members often share an SLO)."""
    raised: dict[tuple[float | None, ...], tuple[Candidate, ...]] = field(default_factory=dict)
    """Memo of the search: the raised plans offered beside the kept ones, by SLO bounds."""

    def __len__(self) -> int:
        return len(self.plans)

    @property
    def keys(self) -> _PoolKeys:
        """Per-plan arrays every member of the group filters (built once, on first use)."""
        if self._keys is None:
            self._keys = _PoolKeys.build(self)
        return self._keys

    def solo_costs(self, plans: np.ndarray) -> np.ndarray | None:
        """:attr:`solo` of ``plans`` (indices); ``None`` when no plan of the pool joins a
        shared deployment (a stage is shared in every plan of a query or in none)."""
        if not self.plans or not any(st.shared for st in self.plans[0]):
            return None
        return np.asarray(self.solo[plans], dtype=float)

    def estimate(self, i: int) -> Estimate:
        """The full estimate of plan ``i`` (identical for every member of the group)."""
        if i not in self._estimates:
            plan = QueryPlan(self.query.name, self.plans[i])
            self._estimates[i] = self.estimator.estimate(self.query, plan)
        return self._estimates[i]


class ExhaustiveSearch(BaseSearch):
    """Enumerates every plan of each query group (see module note)."""

    splittable = True

    def __init__(self, *, estimator: BaseEstimator, settings: PlannerSettings) -> None:
        super().__init__(estimator=estimator, settings=settings)
        self._vectors = VectorCache(estimator, prune_dominated=True)
        self._room_memo: dict[tuple[object, ...],
                              tuple[tuple[tuple[object, ...] | None, str, float], ...]] = {}

    def groups(self, queries: Sequence[Query]) -> list[list[int]]:
        """Queries with the same pipeline, sources, rate, work and SLO percentile (module
        note)."""
        groups: dict[tuple[object, ...], list[int]] = {}
        for i, q in enumerate(queries):
            key = (q.pipeline, tuple(sorted(q.sources.items())), q.rate_rps,
                   tuple(sorted(q.work_scale.items())), q.slo.percentile,
                   tuple(sorted(q.source_rate_rps.items())),
                   tuple(sorted(q.source_output_kb.items())))
            groups.setdefault(key, []).append(i)
        return list(groups.values())

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        out: list[QueryCandidates | None] = [None] * len(queries)
        for members in self.groups(queries):
            pool = self._enumerate([queries[i] for i in members])
            for j, i in enumerate(members):
                out[i] = self._pick(queries[i], pool, charge=j == 0)
        return [r for r in out if r is not None]

    def plan_space(self, query: Query, *, units: Mapping[str, float] | None = None) -> PlanPool:
        """Every plan this search considers for ``query`` alone, as arrays (see :class:`PlanPool`).

        The query's SLO only bounds the enumeration (accuracy floor, latency prune): pass a copy
        with objectives removed to see the plans a looser SLO would allow. ``units`` caps what
        a plan may take of each named device (e.g. what other queries leave), so that only the
        plans fitting those caps are enumerated. Used to explain rejections
        (:mod:`circinus.whynot`).
        """
        return self._enumerate([query], units=units)

    def shortlist(self, query: Query, pool: PlanPool) -> QueryCandidates:
        """The candidates ``search([query])`` gives, taken from ``pool``.

        ``pool`` must come from :meth:`plan_space` of a query with the same pipeline, sources,
        rate, work and percentile whose SLO is no tighter than ``query``'s in any objective (its
        plans then include every plan ``query`` may use). No evaluation is billed.
        """
        return self._pick(query, pool, charge=False)

    # -- enumeration -------------------------------------------------------------------------

    def _config_vectors(self, query: Query, floor: float | None
                        ) -> tuple[list[dict[str, ConfigKey]], float | None]:
        """Accuracy-feasible configuration vectors (as stage -> configuration) and the best
        accuracy, shared by every query of the pipeline with this floor."""
        order = self.estimator.index.pipelines[query.pipeline].order
        vectors, best = self._vectors.get(query.pipeline, floor)
        return [dict(zip(order, v, strict=True)) for v in vectors], best

    def _enumerate(self, members: Sequence[Query], *,
                   units: Mapping[str, float] | None = None) -> PlanPool:
        rep = members[0]
        index = self.estimator.index
        pipe = index.pipelines[rep.pipeline]
        floors = [q.slo.min_accuracy for q in members]
        floor = None if any(f is None for f in floors) else min(f for f in floors if f is not None)
        bounds = [q.slo.latency_ms for q in members]
        prune_ms = math.inf
        # With branches or fan-out a path is taken only sometimes: no path bounds the latency.
        if pipe.plain and all(b is not None for b in bounds) and all(
            q.slo.percentile >= _PRUNE_PERCENTILE for q in members
        ):
            prune_ms = max(b for b in bounds if b is not None)
        devices = eligible_devices(index, rep, self.settings.tiers)
        capacity = {d.name: d.units if units is None else min(d.units, units.get(d.name, d.units))
                    for d in devices}
        vectors, best_acc = self._config_vectors(rep, floor)
        unwaited = pipe.unwaited(rep)
        option_cache: dict[tuple[str, ConfigKey, float], list[Option]] = {}
        leaves: list[_Leaf] = []
        accuracy: list[float] = []
        pruned = False
        evaluations = 0
        fastest = fastest_service(index, rep, devices)
        missing: set[tuple[str, ConfigKey]] = set()
        runnable = 0  # vectors each of whose stages some device may run
        grower = (Grower(self.estimator, self.settings, rep, capacity, prune_ms)
                  if pipe.plain and worth_growing(index, self.settings) else None)
        for configs in vectors:
            # Monotone prune: even at zero load on its fastest device, each stage takes at
            # least its quickest batch time; a vector whose slowest path cannot beat the
            # loosest bound that way is never placed.
            # (Only paths the requests wait for count; an infinite one anywhere means a stage
            # has no device at all.)
            least = [(sum(fastest.get((s, configs[s]), math.inf) for s in path[1:]),
                      path[0] in unwaited) for path in pipe.paths]
            floor_s = max(f for f, skip in least if not skip)
            if not all(math.isfinite(f) for f, _ in least):  # some stage has no device:
                missing.update((s, configs[s]) for s in pipe.order  # no plan, no latency cut
                               if not math.isfinite(fastest.get((s, configs[s]), math.inf)))
                continue
            runnable += 1
            if floor_s * 1e3 > prune_ms + EPS:
                pruned = True
                continue
            visits = None if pipe.plain else flow_of(pipe, index.operators, configs).stage
            per_stage = []
            for stage in pipe.order:
                # A stage's options depend on its rate: with fan-out or branches, on its
                # visits per request too (which follow the configurations before it).
                v = 1.0 if visits is None else visits[stage]
                key = (stage, configs[stage], v)
                if key not in option_cache:
                    option_cache[key] = stage_options(index, self.settings, at_rate(rep, v),
                                                      stage, configs[stage], devices)
                per_stage.append(option_cache[key])
            found, cut, work = self._combine(rep, configs, per_stage, capacity, prune_ms)
            pruned |= cut
            evaluations += work
            if grower is not None and found:
                found = found + _grown(grower, found)
            acc = self.estimator.accuracy(rep.pipeline, configs)
            leaves.extend(found)
            accuracy.extend([np.nan if acc is None else acc] * len(found))
        if grower is not None:
            evaluations += grower.evaluations
        unplaced = _unplaced(index, pipe.operator_of, missing, floor) if missing else None
        if not leaves and runnable and not self._placeable(
                rep, vectors, devices, capacity, option_cache):
            # No plan fits at any latency: room, not speed.
            pruned, unplaced = False, self._roomless(rep, vectors, devices, capacity,
                                                     option_cache)
        return PlanPool(
            query=rep,
            plans=[leaf[0] for leaf in leaves],
            latency=np.array([leaf[1] for leaf in leaves], dtype=float),
            accuracy=np.array(accuracy, dtype=float),
            cost=np.array([leaf[2] for leaf in leaves], dtype=float),
            usage=[leaf[3] for leaf in leaves],
            solo=np.array([leaf[4] for leaf in leaves], dtype=float),
            best_accuracy=best_acc,
            latency_pruned=pruned,
            evaluations=evaluations,
            estimator=self.estimator,
            unplaced=unplaced,
        )

    def _rooms(self, pipeline: str, st: StagePlan | tuple[str, ConfigKey, Option]
               ) -> tuple[tuple[tuple[object, ...] | None, str, float], ...]:
        """The whole units stage ``st`` (a stage plan, or a stage, configuration and option)
        takes of each device with its query alone: ``(deployment, device, units)``, where
        ``deployment`` identifies a shared stage's deployment (stages of one query on the same
        deployment take its replicas once) and is ``None`` for replicas of the query's own.
        A shared deployment has at least the stage's replicas (``Replicas.count``, the fewest
        its level allows), whoever else joins it."""
        if isinstance(st, StagePlan):
            stage, config, batch, placement, level = (st.stage, st.config, st.batch,
                                                      st.placement, st.level)
        else:
            stage, config, opt = st
            batch, placement, level = opt.batch, opt.placement, opt.level
        key = (pipeline, stage, config, batch, placement, level)
        found = self._room_memo.get(key)
        if found is None:
            index = self.estimator.index
            name = index.pipelines[pipeline].operator_of[stage]
            op = index.operators[name]
            found = self._room_memo[key] = tuple(
                (None if level is None else (name, config, r.device, batch, level), r.device,
                 r.count * op.profiles[config, index.devices[r.device].hardware].units)
                for r in placement)
        return found

    def _stage_needs(self, query: Query, configs: Mapping[str, ConfigKey],
                     devices: Sequence[Device],
                     option_cache: dict[tuple[str, ConfigKey, float], list[Option]]
                     ) -> list[list[tuple[tuple[tuple[str, float], ...],
                                          tuple[tuple[tuple[object, ...] | None, str, float],
                                                ...]]]]:
        """Per stage of ``query``'s pipeline in ``configs``: for each placement option with a
        finite latency, the units it takes at its level (a shared stage's share) and in whole
        replicas (:meth:`_rooms`)."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        visits = None if pipe.plain else flow_of(pipe, index.operators, configs).stage
        per_stage = []
        for stage in pipe.order:
            v = 1.0 if visits is None else visits[stage]  # as _enumerate keys them
            key = (stage, configs[stage], v)
            if key not in option_cache:
                option_cache[key] = stage_options(index, self.settings, at_rate(query, v),
                                                  stage, configs[stage], devices)
            needs = []
            for o in option_cache[key]:
                st = self.estimator.stage(at_rate(query, v), stage, configs[stage], o.batch,
                                          o.placement, o.level)
                if math.isfinite(st.mean_s):
                    needs.append((st.units, self._rooms(query.pipeline,
                                                        (stage, configs[stage], o))))
            per_stage.append(needs)
        return per_stage

    def _placeable(self, query: Query, vectors: Sequence[dict[str, ConfigKey]],
                   devices: Sequence[Device], capacity: Mapping[str, float],
                   option_cache: dict[tuple[str, ConfigKey, float], list[Option]]) -> bool:
        """Whether some configuration vector of ``vectors`` has a placement of every stage at
        the query's rate within ``capacity``, whatever its latency, its shared deployments in
        whole replicas within the devices' units. A query whose plans were all cut by the
        latency prune before a later stage found no room (a box too small for the pipeline's
        units) lacks room, not speed; so does one whose plans fit only in fractions of
        replicas. Gives up, answering yes, after :data:`_PLACEABLE_STEPS` steps."""
        steps = 0
        used: dict[str, float] = {}
        whole: dict[str, float] = {}
        opened: dict[tuple[object, ...], int] = {}
        full = {d.name: d.units for d in devices}

        def fits(per_stage: list[list[tuple[tuple[tuple[str, float], ...],
                                            tuple[tuple[tuple[object, ...] | None, str, float],
                                                  ...]]]], depth: int) -> bool:
            nonlocal steps
            if depth == len(per_stage):
                return True
            for need, rooms in per_stage[depth]:
                steps += 1
                if steps > _PLACEABLE_STEPS:
                    return True
                new = [(k, d, u) for k, d, u in rooms if k is None or k not in opened]
                if all(used.get(d, 0.0) + u <= capacity[d] + EPS for d, u in need) and all(
                        whole.get(d, 0.0) + u <= full[d] + EPS for _, d, u in new):
                    for d, u in need:
                        used[d] = used.get(d, 0.0) + u
                    for k, _, _ in rooms:
                        if k is not None:
                            opened[k] = opened.get(k, 0) + 1
                    for _, d, u in new:
                        whole[d] = whole.get(d, 0.0) + u
                    found = fits(per_stage, depth + 1)
                    for d, u in need:
                        used[d] -= u
                    for k, _, _ in rooms:
                        if k is not None:
                            opened[k] -= 1
                            if not opened[k]:
                                del opened[k]
                    for _, d, u in new:
                        whole[d] -= u
                    if found:
                        return True
            return False

        return any(fits(self._stage_needs(query, configs, devices, option_cache), 0)
                   for configs in vectors)

    def _roomless(self, query: Query, vectors: Sequence[dict[str, ConfigKey]],
                  devices: Sequence[Device], capacity: Mapping[str, float],
                  option_cache: dict[tuple[str, ConfigKey, float], list[Option]]) -> str:
        """The reason of a query no plan of which fits its devices at any latency
        (:meth:`_placeable`): the units of the devices it may use and the fewest units in
        whole replicas any of its accuracy-feasible plans takes, stage by stage, e.g.
        ``placement: no placement of every stage at the query's rate fits the units of the
        devices it may use at any latency (shop-box: 2 units); the smallest plan, det as
        {model: large} (2 units) and cls as {resolution: 224} (1 unit), takes 3 units in whole
        replicas; add units or allow another tier``."""
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        best: tuple[float, list[tuple[str, float]]] | None = None
        for configs in vectors:
            parts = []
            for stage, needs in zip(pipe.order, self._stage_needs(
                    query, configs, devices, option_cache), strict=True):
                least = min((sum(u for _, _, u in rooms) for _, rooms in needs),
                            default=math.inf)
                knobs = index.operators[pipe.operator_of[stage]].config_dict(configs[stage])
                parts.append((f"{stage} as {{{', '.join(f'{k}: {v}' for k, v in knobs.items())}}}",
                              least))
            total = sum(u for _, u in parts)
            if math.isfinite(total) and (best is None or total < best[0] - EPS):
                best = (total, parts)
        usable = [d for d in devices if d.name in capacity]
        shown = ", ".join(f"{d.name}: {_units(capacity[d.name])}" for d in usable[:3]) + (
            f" and {len(usable) - 3} more" if len(usable) > 3 else "")
        head = (f"{ROOMLESS}devices it may use at any latency ({shown}); ")
        if best is None:  # every option of some stage had an infinite latency
            return head + "add units or allow another tier"
        total, parts = best
        stages = " and ".join(f"{name} ({_units(u)})" for name, u in parts)
        fits_sum = total <= sum(capacity[d.name] for d in usable) + EPS
        return head + (f"the smallest plan, {stages}, takes {_units(total)} in whole "
                       "replicas" + (", which do not divide among them" if fits_sum else "")
                       + "; add units or allow another tier")

    def _combine(self, query: Query, configs: dict[str, ConfigKey],
                 per_stage: Sequence[list[Option]], capacity: dict[str, float],
                 prune_ms: float) -> tuple[list[_Leaf], bool, int]:
        """Depth-first product of stage options (see :meth:`_combine_paths`); for a pipeline
        with fan-out or branches, :meth:`_combine_flow`."""
        if not self.estimator.index.pipelines[query.pipeline].plain:
            return self._combine_flow(query, configs, per_stage, capacity)
        return self._combine_paths(query, configs, per_stage, capacity, prune_ms)

    def _combine_flow(self, query: Query, configs: dict[str, ConfigKey],
                      per_stage: Sequence[list[Option]], capacity: dict[str, float]
                      ) -> tuple[list[_Leaf], bool, int]:
        """Every product of stage options within device capacity, each complete plan
        estimated whole (:meth:`BaseEstimator.estimate`: its latency is a mixture over
        branches and object counts, which no sum along a path bounds, so nothing is pruned by
        latency). Stage kernels are memoised by the estimator, so only the composition is
        paid per plan."""
        est = self.estimator
        pipe = est.index.pipelines[query.pipeline]
        visits = flow_of(pipe, est.index.operators, configs).stage
        order = pipe.order
        out: list[_Leaf] = []
        used: dict[str, float] = {}
        chosen: list[StagePlan] = []

        def dfs(depth: int, solo_extra: float) -> None:
            if depth == len(order):
                plan = QueryPlan(query.name, tuple(chosen))
                e = est.estimate(query, plan)
                if not math.isfinite(e.latency_ms):
                    return
                usage = tuple(sorted((r, v) for r, v in e.usage().items() if v > EPS))
                out.append((plan.stages, e.latency_ms, e.cost_per_hour, usage,
                            e.cost_per_hour + solo_extra))
                return
            stage = order[depth]
            for opt in per_stage[depth]:
                st = est.stage(at_rate(query, visits[stage]), stage, configs[stage], opt.batch,
                               opt.placement, opt.level)
                if not math.isfinite(st.mean_s):
                    continue
                if any(used.get(d, 0.0) + u > capacity[d] + EPS for d, u in st.units):
                    continue
                for d, u in st.units:
                    used[d] = used.get(d, 0.0) + u
                chosen.append(StagePlan(stage, configs[stage], opt.batch, opt.placement,
                                        opt.level))
                dfs(depth + 1, solo_extra + st.solo_cost_per_hour - st.cost_per_hour)
                chosen.pop()
                for d, u in st.units:
                    used[d] -= u

        dfs(0, 0.0)
        return out, False, len(out)

    def _combine_paths(self, query: Query, configs: dict[str, ConfigKey],
                       per_stage: Sequence[list[Option]], capacity: dict[str, float],
                       prune_ms: float) -> tuple[list[_Leaf], bool, int]:
        """Depth-first product of stage options within device capacity and the latency prune.

        Returns the complete plans, whether the latency prune cut anything and the number of
        complete plans whose end-to-end performance was estimated.

        Path moments and cost are accumulated incrementally from the estimator's (cached) stage
        and transfer kernels, composed exactly as :meth:`BaseEstimator.estimate` does (each
        stage at the arrival SCV the options chosen before it give).
        """
        est = self.estimator
        pipe = est.index.pipelines[query.pipeline]
        order = pipe.order
        q = query.slo.percentile / 100.0
        # For each stage: the paths it lies on, with its predecessor on that path.
        # Paths from sources with their own rate make no request wait (a join takes their
        # latest message): they take no part in the latency prune.
        unwaited = pipe.unwaited(query)
        on_paths = {s: [(i, path[path.index(s) - 1]) for i, path in enumerate(pipe.paths)
                        if s in path and path[0] not in unwaited] for s in order}
        sources = {src: ((f"@{site}", 1.0),) for src, site in query.sources.items()}
        out: list[_Leaf] = []
        cut = [False]
        used: dict[str, float] = {}
        other: dict[tuple[str, str], float] = {}  # memory and link use
        chosen: list[StagePlan] = []
        shares: dict[str, Shares] = {}
        means = [0.0] * len(pipe.paths)  # along each path, for the latency prune
        varis = [0.0] * len(pipe.paths)
        stage_m: dict[str, Moments] = {}  # of the chosen options, for the leaves
        edge_m: dict[tuple[str, str], Moments] = {}
        wait_m: dict[str, Wait] = {}
        leaving = {src: 1.0 for src in pipe.source_kb}  # SCV of the requests each node emits

        def dfs(depth: int, cost: float, solo: float) -> None:
            if depth == len(order):
                mean, var, third = latency_moments(pipe, stage_m, edge_m, unwaited, wait_m)
                pct = quantile(mean, var, q, third)
                usage = [(("device", d), u) for d, u in used.items() if u > EPS]
                usage += [(r, v) for r, v in other.items() if v > EPS]
                out.append((tuple(chosen), pct * 1e3, cost, tuple(sorted(usage)), solo))
                return
            stage = order[depth]
            config = configs[stage]
            for opt in per_stage[depth]:
                st = est.stage(query, stage, config, opt.batch, opt.placement, opt.level)
                if not math.isfinite(st.mean_s):
                    continue
                need = st.units  # a shared stage's share of its deployments at their level
                if any(used.get(d, 0.0) + u > capacity[d] + EPS for d, u in need):
                    continue
                saved = (means[:], varis[:])
                into = {}
                for pred in pipe.preds[stage]:
                    src = sources.get(pred) or shares[pred]
                    size = est.message_kb(query.pipeline, pred, configs, query=query)
                    into[pred] = est.transfer(query, size, src, st.shares,
                                              rate_rps=pipe.rate(query, pred))
                scv = inflow_scv([(leaving[p], tr.var_s2) for p, tr in into.items()
                                  if p not in unwaited or stage in unwaited],
                                 pipe.rate(query, stage))
                if scv < 1.0:  # smoother than Poisson behind the stages chosen before
                    st = est.stage(query, stage, config, opt.batch, opt.placement, opt.level,
                                   scv)
                leaving[stage] = st.departure_scv
                wait_m[stage] = (st.wait_s, st.arrival_share)
                for i, pred in on_paths[stage]:
                    means[i] += into[pred].mean_s + st.mean_s
                    varis[i] += into[pred].var_s2 + st.var_s2
                stage_m[stage] = (st.mean_s, st.var_s2, st.third_s3)
                edge_m.update(((p, stage), (tr.mean_s, tr.var_s2, tr.third_s3))
                              for p, tr in into.items())
                # Each incoming transfer is paid once, however many paths share it.
                extra = st.cost_per_hour + sum(tr.cost_per_hour for tr in into.values())
                worst = max((means[i] for i, _ in on_paths[stage]), default=0.0)
                if math.isfinite(worst) and worst * 1e3 > prune_ms + EPS:
                    cut[0] = True
                elif math.isfinite(worst):
                    shares[stage] = st.shares
                    extras = [(("memory", d), m) for d, m in st.memory_gb] + [
                        (("link", f"{a}->{b}"), mbps)
                        for tr in into.values() for (a, b), mbps in tr.link_mbps] + [
                        (("deployment", k), load) for k, load in st.deployments] + [
                        (("deployment-floor", k), float(f)) for k, f in st.deployment_floor]
                    for d, u in need:
                        used[d] = used.get(d, 0.0) + u
                    for r, v in extras:
                        other[r] = other.get(r, 0.0) + v
                    chosen.append(StagePlan(stage, config, opt.batch, opt.placement, opt.level))
                    dfs(depth + 1, cost + extra,
                        solo + extra - st.cost_per_hour + st.solo_cost_per_hour)
                    chosen.pop()
                    for d, u in need:
                        used[d] -= u
                    for r, v in extras:
                        other[r] -= v
                means[:], varis[:] = saved

        dfs(0, 0.0, 0.0)
        return out, cut[0], len(out)

    # -- per-query choice --------------------------------------------------------------------

    def _pick(self, query: Query, pool: PlanPool, *, charge: bool = True) -> QueryCandidates:
        """Candidates of ``query`` from its group's ``pool``; ``charge`` bills the pool's
        evaluations to this query (the first member of a group pays for the shared work)."""
        slo = query.slo
        bounds = (slo.min_accuracy, slo.latency_ms, slo.max_cost_per_hour)
        kept = pool.shortlists.get(bounds)
        if kept is not None:
            return QueryCandidates(query.name, self._with_raised(query, pool, kept, tuple(
                Candidate(QueryPlan(query.name, c.plan.stages), c.estimate)
                for c in pool.raised[bounds])), None, pool.evaluations if charge else 0)
        n = len(pool)
        ok_acc = np.ones(n, dtype=bool)
        if slo.min_accuracy is not None:
            ok_acc = pool.keys.accuracy >= slo.min_accuracy - EPS
        ok_lat = np.ones(n, dtype=bool)
        if slo.latency_ms is not None:
            ok_lat = pool.latency <= slo.latency_ms + EPS
        ok_cost = np.ones(n, dtype=bool)
        if slo.max_cost_per_hour is not None:
            ok_cost = pool.cost <= slo.max_cost_per_hour + EPS
        feasible = ok_acc & ok_lat & ok_cost
        if not feasible.any():
            return QueryCandidates(query.name, (), _reason(query, pool, ok_acc, ok_lat),
                                   pool.evaluations if charge else 0)
        by_cost = pool.keys.by_cost
        order = by_cost[feasible[by_cost]][:_SCAN_LIMIT]
        kept = pool.shortlists[bounds] = _diverse(pool, order, self.settings.candidates_per_query)
        raised = pool.raised[bounds] = self._raised(query, pool, kept)
        return QueryCandidates(query.name, self._with_raised(query, pool, kept, raised), None,
                               pool.evaluations if charge else 0)

    def _with_raised(self, query: Query, pool: PlanPool, kept: list[int],
                     raised: tuple[Candidate, ...]) -> tuple[Candidate, ...]:
        """The candidates ``kept`` and the ``raised`` plans beside them, cheapest first (in the
        places of the dearest kept ones, one seeded tiny world of twelve ended 14 % dearer)."""
        if not raised:
            return self._candidates(query, pool, kept)
        both = [*self._candidates(query, pool, kept), *raised]
        return tuple(sorted(both, key=lambda c: c.estimate.cost_per_hour))

    def _raised(self, query: Query, pool: PlanPool, kept: list[int]) -> tuple[Candidate, ...]:
        """Plans offered beside the candidates ``kept`` (of ``pool``, for ``query``): each kept
        plan with a shared stage on one device at a lower utilisation level, that stage raised
        to the highest level with the same replicas (each such stage alone, and all of them).

        A deployment of ``c`` replicas at the highest level waits less than one of the fewest
        replicas the level needs (Erlang's economy of scale) and, for the same share, more than
        ``c`` at the lower level: where the query's latency needs the lower level's replicas
        but not its utilisation, the raised plan costs a smaller share, and nothing more once
        other queries' load needs those replicas anyway. On the tiny world both cameras then
        fit the shop's box, detection on two replicas at 80 % ($0.040/h, the oracle's
        optimum); without it a classifier went to a GPU ($0.389/h). Raised plans are made
        here, from the few kept plans, rather than offered as placement options: as options
        they grew the search by 16 % and the candidates by 10 % at 10,000 queries. At most
        ``candidates_per_query / RAISED_SHARE`` are kept, the cheapest that meet the SLO, fit
        alone and no kept plan dominates."""
        ladder = levels(self.settings)
        top = ladder[0]
        if len(ladder) < 2:
            return ()
        index = self.estimator.index
        pipe = index.pipelines[query.pipeline]
        made: dict[tuple[StagePlan, ...], Estimate] = {}
        for k in kept:
            stages = pool.plans[k]
            low = [i for i, st in enumerate(stages) if st.level is not None
                   and st.level < top - EPS and len(st.placement) == 1
                   and st.placement[0].share is None
                   and st.placement[0].count > self._fewest(query, st, top, pipe.operator_of)]
            for group in ([[i] for i in low] + ([low] if len(low) > 1 else [])):
                new = tuple(StagePlan(st.stage, st.config, st.batch, st.placement, top)
                            if i in group else st for i, st in enumerate(stages))
                if new not in made:
                    made[new] = self.estimator.estimate(query, QueryPlan(query.name, new))
        if not made:
            return ()
        cap = index.capacities
        use = {k: dict(pool.usage[k]) for k in kept}
        offered = []
        for stages, est in sorted(made.items(), key=lambda item: item[1].cost_per_hour):
            usage = est.usage()
            if not est.meets(query.slo) or est.max_utilization > top + EPS or any(
                    v > cap[r] + EPS for r, v in usage.items() if r in cap):
                continue
            if any(dominates(pool.cost[k], use[k], est.cost_per_hour, usage) for k in kept):
                continue
            offered.append(Candidate(QueryPlan(query.name, stages), est))
            if len(offered) >= max(1, self.settings.candidates_per_query // RAISED_SHARE):
                break
        return tuple(offered)

    def _fewest(self, query: Query, st: StagePlan, level: float,
                operator_of: Mapping[str, str]) -> int:
        """The fewest replicas stage ``st`` (on one device) needs at ``level``."""
        index = self.estimator.index
        (rep,) = st.placement
        prof = index.operators[operator_of[st.stage]].profiles[
            st.config, index.devices[rep.device].hardware]
        rate = replica_rate(prof, st.batch, query.work_scale.get(st.stage, 1.0))
        if rate is None:
            return rep.count
        return max(1, math.ceil(query.rate_rps / (rate * level) - EPS))

    @staticmethod
    def _candidates(query: Query, pool: PlanPool, kept: list[int]) -> tuple[Candidate, ...]:
        return tuple(
            Candidate(QueryPlan(query.name, pool.plans[k]), pool.estimate(k)) for k in kept)


def _diverse(pool: PlanPool, order: np.ndarray, limit: int) -> list[int]:
    """Up to ``limit`` plans of ``order`` (cheapest first), none dominated by another.

    First the cheapest plan on each distinct *set of devices*, so that the selection sees every
    way of placing the query (edge box, cloud pool, both) even when many variants crowd one
    pool; then, where the plans join shared deployments, the cheapest ones *alone*: their cost
    counts each deployment's share (``load / level`` replicas), which is what a query pays
    among many co-tenants, but a query that ends up alone on a deployment pays its whole
    replicas, and the plan cheapest that way is often another (:func:`solo_costs`); then the
    remaining slots go to the cheapest plans not yet dominated. A plan using
    exactly what a cheaper one uses is dominated by it (or by what dominated it), so only the
    cheapest plan of each usage is judged: these are found with one ``np.unique`` over the
    pool's usage ids rather than by walking every feasible plan (at 10,000 queries the walk
    was half of the search). The result is sorted by cost.
    """
    kept: list[int] = []
    judged: set[int] = set()
    usage: dict[int, dict[tuple[str, str], float]] = {}

    def use(k: int) -> dict[tuple[str, str], float]:
        if k not in usage:
            usage[k] = dict(pool.usage[k])
        return usage[k]

    def offer(candidates: Sequence[int], most: int) -> None:
        for i in candidates:
            if len(kept) >= most:
                break
            if i in judged:
                continue
            judged.add(i)
            if not any(dominates(pool.cost[k], use(k), pool.cost[i], use(i)) for k in kept):
                kept.append(i)

    keys = pool.keys
    _, first = np.unique(keys.devset_id[order], return_index=True)
    offer(order[np.sort(first)].tolist(), limit)
    solo = pool.solo_costs(order)
    if solo is not None:  # the cheapest alone, up to half the slots left
        offer(order[np.argsort(solo, kind="stable")].tolist(),
              len(kept) + max(1, (limit - len(kept)) // 2))
    _, first = np.unique(keys.usage_id[order], return_index=True)
    offer(order[np.sort(first)].tolist(), limit)
    return sorted(kept, key=lambda k: (pool.cost[k], k))


@dataclass(frozen=True)
class _PoolKeys:
    """Arrays over a :class:`PlanPool`'s plans for filtering and shortlisting them."""

    accuracy: np.ndarray
    """Accuracy with unknown values as ``-inf`` (no floor admits them)."""
    by_cost: np.ndarray
    """Plan indices by cost, ties by index."""
    devset_id: np.ndarray
    """Per plan, an id of the set of devices it runs on (equal sets, equal ids)."""
    usage_id: np.ndarray
    """Per plan, an id of its exact resource usage."""

    @classmethod
    def build(cls, pool: PlanPool) -> _PoolKeys:
        devsets: dict[frozenset[str], int] = {}
        usages: dict[Usage, tuple[int, int]] = {}  # usage -> its id and its device set's
        dev = np.empty(len(pool), dtype=np.int64)
        use = np.empty(len(pool), dtype=np.int64)
        for i, u in enumerate(pool.usage):
            ids = usages.get(u)
            if ids is None:  # (plans of one usage share its device set: worked out once)
                ids = usages[u] = (len(usages), devsets.setdefault(
                    frozenset(r[1] for r, _ in u if r[0] == "device"), len(devsets)))
            use[i], dev[i] = ids
        return cls(accuracy=np.nan_to_num(pool.accuracy, nan=-np.inf),
                   by_cost=np.argsort(pool.cost, kind="stable"), devset_id=dev, usage_id=use)


def _reason(query: Query, pool: PlanPool, ok_acc: np.ndarray, ok_lat: np.ndarray) -> str:
    lat = pool.latency[ok_acc]
    timely = pool.cost[ok_acc & ok_lat]
    return explain(query.slo, best_accuracy=pool.best_accuracy,
                   planned=len(pool) > 0 or pool.latency_pruned,
                   accurate=bool(ok_acc.any()) or pool.latency_pruned,
                   best_latency_ms=float(lat.min()) if lat.size else None,
                   cheapest=float(timely.min()) if timely.size else None, scope="",
                   unplaced=pool.unplaced or UNPLACED)


def _unplaced(index: WorldIndex, operator_of: Mapping[str, str],
              missing: set[tuple[str, ConfigKey]], floor: float | None) -> str:
    """The reason of a query whose accuracy-feasible configuration vectors all have a stage
    whose configuration no device it may use runs, e.g. ``placement: no device the query may
    use runs cls as {resolution: 448}, which the accuracy bound 0.9 needs``."""
    named: list[str] = []  # replica shares of one configuration read the same: named once
    for stage, config in sorted(missing, key=str):
        knobs = index.operators[operator_of[stage]].config_dict(config)
        text = f"{stage} as {{{', '.join(f'{k}: {v}' for k, v in knobs.items())}}}"
        if text not in named:
            named.append(text)
    shown = named[:3]
    more = f" (and {len(named) - 3} more)" if len(named) > 3 else ""
    need = ("every configuration" if floor is None
            else f"every configuration meeting the accuracy bound {floor:g}")
    return (f"placement: no device the query may use runs {' or '.join(shown)}{more}, and "
            f"{need} has such a stage; add a device of its hardware or allow its tier")


def _grown(grower: Grower, found: list[_Leaf]) -> list[_Leaf]:
    """Leaves of the plans that growing (:mod:`circinus.search.grow`) finds from ``found`` (one
    configuration vector's plans): from the cheapest on each of the first :data:`SEEDS` device
    sets, by cost alone and by cost at its shares."""
    seeds: list[tuple[StagePlan, ...]] = []
    for key in (lambda f: (f[4], f[2]), lambda f: (f[2], f[4])):
        sets: set[frozenset[str]] = set()
        for leaf in sorted(found, key=key):
            devices = frozenset(r.device for st in leaf[0] for r in st.placement)
            if devices not in sets:
                sets.add(devices)
                if leaf[0] not in seeds:
                    seeds.append(leaf[0])
            if len(sets) == SEEDS:
                break
    out: list[_Leaf] = []
    for stages, est, solo in grower.grow(seeds):
        usage = tuple(sorted((r, v) for r, v in est.usage().items() if v > EPS))
        out.append((stages, est.latency_ms, est.cost_per_hour, usage, solo))
    return out


def fastest_service(index: WorldIndex, query: Query, devices: Sequence[Device]
                     ) -> dict[tuple[str, ConfigKey], float]:
    """Per (stage, configuration): the quickest batch service time on any eligible device, s."""
    pipe = index.pipelines[query.pipeline]
    hardware = {d.hardware for d in devices}
    out: dict[tuple[str, ConfigKey], float] = {}
    for stage in pipe.order:
        op = index.operators[pipe.operator_of[stage]]
        scale = query.work_scale.get(stage, 1.0)
        for (config, hw), prof in op.profiles.items():
            if hw in hardware:
                quickest = min([prof.mean_ms, *prof.batch_ms.values()]) * scale / 1000.0
                key = (stage, config)
                out[key] = min(out.get(key, math.inf), quickest)
    return out


def _units(n: float) -> str:
    """``n`` units in words: ``1 unit``, ``2.5 units``."""
    return f"{n:g} unit" + ("" if abs(n - 1.0) <= EPS else "s")
