"""``circinus bench fidelity``: does the estimator predict what the simulator measures?

NOTE: every world (the generated fidelity family of :mod:`circinus.bench.fidelity_worlds` and
the bundled examples) is planned by the default planner with the bench's seed, and its plan
file is served by the simulator (Poisson arrivals, ``duration_s`` simulated seconds). Per
admitted query the record holds the predicted latency at its SLO percentile next to the
simulated one and whether it met its SLO when served. The estimator is judged both ways: an
optimistic prediction admits queries that miss their SLO, a pessimistic one rejects queries
that would have met it. So, per world, up to ``rejected`` of the queries rejected on latency
(no plan predicted within the bound, ``why_not.binding == "latency"``) are tried again: the
world is planned with that query's latency bound raised to its nearest admissible value (the
least bound at which the planner admits it into what the others leave), served, and the query
counts as *would have met* when the simulator measures it within its original bound.

The targets are per world: at least :data:`TARGET_MET` of the admitted queries meet their SLO,
and at least :data:`TARGET_WITHIN` have a prediction within :data:`TOLERANCE` of the simulated
latency (relative to the simulated one; too high counts as a miss too).

The simulated percentile is a reference only when it rests on enough requests: the empirical
``p``-quantile of ``n`` requests has a standard error of ``sqrt(p (1 - p) / n) / f(q_p)`` (``f``
the density there). For a sojourn of coefficient of variation near 1 at p95 that is about
``2.4 / sqrt(n)`` of the quantile: 33 % with the 50 requests an hour at 0.015 req/s brings (a
meeting-companion session), far more than the tolerance it is meant to judge. So a plan is
simulated at least ``duration_s``, and longer where an admitted query's rate is low: until
each has :data:`TAIL_REQUESTS` measured requests beyond its SLO percentile (``TAIL_REQUESTS /
(1 - p)`` measured requests: 1,000 at p95, where the standard error is then about 8 % of the
quantile at cv 1 and far less at the usual cv), at most :data:`MAX_DURATION_S`.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from circinus.plan.file import to_plan_file
from circinus.planner import Planner, PlanResult
from circinus.simulate import (
    SimulationResult,
    SimulationSettings,
    compile_plan,
    make_arrivals,
    simulate,
)
from circinus.spec.index import WorldIndex
from circinus.spec.validate import build_index

TOLERANCE = 0.10
"""A prediction within this relative distance of the simulated latency is a hit."""
TARGET_MET = 0.97
"""Share of admitted queries that must meet their SLO when served, per world."""
TARGET_WITHIN = 0.90
"""Share of admitted queries whose prediction must be within :data:`TOLERANCE`, per world."""
TAIL_REQUESTS = 50
"""Measured requests beyond its SLO percentile each admitted query gets, at least (module
note): the simulated duration grows for queries of low rate."""
MAX_DURATION_S = 86_400.0
"""Longest simulation of one plan, s (the simulator's own bound)."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class QueryFidelity:
    """One admitted query: predicted against simulated latency at its SLO percentile."""

    query: str
    percentile: float
    slo_latency_ms: float | None
    predicted_ms: float
    simulated_ms: float | None
    """``None``: some measured request never completed."""
    predicted_mean_ms: float | None
    simulated_mean_ms: float | None
    error: float | None
    """``(predicted - simulated) / simulated`` at the SLO percentile."""
    met: bool
    requests: int = 0
    """Measured requests the simulated percentile rests on."""


@dataclass(frozen=True)
class RejectedCheck:
    """A query rejected on latency, planned again at its nearest admissible latency bound."""

    query: str
    percentile: float
    slo_latency_ms: float
    nearest_ms: float | None
    """The least latency bound that admits it (``None``: none does)."""
    predicted_ms: float | None
    """Its plan's predicted latency at the percentile at that bound."""
    simulated_ms: float | None
    """What the simulator measured for that plan (``None``: not admitted, or unbounded)."""
    would_have_met: bool


@dataclass(frozen=True)
class FidelityRecord:
    """One world planned and served."""

    world: str
    queries: int
    admitted: int
    met: int
    within: int
    """Admitted queries predicted within :data:`TOLERANCE` of the simulated latency."""
    rejected_on_latency: int
    checked: int
    """Rejected-on-latency queries tried again (at most the bench's ``rejected``)."""
    would_have_met: int
    plan_seconds: float
    simulated_seconds: float
    simulation_wall_seconds: float
    load_average: float
    per_query: tuple[QueryFidelity, ...]
    rejected: tuple[RejectedCheck, ...]

    @property
    def met_share(self) -> float | None:
        """Share of the admitted queries that met their SLO (``None``: none admitted)."""
        return self.met / self.admitted if self.admitted else None

    @property
    def within_share(self) -> float | None:
        """Share of the admitted queries predicted within the tolerance."""
        return self.within / self.admitted if self.admitted else None

    @property
    def median_error(self) -> float | None:
        """Median of the relative errors at the SLO percentile."""
        errors = [q.error for q in self.per_query if q.error is not None]
        return statistics.median(errors) if errors else None

    @property
    def worst_error(self) -> float | None:
        """The relative error farthest from 0."""
        errors = [q.error for q in self.per_query if q.error is not None]
        return max(errors, key=abs) if errors else None

    @property
    def targets_met(self) -> bool:
        """Both targets of the module note, on this world (vacuous with nothing admitted)."""
        return (self.met_share is None or self.met_share >= TARGET_MET) and (
            self.within_share is None or self.within_share >= TARGET_WITHIN)


@dataclass(frozen=True)
class FidelityReport:
    """Everything ``circinus bench fidelity`` prints and writes."""

    seed: int
    duration_s: float
    tolerance: float
    cores: int | None
    records: tuple[FidelityRecord, ...]
    load_average_start: tuple[float, float, float]
    load_average_end: tuple[float, float, float]

    def to_json(self) -> dict[str, object]:
        """Plain data for ``--json`` (each record with its shares and targets)."""
        records = []
        for r in self.records:
            data = asdict(r)
            data.update(met_share=r.met_share, within_share=r.within_share,
                        median_error=r.median_error, worst_error=r.worst_error,
                        targets_met=r.targets_met)
            records.append(data)
        return {"benchmark": "fidelity", "seed": self.seed, "duration_s": self.duration_s,
                "tolerance": self.tolerance, "target_met": TARGET_MET,
                "target_within": TARGET_WITHIN, "cores": self.cores,
                "load_average_start": self.load_average_start,
                "load_average_end": self.load_average_end, "records": records}


def simulated_duration(index: WorldIndex, result: PlanResult, duration_s: float,
                       tail_requests: int = TAIL_REQUESTS) -> float:
    """Seconds to simulate ``result``'s plan: ``duration_s``, or longer so that every admitted
    query gets ``tail_requests`` measured requests beyond its SLO percentile (module note),
    at most :data:`MAX_DURATION_S` (never less than ``duration_s``).

    Example: a query of 0.015 req/s at p95 needs 1,000 measured requests, 66,667 s after the
    warm-up, so 74,074 s with the default tenth of warm-up.
    """
    queries = {q.name: q for q in index.world.queries}
    measured = 1.0 - SimulationSettings().warmup_fraction
    need = duration_s
    for outcome in result.outcomes:
        if outcome.admitted:
            q = queries[outcome.name]
            requests = tail_requests / (1.0 - q.slo.percentile / 100.0)
            need = max(need, requests / (q.rate_rps * measured))
    return max(duration_s, min(need, MAX_DURATION_S))


def _serve(index: WorldIndex, planner: Planner, *, seed: int, duration_s: float,
           tail_requests: int) -> tuple[PlanResult, SimulationResult, float, float]:
    """Plan ``index`` and serve the plan for at least ``duration_s``
    (:func:`simulated_duration`): ``(plan result, simulation, plan s, sim wall s)``."""
    t0 = time.monotonic()
    result = planner.plan(index)
    t1 = time.monotonic()
    served = simulate(compile_plan(index, to_plan_file(index, result)),
                      arrivals=make_arrivals("poisson"),
                      settings=SimulationSettings(
                          duration_s=simulated_duration(index, result, duration_s,
                                                        tail_requests), seed=seed))
    return result, served, t1 - t0, time.monotonic() - t1


def _relaxed(index: WorldIndex, query: str, latency_ms: float) -> WorldIndex:
    """``index``'s world with ``query``'s latency bound set to ``latency_ms``."""
    world = index.world
    queries = [q.model_copy(update={"slo": q.slo.model_copy(update={"latency_ms": latency_ms})})
               if q.name == query else q for q in world.queries]
    return build_index(world.model_copy(update={"queries": queries}))


def measure(label: str, index: WorldIndex, *, seed: int, duration_s: float, rejected: int,
            progress: Progress | None = None, tail_requests: int = TAIL_REQUESTS
            ) -> FidelityRecord:
    """Plan and serve ``index`` (at least ``duration_s``, longer for ``tail_requests``:
    :func:`simulated_duration`), then try up to ``rejected`` queries rejected on latency
    again (module note)."""
    say = progress or (lambda _: None)
    settings = index.world.planner.model_copy(update={"seed": seed})
    load = os.getloadavg()[0]
    say(f"{label}: planning and simulating {duration_s:g} s")
    result, served, plan_s, sim_s = _serve(index, Planner(settings=settings, why_not=True),
                                           seed=seed, duration_s=duration_s,
                                           tail_requests=tail_requests)
    per_query = []
    for q in served.queries:
        predicted = q.predicted_latency_ms if q.predicted_latency_ms is not None else float("inf")
        sim = q.latency.at_slo_ms
        error = None if sim is None or sim <= 0 else (predicted - sim) / sim
        per_query.append(QueryFidelity(
            query=q.name, percentile=q.percentile, slo_latency_ms=q.slo_latency_ms,
            predicted_ms=predicted, simulated_ms=sim, predicted_mean_ms=q.predicted_mean_ms,
            simulated_mean_ms=q.latency.mean_ms, error=error, met=q.slo_met,
            requests=q.requests))
    slow = [o for o in result.outcomes
            if not o.admitted and o.why_not is not None and o.why_not.binding == "latency"]
    checks = []
    bounds = {q.name: q for q in index.world.queries}
    for o in slow[:rejected]:
        query = bounds[o.name]
        assert query.slo.latency_ms is not None and o.why_not is not None
        nearest = next((r.nearest for r in o.why_not.relaxations or ()
                        if r.objective == "latency_ms"), None)
        again: float | None = None
        simulated: float | None = None
        if nearest is not None:
            say(f"{label}: {o.name} at its nearest bound {nearest:.4g} ms")
            _, sim_again, _, _ = _serve(_relaxed(index, o.name, nearest),
                                            Planner(settings=settings), seed=seed,
                                            duration_s=duration_s, tail_requests=tail_requests)
            mine = next((q for q in sim_again.queries if q.name == o.name), None)
            if mine is not None:
                again, simulated = mine.predicted_latency_ms, mine.latency.at_slo_ms
        checks.append(RejectedCheck(
            query=o.name, percentile=query.slo.percentile, slo_latency_ms=query.slo.latency_ms,
            nearest_ms=nearest, predicted_ms=again, simulated_ms=simulated,
            would_have_met=simulated is not None and simulated <= query.slo.latency_ms))
    return FidelityRecord(
        world=label, queries=len(index.world.queries), admitted=len(served.queries),
        met=sum(q.met for q in per_query),
        within=sum(q.error is not None and abs(q.error) <= TOLERANCE for q in per_query),
        rejected_on_latency=len(slow), checked=len(checks),
        would_have_met=sum(c.would_have_met for c in checks), plan_seconds=plan_s,
        simulated_seconds=served.duration_s, simulation_wall_seconds=sim_s, load_average=load,
        per_query=tuple(per_query), rejected=tuple(checks))


def run_fidelity_bench(worlds: Sequence[tuple[str, Callable[[], WorldIndex]]], *,
                       seed: int = 0, duration_s: float = 3600.0, rejected: int = 5,
                       progress: Progress | None = None,
                       partial: Callable[[FidelityReport], None] | None = None,
                       tail_requests: int = TAIL_REQUESTS) -> FidelityReport:
    """Every world of ``worlds`` (label, loader: loaded when its turn comes), each plan served
    at least ``duration_s`` (:func:`simulated_duration`); ``partial`` gets the report so far
    after every world."""
    begin = os.getloadavg()
    records: list[FidelityRecord] = []

    def report() -> FidelityReport:
        return FidelityReport(seed, duration_s, TOLERANCE, os.cpu_count(), tuple(records),
                              begin, os.getloadavg())

    for label, load in worlds:
        records.append(measure(label, load(), seed=seed, duration_s=duration_s,
                               rejected=rejected, progress=progress,
                               tail_requests=tail_requests))
        if partial is not None:
            partial(report())
    return report()
