"""The default performance model: profiles + queueing theory + link arithmetic.

NOTE: per stage, each device of the placement hosts ``c`` replicas of the chosen configuration;
a replica serves batches of ``b`` requests in the profiled batch time (scaled by the query's
``work_scale``). Load is split across devices in proportion to capacity ``c * b / t_b``, so all
run at the same utilisation ``rate / sum(capacity)``, unless the placement states each device's
share (:class:`~circinus.plan.records.Replicas`); the stage's utilisation is then its busiest
device's. Each device is an M/G/c queue of batches
(:func:`~circinus.estimate.queueing.batch_queue_sojourn`); the stage's sojourn is the mixture of
the devices' sojourns weighted by their shares. A message from a placement to the next is split
in proportion to both sides' shares (every upstream replica talks to every downstream replica);
the part that crosses sites pays the link's price and occupies its capacity. Cost is what the
plan allocates: replicas x units x price per unit-hour, plus traffic x price per GB.

A message takes ``size / bandwidth + rtt / 2`` as if alone on its link, unless the estimator is
given the link's *load* (``link_load``: the utilisation of a link with a capacity by the traffic
of every query on it). Then its wire time is multiplied by the link's mean slowdown under
processor sharing (:func:`~circinus.estimate.queueing.shared_link_slowdown`): a message of wire
time ``w`` and slowdown ``S`` takes ``w + rtt / 2 + X`` with ``X`` of mean ``(S - 1) w`` and the
variance of processor sharing's sojourn of a job of its size, "no delay, or an exponential one"
(:func:`~circinus.estimate.queueing.shared_link_delay`: its tail is heavier than an exponential
of the same mean, which the simulator's busy links show), and enters the mixture over the
device pairs with its three moments like every other term. Without a load the estimate is the
solo one, and a slowdown within :data:`NEGLIGIBLE_SLOWDOWN` of 1 counts as none.

**Shared stages** (``level`` set, :class:`~circinus.plan.records.StagePlan`) join, on each
device of the placement, the deployment of their configuration, batch and level, one M/G/c queue
of batches fed by every query routed to it. The load is split across devices by capacity as
above; the query's load on a device is ``own rate x service / b`` busy replicas. Before the
selection sizes the deployments, their co-tenants are unknown, so the stage is estimated at the
worst state a deployment sized for the level can be in with this query on it: utilisation
exactly ``level`` (more load only adds replicas), the fewest replicas it may have
(``Replicas.count``: at least the query's own load over the level rounded up, and the sizing
keeps every deployment at or above each of its queries' counts; at a fixed utilisation a
larger pool waits less, Erlang's economy of scale) and batches filled by this query alone (any
co-tenant fills them sooner). Every sizing of the deployment is then at least as fast, as long
as its co-tenants' requests take as long as this query's (at a level of 1, which bounds
nothing, the query is estimated alone on its fewest replicas); where their work differs, the
planner estimates the admitted plans again at the sizes chosen. The stage's units, memory and
cost are its share of the deployment at the level (``load / level`` replicas), which the
selection may relax whole replicas to.

Given the sized deployments (``deployments``: resource -> :class:`DeploymentState`), a shared
stage is estimated at its deployment's real state: all its queries' rate filling batches, its
replicas, and a batch service time scaled by the request-weighted mean work multiplier of its
queries (a batch of ``b`` requests drawn from the mix has squared coefficient of variation
``(1 + cv^2)(1 + Var(s) / (b E[s]^2)) - 1`` for the profile's ``cv`` and multipliers ``s``);
the query's own batch takes ``(s_q + (b - 1) E[s]) / b`` times the profiled time. Its units and
cost are then its share of the deployment's replicas by work (rate x multiplier).

**Arrivals smoother than Poisson.** A stage is estimated at the SCV of the gaps between its
query's requests (``arrival_scv``, propagated along the plan by :meth:`BaseEstimator.estimate
<circinus.estimate.base.BaseEstimator.estimate>`, :mod:`circinus.estimate.arrivals`): a device's
part of a stage split at random has ``p c^2 + 1 - p``; on a sized shared deployment the query's
part merges with its co-tenants', taken as Poisson (rate-weighted), and the query's requests
leave as a random part of the deployment's departures. A shared stage before the sizing is
estimated Poisson-fed (its worst state must hold whoever its co-tenants are), and so is every
stage without the SCV (what :meth:`stage` takes by default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from circinus.estimate.arrivals import merge_scv, rounded_scv, split_scv
from circinus.estimate.base import BaseEstimator, Shares, StageEstimate, TransferEstimate
from circinus.estimate.flow import Flow, at_rate
from circinus.estimate.join import max_moments
from circinus.estimate.queueing import (
    Moments3,
    batch_queue_sojourn,
    mixture,
    raw_to_central,
    shared_link_delay,
    shared_link_slowdown,
    transfer_seconds,
)
from circinus.plan.records import DeploymentKey, Placement, Replicas
from circinus.spec.index import ConfigKey, OperatorIndex, WorldIndex
from circinus.spec.models import Device, LatencyProfile, Link, Query

KB_PER_S_TO_MBPS = 8.192e-3
"""1 KB/s = 1,024 * 8 bit/s = 8.192e-3 Mbit/s."""
KB_PER_S_TO_GB_PER_H = 3600 / 1024**2
"""1 KB/s for an hour = 3,600 KB = 3600 / 1024^2 GB."""
_Z90 = 1.2815515655446004  # standard normal 90th percentile
NEGLIGIBLE_SLOWDOWN = 1e-3
"""A link slowdown within this of 1 counts as none: transfers over a link with many
transfers' worth of capacity at low utilisation are priced as if alone (their wire time is then
underestimated by at most 0.1 %), so that plans on it need not be estimated again."""


@dataclass(frozen=True)
class DeploymentState:
    """A shared deployment as sized by the selection (what its queries' latency depends on)."""

    replicas: int
    rate_rps: float
    """Requests per second routed to it by every query."""
    scale_mean: float = 1.0
    """Request-weighted mean work multiplier of those requests."""
    scale_sq: float = 1.0
    """Request-weighted mean of the squared multipliers."""
    burst_rate: float = 0.0
    """What fan-out bursts add to its arrivals' dispersion: the sum over the queries whose
    bursts reach it of ``rate x (E[k^2] / E[k] - 1)``; the index of dispersion of its
    arrivals is ``1 + burst_rate / rate_rps`` (1: Poisson)."""


def service_cv(profile: LatencyProfile) -> float:
    """Coefficient of variation of a profile's service time.

    With a measured 90th percentile it is read off a normal fit, ``(p90 - mean) / (z90 * mean)``
    (e.g. mean 10 ms, p90 12.56 ms -> cv 0.2); otherwise the profile's ``cv``.
    """
    if profile.p90_ms is None:
        return profile.cv
    return max(0.0, profile.p90_ms - profile.mean_ms) / (_Z90 * profile.mean_ms)


def batch_service_ms(profile: LatencyProfile, batch: int) -> float | None:
    """Mean service time of a batch of ``batch`` requests, or ``None`` if not profiled."""
    if batch == 1:
        return profile.mean_ms
    return profile.batch_ms.get(batch)


class AnalyticEstimator(BaseEstimator):
    """Estimates from latency profiles with M/G/c queueing and link arithmetic (see module).

    Args:
        index: the world.
        link_load: utilisation of links with a capacity, ``{(src_site, dst_site): rho}``
            (traffic of every query over ``capacity_mbps``, ``>= 0``); transfers over them are
            slowed by sharing (module note). Links left out are priced as if alone on them.
            Fixed for the instance's life: an estimator for other loads is a new instance
            (:meth:`with_link_load`).
        deployments: the sized shared deployments by resource name; shared stages on them are
            estimated at their real state (module note), others at the worst state of their
            level. Fixed for the instance's life (:meth:`with_deployments`).

    Raises:
        ValueError: a load names no link, a link without a capacity, or is negative.
    """

    def __init__(self, *, index: WorldIndex,
                 link_load: Mapping[tuple[str, str], float] | None = None,
                 deployments: Mapping[str, DeploymentState] | None = None) -> None:
        super().__init__(index=index)
        self._states = dict(deployments or {})
        self._stages: dict[tuple[object, ...], StageEstimate] = {}
        self._transfers: dict[tuple[object, ...], TransferEstimate] = {}
        self._accuracy: dict[tuple[object, ...], float | None] = {}
        self._slowdowns: dict[tuple[tuple[str, str], float], float] = {}
        """Memo of :func:`_link_slowdown` by (link, utilisation), shared by the estimators
        made with :meth:`with_link_load` (the link check makes thousands, each at loads that
        differ from the last in one link)."""
        self._set_link_load(link_load or {})

    def _set_link_load(self, link_load: Mapping[tuple[str, str], float]) -> None:
        self._link_load = dict(link_load)
        self._slowdown: dict[tuple[str, str], float] = {}
        for pair, rho in self._link_load.items():
            key = (pair, rho)
            hit = self._slowdowns.get(key)
            if hit is None:
                hit = self._slowdowns[key] = _link_slowdown(self.index, pair, rho)
            self._slowdown[pair] = hit

    @property
    def link_load(self) -> dict[tuple[str, str], float]:
        """The link utilisations this estimator prices transfers at (a copy)."""
        return dict(self._link_load)

    def with_link_load(self, link_load: Mapping[tuple[str, str], float]) -> AnalyticEstimator:
        """An estimator of the same world at ``link_load`` (see the class). It shares this
        one's stage and accuracy memos (no load changes a stage or an accuracy, so either
        instance may fill them), so re-estimating plans at a new load costs only their
        transfers."""
        other = AnalyticEstimator(index=self.index, deployments=self._states)
        other._stages, other._accuracy = self._stages, self._accuracy
        other._slowdowns = self._slowdowns
        other._set_link_load(link_load)
        return other

    def with_link_at(self, pair: tuple[str, str], rho: float) -> AnalyticEstimator:
        """:meth:`with_link_load` of this estimator's loads with the link ``pair`` at
        utilisation ``rho``: the other links' slowdowns are copied, not looked up again (the
        link check's bisections make tens of thousands of such estimators, one link apart;
        looking up every link's for each was 2-3 s of it at 100,000 generated queries).

        Raises:
            ValueError: as :meth:`with_link_load`, for this link and ``rho``.
        """
        other = AnalyticEstimator(index=self.index, deployments=self._states)
        other._stages, other._accuracy = self._stages, self._accuracy
        other._slowdowns = self._slowdowns
        other._link_load = {**self._link_load, pair: rho}
        other._slowdown = dict(self._slowdown)
        hit = self._slowdowns.get((pair, rho))
        if hit is None:
            hit = self._slowdowns[pair, rho] = _link_slowdown(self.index, pair, rho)
        other._slowdown[pair] = hit
        return other

    def with_deployments(self, deployments: Mapping[str, DeploymentState]
                         ) -> AnalyticEstimator:
        """An estimator of the same world and link load whose shared stages run on
        ``deployments`` as sized (see the class); it shares only the accuracy memo."""
        other = AnalyticEstimator(index=self.index, link_load=self._link_load,
                                  deployments=deployments)
        other._accuracy = self._accuracy
        return other

    def slowdown(self, src_site: str, dst_site: str) -> float:
        """The factor by which transfers over the link ``src_site -> dst_site`` are slowed
        at this estimator's load (1 without one, or when negligible)."""
        return self._slowdown.get((src_site, dst_site), 1.0)

    def stage(self, query: Query, stage: str, config: ConfigKey, batch: int,
              placement: Placement, level: float | None = None,
              arrival_scv: float = 1.0) -> StageEstimate:
        scale = query.work_scale.get(stage, 1.0)
        rate = self.index.pipelines[query.pipeline].rate(query, stage)
        # A shared stage not sized yet is estimated Poisson-fed whatever feeds it (arrivals note).
        scv = rounded_scv(arrival_scv) if level is None or self._states else 1.0
        key = (query.pipeline, stage, config, batch, placement, rate, scale, level, scv)
        hit = self._stages.get(key)
        if hit is None:
            if scv == 1.0 or (*key[:-1], 1.0) not in self._stages:
                self.kernel_evaluations += 1  # (the same stage at another SCV needs no profile)
            if level is None:
                hit = self._stage(query.pipeline, stage, config, batch, placement, rate, scale,
                                  scv)
            else:
                hit = self._shared(query.pipeline, stage, config, batch, placement, rate,
                                   scale, level, scv)
            self._stages[key] = hit = self._with_hop(hit)
        return hit

    def _with_hop(self, est: StageEstimate) -> StageEstimate:
        """``est`` with the serving engine's per-call overhead added (the world's ``runtime``
        section, measured by ``circinus calibrate``; none without it): the figures of the tier
        each of its devices is on, mixed by the devices' shares."""
        if self.index.world.runtime is None:
            return est
        tiers: dict[str, float] = {}
        for device, share in est.shares:
            tier = self._tier(device)
            tiers[tier] = tiers.get(tier, 0.0) + share
        mean_s, var_s2 = self._hop_s(tiers or {"cloud": 1.0})
        if mean_s == 0.0 and var_s2 == 0.0:
            return est
        return replace(est, mean_s=est.mean_s + mean_s, var_s2=est.var_s2 + var_s2)

    def _hop_s(self, tiers: dict[str, float]) -> tuple[float, float]:
        """Mean (s) and variance (s^2) of the overhead of one call sent to each tier with its
        share of ``tiers`` (the world's runtime figures of each tier, mixed; a tier without its
        own pays the world-wide figure)."""
        runtime = self.index.world.runtime
        if runtime is None:
            return 0.0, 0.0
        total = sum(tiers.values())
        parts = []
        for tier, share in tiers.items():
            m, sd = runtime.figures(tier)
            parts.append((share / total if total > 0 else 0.0, m / 1e3, (sd / 1e3) ** 2))
        return _mixture(parts)

    def _tier(self, device: str) -> str:
        """Tier of the site ``device`` is at."""
        return self.index.sites[self.index.devices[device].site].tier

    def _groups(self, op: OperatorIndex, config: ConfigKey, batch: int, placement: Placement
                ) -> list[tuple[Replicas, Device, LatencyProfile, float]] | None:
        """Per device of ``placement``: its replicas, the device, the profile and the batch
        service time at the profile's work, s; ``None`` when a device has no profile of
        ``config`` or none at ``batch`` (the stage cannot run there)."""
        out = []
        for rep in placement:
            dev = self.index.devices[rep.device]
            prof = op.profiles.get((config, dev.hardware))
            svc_ms = None if prof is None else batch_service_ms(prof, batch)
            if prof is None or svc_ms is None:
                return None
            out.append((rep, dev, prof, svc_ms / 1000.0))
        return out

    def _shared(self, pipeline: str, stage: str, config: ConfigKey, batch: int,
                placement: Placement, rate: float, scale: float, level: float,
                arrival_scv: float = 1.0) -> StageEstimate:
        """A shared stage (module note): at its deployments' real state where sized, else at
        the worst state of ``level``."""
        op = self.index.operators[self.index.pipelines[pipeline].operator_of[stage]]
        groups = self._groups(op, config, batch, placement)
        if groups is None:
            return _unservable(placement)
        capacity = sum(rep.count * batch / (base * scale) for rep, _, _, base in groups)
        cost = 0.0
        parts: list[tuple[float, Moments3]] = []
        shares, units, memory, loads, rates, holds = [], [], [], [], [], []
        floors: list[tuple[str, int]] = []
        waits: list[tuple[float, Moments3]] = []
        leaving: list[tuple[float, float]] = []
        driven = 0.0
        worst = alone = 0.0
        for rep, dev, prof, base in groups:
            share = rep.count * batch / (base * scale) / capacity if rep.share is None else (
                rep.share)
            own_rate = rate * share
            load = own_rate * base * scale / batch  # busy replicas
            name = DeploymentKey(op.spec.name, config, rep.device, batch, level).resource
            state = self._states.get(name)
            cv = service_cv(prof)
            if state is None:
                svc = base * scale
                # At a level of 1 no state bounds the wait (a deployment may be sized to run
                # saturated): the query is then estimated alone on its fewest replicas, and
                # the deployment check vouches for it once the deployment is sized.
                busiest = own_rate if level >= 1 - 1e-9 else level * rep.count * batch / svc
                # Co-tenants unknown: Poisson arrivals, and Poisson on (arrivals module note).
                soj = batch_queue_sojourn(rate=busiest, batch=batch, batch_service=svc,
                                          service_cv=cv, replicas=rep.count,
                                          fill_rate=own_rate)
                held = load / level  # replicas' worth at the level
                worst = max(worst, level)
                leaves = 1.0
            else:
                mix = state.scale_mean
                spread = max(0.0, state.scale_sq - mix * mix) / (batch * mix * mix)
                cs2 = (1 + cv * cv) * (1 + spread) - 1
                # This query's part of the merged stream is smooth, its co-tenants' taken as
                # Poisson; it leaves as a random part of the deployment's departures. Co-tenants
                # that send bursts (fan-out) make the stream burstier than Poisson, not smoother:
                # it is then taken as Poisson times their dispersion, with no smoothing.
                mine = min(1.0, own_rate / state.rate_rps)
                merged = merge_scv([(mine, split_scv(arrival_scv, share)), (1.0 - mine, 1.0)])
                if state.burst_rate > 0.0:
                    merged = 1.0
                soj = batch_queue_sojourn(
                    rate=state.rate_rps, batch=batch, batch_service=base * mix,
                    service_cv=math.sqrt(cs2), replicas=state.replicas,
                    own_service=base * (scale + (batch - 1) * mix) / batch,
                    dispersion=1.0 + state.burst_rate / state.rate_rps, arrival_scv=merged)
                held = state.replicas * (own_rate * scale) / (state.rate_rps * mix)
                worst = max(worst, soj.utilization)
                leaves = split_scv(soj.departure_scv, mine)
            parts.append((share, (soj.mean, soj.var, soj.third)))
            waits.append((share, soj.wait))
            leaving.append((share, leaves))
            driven += share * soj.arrival_share
            shares.append((rep.device, share))
            units.append((rep.device, held * prof.units))
            memory.append((rep.device, held * prof.memory_gb))
            loads.append((name, load))
            rates.append((name, own_rate))
            holds.append((name, held))
            floors.append((name, rep.count))
            cost += held * prof.units * dev.price_per_unit_hour
            alone += rep.count * prof.units * dev.price_per_unit_hour
        mean, var, third = mixture(parts)
        return StageEstimate(
            mean_s=mean, var_s2=var, utilization=worst, shares=tuple(shares),
            units=tuple(units), memory_gb=tuple(memory), cost_per_hour=cost,
            deployments=tuple(loads), deployment_rates=tuple(rates),
            deployment_held=tuple(holds), alone_cost_per_hour=alone,
            deployment_floor=tuple(floors), third_s3=third, wait_s=mixture(waits),
            arrival_share=driven, departure_scv=merge_scv(leaving))

    def _stage(self, pipeline: str, stage: str, config: ConfigKey, batch: int,
               placement: Placement, rate: float, scale: float, arrival_scv: float = 1.0
               ) -> StageEstimate:
        op = self.index.operators[self.index.pipelines[pipeline].operator_of[stage]]
        found = self._groups(op, config, batch, placement)
        if found is None:
            return _unservable(placement)
        groups = []
        for rep, dev, prof, base in found:
            svc = base * scale
            groups.append((rep, dev, prof, svc, rep.count * batch / svc))
        capacity = sum(g[4] for g in groups)
        parts: list[tuple[float, Moments3]] = []
        shares, units, memory = [], [], []
        waits: list[tuple[float, Moments3]] = []
        leaving: list[tuple[float, float]] = []
        driven = 0.0
        cost = 0.0
        busiest = 0.0
        for rep, dev, prof, svc, cap in groups:
            share = cap / capacity if rep.share is None else rep.share
            busiest = max(busiest, rate * share / cap)
            soj = batch_queue_sojourn(rate=rate * share, batch=batch, batch_service=svc,
                                      service_cv=service_cv(prof), replicas=rep.count,
                                      arrival_scv=split_scv(arrival_scv, share))
            parts.append((share, (soj.mean, soj.var, soj.third)))
            waits.append((share, soj.wait))
            leaving.append((share, soj.departure_scv))
            driven += share * soj.arrival_share
            shares.append((rep.device, share))
            units.append((rep.device, rep.count * prof.units))
            memory.append((rep.device, rep.count * prof.memory_gb))
            cost += rep.count * prof.units * dev.price_per_unit_hour
        mean, var, third = mixture(parts)
        return StageEstimate(
            mean_s=mean,
            var_s2=var,
            utilization=busiest,
            shares=tuple(shares),
            units=tuple(units),
            memory_gb=tuple(memory),
            cost_per_hour=cost,
            third_s3=third,
            wait_s=mixture(waits),
            arrival_share=driven,
            departure_scv=merge_scv(leaving),
        )

    def burst(self, query: Query, stage: str, config: ConfigKey, batch: int,
              placement: Placement, level: float | None, ks: np.ndarray,
              flow: Flow) -> list[Moments3]:
        """A burst of ``k`` sub-requests at ``stage`` (see :meth:`BaseEstimator.burst`).

        NOTE: each device of the placement gets the burst's objects in proportion to its share
        (``k_i``, rounded). The burst first waits for the work queued before it: the device's
        ``c`` replicas are taken as one server ``c`` times as fast, whose customers are whole
        bursts (an M^X/G/1 queue; PASTA: the mean work found is ``(s rho (1 + b cv^2) + s^2 B)
        / (2 (1 - rho))`` for sub-requests of work ``s = t_b / (b c)``, the device's
        utilisation ``rho`` and ``B``, what bursts add to the dispersion of its arrivals,
        ``lam (E[k_i^2] - E[k_i])``, or the sized deployment's ``burst_rate`` when larger),
        taken as "none, or exponential" with probability ``rho`` (a burst occupies every replica
        at once, so the single fast server fits better than Erlang's C for the ``c`` replicas:
        at ``c = 3``, 15 % optimistic at p95 with it, 1 % pessimistic without). Then its
        ``ceil(k_i / b)`` batches are served ``c`` at a time, in ``ceil(ceil(k_i / b) / c)``
        rounds of the batch time; a last batch the burst leaves partial waits for the next
        sub-requests to fill it (exponential, at the rate they come). The burst is done when
        its slowest device is (the maximum over devices).
        Example: one replica, batch 1, 10 ms, k = 4 on an idle device: 40 ms.
        """
        sub = at_rate(query, flow.k_mean)
        est = self.stage(sub, stage, config, batch, placement, level)
        rho = est.utilization
        op = self.index.operators[self.index.pipelines[query.pipeline].operator_of[stage]]
        groups = self._groups(op, config, batch, placement)
        if groups is None or not rho < 1.0 or not math.isfinite(est.mean_s):
            return [(math.inf, math.inf, math.inf) for _ in ks]
        assert flow.counts is not None
        counts, probs = flow.counts
        scale = query.work_scale.get(stage, 1.0)
        runtime = self.index.world.runtime
        lam = query.rate_rps
        devices: list[tuple[float, float, float, int, float, Moments3, tuple[float, float]]] = []
        for (rep, _, prof, base), (_, share) in zip(groups, est.shares, strict=True):
            t = base * scale
            cv = service_cv(prof)
            c = rep.count
            ek = share * flow.k_mean
            ek2 = share * share * flow.k_square + share * (1 - share) * flow.k_mean
            excess = lam * (ek2 - ek)  # what the bursts add to a Poisson stream's dispersion
            if level is not None:
                state = self._states.get(
                    DeploymentKey(op.spec.name, config, rep.device, batch, level).resource)
                if state is not None:
                    c = state.replicas
                    excess = max(excess, state.burst_rate)
            s = t / (batch * c)
            own = min(lam * ek * s, rho)
            other = rho - own
            wait = (s * rho * (1 + batch * cv * cv) + s * s * excess) / (2 * (1 - rho))
            head = _atom_exp(rho, wait / rho if rho > 0 else 0.0)
            # Sub-requests that may fill a partial batch: the query's next bursts to this
            # device and the other queries' sub-requests.
            busy = float(np.dot(probs, 1.0 - (1.0 - share) ** counts))
            fill = lam * busy + other / s
            hop = (0.0, 0.0) if runtime is None else self._hop_s({self._tier(rep.device): 1.0})
            devices.append((share, t, cv, c, fill, head, hop))
        out: list[Moments3] = []
        for k in ks.tolist():
            parts = []
            for share, t, cv, c, fill, head, hop in devices:
                ki = k if len(devices) == 1 else round(k * share)
                if ki <= 0:
                    continue
                rounds = math.ceil(math.ceil(ki / batch) / c)
                var = rounds * (cv * t) ** 2
                serve = (rounds * t, var, 2 * var * var / (rounds * t))
                late = (1 / fill, 1 / fill ** 2, 2 / fill ** 3) if (
                    batch > 1 and ki % batch and fill > 0) else (0.0, 0.0, 0.0)
                parts.append((head[0] + serve[0] + late[0] + hop[0],
                              head[1] + serve[1] + late[1] + hop[1], head[2] + serve[2] + late[2]))
            if not parts:
                out.append((*_mixture([(d[0], *d[6]) for d in devices]), 0.0))
            else:
                out.append(parts[0] if len(parts) == 1 else max_moments(parts))
        return out

    def transfer(self, query: Query, size_kb: float, src: Shares, dst: Shares,
                 rate_rps: float | None = None) -> TransferEstimate:
        rate = query.rate_rps if rate_rps is None else rate_rps
        key = (size_kb, rate, src, dst)
        hit = self._transfers.get(key)
        if hit is None:
            self.kernel_evaluations += 1
            hit = self._transfer(size_kb, rate, src, dst)
            self._transfers[key] = hit
        return hit

    def _site(self, endpoint: str) -> str:
        return endpoint[1:] if endpoint.startswith("@") else self.index.devices[endpoint].site

    def _transfer(self, size_kb: float, rate: float, src: Shares, dst: Shares) -> TransferEstimate:
        cost = 0.0
        parts: list[tuple[float, Moments3]] = []
        traffic: dict[tuple[str, str], float] = {}
        for a, wa in src:
            site_a = self._site(a)
            for b, wb in dst:
                weight = wa * wb
                site_b = self._site(b)
                extra: Moments3 = (0.0, 0.0, 0.0)  # delay from sharing the link
                if a == b:
                    t = 0.0
                elif site_a == site_b:
                    site = self.index.sites[site_a]
                    t = transfer_seconds(size_kb, site.lan_bandwidth_mbps, site.lan_rtt_ms)
                else:
                    link = self.index.link(site_a, site_b)
                    if link is None:
                        return TransferEstimate(math.inf, math.inf, (), 0.0, math.inf)
                    t = transfer_seconds(size_kb, link.bandwidth_mbps, link.rtt_ms)
                    slow = self._slowdown.get((site_a, site_b), 1.0)
                    if slow != 1.0 and link.capacity_mbps is not None:
                        # A lone transfer already gets only min(B, C) (module note).
                        alone = max(1.0, link.bandwidth_mbps / link.capacity_mbps)
                        wire = transfer_seconds(size_kb, link.bandwidth_mbps, 0.0)
                        t += (alone - 1.0) * wire
                        extra = shared_link_delay(slow / alone, wire * alone)
                    kb_per_s = rate * size_kb * weight
                    pair = (site_a, site_b)
                    traffic[pair] = traffic.get(pair, 0.0) + kb_per_s * KB_PER_S_TO_MBPS
                    cost += kb_per_s * KB_PER_S_TO_GB_PER_H * link_price(link, a)
                parts.append((weight, (t + extra[0], extra[1], extra[2])))
        mean, var, third = mixture(parts)
        return TransferEstimate(
            mean_s=mean,
            var_s2=var,
            link_mbps=tuple(sorted(traffic.items())),
            cost_per_hour=cost,
            third_s3=third,
        )

    def accuracy(self, pipeline: str, configs: Mapping[str, ConfigKey]) -> float | None:
        key = (pipeline, *sorted(configs.items()))
        if key not in self._accuracy:
            self._accuracy[key] = self._compose_accuracy(pipeline, configs)
        return self._accuracy[key]

    def _compose_accuracy(self, pipeline: str, configs: Mapping[str, ConfigKey]) -> float | None:
        pipe = self.index.pipelines[pipeline]
        model = pipe.spec.accuracy
        if model.rule == "none":
            return None
        if model.rule == "table":
            best: tuple[int, float] | None = None
            for row in model.table:
                knobs = 0
                for stage, partial in row.config.items():
                    op = self.index.operators[pipe.operator_of[stage]]
                    full = op.config_dict(configs[stage])
                    if any(full[k] != v for k, v in partial.items()):
                        break
                    knobs += len(partial)
                else:
                    if best is None or knobs > best[0]:
                        best = (knobs, row.accuracy)
            return None if best is None else best[1]
        each = {s: self.index.operators[pipe.operator_of[s]].accuracy[configs[s]]
                for s in pipe.order}
        if pipe.plain:
            return _compose(model.rule, [each[s] for s in pipe.order])
        # With branches, a request is as accurate as the stages it visits (each object after a
        # fan-out likewise): the rule over those, weighted by the outcomes' probabilities.
        inner = pipe.object_outcomes or ()
        total = 0.0
        for oc in pipe.outcomes:
            for io in inner or (None,):
                visited = oc.stages | (io.stages if io is not None else frozenset())
                weight = oc.prob * (io.prob if io is not None else 1.0)
                total += weight * _compose(model.rule, [each[s] for s in pipe.order
                                                        if s in visited])
        return total


def link_price(link: Link, sender: str) -> float:
    """$ per GB of a message over ``link`` from ``sender``: a source's own messages
    (``"@site"``) pay the link's ``source_price_per_gb`` where it has one, the rest
    ``price_per_gb``."""
    if sender.startswith("@") and link.source_price_per_gb is not None:
        return link.source_price_per_gb
    return link.price_per_gb


def _link_slowdown(index: WorldIndex, pair: tuple[str, str], utilization: float) -> float:
    """The slowdown of transfers over the link ``pair`` at ``utilization`` (validated)."""
    link = index.link(*pair)
    if link is None:
        raise ValueError(f"link load: there is no link {pair[0]}->{pair[1]}; loads are for the "
                         "world's links with a capacity_mbps")
    if link.capacity_mbps is None:
        raise ValueError(f"link load: link {pair[0]}->{pair[1]} has no capacity_mbps, so "
                         "transfers on it never slow each other; leave it out")
    if not utilization >= 0:
        raise ValueError(f"link load: utilisation of {pair[0]}->{pair[1]} must be >= 0, got "
                         f"{utilization!r}")
    slowdown = shared_link_slowdown(utilization, link.capacity_mbps / link.bandwidth_mbps)
    return 1.0 if slowdown <= 1.0 + NEGLIGIBLE_SLOWDOWN else slowdown


def _compose(rule: str, parts: list[float]) -> float:
    """The accuracy rule ``product``, ``min`` or ``mean`` over the stages' accuracies."""
    if rule == "product":
        return math.prod(parts)
    if rule == "min":
        return min(parts)
    return sum(parts) / len(parts)


def _atom_exp(p: float, mean: float) -> Moments3:
    """Moments of "0 with probability ``1 - p``, else exponential of ``mean``"."""
    if p <= 0 or mean <= 0:
        return 0.0, 0.0, 0.0
    return raw_to_central(p * mean, 2 * p * mean ** 2, 6 * p * mean ** 3)


def _unservable(placement: Placement) -> StageEstimate:
    return StageEstimate(math.inf, math.inf, math.inf,
                         tuple((r.device, 1.0 / len(placement)) for r in placement), (), (), 0.0,
                         third_s3=math.inf)


def _mixture(parts: Sequence[tuple[float, float, float]]) -> tuple[float, float]:
    """Mean and variance of a draw from one of ``parts`` (``(weight, mean, variance)``, the
    weights summing to 1): the parts' own figures, exactly, when they are all alike (one tier,
    or a world without figures per tier), else the within-part variance plus the spread of the
    means."""
    if len({part[1:] for part in parts}) == 1:
        return parts[0][1], parts[0][2]
    mean = sum(w * m for w, m, _ in parts)
    return mean, sum(w * (v + (m - mean) ** 2) for w, m, v in parts)
