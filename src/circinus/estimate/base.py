"""The estimator interface and its result records.

An estimator predicts what a plan achieves: latency (mean and the SLO percentile), accuracy,
cost per hour and the resources it occupies on every device and link. It is split into three
kernels so that a search can reuse partial results across the many plans that share them:

* :meth:`BaseEstimator.stage` - one stage on one placement (service, batching and queueing);
* :meth:`BaseEstimator.transfer` - one message crossing from one placement to the next;
* :meth:`BaseEstimator.accuracy` - end-to-end accuracy of the stages' configurations.

:meth:`BaseEstimator.estimate` composes them (see its docstring for the rule). All methods are
pure: the same arguments give the same result and nothing is mutated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

import numpy as np

from circinus.estimate.arrivals import inflow_scv
from circinus.estimate.flow import (
    Burst,
    Flow,
    at_rate,
    flow_components,
    flow_of,
    mixture_quantile,
)
from circinus.estimate.join import Moments, latency_moments
from circinus.estimate.queueing import mixture, quantile
from circinus.plan.records import Placement, QueryPlan
from circinus.spec.index import ConfigKey, WorldIndex
from circinus.spec.models import Query, Slo

Shares = tuple[tuple[str, float], ...]
"""Fraction of a stage's requests handled by each device, ``((device, share), ...)``."""

K = TypeVar("K")

EPS = 1e-9
"""Tolerance of every comparison of resources, latencies and costs."""


