"""What serving a plan on Ray Serve measured (``circinus serve --json``), and the kernel that
turns recorded requests into it.

The keys follow ``circinus simulate --json`` (:mod:`circinus.simulate.results`): ``admitted``,
``met``, ``goodput``, ``queries[]`` with ``latency`` and ``slo_met``; each query adds its
measured ``accuracy`` (with an interval), the profiler's interval for the same configurations,
and the simulator's figure next to the plan's prediction. Latencies are empirical percentiles
(the smallest measured latency with at least ``p`` % of requests at or below it), in ms; a
request that did not complete counts as infinitely late (``null`` where a percentile falls on
one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from circinus.errors import SpecError
from circinus.plan.file import PlanFile, QueryOut
from circinus.simulate.results import LatencyOut, QueryMeasuredOut
from circinus.spec.index import WorldIndex
from circinus.spec.load import read_document, validate_document
from circinus.spec.models import RuntimeSettings


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PERCENTILES = (50.0, 90.0, 95.0, 99.0)
"""Latency percentiles reported for every query."""


@dataclass(frozen=True)
class Record:
    """One request: when it was due, how long it took (``inf``: never answered), whether its
    answer matched the label."""

    query: str
    due_s: float
    latency_s: float
    correct: bool


class IntervalOut(_Out):
    """A proportion and its interval."""

    value: float = Field(description="Point estimate.")
    low: float = Field(description="Lower end.")
    high: float = Field(description="Upper end.")
    n: int = Field(description="Samples it rests on.")


class QueryServeOut(QueryMeasuredOut):
    """One admitted query served: measured next to predicted and simulated."""

    min_accuracy: float | None = Field(description="SLO accuracy floor (null: none).")
    simulated_latency_ms: float | None = Field(
        default=None, description="The simulator's latency at the SLO percentile, ms (null: "
        "not simulated).")
    latency_error: float | None = Field(
        description="(measured - predicted) / predicted latency at the SLO percentile.")
    accuracy: IntervalOut | None = Field(
        description="Measured share of answers equal to the label, with its Wilson interval at "
        "the profiling confidence (null: none answered).")
    predicted_accuracy: float | None = Field(description="The plan's accuracy.")
    profiled_accuracy: IntervalOut | None = Field(
        default=None, description="The profiler's interval for the same configurations (null: "
        "not profiled).")
    latency_met: bool = Field(description="Measured latency at the percentile <= the bound.")
    accuracy_met: bool = Field(description="The floor is within reach of the measured "
                               "accuracy: the upper end of its interval >= the floor (a miss: "
                               "the whole interval below it).")
    slo_met: bool = Field(description="Latency and accuracy met, and the plan's cost meets the "
                          "SLO.")


class ReplicaCheckOut(_Out):
    """Whether every replica runs on the node of its planned site."""

    replicas: int = Field(description="Running replicas checked.")
    misplaced: list[str] = Field(description="`deployment: node site (planned site)` of each "
                                 "replica elsewhere.")


class MachineOut(_Out):
    """The machine while serving."""

    cores: int = Field(description="Logical cores.")
    load_before: float = Field(description="1-minute load average before the load started.")
    load_after: float = Field(description="1-minute load average at its end.")
    cpu_busy: float = Field(description="Busy fraction of all cores over the measured run "
                            "(stolen time included).")
    cpu_steal: float | None = Field(
        default=None, description="Fraction of all cores' time stolen by the host for other "
        "guests over the run (null: a file written before it was recorded).")
    ray_memory_gb: float = Field(description="Resident memory of the cluster's processes at the "
                                 "end, GB.")


class RunQueryOut(_Out):
    """One admitted query in one run of several."""

    name: str = Field(description="Query name.")
    requests: int = Field(description="Measured requests of this run.")
    mean_ms: float | None = Field(description="Mean latency in this run, ms (null: a request "
                                  "was never answered).")
    at_slo_ms: float | None = Field(description="Latency at the SLO percentile in this run, ms "
                                    "(null: it falls on a request never answered).")
    latency_error: float | None = Field(description="(measured - predicted) / predicted "
                                        "latency at the SLO percentile, this run alone.")
    slo_met: bool = Field(description="The SLO met on this run's requests alone.")


class RunOut(_Out):
    """One serving run of the plan: a fresh cluster, deployment and load with its own seed."""

    seed: int = Field(description="Seed of this run's arrivals, inputs and routes.")
    requests: int = Field(description="Measured requests.")
    completed: int = Field(description="Measured requests answered.")
    dropped: int = Field(description="Requests not sent: the in-flight bound was reached.")
    met: int = Field(description="Admitted queries that met their SLO on this run alone.")
    median_latency_error: float | None = Field(
        description="Median over queries of |measured - predicted| / predicted, this run alone.")
    startup_s: float = Field(description="Cluster start and deploy until HEALTHY, s.")
    placement: ReplicaCheckOut
    machine: MachineOut
    queries: list[RunQueryOut]


class ServeResult(_Out):
    """What serving a plan file on Ray Serve achieved: over every run's measured requests
    together when it was served several times (``runs``)."""

    format: Literal["circinus-serve/1"] = "circinus-serve/1"
    world: str = Field(description="World name.")
    address: str | None = Field(description="Cluster address (null: a local emulated cluster).")
    emulated_links: bool = Field(description="Whether links between sites were emulated.")
    trace: str = Field(description="Arrival process.")
    seed: int = Field(description="Seed of arrivals and inputs (of the first run; run i has "
                      "seed + i).")
    duration_s: float = Field(description="Load time of each run, s (warm-up included).")
    warmup_s: float = Field(description="Leading time whose requests are not measured, s.")
    hop_overhead_ms: float | None = Field(
        description="Per-call overhead the predictions include (the world's runtime section).")
    runtime: RuntimeSettings | None = Field(
        default=None, description="The world's runtime section the plan was served with, per "
        "tier figures included (null: none, or a file written before it was recorded: then "
        "`hop_overhead_ms` alone says what the predictions include).")
    total_queries: int = Field(description="Queries in the world.")
    admitted: int = Field(description="Admitted queries (all are served).")
    met: int = Field(description="Admitted queries that met their SLO when served.")
    goodput: float = Field(description="Sum of the weights of the queries that met their SLO.")
    predicted_goodput: float = Field(description="The plan file's goodput.")
    simulated_goodput: float | None = Field(
        default=None, description="The simulator's goodput (null: not simulated).")
    requests: int = Field(description="Measured requests over all queries and runs.")
    completed: int = Field(description="Measured requests answered.")
    dropped: int = Field(description="Requests not sent: the in-flight bound was reached.")
    median_latency_error: float | None = Field(
        description="Median over queries of |measured - predicted| / predicted latency at the "
        "SLO percentile.")
    startup_s: float = Field(description="Cluster start and deploy until HEALTHY, s (the "
                             "slowest run's).")
    placement: ReplicaCheckOut = Field(description="Every run's replicas.")
    machine: MachineOut = Field(description="Over the runs: the first's load before, the "
                                "last's after, the mean busy fraction, the largest memory.")
    queries: list[QueryServeOut] = Field(description="Each admitted query over every run's "
                                         "measured requests together.")
    runs: list[RunOut] = Field(
        default_factory=list, description="Each run on its own, in order (empty in a file "
        "written before runs were recorded: then it was one run).")


def latency_out(lat: np.ndarray, percentile: float) -> LatencyOut:
    """Percentiles of latencies in seconds (``inf``: not answered) as ms."""
    if not len(lat):
        return LatencyOut(mean_ms=None, p50_ms=None, p90_ms=None, p95_ms=None, p99_ms=None,
                          at_slo_ms=None)
    qs = np.quantile(lat, [p / 100 for p in (*PERCENTILES, percentile)], method="inverted_cdf")
    mean = float(np.mean(lat))
    return LatencyOut(mean_ms=_ms(mean), p50_ms=_ms(qs[0]), p90_ms=_ms(qs[1]),
                      p95_ms=_ms(qs[2]), p99_ms=_ms(qs[3]), at_slo_ms=_ms(qs[4]))


def _ms(seconds: float) -> float | None:
    return float(seconds) * 1000.0 if math.isfinite(seconds) else None


def query_out(q: QueryOut, records: Sequence[Record], *, accuracy_alpha: float,
              simulated_ms: float | None, profiled: IntervalOut | None) -> QueryServeOut:
    """One admitted query's figures from its measured ``records``.

    NOTE: the measured accuracy is a share of a few hundred answers, as uncertain as the
    profiler's (digits, 160 answers: 0.844 with interval 0.756-0.904). The accuracy floor is
    judged on its interval, like the profiler's: missed only when the whole interval is below
    the floor, i.e. when the measurement rules out the floor at the profiling confidence; a
    point estimate below a floor its interval reaches is not a miss.
    """
    from circinus.profile.stats import wilson_interval

    assert q.predicted is not None, q.name
    lat = np.array([r.latency_s for r in records], dtype=float)
    slo = q.slo
    latency = latency_out(lat, slo.percentile)
    answered = [r for r in records if math.isfinite(r.latency_s)]
    right = sum(r.correct for r in answered)
    acc = None
    if answered:
        iv = wilson_interval(right, len(answered), accuracy_alpha)
        acc = IntervalOut(value=iv.point, low=iv.low, high=iv.high, n=len(answered))
    within = None
    latency_met = True
    if slo.latency_ms is not None:
        within = float(np.mean(lat <= slo.latency_ms / 1000.0)) if len(lat) else None
        latency_met = latency.at_slo_ms is not None and latency.at_slo_ms <= slo.latency_ms
    accuracy_met = slo.min_accuracy is None or (acc is not None
                                                and acc.high >= slo.min_accuracy)
    cost_met = slo.max_cost_per_hour is None or (
        q.predicted.cost_per_hour <= slo.max_cost_per_hour)
    pred = q.predicted.latency_ms
    error = None
    if pred and latency.at_slo_ms is not None:
        error = (latency.at_slo_ms - pred) / pred
    return QueryServeOut(
        name=q.name, pipeline=q.pipeline, rate_rps=q.rate_rps, weight=q.weight,
        percentile=slo.percentile, slo_latency_ms=slo.latency_ms, min_accuracy=slo.min_accuracy,
        requests=len(lat), completed=len(answered), latency=latency, within_slo=within,
        predicted_latency_ms=pred, predicted_mean_ms=q.predicted.latency_mean_ms,
        simulated_latency_ms=simulated_ms, latency_error=error, accuracy=acc,
        predicted_accuracy=q.predicted.accuracy, profiled_accuracy=profiled,
        latency_met=latency_met, accuracy_met=accuracy_met,
        slo_met=latency_met and accuracy_met and cost_met)


def median_abs_error(queries: Sequence[QueryServeOut]) -> float | None:
    """Median of |latency_error| over the queries that have one."""
    errors = [abs(q.latency_error) for q in queries if q.latency_error is not None]
    return float(np.median(errors)) if errors else None


def read_serve_result(path: str | Path) -> ServeResult:
    """Parse and validate what ``circinus serve --json`` wrote at ``path``.

    Raises:
        SpecError: not such a file, naming the first offending field.
    """
    data = read_document(path)
    got = data.get("format") if isinstance(data, dict) else type(data).__name__
    if got != "circinus-serve/1":
        raise SpecError(f"{path}: format: expected what `circinus serve --json` writes "
                        f"('circinus-serve/1'), got {got!r}")
    return validate_document(ServeResult, data, str(path),
                             hint="it is written by `circinus serve WORLD PLAN --json OUT`")


@dataclass(frozen=True)
class Comparison:
    """What the served figures are set beside: the simulator's and the profiler's."""

    simulated_ms: Mapping[str, float | None]
    """Query -> the simulator's latency at the SLO percentile."""
    simulated_goodput: float | None
    profiled: Mapping[str, IntervalOut]
    """Query -> the profiler's accuracy interval for its configurations."""
    accuracy_alpha: float


