"""Larger device sets and other load splits than a stage's placement options, where they pay.

NOTE: a stage's placement options (:mod:`circinus.search.placements`) spread it only over
*minimal* device sets, one replica each, with the load split in proportion to capacity. A
larger set can be cheaper overall: a cheap edge device beside a cloud GPU keeps its share of
the heavy source messages off the paid uplink (on JellyBean's VQA instance at accuracy >= 57
the optimum spreads the image encoder over all five edge CPUs and the cloud CPU, 0.4 % cheaper
than any plan of minimal sets), and more so when the edge is filled first rather than in
proportion (the split is a decision: a balancer routes any shares). Enumerating every superset
would multiply a stage's options by up to ``2^devices`` (838 options instead of 15 for
JellyBean's image encoder, and their product over a DAG's stages), so they are reached by
local search from the cheapest plans instead, and only when stages may spread
(``max_devices_per_operator > 1``) and some link is priced (:func:`worth_growing`):

* *seeds*: per configuration vector, the cheapest plan on each of the first :data:`SEEDS`
  device sets, ranked by cost alone (:attr:`PlanPool.solo`) and by cost at its shares of
  shared deployments (different seeds end in different local optima);
* *moves*: on one stage, add a device (one replica), drop a device of a spread, move a
  device's replicas to another device, or one replica more or fewer on a device of a stage
  spread over sites; between two stages, swap a device of one for a device of the other or
  hand a spread's device to the other; and split a stage's load otherwise: fill the devices
  of one site to the utilisation bound before the next, in each order of the sites
  (:func:`~circinus.plan.units.fill_shares`), or in proportion to capacity. A plan's traffic
  cost is linear in a stage's site shares (the other stages fixed), so its least over the
  shares the stage's devices allow is at one of these orders; added devices and replicas are
  tried with each of them too;
* every move is estimated whole (:meth:`BaseEstimator.estimate`) and must keep the plan within
  the group's loosest latency bound, the utilisation bound and the devices' capacity, its
  shared stages counted in whole replicas (the plan must be able to run alone: on JellyBean's
  instance the cheapest plan at its shares puts two stages on one single-unit GPU);
* *descent*: the move that lowers the cost alone the most is taken, until none does (a seed
  that cannot run alone takes any move that can); every plan a move found cheaper than the
  plan it moved from is kept for the selection (another query may take what the descent's
  choice needs).

An added device or replica is only tried when it can pay, a bound sound for the cost of whole
replicas: adding device ``d`` (``r`` requests per second of the new set's ``R``, ``R_X`` of them
at ``d``'s site) moves a share ``r (R - R_X) / (R (R - r))`` of the stage's load to ``d``'s
site under the proportional split, at most ``r x bound / rate`` under a fill, which changes the
plan's network cost by at most that share times :func:`traffic_bound` (what the stage's own
messages can cost); if ``d``'s replica costs more per hour, the move makes the plan dearer
whatever the other stages do. E.g. 40 images/s of 794 KB at 0.1 $/GB bound the image
encoder's traffic at $10.9/h, so a $0.096/h edge CPU taking 6 % of the load off a GPU is worth
a try.

The descent is a heuristic (a move pair can pay where neither move alone does); the oracle
(:mod:`circinus.search.oracle`) and the JellyBean variants of the tests check where it ends.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence

from circinus.estimate.analytic import KB_PER_S_TO_GB_PER_H, batch_service_ms
from circinus.estimate.base import EPS, BaseEstimator, Estimate
from circinus.plan.records import QueryPlan, Replicas, StagePlan
from circinus.plan.units import fill_shares
from circinus.spec.index import ConfigKey, WorldIndex
from circinus.spec.models import PlannerSettings, Query

SEEDS = 8
"""Device sets seeded per configuration vector and ranking. Measured on 23 variants of
JellyBean's instance: 1 seed reaches the brute-force optimum on 19 (up to 1.5 % above it), 4 on
22, 8 on all 23; planning the instance itself takes 2.7 s of CPU with 8 against 1.2 s without
growing (a loaded 2-core machine)."""

Grown = tuple[tuple[StagePlan, ...], Estimate, float]
"""A plan found by growing, its estimate and its cost alone on its deployments ($/h)."""


def worth_growing(index: WorldIndex, settings: PlannerSettings) -> bool:
    """Whether growing can find anything: stages may spread and some link is priced."""
    return settings.max_devices_per_operator > 1 and any(
        ln.price_per_gb > 0 or (ln.source_price_per_gb or 0.0) > 0
        for ln in index.links.values())


def traffic_bound(index: WorldIndex, query: Query, stage: str, config: ConfigKey) -> float:
    """The most the messages into and out of ``stage`` (in ``config``) can cost, $/h: each
    message it receives (at its largest size) and sends, at its edge's rate, over the
    dearest link. E.g. 40 req/s of 794 KB at 0.1 $/GB: 40 x 794 x 3600 / 1024^2 x 0.1 =
    $10.9/h."""
    pipe = index.pipelines[query.pipeline]
    dearest = max((max(ln.price_per_gb, ln.source_price_per_gb or 0.0)
                   for ln in index.links.values()), default=0.0)
    kb = 0.0  # per request, each message weighted by its edge's rate over the query's
    for pred in pipe.preds[stage]:
        if pred in pipe.source_kb:
            size = pipe.source_message_kb(query, pred)
        else:
            size = max(index.operators[pipe.operator_of[pred]].output_kb.values())
        kb += size * (pipe.rate(query, pred) / query.rate_rps)
    succs = sum(stage in pipe.preds[t] for t in pipe.order)
    kb += succs * index.operators[pipe.operator_of[stage]].output_kb[config] * (
        pipe.rate(query, stage) / query.rate_rps)
    return query.rate_rps * kb * KB_PER_S_TO_GB_PER_H * dearest


class Grower:
    """Local search from seed plans of one query (see module note).

    Args:
        capacity: units each eligible device may give the plan (the devices a plan may use).
        prune_ms: the loosest latency bound of the query's group (``inf``: none).
    """

    def __init__(self, estimator: BaseEstimator, settings: PlannerSettings, query: Query,
                 capacity: Mapping[str, float], prune_ms: float) -> None:
        self.est = estimator
        self.settings = settings
        self.query = query
        self.capacity = capacity
        self.prune_ms = prune_ms
        self.evaluations = 0
        self._traffic: dict[tuple[str, ConfigKey], float] = {}
        self._seen: dict[tuple[StagePlan, ...], tuple[Estimate, float] | None] = {}

    def _rate(self, stage: str) -> float:
        """Requests per second ``stage`` serves for the query."""
        return self.est.index.pipelines[self.query.pipeline].rate(self.query, stage)

    def grow(self, seeds: Sequence[tuple[StagePlan, ...]]) -> list[Grown]:
        """Every plan a move of the descents from ``seeds`` found cheaper alone than the plan
        it moved from (the descents' steps and ends among them), in the order found."""
        out: dict[tuple[StagePlan, ...], Grown] = {}
        for seed in seeds:
            plan = seed
            start = self._feasible(seed)
            solo = math.inf if start is None else start[1]
            while True:
                best: Grown | None = None
                for moved in itertools.chain(self._moves(plan), self._pairs(plan)):
                    found = self._feasible(moved)
                    if found is None or found[1] >= solo - EPS:
                        continue
                    # Other queries may take what the descent's choice needs: keep every plan
                    # that improves on this one, for the selection to choose from.
                    out.setdefault(moved, (moved, *found))
                    if best is None or found[1] < best[2] - EPS:
                        best = (moved, *found)
                if best is None:
                    break
                plan, _, solo = best
        return [g for p, g in out.items() if p not in seeds]

    def _solo(self, stages: tuple[StagePlan, ...], est: Estimate) -> float:
        extra = 0.0
        for st in stages:
            if st.level is not None:
                k = self.est.stage(self.query, st.stage, st.config, st.batch, st.placement,
                                   st.level)
                extra += k.solo_cost_per_hour - k.cost_per_hour
        return est.cost_per_hour + extra

    def _feasible(self, stages: tuple[StagePlan, ...]) -> tuple[Estimate, float] | None:
        """The estimate and cost alone of ``stages`` if it is a plan the group may use."""
        if stages not in self._seen:
            self._seen[stages] = self._check(stages)
        return self._seen[stages]

    def _check(self, stages: tuple[StagePlan, ...]) -> tuple[Estimate, float] | None:
        self.evaluations += 1
        est = self.est.estimate(self.query, QueryPlan(self.query.name, stages))
        if not math.isfinite(est.latency_ms) or est.latency_ms > self.prune_ms + EPS:
            return None
        if est.max_utilization > self.settings.max_utilization + EPS:
            return None
        if any(u > self.capacity[d] + EPS for d, u in est.device_units):
            return None
        if any(u > self.capacity[d] + EPS for d, u in self._alone(stages).items()):
            return None  # its shared stages' whole replicas do not fit: no plan alone
        return est, self._solo(stages, est)

    def _alone(self, stages: tuple[StagePlan, ...]) -> dict[str, float]:
        """Units each device gives ``stages`` in whole replicas (a query alone on them)."""
        index = self.est.index
        pipe = index.pipelines[self.query.pipeline]
        out: dict[str, float] = {}
        for st in stages:
            op = index.operators[pipe.operator_of[st.stage]]
            for r in st.placement:
                prof = op.profiles[st.config, index.devices[r.device].hardware]
                out[r.device] = out.get(r.device, 0.0) + r.count * prof.units
        return out

    def _moves(self, stages: tuple[StagePlan, ...]) -> Iterator[tuple[StagePlan, ...]]:
        index = self.est.index
        pipe = index.pipelines[self.query.pipeline]
        for k, st in enumerate(stages):
            op = index.operators[pipe.operator_of[st.stage]]
            scale = self.query.work_scale.get(st.stage, 1.0)
            rates = {}
            for r in st.placement:
                prof = op.profiles[st.config, index.devices[r.device].hardware]
                ms = batch_service_ms(prof, st.batch)
                assert ms is not None  # the plan runs there
                rates[r.device] = r.count * st.batch * 1000.0 / (ms * scale)
            yield from self._splits(stages, k, rates)
            if len(st.placement) > 1:  # drop a device of a spread
                for r in st.placement:
                    yield _with(stages, k, tuple(x for x in st.placement if x != r))
            for r in st.placement:  # or put its replicas on another device
                for name in self.capacity:
                    if name not in rates and (st.config, index.devices[name].hardware) in (
                            op.profiles):
                        yield _with(stages, k, tuple(sorted(
                            (*(x for x in st.placement if x != r), Replicas(name, r.count)))))
            if len(st.placement) >= self.settings.max_devices_per_operator:
                continue
            traffic = self._traffic_of(st.stage, st.config)
            bound = self.settings.max_utilization if st.level is None else st.level
            for name in self.capacity:
                if name in rates:
                    continue
                dev = index.devices[name]
                found = op.profiles.get((st.config, dev.hardware))
                ms = None if found is None else batch_service_ms(found, st.batch)
                if found is None or ms is None or found.units > self.capacity[name] + EPS:
                    continue
                serves = st.batch * 1000.0 / (ms * scale)
                total = sum(rates.values()) + serves
                here = serves + sum(v for d, v in rates.items()
                                    if index.devices[d].site == dev.site)
                moved = serves * (total - here) / (total * (total - serves))
                price = found.units * dev.price_per_unit_hour
                grown = tuple(sorted((*st.placement, Replicas(name, 1))))
                if price <= moved * traffic + EPS:
                    yield _with(stages, k, grown)
                if price <= min(1.0, serves * bound / self._rate(st.stage)) * traffic + EPS:
                    yield from self._refills(stages, k, grown)
        yield from self._counts(stages)

    def _counts(self, stages: tuple[StagePlan, ...]) -> Iterator[tuple[StagePlan, ...]]:
        """One replica more or fewer on a device of a stage spread over several sites, in
        proportion to capacity or filled site by site (a replica more only where it can pay:
        it takes at most its own capacity at the bound of the stage's load off another site)."""
        index = self.est.index
        pipe = index.pipelines[self.query.pipeline]
        for k, st in enumerate(stages):
            if len({index.devices[r.device].site for r in st.placement}) < 2:
                continue
            op = index.operators[pipe.operator_of[st.stage]]
            scale = self.query.work_scale.get(st.stage, 1.0)
            bound = self.settings.max_utilization if st.level is None else st.level
            traffic = self._traffic_of(st.stage, st.config)
            for g in st.placement:
                dev = index.devices[g.device]
                prof = op.profiles[st.config, dev.hardware]
                ms = batch_service_ms(prof, st.batch)
                assert ms is not None  # the plan runs there
                one = st.batch * 1000.0 / (ms * scale)
                rest = tuple(x for x in st.placement if x != g)
                steps = [g.count - 1] if g.count > 1 else []
                if prof.units * dev.price_per_unit_hour <= min(
                        1.0, one * bound / self._rate(st.stage)) * traffic + EPS:
                    steps.append(g.count + 1)
                for count in steps:
                    placement = tuple(sorted((*rest, Replicas(g.device, count))))
                    yield _with(stages, k, placement)
                    yield from self._refills(stages, k, placement)

    def _splits(self, stages: tuple[StagePlan, ...], k: int, rates: dict[str, float]
                ) -> Iterator[tuple[StagePlan, ...]]:
        """Other splits of stage ``k``'s load over its devices: :meth:`_refills`, and the
        split in proportion to capacity."""
        st = stages[k]
        yield from self._refills(stages, k, st.placement)
        if st.placement[0].share is not None:
            yield _with(stages, k, st.placement)  # in proportion to capacity

    def _refills(self, stages: tuple[StagePlan, ...], k: int, placement: tuple[Replicas, ...]
                 ) -> Iterator[tuple[StagePlan, ...]]:
        """Stage ``k`` on ``placement`` with each order of its sites filled to the utilisation
        bound in turn (:func:`~circinus.plan.units.fill_shares`)."""
        st = stages[k]
        index = self.est.index
        sites = sorted({index.devices[r.device].site for r in placement})
        if len(sites) < 2:
            return  # the split within a site moves no traffic off a link
        op = index.operators[index.pipelines[self.query.pipeline].operator_of[st.stage]]
        scale = self.query.work_scale.get(st.stage, 1.0)
        triples = []
        for r in placement:
            dev = index.devices[r.device]
            ms = batch_service_ms(op.profiles[st.config, dev.hardware], st.batch)
            assert ms is not None  # only devices that run the stage are placed
            triples.append((r.device, dev.site, r.count * st.batch * 1000.0 / (ms * scale)))
        bound = self.settings.max_utilization if st.level is None else st.level
        for order in itertools.permutations(sites):
            shares = fill_shares(triples, self._rate(st.stage), bound, order)
            if shares is not None:
                yield _with(stages, k, tuple(Replicas(r.device, r.count, x) for r, x in zip(
                    placement, shares, strict=True)), split=True)

    def _pairs(self, stages: tuple[StagePlan, ...]) -> Iterator[tuple[StagePlan, ...]]:
        """Moves of one device between two stages: swapped with one of the other's, or handed
        over from a spread (two changes no single move makes without breaking the rate)."""
        ops = self.est.index.operators
        pipe = self.est.index.pipelines[self.query.pipeline]
        hw = {name: self.est.index.devices[name].hardware for name in self.capacity}
        for i, a in enumerate(stages):
            for j, b in enumerate(stages):
                if i == j:
                    continue
                runs = ops[pipe.operator_of[b.stage]].profiles
                held = {r.device for r in b.placement}
                for ra in a.placement:
                    if ra.device in held or (b.config, hw[ra.device]) not in runs:
                        continue
                    if len(a.placement) > 1 and len(b.placement) < (
                            self.settings.max_devices_per_operator):
                        yield _with(_with(stages, i, tuple(r for r in a.placement if r != ra)),
                                    j, tuple(sorted((*b.placement, Replicas(ra.device, 1)))))
                    if i > j:
                        continue  # each swap once
                    back = ops[pipe.operator_of[a.stage]].profiles
                    mine = {r.device for r in a.placement}
                    for rb in b.placement:
                        if rb.device in mine or (a.config, hw[rb.device]) not in back:
                            continue
                        yield _with(_with(stages, i, tuple(sorted(
                            (*(r for r in a.placement if r != ra),
                             Replicas(rb.device, ra.count))))), j, tuple(sorted(
                            (*(r for r in b.placement if r != rb),
                             Replicas(ra.device, rb.count)))))

    def _traffic_of(self, stage: str, config: ConfigKey) -> float:
        key = (stage, config)
        if key not in self._traffic:
            self._traffic[key] = traffic_bound(self.est.index, self.query, stage, config)
        return self._traffic[key]


def _with(stages: tuple[StagePlan, ...], k: int, placement: tuple[Replicas, ...], *,
          split: bool = False) -> tuple[StagePlan, ...]:
    """``stages`` with stage ``k`` on ``placement``: split as its shares say if ``split``,
    else in proportion to capacity (a changed set of devices drops a stated split)."""
    if not split:
        placement = tuple(Replicas(r.device, r.count) for r in placement)
    st = stages[k]
    return (*stages[:k], StagePlan(st.stage, st.config, st.batch, placement, st.level),
            *stages[k + 1:])