@dataclass(frozen=True)
class StageEstimate:
    """One stage of one query on one placement."""

    mean_s: float
    var_s2: float
    utilization: float
    shares: Shares
    units: tuple[tuple[str, float], ...]
    memory_gb: tuple[tuple[str, float], ...]
    cost_per_hour: float
    deployments: tuple[tuple[str, float], ...] = ()
    """For a shared stage: per deployment joined (:attr:`DeploymentKey.resource
    <circinus.plan.records.DeploymentKey.resource>`), the load the query puts on it in busy
    replicas; ``units``, ``memory_gb`` and ``cost_per_hour`` are then that load's share of the
    deployment at its level (load / level x per replica), not whole replicas."""
    deployment_rates: tuple[tuple[str, float], ...] = ()
    """For a shared stage: per deployment joined, the requests per second the query sends it."""
    deployment_held: tuple[tuple[str, float], ...] = ()
    """For a shared stage: per deployment joined, the replicas' worth of it that ``units``,
    ``memory_gb`` and ``cost_per_hour`` count for this query."""
    alone_cost_per_hour: float | None = None
    """For a shared stage: the cost of its deployments were the query alone on them, with its
    fewest replicas (``Replicas.count``); ``None`` for a dedicated stage (``cost_per_hour``)."""
    deployment_floor: tuple[tuple[str, int], ...] = ()
    """For a shared stage: per deployment joined, the fewest replicas it must have for this
    estimate to hold (``Replicas.count``)."""
    third_s3: float = 0.0
    """Third central moment of the sojourn, s³ (its skew: see
    :func:`~circinus.estimate.queueing.quantile`)."""
    wait_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Mean, variance and third central moment of the wait in the queue of batches (part of
    the sojourn), s; the part that stages fed by the same arrivals share
    (:mod:`circinus.estimate.join`)."""
    arrival_share: float = 0.0
    """The part of the wait's variability driven by the arrivals (``c_A^2 / (c_A^2 +
    c_S^2)``, :class:`~circinus.estimate.queueing.Sojourn`)."""
    departure_scv: float = 1.0
    """SCV of the gaps between this query's requests leaving the stage, what the next stage
    sees (:mod:`circinus.estimate.arrivals`)."""

    @property
    def solo_cost_per_hour(self) -> float:
        """What the stage costs when its query is alone on its deployments."""
        return self.cost_per_hour if self.alone_cost_per_hour is None else (
            self.alone_cost_per_hour)


@dataclass(frozen=True)
class TransferEstimate:
    """One edge of the pipeline: messages from one placement (or a source site) to the next."""

    mean_s: float
    var_s2: float
    link_mbps: tuple[tuple[tuple[str, str], float], ...]
    cost_per_hour: float
    third_s3: float = 0.0
    """Third central moment of the transfer time, s³."""


@dataclass(frozen=True)
class Estimate:
    """Predicted performance and resource use of a whole plan of one query."""

    latency_mean_ms: float
    latency_ms: float
    """Latency at the query's SLO percentile."""
    percentile: float
    accuracy: float | None
    compute_cost_per_hour: float
    network_cost_per_hour: float
    max_utilization: float
    device_units: tuple[tuple[str, float], ...]
    device_memory_gb: tuple[tuple[str, float], ...]
    link_mbps: tuple[tuple[tuple[str, str], float], ...]
    latency_var_ms2: float = 0.0
    """Variance of the end-to-end latency, ms² (with :attr:`latency_mean_ms` and
    :attr:`latency_third_ms3`, the shifted gamma whose percentile is :attr:`latency_ms`)."""
    latency_third_ms3: float = 0.0
    """Third central moment of the end-to-end latency, ms³."""
    deployment_load: tuple[tuple[str, float], ...] = ()
    """Load in busy replicas on each shared deployment the plan joins (by resource name).
    ``device_units``, ``device_memory_gb`` and the compute cost then count the plan's share of
    those deployments at their levels: what a selection may relax them to; whole replicas are
    counted per deployment once the selection is made (:mod:`circinus.select.deployments`)."""
    deployment_rate: tuple[tuple[str, float], ...] = ()
    """Requests per second the plan sends each shared deployment it joins."""
    deployment_held: tuple[tuple[str, float], ...] = ()
    """Replicas' worth of each shared deployment that ``device_units``, ``device_memory_gb``
    and the compute cost count for this plan: ``load / level`` before the deployments are
    sized, the plan's share of their whole replicas after."""
    deployment_floor: tuple[tuple[str, int], ...] = ()
    """The fewest replicas each shared deployment the plan joins must have for its latency
    estimate to hold (a deployment has ``max(ceil(load / level), every floor)``)."""
    deployment_burst: tuple[tuple[str, float], ...] = ()
    """Per shared deployment the plan's fan-out bursts reach: ``rate x (E[k^2] / E[k] - 1)``
    (0 for single requests), what its arrivals add to a Poisson stream's dispersion: the
    other queries on it wait behind whole bursts (:class:`~circinus.estimate.analytic.
    DeploymentState`)."""

    @property
    def cost_per_hour(self) -> float:
        """Compute plus network cost, $/h."""
        return self.compute_cost_per_hour + self.network_cost_per_hour

    def usage(self) -> dict[tuple[str, str], float]:
        """The resources this plan occupies, by ``("device", name)``, ``("memory", device)``
        and ``("link", "src->dst")`` (the names of the selection's capacity rows), the load on
        each shared deployment by ``("deployment", resource)`` and the fewest replicas it must
        have by ``("deployment-floor", resource)`` (a plan needing fewer is better wherever it
        fits: these rows take part in dominance, not in capacity). A new dict each call."""
        return dict(self._usage)

    @cached_property
    def _usage(self) -> dict[tuple[str, str], float]:
        """:meth:`usage`, built once (the selection asks for it many times per candidate)."""
        out: dict[tuple[str, str], float] = {("device", d): u for d, u in self.device_units}
        out.update({("memory", d): m for d, m in self.device_memory_gb if m > 0})
        out.update({("link", f"{s}->{t}"): v for (s, t), v in self.link_mbps})
        out.update({("deployment", k): v for k, v in self.deployment_load})
        out.update({("deployment-floor", k): float(v) for k, v in self.deployment_floor})
        return out

    def violations(self, slo: Slo) -> list[str]:
        """The SLO dimensions this estimate misses (``latency``, ``accuracy``, ``cost``)."""
        return [name for name, misses in (("latency", self._late), ("accuracy", self._short),
                                          ("cost", self._dear)) if misses(slo)]

    def meets(self, slo: Slo) -> bool:
        """Whether every objective of ``slo`` is met (:meth:`violations` is empty; asked of
        every candidate by the checks, so without building the list)."""
        return not (self._late(slo) or self._short(slo) or self._dear(slo))

    def _late(self, slo: Slo) -> bool:
        return slo.latency_ms is not None and not self.latency_ms <= slo.latency_ms + EPS

    def _short(self, slo: Slo) -> bool:
        return slo.min_accuracy is not None and (
            self.accuracy is None or self.accuracy < slo.min_accuracy - EPS)

    def _dear(self, slo: Slo) -> bool:
        return (slo.max_cost_per_hour is not None
                and self.cost_per_hour > slo.max_cost_per_hour + EPS)


