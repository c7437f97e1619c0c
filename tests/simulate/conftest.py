"""Hand-built worlds and plan files for the simulator's tests.

``one_stage`` builds a world with one stage on one device (a single queue, for the queueing
theory checks); ``plan_for`` writes the plan file a planner would have written for given
per-stage decisions, so tests choose the plan instead of the planner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from circinus.plan.file import (
    AllocationOut,
    OperatorOut,
    PlanFile,
    PredictedOut,
    QueryOut,
    ReplicaOut,
    ResourcesOut,
    SolverOut,
)
from circinus.simulate import SimWorld, compile_plan
from circinus.spec import Slo, build_index, parse_world

Stage = tuple[Any, ...]
"""(stage, operator, [(device, replicas)], batch[, configuration]); no configuration: {}."""


def plan_for(world: dict[str, Any], stages: dict[str, list[Stage]]) -> PlanFile:
    """The plan file admitting each query of ``stages`` with the given decisions."""
    parsed = parse_world(world)
    devices = {d.name: d for d in parsed.devices}
    tiers = {s.name: s.tier for s in parsed.sites}
    queries = []
    for q in parsed.queries:
        ops = []
        for stage, operator, placement, batch, *config in stages.get(q.name, []):
            reps = [ReplicaOut(device=d, site=devices[d].site, tier=tiers[devices[d].site],
                               replicas=n, units=float(n)) for d, n in placement]
            ops.append(OperatorOut(
                stage=stage, operator=operator, configuration=config[0] if config else {},
                placement=reps,
                allocation=AllocationOut(batch=batch, replicas=sum(r.replicas for r in reps),
                                         units=sum(r.units for r in reps))))
        admitted = bool(ops)
        predicted = PredictedOut(latency_ms=1.0, latency_mean_ms=1.0,
                                 percentile=q.slo.percentile, accuracy=None, cost_per_hour=0.0,
                                 compute_cost_per_hour=0.0, network_cost_per_hour=0.0,
                                 max_utilization=0.5) if admitted else None
        queries.append(QueryOut(
            name=q.name, pipeline=q.pipeline, rate_rps=q.rate_rps, weight=q.weight,
            slo=Slo.model_validate(q.slo.model_dump()), admitted=admitted,
            reason=None if admitted else "selection: test", candidates=int(admitted),
            operators=ops, predicted=predicted))
    goodput = sum(q.weight for q in queries if q.admitted)
    return PlanFile(
        world=parsed.name, goodput=goodput, goodput_rps=0.0,
        admitted=sum(q.admitted for q in queries), total_queries=len(queries),
        total_cost_per_hour=0.0, search_seconds=0.0, select_seconds=0.0, evaluations=0,
        solver=SolverOut(status="optimal", goodput_bound=goodput, gap=0.0, cost_gap=0.0,
                         seconds=0.0),
        queries=queries, resources=ResourcesOut(devices=[], links=[]))


def one_stage_world(*, rate: float, mean_ms: float, cv: float,
                    batch_ms: dict[int, float] | None = None, latency_ms: float = 1000.0,
                    percentile: float = 90.0) -> dict[str, Any]:
    """One site, one 64-unit device, a source of 0 KB feeding one stage ``st``."""
    profile: dict[str, Any] = {"hardware": "cpu", "mean_ms": mean_ms, "cv": cv}
    if batch_ms:
        profile["batch_ms"] = batch_ms
    return {
        "name": "queue",
        "hardware": [{"name": "cpu"}],
        "sites": [{"name": "here", "tier": "edge"}],
        "devices": [{"name": "box", "site": "here", "hardware": "cpu", "units": 64,
                     "price_per_unit_hour": 0.0}],
        "operators": [{"name": "op", "profiles": [profile]}],
        "pipelines": [{"name": "p", "sources": [{"name": "src", "output_kb": 0}],
                       "stages": [{"name": "st", "operator": "op"}],
                       "edges": [["src", "st"]], "accuracy": {"rule": "none"}}],
        "queries": [{"name": "q", "pipeline": "p", "sources": {"src": "here"},
                     "rate_rps": rate,
                     "slo": {"latency_ms": latency_ms, "percentile": percentile}}],
    }


def compile_world(world: dict[str, Any], stages: dict[str, list[Stage]]) -> SimWorld:
    """``world`` with the plan of ``stages``, resolved for the simulator."""
    return compile_plan(build_index(parse_world(world)), plan_for(world, stages))


@pytest.fixture
def queue() -> Callable[..., SimWorld]:
    """A one-stage world and plan: ``queue(rate=, mean_ms=, cv=, replicas=, batch=, ...)``."""

    def make(*, replicas: int = 1, batch: int = 1, **world: Any) -> SimWorld:
        w = one_stage_world(**world)
        return compile_world(w, {"q": [("st", "op", [("box", replicas)], batch)]})

    return make


@pytest.fixture
def build() -> Callable[[dict[str, Any], dict[str, list[Stage]]], SimWorld]:
    """:func:`compile_world`: a world dict and per-query stage decisions -> a SimWorld."""
    return compile_world


@pytest.fixture
def make_plan() -> Callable[[dict[str, Any], dict[str, list[Stage]]], PlanFile]:
    """:func:`plan_for`: a world dict and per-query stage decisions -> a PlanFile."""
    return plan_for