@dataclass(frozen=True)
class RunRecords:
    """What one serving run recorded, before it is summed up (:func:`serve_result`)."""

    seed: int
    records: list[Record]
    """Every request, warm-up included."""
    dropped: int
    startup_s: float
    placement: ReplicaCheckOut
    machine: MachineOut


def serve_result(index: WorldIndex, plan: PlanFile, done: Sequence[RunRecords], *,
                 arrivals: str, duration_s: float, warmup_s: float, compare: Comparison,
                 address: str | None) -> ServeResult:
    """What serving ``plan`` measured over the runs ``done`` (``arrivals`` names their arrival
    process): each run on its own, and every admitted query over all runs' measured requests
    (those due after the warm-up) together."""
    admitted = [q for q in plan.queries if q.admitted]

    def queries_of(measured: Sequence[Record]) -> list[QueryServeOut]:
        by_query: dict[str, list[Record]] = {}
        for r in measured:
            by_query.setdefault(r.query, []).append(r)
        return [query_out(q, by_query.get(q.name, []), accuracy_alpha=compare.accuracy_alpha,
                          simulated_ms=compare.simulated_ms.get(q.name),
                          profiled=compare.profiled.get(q.name))
                for q in admitted]

    measured = [[r for r in run.records if r.due_s >= warmup_s] for run in done]
    runs = []
    for run, mine in zip(done, measured, strict=True):
        qs = queries_of(mine)
        runs.append(RunOut(
            seed=run.seed, requests=len(mine), completed=sum(q.completed for q in qs),
            dropped=run.dropped, met=sum(q.slo_met for q in qs),
            median_latency_error=median_abs_error(qs), startup_s=run.startup_s,
            placement=run.placement, machine=run.machine,
            queries=[RunQueryOut(name=q.name, requests=q.requests, mean_ms=q.latency.mean_ms,
                                 at_slo_ms=q.latency.at_slo_ms, latency_error=q.latency_error,
                                 slo_met=q.slo_met) for q in qs]))
    queries = queries_of([r for mine in measured for r in mine])
    met = [q for q in queries if q.slo_met]
    runtime = index.world.runtime
    machines = [run.machine for run in done]
    return ServeResult(
        world=index.world.name, address=address, emulated_links=address is None,
        trace=arrivals, seed=done[0].seed, duration_s=duration_s, warmup_s=warmup_s,
        hop_overhead_ms=None if runtime is None else runtime.hop_mean_ms,
        runtime=runtime,
        total_queries=len(plan.queries), admitted=len(queries), met=len(met),
        goodput=sum(q.weight for q in met), predicted_goodput=plan.goodput,
        simulated_goodput=compare.simulated_goodput,
        requests=sum(len(mine) for mine in measured),
        completed=sum(q.completed for q in queries), dropped=sum(run.dropped for run in done),
        median_latency_error=median_abs_error(queries),
        startup_s=max(run.startup_s for run in done),
        placement=ReplicaCheckOut(
            replicas=sum(run.placement.replicas for run in done),
            misplaced=[m for run in done for m in run.placement.misplaced]),
        machine=MachineOut(
            cores=machines[0].cores, load_before=machines[0].load_before,
            load_after=machines[-1].load_after,
            cpu_busy=sum(m.cpu_busy for m in machines) / len(machines),
            cpu_steal=None if any(m.cpu_steal is None for m in machines) else
            sum(m.cpu_steal or 0.0 for m in machines) / len(machines),
            ray_memory_gb=max(m.ray_memory_gb for m in machines)),
        queries=queries, runs=runs)