def dominates(cost_a: float, use_a: Mapping[tuple[str, str], float], cost_b: float,
              use_b: Mapping[tuple[str, str], float]) -> bool:
    """Plan a costs no more than plan b and uses no more of any resource (within :data:`EPS`).

    A dominated plan is useless to every selector: wherever it fits, the plan that dominates it
    fits too and costs no more.
    """
    if cost_a > cost_b + EPS:
        return False
    return all(v <= use_b.get(r, 0.0) + EPS for r, v in use_a.items())


class BaseEstimator(ABC):
    """Predicts plan performance from a world's profiles.

    Implementations hold a read-only :class:`WorldIndex` and must be pure: no method mutates the
    world or depends on call order. ``stage`` and ``transfer`` return infinite times for
    saturated or unreachable placements instead of raising.
    """

    def __init__(self, *, index: WorldIndex) -> None:
        self.index = index
        self.kernel_evaluations = 0
        """Stage and transfer estimates computed so far (memoised repeats not counted): the
        per-(stage, configuration, placement) work a profiler would have to measure."""

    @staticmethod
    def estimate_key(query: Query, plan: QueryPlan) -> tuple[object, ...]:
        """What :meth:`estimate` of ``plan`` for ``query`` depends on besides the estimator:
        equal keys give equal estimates (a query's name, weight and SLO bounds other than its
        percentile play no part), so queries of one pipeline, site, rates and work on one plan
        share an estimate. An estimator that reads more of a query must extend it."""
        return (query.pipeline, tuple(sorted(query.sources.items())), query.rate_rps,
                tuple(sorted(query.source_rate_rps.items())),
                tuple(sorted(query.source_output_kb.items())),
                tuple(sorted(query.work_scale.items())), query.slo.percentile, plan.stages)

    @abstractmethod
    def stage(self, query: Query, stage: str, config: ConfigKey, batch: int,
              placement: Placement, level: float | None = None,
              arrival_scv: float = 1.0) -> StageEstimate:
        """Estimate ``stage`` of ``query`` in ``config`` at ``batch`` on ``placement``:
        dedicated replicas when ``level`` is ``None``, else shared deployments sized for at
        most ``level`` utilisation (see :class:`~circinus.plan.records.StagePlan`), its
        requests arriving with gaps of SCV ``arrival_scv`` (1: Poisson; see
        :mod:`circinus.estimate.arrivals`). The shares, units, memory and cost do not depend on
        ``arrival_scv``."""

    @abstractmethod
    def transfer(self, query: Query, size_kb: float, src: Shares, dst: Shares,
                 rate_rps: float | None = None) -> TransferEstimate:
        """Estimate sending one ``size_kb`` message per request from ``src`` to ``dst``.

        ``src`` entries may name a site as ``"@site"`` (a pipeline source's origin: its link
        may price a source's uplink apart). ``rate_rps``: messages per second on this edge
        (:meth:`~circinus.spec.index.PipelineIndex.rate`), the query's rate when omitted.
        """

    @abstractmethod
    def accuracy(self, pipeline: str, configs: Mapping[str, ConfigKey]) -> float | None:
        """End-to-end accuracy of ``pipeline`` with stage -> configuration ``configs``.

        ``None`` when the pipeline has no accuracy model or the table has no matching row.
        """

    def estimate(self, query: Query, plan: QueryPlan) -> Estimate:
        """Compose the stage and transfer estimates of ``plan``.

        Rule: each stage of a plain pipeline is estimated at the SCV of its arrivals,
        propagated from the Poisson sources through the stages before it
        (:mod:`circinus.estimate.arrivals`); latencies compose over the DAG
        (:mod:`circinus.estimate.join`): along an edge the means, variances and third central
        moments of transfers and stage sojourns add up (stages assumed independent); where
        branches join, the moments of their maximum are integrated, with the waits of the
        branches' first stages correlated through their shared arrivals; the percentile is read
        off the shifted gamma with the sink's three moments
        (:func:`~circinus.estimate.queueing.quantile`). Costs and resources add up. A pipeline
        with fan-out or branches is composed by :meth:`_estimate_flow`, its stages estimated
        Poisson-fed (``arrival_scv`` 1).
        """
        pipe = self.index.pipelines[query.pipeline]
        if not pipe.plain:
            return self._estimate_flow(query, plan)
        stages = {s.stage: s for s in plan.stages}
        configs = {name: s.config for name, s in stages.items()}
        ests = {  # at Poisson arrivals first: the shares the transfers need
            name: self.stage(query, name, s.config, s.batch, s.placement, s.level)
            for name, s in stages.items()
        }
        edges: dict[tuple[str, str], tuple[float, float, float]] = {}
        transfers = []
        leaving = {src: 1.0 for src in pipe.source_kb}
        unwaited = pipe.unwaited(query)
        for stage in pipe.order:
            for pred in pipe.preds[stage]:
                size = self.message_kb(query.pipeline, pred, configs, query=query)
                src = ((f"@{query.sources[pred]}", 1.0),) if pred in pipe.source_kb else (
                    ests[pred].shares
                )
                tr = self.transfer(query, size, src, ests[stage].shares,
                                   rate_rps=pipe.rate(query, pred))
                transfers.append(tr)
                edges[pred, stage] = (tr.mean_s, tr.var_s2, tr.third_s3)
            # A request is ready when its waited inputs are (a join takes an unwaited input's
            # latest message as it is, whenever it came).
            scv = inflow_scv([(leaving[p], edges[p, stage][1]) for p in pipe.preds[stage]
                              if p not in unwaited or stage in unwaited],
                             pipe.rate(query, stage))
            if scv < 1.0:
                sp = stages[stage]
                ests[stage] = self.stage(query, stage, sp.config, sp.batch, sp.placement,
                                         sp.level, scv)
            leaving[stage] = ests[stage].departure_scv
        mean, var, third = latency_moments(
            pipe, {name: (e.mean_s, e.var_s2, e.third_s3) for name, e in ests.items()}, edges,
            unwaited, {name: (e.wait_s, e.arrival_share) for name, e in ests.items()})
        return self._assemble(query, configs, ests, transfers, (mean, var, third),
                              quantile(mean, var, query.slo.percentile / 100.0, third))

    def _estimate_flow(self, query: Query, plan: QueryPlan) -> Estimate:
        """:meth:`estimate` for a pipeline with fan-out or branches (:mod:`circinus.estimate.
        flow`): each stage and edge at the query's rate times its visits per request, the
        latency the mixture over the outcomes and object counts, its percentile read off
        that mixture."""
        pipe = self.index.pipelines[query.pipeline]
        stages = {s.stage: s for s in plan.stages}
        configs = {name: s.config for name, s in stages.items()}
        flow = flow_of(pipe, self.index.operators, configs)
        # Stages here are estimated Poisson-fed (arrival_scv 1): the arrival-SCV propagation of
        # :meth:`estimate` (circinus.estimate.arrivals) covers plain pipelines only, a fan-out's
        # bursts and a branch's random split are not renewal streams it models.
        ests = {
            name: self.stage(at_rate(query, flow.stage[name]), name, s.config, s.batch,
                             s.placement, s.level)
            for name, s in stages.items()
        }
        edges: dict[tuple[str, str], Moments] = {}
        transfers = []
        for stage in pipe.order:
            for pred in pipe.preds[stage]:
                size = self.message_kb(query.pipeline, pred, configs, query)
                src = ((f"@{query.sources[pred]}", 1.0),) if pred in pipe.source_kb else (
                    ests[pred].shares
                )
                tr = self.transfer(at_rate(query, flow.edge[pred, stage]), size, src,
                                   ests[stage].shares)
                transfers.append(tr)
                edges[pred, stage] = (tr.mean_s, tr.var_s2, tr.third_s3)
        burst: Burst | None = None
        if pipe.fanout_stage is not None:
            (first,) = [s for s in pipe.order if pipe.fanout_stage in pipe.preds[s]]
            st = stages[first]

            def at_first(ks: np.ndarray) -> list[Moments]:
                return self.burst(query, first, st.config, st.batch, st.placement, st.level,
                                  ks, flow)

            burst = at_first
        bursts: tuple[tuple[str, float], ...] = ()
        if pipe.fanout_stage is not None and flow.k_mean > 0:
            (first,) = [s for s in pipe.order if pipe.fanout_stage in pipe.preds[s]]
            extra = flow.k_square / flow.k_mean - 1.0
            bursts = tuple((name, rate * extra) for name, rate in ests[first].deployment_rates)
        parts = flow_components(
            pipe, flow, {name: (e.mean_s, e.var_s2, e.third_s3) for name, e in ests.items()},
            edges, burst)
        mean, var, third = mixture(parts)
        return self._assemble(query, configs, ests, transfers, (mean, var, third),
                              mixture_quantile(parts, query.slo.percentile / 100.0), bursts)

    def _assemble(self, query: Query, configs: Mapping[str, ConfigKey],
                  ests: Mapping[str, StageEstimate], transfers: list[TransferEstimate],
                  moments: Moments, latency_s: float,
                  bursts: tuple[tuple[str, float], ...] = ()) -> Estimate:
        """The :class:`Estimate` of a plan from its stages' and transfers' estimates, the
        end-to-end latency's ``moments`` (s) and its value at the SLO percentile (s): costs and
        resources add up, deployments' figures merge."""
        mean, var, third = moments
        return Estimate(
            latency_mean_ms=mean * 1e3,
            latency_ms=latency_s * 1e3,
            percentile=query.slo.percentile,
            accuracy=self.accuracy(query.pipeline, configs),
            compute_cost_per_hour=sum(e.cost_per_hour for e in ests.values()),
            network_cost_per_hour=sum(t.cost_per_hour for t in transfers),
            max_utilization=max(e.utilization for e in ests.values()),
            device_units=_add(e.units for e in ests.values()),
            device_memory_gb=_add(e.memory_gb for e in ests.values()),
            link_mbps=_add(t.link_mbps for t in transfers),
            latency_var_ms2=var * 1e6,
            latency_third_ms3=third * 1e9,
            deployment_load=_add(e.deployments for e in ests.values()),
            deployment_rate=_add(e.deployment_rates for e in ests.values()),
            deployment_held=_add(e.deployment_held for e in ests.values()),
            deployment_floor=_most(e.deployment_floor for e in ests.values()),
            deployment_burst=bursts,
        )

    def burst(self, query: Query, stage: str, config: ConfigKey, batch: int,
              placement: Placement, level: float | None, ks: np.ndarray,
              flow: Flow) -> list[Moments]:
        """For each count ``k`` of ``ks``: moments of the time from the arrival of a burst of
        ``k`` sub-requests of one request of ``query`` at ``stage`` (the stage after the
        fan-out, visited ``flow.k_mean`` times per request) to the end of the last one's
        service. Estimators that model fan-out override it."""
        raise NotImplementedError(f"{type(self).__name__} does not estimate fan-out")

    def message_kb(self, pipeline: str, node: str, configs: Mapping[str, ConfigKey],
                   query: Query | None = None) -> float:
        """Size of the message ``node`` (a source or a stage in its configuration from
        ``configs``) sends per request, KB; a source's is ``query``'s own size where it gives
        one (``source_output_kb``)."""
        pipe = self.index.pipelines[pipeline]
        if node in pipe.source_kb:
            return pipe.source_kb[node] if query is None else pipe.source_message_kb(query, node)
        return self.index.operators[pipe.operator_of[node]].output_kb[configs[node]]


def _most(parts: Iterable[Iterable[tuple[str, int]]]) -> tuple[tuple[str, int], ...]:
    """The largest ``value`` per key of ``(key, value)`` pairs, sorted by key."""
    top: dict[str, int] = {}
    for part in parts:
        for key, value in part:
            top[key] = max(top.get(key, 0), value)
    return tuple(sorted(top.items()))


def _add(parts: Iterable[Iterable[tuple[K, float]]]) -> tuple[tuple[K, float], ...]:
    """Sum ``(key, amount)`` pairs by key, sorted by key."""
    total: dict[K, float] = {}
    for part in parts:
        for key, value in part:
            total[key] = total.get(key, 0.0) + value
    return tuple(sorted(total.items(), key=lambda kv: str(kv[0])))
