"""Circinus's per-query search: decomposed, and similarity-aware within and across queries.

NOTE: three structural facts of the problem make the search cheap (Circinus, arXiv 2504.16397):

1. *SLO decomposition.* Accuracy depends on configurations only, so the accuracy-feasible
   configuration vectors are computed first, once per (pipeline, accuracy floor), and shared by
   every query of the pipeline; configurations dominated on every hardware class are dropped
   (:mod:`circinus.search.dominance`). Placement and allocation are searched only for those
   vectors, and cost is computed, never searched.
2. *Similarity within a query.* A vector whose stages, each on its fastest device at zero load,
   already miss the loosest latency bound is skipped whole (a heavier configuration never gets
   faster by being placed more cheaply). For a chain pipeline the placements are chosen by a
   dynamic program over stages whose state is the previous stage's placement (which decides the
   next transfer) and the set of devices used so far (which decides the resources the plan
   competes for); in each state only partial plans on the Pareto front of (mean latency,
   latency variance, cost, the SCV of the requests leaving the prefix) survive, since a
   dominated prefix cannot end in a better plan: path mean and variance add up, the
   percentile grows with both, and a smoother stream leaving the prefix only shortens the
   waits after it (:mod:`circinus.estimate.arrivals`). Per-stage and per-transfer
   estimates are memoised by the estimator, so plans sharing a stage share its estimate.
   Non-chain DAGs fall back to the pruned depth-first enumeration.
3. *Similarity across queries.* Queries of the same pipeline, rate, per-stage work and SLO
   percentile whose source sites are *isomorphic* (same tier, same local devices up to their
   names, same links to the same remote sites) are one search problem: a representative is
   planned, the others take its candidates with the site's devices renamed, each candidate is
   re-estimated for the member (verify), and a member none of whose candidates verifies is
   searched on its own (repair).

Candidates per query are chosen as in :mod:`circinus.search.exhaustive`: the cheapest
SLO-feasible plan, then plans that no kept plan beats on cost and every resource.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from circinus.estimate.arrivals import jitter_scv
from circinus.estimate.base import EPS, BaseEstimator, Estimate, Shares
from circinus.estimate.queueing import quantile
from circinus.plan.records import Placement, QueryPlan, Replicas, StagePlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.search.exhaustive import (
    ExhaustiveSearch,
    PlanPool,
    Usage,
    _Leaf,
    fastest_service,
)
from circinus.search.placements import Option
from circinus.spec.index import ConfigKey, WorldIndex
from circinus.spec.models import PlannerSettings, Query

V = TypeVar("V")
_Layer = dict[tuple["Shares", frozenset[str]], list["_Partial"]]
"""DP states (previous stage's shares, devices used so far) -> their Pareto partial plans."""


@dataclass(frozen=True)
class _Partial:
    """A plan of the first stages of a chain, with its path moments, cost and resources."""

    mean: float
    var: float
    third: float
    """Third central moment of the path so far."""
    cost: float
    solo: float
    """Cost were the query alone on its shared deployments (not a Pareto dimension)."""
    stages: tuple[StagePlan, ...]
    units: Mapping[str, float]
    """Units taken of each device by the stages so far (never mutated)."""
    other: tuple[tuple[Any, float], ...]
    """Memory and link use per stage so far (keys may repeat)."""
    leaving: float = 1.0
    """SCV of the requests leaving the last stage (:mod:`circinus.estimate.arrivals`): the next
    stage waits less behind a smoother stream, so it is a Pareto dimension too."""


class DecomposedSearch(ExhaustiveSearch):
    """Circinus's search (see module note); registry key ``circinus``."""

    def __init__(self, *, estimator: BaseEstimator, settings: PlannerSettings) -> None:
        super().__init__(estimator=estimator, settings=settings)
        # State of the group being enumerated: its prefix layers and latency budget.
        self._layers: dict[tuple[ConfigKey, ...], tuple[_Layer, bool]] = {}
        self._after: list[float] | None = None

    def groups(self, queries: Sequence[Query]) -> list[list[int]]:
        """Queries with the same pipeline, rate, work and SLO percentile whose sources are at
        isomorphic sites (module note, 3)."""
        classes = site_classes(self.estimator.index)
        groups: dict[tuple[object, ...], list[int]] = {}
        for i, q in enumerate(queries):
            key = (q.pipeline, tuple(sorted((s, classes[site][0]) for s, site in
                                            q.sources.items())),
                   q.rate_rps, tuple(sorted(q.work_scale.items())), q.slo.percentile,
                   tuple(sorted(q.source_rate_rps.items())),
                   tuple(sorted(q.source_output_kb.items())))
            groups.setdefault(key, []).append(i)
        return list(groups.values())

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        classes = site_classes(self.estimator.index)
        out: list[QueryCandidates | None] = [None] * len(queries)
        for members in self.groups(queries):
            rep = queries[members[0]]
            # The representative plans for the whole group's SLO envelope.
            pool = self._enumerate([_moved(queries[i], rep) for i in members])
            # Members at one site with one SLO get one answer: adopt it once per such pair.
            adopted: dict[tuple[object, ...], QueryCandidates] = {}
            # A plan renamed to a site is estimated once for the group, whatever the SLO.
            verified: dict[tuple[object, ...], Candidate] = {}
            # The pool's answer at the representative's sites, once per SLO: members elsewhere
            # with one SLO differ only in their names there, and each adopts it renamed
            # (100,000 generated queries: ~60,000 picks of a few thousand answers, a sixth
            # of the search).
            picked: dict[tuple[float | None, ...], QueryCandidates] = {}
            for j, i in enumerate(members):
                member = queries[i]
                if member.sources == rep.sources:
                    out[i] = self._pick(member, pool, charge=j == 0)
                    continue
                slo = member.slo
                bounds = (slo.min_accuracy, slo.latency_ms, slo.max_cost_per_hour)
                site = (tuple(sorted(member.sources.items())), *bounds)
                if site in adopted:
                    out[i] = _renamed_query(adopted[site], member.name, j == 0)
                    continue
                found = picked.get(bounds)
                if found is None:
                    found = picked[bounds] = self._pick(_moved(member, rep), pool, charge=False)
                if j == 0:  # the first member pays for the pool
                    found = replace(found, evaluations=pool.evaluations)
                out[i] = adopted[site] = self._adopt(member, rep, found, classes, verified)
        return [r for r in out if r is not None]

    def _adopt(self, member: Query, rep: Query, found: QueryCandidates,
               classes: dict[str, tuple[int, tuple[str, ...]]],
               memo: dict[tuple[object, ...], Candidate]) -> QueryCandidates:
        """Rename the representative's candidates to ``member``'s site, verify, else repair.
        ``memo`` holds the group's renamed plans by (sites, representative's stages): their
        estimates depend on the group's pipeline, rate, work and percentile (the same for the
        group) and the sites, not on the rest of the SLO, which is checked here."""
        if not found.candidates:
            return QueryCandidates(member.name, (), found.reason, found.evaluations)
        rename: dict[str, str] = {}
        for src, site in rep.sources.items():
            rename.update(zip(classes[site][1], classes[member.sources[src]][1], strict=True))
        sites = tuple(sorted(member.sources.items()))
        moved = {site: member.sources[src] for src, site in rep.sources.items()}
        verified = []
        work = found.evaluations
        for cand in found.candidates:
            key = (sites, cand.plan.stages)
            known = memo.get(key)
            if known is None:
                plan = QueryPlan(member.name, tuple(
                    StagePlan(s.stage, s.config, s.batch, _renamed(s.placement, rename), s.level)
                    for s in cand.plan.stages))
                # The sites are isomorphic: the representative's estimate with the names of
                # the member's devices, sites and deployments is the member's (checked by
                # tests against estimating it anew), at a tenth of the cost.
                known = memo[key] = Candidate(plan, renamed_estimate(cand.estimate, rename,
                                                                     moved))
                work += 1
            if known.estimate.meets(member.slo):
                verified.append(known if known.plan.query == member.name else
                                Candidate(QueryPlan(member.name, known.plan.stages),
                                          known.estimate))
        if verified:
            return QueryCandidates(member.name, tuple(verified), None, work)
        repaired = self._pick(member, self._enumerate([member]))
        return QueryCandidates(member.name, repaired.candidates, repaired.reason,
                               work + repaired.evaluations)

    def _combine(self, query: Query, configs: dict[str, ConfigKey],
                 per_stage: Sequence[list[Option]], capacity: dict[str, float],
                 prune_ms: float) -> tuple[list[_Leaf], bool, int]:
        pipe = self.estimator.index.pipelines[query.pipeline]
        if len(pipe.paths) == 1 and pipe.plain:  # a chain: one source, one path
            return self._chain(query, configs, per_stage, capacity, prune_ms)
        return super()._combine(query, configs, per_stage, capacity, prune_ms)

    def _enumerate(self, members: Sequence[Query], *,
                   units: Mapping[str, float] | None = None) -> PlanPool:
        # Prefix layers are valid for one group (its rate, sites, latency envelope and caps).
        self._layers = {}
        self._after = None
        return super()._enumerate(members, units=units)

    def _chain(self, query: Query, configs: dict[str, ConfigKey],
               per_stage: Sequence[list[Option]], capacity: dict[str, float],
               prune_ms: float) -> tuple[list[_Leaf], bool, int]:
        """The dynamic program over a chain's stages (see module note)."""
        pipe = self.estimator.index.pipelines[query.pipeline]
        if self._after is None:
            # Latency budget: the least the stages after each depth need, over any of their
            # configurations (so that prefix layers can be shared between vectors).
            index = self.estimator.index
            fastest = fastest_service(index, query, [index.devices[d] for d in capacity])
            least = [min((t for (s, _), t in fastest.items() if s == stage), default=math.inf)
                     for stage in pipe.order]
            self._after = [sum(least[k + 1:]) for k in range(len(pipe.order))]
        layer, cut, complete = self._prefix(query, configs, per_stage, capacity, prune_ms,
                                            len(pipe.order))
        q = query.slo.percentile / 100.0
        leaves: list[_Leaf] = []
        for partials in layer.values():
            for p in partials:
                leaves.append((p.stages, quantile(p.mean, p.var, q, p.third) * 1e3, p.cost,
                               _usage(p), p.solo))
        # Every complete plan whose moments were computed counts, kept or not; partial plans
        # (sums over the first stages, shared by many complete plans) do not.
        return leaves, cut, complete

    def _prefix(self, query: Query, configs: dict[str, ConfigKey],
                per_stage: Sequence[list[Option]], capacity: dict[str, float],
                prune_ms: float, n: int) -> tuple[_Layer, bool, int]:
        """Pareto layers of the first ``n`` stages, shared by every vector with that prefix.

        Returns the layer, whether the latency budget cut anything, and how many extensions
        of a partial plan by stage ``n`` were estimated now (0 for a layer built before).
        """
        est = self.estimator
        index = est.index
        pipe = index.pipelines[query.pipeline]
        (path,) = pipe.paths
        if n == 0:
            start: Shares = ((f"@{query.sources[path[0]]}", 1.0),)
            return {(start, frozenset()): [_Partial(0.0, 0.0, 0.0, 0.0, 0.0, (), {}, ())]}, False, 0
        key = tuple(configs[s] for s in pipe.order[:n])
        if key in self._layers:
            return (*self._layers[key], 0)
        prev, cut, _ = self._prefix(query, configs, per_stage, capacity, prune_ms, n - 1)
        depth, stage = n - 1, pipe.order[n - 1]
        assert self._after is not None
        budget = prune_ms / 1e3 - self._after[depth] + EPS
        pred = path[depth]
        size = est.message_kb(query.pipeline, pred, configs, query=query)
        grown: _Layer = {}
        made = 0
        rate = pipe.rate(query, stage)
        for (shares, used_set), partials in prev.items():
            for opt in per_stage[depth]:
                poisson = est.stage(query, stage, configs[stage], opt.batch, opt.placement,
                                    opt.level)
                if not math.isfinite(poisson.mean_s):
                    continue
                st = poisson  # (shares, resources and cost do not depend on the arrivals)
                tr = est.transfer(query, size, shares, st.shares)
                need = st.units  # a shared stage's share of its deployments at their level
                step = StagePlan(stage, configs[stage], opt.batch, opt.placement, opt.level)
                extra = tuple((("memory", d), m) for d, m in st.memory_gb if m > 0) + tuple(
                    (("link", f"{a}->{b}"), v) for (a, b), v in tr.link_mbps) + tuple(
                    (("deployment", k), load) for k, load in st.deployments) + tuple(
                    (("deployment-floor", k), float(f)) for k, f in st.deployment_floor)
                state = (st.shares, used_set | {d for d, _ in need})
                # NOTE: this loop runs once per partial plan and option (millions of times at
                # 100,000 queries), so it is written out: the inflow SCV of the stage's one
                # input (inflow_scv of one pair is its jitter_scv) and the capacity test as
                # plain loops, with the same arithmetic.
                for p in partials:
                    made += 1
                    scv = jitter_scv(p.leaving, rate, tr.var_s2)
                    st = poisson if scv >= 1.0 else est.stage(
                        query, stage, configs[stage], opt.batch, opt.placement, opt.level, scv)
                    mean = p.mean + tr.mean_s + st.mean_s
                    if not math.isfinite(mean) or mean > budget:
                        cut = cut or math.isfinite(mean)
                        continue
                    over = False
                    for d, u in need:
                        if u + p.units.get(d, 0.0) > capacity[d] + EPS:
                            over = True
                            break
                    if over:
                        continue
                    units = dict(p.units)
                    for d, u in need:
                        units[d] = units.get(d, 0.0) + u
                    grown.setdefault(state, []).append(_Partial(
                        mean, p.var + tr.var_s2 + st.var_s2, p.third + tr.third_s3 + st.third_s3,
                        p.cost + st.cost_per_hour + tr.cost_per_hour,
                        p.solo + st.solo_cost_per_hour + tr.cost_per_hour,
                        (*p.stages, step), units, p.other + extra, st.departure_scv))
        layer = {k: _pareto(v) for k, v in grown.items()}
        self._layers[key] = (layer, cut)
        return layer, cut, made


def _renamed_query(found: QueryCandidates, name: str, charge: bool) -> QueryCandidates:
    """``found`` (another member's answer at the same site, with the same SLO) for query
    ``name``: the same plans and estimates; the work is billed only if ``charge``."""
    cands = tuple(Candidate(QueryPlan(name, c.plan.stages), c.estimate)
                  for c in found.candidates)
    return QueryCandidates(name, cands, found.reason, found.evaluations if charge else 0)


def _usage(p: _Partial) -> Usage:
    """The usage of the complete plan ``p``: its device units, then its other resources, each
    part sorted by key with amounts added by key (a plan of every chain pipeline has one;
    written for speed, as the search builds one per complete plan)."""
    devices = sorted([(("device", d), u) for d, u in p.units.items() if u > EPS])
    total: dict[Any, float] = {}
    for k, v in p.other:
        total[k] = total.get(k, 0.0) + v
    # keys are distinct, so the pairs sort by key alone
    return (*devices, *sorted([kv for kv in total.items() if kv[1] > EPS]))


def _pareto(partials: list[_Partial]) -> list[_Partial]:
    """The partials no other beats on mean, variance, third moment, cost and the SCV of what
    leaves them at once (ties: the cheaper alone first, then the first listed)."""
    ranked = sorted(partials, key=lambda p: (p.mean, p.var, p.third, p.cost, p.solo,
                                             p.leaving))
    kept: list[_Partial] = []
    for p in ranked:  # (a plain loop: this test runs millions of times at 100,000 queries)
        var, third, cost, leaving = p.var + EPS, p.third + EPS, p.cost + EPS, p.leaving + EPS
        for k in kept:
            if k.var <= var and k.third <= third and k.cost <= cost and k.leaving <= leaving:
                break
        else:
            kept.append(p)
    return kept


def _renamed(placement: Placement, rename: dict[str, str]) -> Placement:
    return tuple(sorted(Replicas(rename.get(r.device, r.device), r.count, r.share)
                        for r in placement))


def _moved(query: Query, rep: Query) -> Query:
    """``query`` as if its sources were at the representative's (isomorphic) sites."""
    if query.sources == rep.sources:
        return query
    return query.model_copy(update={"sources": dict(rep.sources)})


def site_classes(index: WorldIndex) -> dict[str, tuple[int, tuple[str, ...]]]:
    """Per site: an isomorphism class id and its devices in canonical order.

    Two sites are in one class when they have the same tier and LAN, the same devices up to
    their names (hardware, units, price, memory) and the same links, figure for figure, to and
    from the same other sites. Devices of sites in one class correspond by canonical order.
    """
    ids: dict[tuple[object, ...], int] = {}
    out: dict[str, tuple[int, tuple[str, ...]]] = {}
    for site in index.world.sites:
        local = sorted(
            ((d.hardware, d.units, d.price_per_unit_hour, d.memory_gb or 0.0), d.name)
            for d in index.world.devices if d.site == site.name)
        links = tuple(sorted(
            (direction, other, ln.bandwidth_mbps, ln.rtt_ms, ln.price_per_gb,
             ln.capacity_mbps or 0.0,
             -1.0 if ln.source_price_per_gb is None else ln.source_price_per_gb)
            for (a, b), ln in index.links.items()
            for direction, other in (("out", b), ("in", a))
            if (a if direction == "out" else b) == site.name))
        key = (site.tier, site.lan_bandwidth_mbps, site.lan_rtt_ms,
               tuple(desc for desc, _ in local), links)
        cid = ids.setdefault(key, len(ids))
        out[site.name] = (cid, tuple(name for _, name in local))
    return out


def renamed_estimate(est: Estimate, devices: Mapping[str, str],
                     sites: Mapping[str, str]) -> Estimate:
    """``est`` with its devices, link ends and shared deployments renamed (``devices`` and
    ``sites``: old name -> new; names not in them stay): the estimate of the same plan moved
    to an isomorphic site (:func:`site_classes`). Example: ``("box-a", 2.0)`` in
    ``device_units`` becomes ``("box-b", 2.0)`` and the deployment ``det[m]@box-a/b4/u0.8``
    becomes ``det[m]@box-b/b4/u0.8`` with ``devices = {"box-a": "box-b"}``."""

    def dev(name: str) -> str:
        return devices.get(name, name)

    def deployment(name: str) -> str:
        head, at, tail = name.rpartition("@")
        device, _, rest = tail.rpartition("/b")
        return f"{head}{at}{dev(device)}/b{rest}" if at and device in devices else name

    def by_name(pairs: Iterable[tuple[str, V]], rename: Callable[[str], str]
                ) -> tuple[tuple[str, V], ...]:
        return tuple(sorted(((rename(k), v) for k, v in pairs), key=lambda kv: kv[0]))

    links = tuple(sorted((((sites.get(a, a), sites.get(b, b)), v) for (a, b), v in est.link_mbps),
                         key=lambda kv: str(kv[0])))
    return replace(est, device_units=by_name(est.device_units, dev),
                   device_memory_gb=by_name(est.device_memory_gb, dev), link_mbps=links,
                   deployment_load=by_name(est.deployment_load, deployment),
                   deployment_rate=by_name(est.deployment_rate, deployment),
                   deployment_held=by_name(est.deployment_held, deployment),
                   deployment_floor=by_name(est.deployment_floor, deployment))
