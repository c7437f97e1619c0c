"""Hand-built worlds and plan files for the simulator's tests.

``one_stage_world`` builds a world whose queries run one stage on one device (a single queue,
for the queueing theory checks); ``plan_for`` writes the plan file a planner would have written
for given per-stage decisions, so tests choose the plan instead of the planner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from circinus.plan.file import (
    AllocationOut,
    BatchOut,
    DeploymentOut,
    OperatorOut,
    PlanFile,
    PredictedOut,
    QueryOut,
    ReplicaOut,
    ResourcesOut,
    RouteOut,
    RouteShareOut,
    SolverOut,
)
from circinus.simulate import SimWorld, compile_plan
from circinus.simulate.service import batch_mean_ms
from circinus.spec import Slo, build_index, parse_world
from circinus.spec.index import WorldIndex

Stage = tuple[Any, ...]
"""``(stage, operator, [(device, replicas)], batch[, configuration])``: the stage on dedicated
deployments of its own, one per device (no configuration: ``{}``); or ``(stage, [name, ...])``:
on the shared deployments of those names."""
Shared = tuple[Any, ...]
"""``(operator, device, replicas, batch[, configuration])``: a shared deployment."""


class _Deployments:
    """The deployments of a hand-built plan, with what each query routes to them."""

    def __init__(self, index: WorldIndex, shared: dict[str, Shared]) -> None:
        self.index = index
        self.spec: dict[str, tuple[str, dict[str, Any], str, int, int, str]] = {}
        self.load: dict[str, float] = {}  # busy replicas' worth, for the predicted utilisation
        self.users: dict[str, list[str]] = {}
        for name, (operator, device, replicas, batch, *config) in shared.items():
            self.add(name, operator, config[0] if config else {}, device, replicas, batch,
                     "shared")

    def add(self, name: str, operator: str, config: dict[str, Any], device: str, replicas: int,
            batch: int, sharing: str) -> None:
        self.spec[name] = (operator, config, device, replicas, batch, sharing)
        self.load[name] = 0.0
        self.users[name] = []

    def batch_s(self, name: str) -> float:
        operator, config, device, _, batch, _ = self.spec[name]
        op = self.index.operators[operator]
        profile = op.profiles[op.key_of(config), self.index.devices[device].hardware]
        ms = batch_mean_ms(profile, batch)
        assert ms is not None, (name, batch)
        return ms / 1000.0

    def route(self, query: str, rate: float, work: float, names: list[str]) -> RouteOut:
        """Shares in proportion to each deployment's capacity (replicas x b / t_b)."""
        caps = [self.spec[n][3] * self.spec[n][4] / self.batch_s(n) for n in names]
        shares = [c / sum(caps) for c in caps]
        for n, share in zip(names, shares, strict=True):
            self.load[n] += rate * share * work * self.batch_s(n) / self.spec[n][4]
            if query not in self.users[n]:
                self.users[n].append(query)
        return RouteOut(stage="", deployments=[
            RouteShareOut(deployment=n, share=s) for n, s in zip(names, shares, strict=True)])

    def placement(self, names: list[str]) -> list[ReplicaOut]:
        out = []
        for n in names:
            _, _, device, replicas, _, _ = self.spec[n]
            dev = self.index.devices[device]
            out.append(ReplicaOut(device=device, site=dev.site,
                                  tier=self.index.sites[dev.site].tier, replicas=replicas,
                                  units=float(replicas)))
        return out

    def out(self) -> list[DeploymentOut]:
        deps = []
        for name, (operator, config, device, replicas, batch, sharing) in self.spec.items():
            op = self.index.operators[operator]
            dev = self.index.devices[device]
            profile = op.profiles[op.key_of(config), dev.hardware]
            deps.append(DeploymentOut(
                name=name, operator=operator, config=config, device=device, site=dev.site,
                tier=self.index.sites[dev.site].tier,
                sharing="shared" if sharing == "shared" else "dedicated", replicas=replicas,
                units_per_replica=profile.units, memory_gb_per_replica=profile.memory_gb,
                batch=BatchOut(max_batch_size=batch),
                level=0.8 if sharing == "shared" else None, rate_rps=0.0,
                utilization=self.load[name] / replicas, cost_per_hour=0.0,
                queries=self.users[name]))
        return deps


def plan_for(world: dict[str, Any], stages: dict[str, list[Stage]],
             shared: dict[str, Shared] | None = None) -> PlanFile:
    """The plan file admitting each query of ``stages`` with the given decisions, on the
    ``shared`` deployments and dedicated ones of its own."""
    parsed = parse_world(world)
    index = build_index(parsed)
    built = _Deployments(index, shared or {})
    queries = []
    for q in parsed.queries:
        ops, route = [], []
        for stage, *decision in stages.get(q.name, []):
            if len(decision) == 1:
                names = list(decision[0])
                operator, config, _, _, batch, _ = built.spec[names[0]]
            else:
                operator, placement, batch, *config = decision
                config = config[0] if config else {}
                names = []
                for device, replicas in placement:
                    name = f"{q.name}/{stage}@{device}"
                    built.add(name, operator, config, device, replicas, batch, "dedicated")
                    names.append(name)
            rate = index.pipelines[q.pipeline].rate(q, stage)
            r = built.route(q.name, rate, q.work_scale.get(stage, 1.0), names)
            route.append(r.model_copy(update={"stage": stage}))
            reps = built.placement(names)
            ops.append(OperatorOut(
                stage=stage, operator=operator, configuration=config,
                sharing="shared" if len(decision) == 1 else "dedicated", placement=reps,
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
            operators=ops, route=route, source_rate_rps=dict(q.source_rate_rps),
            predicted=predicted))
    goodput = sum(q.weight for q in queries if q.admitted)
    return PlanFile(
        world=parsed.name, goodput=goodput, goodput_rps=0.0,
        admitted=sum(q.admitted for q in queries), total_queries=len(queries),
        total_cost_per_hour=0.0, search_seconds=0.0, select_seconds=0.0, evaluations=0,
        solver=SolverOut(status="optimal", goodput_bound=goodput, gap=0.0, cost_gap=0.0,
                         seconds=0.0),
        deployments=built.out(), queries=queries, resources=ResourcesOut(devices=[], links=[]))


def one_stage_world(*, rate: float | None = None, rates: tuple[float, ...] = (),
                    mean_ms: float, cv: float, batch_ms: dict[int, float] | None = None,
                    latency_ms: float = 1000.0, percentile: float = 90.0,
                    work: tuple[float, ...] = ()) -> dict[str, Any]:
    """One site, one 64-unit device, a source of 0 KB feeding one stage ``st`` per query: query
    ``q`` at ``rate``, or queries ``q0, q1, ...`` at ``rates`` (``work``: their multipliers)."""
    profile: dict[str, Any] = {"hardware": "cpu", "mean_ms": mean_ms, "cv": cv}
    if batch_ms:
        profile["batch_ms"] = batch_ms
    named = [("q", rate)] if rate is not None else [(f"q{i}", r) for i, r in enumerate(rates)]
    queries = []
    for i, (name, r) in enumerate(named):
        query: dict[str, Any] = {"name": name, "pipeline": "p", "sources": {"src": "here"},
                                 "rate_rps": r,
                                 "slo": {"latency_ms": latency_ms, "percentile": percentile}}
        if i < len(work):
            query["work_scale"] = {"st": work[i]}
        queries.append(query)
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
        "queries": queries,
    }


def compile_world(world: dict[str, Any], stages: dict[str, list[Stage]],
                  shared: dict[str, Shared] | None = None) -> SimWorld:
    """``world`` with the plan of ``stages`` (and ``shared`` deployments), resolved for the
    simulator."""
    return compile_plan(build_index(parse_world(world)), plan_for(world, stages, shared))


@pytest.fixture
def queue() -> Callable[..., SimWorld]:
    """A one-stage world and plan: ``queue(rate=, mean_ms=, cv=, replicas=, batch=, ...)``."""

    def make(*, replicas: int = 1, batch: int = 1, **world: Any) -> SimWorld:
        w = one_stage_world(**world)
        return compile_world(w, {"q": [("st", "op", [("box", replicas)], batch)]})

    return make


@pytest.fixture
def shared_queue() -> Callable[..., SimWorld]:
    """Queries ``q0, q1, ...`` of a one-stage world on one deployment of ``replicas`` x
    ``batch``, shared (``shared=True``) or one dedicated deployment each:
    ``shared_queue(rates=, mean_ms=, cv=, replicas=, batch=, shared=, ...)``."""

    def make(*, replicas: int = 1, batch: int = 1, shared: bool = True,
             **world: Any) -> SimWorld:
        w = one_stage_world(**world)
        names = [q["name"] for q in w["queries"]]
        if shared:
            return compile_world(w, {n: [("st", ["op@box"])] for n in names},
                                 {"op@box": ("op", "box", replicas, batch)})
        return compile_world(w, {n: [("st", "op", [("box", replicas)], batch)] for n in names})

    return make


@pytest.fixture
def build() -> Callable[..., SimWorld]:
    """:func:`compile_world`: a world dict, per-query stage decisions and shared deployments
    -> a SimWorld."""
    return compile_world


@pytest.fixture
def make_plan() -> Callable[..., PlanFile]:
    """:func:`plan_for`: a world dict, per-query stage decisions and shared deployments -> a
    PlanFile."""
    return plan_for
