"""The plan file written by ``circinus plan --json``: documented models and the converter.

``circinus schema plan`` prints the JSON Schema of :class:`PlanFile`; ``docs/plan-format.md``
explains it. Infinite predictions (a saturated or unconstrained placement) are written as
``null``.

NOTE: ``circinus.planner`` is a top-level module, a node of its own in the package graph
(``tests/test_package_graph.py``), and it imports ``circinus.plan`` for the decision records.
So this module must not import the planner back, nor the packages above ``circinus.plan``
(``circinus.search``, ``circinus.whynot``): :func:`to_plan_file` names ``PlanResult``,
``QueryOutcome`` and ``WhyNot`` for the type checker only and reads them by attribute, and
importing ``circinus.plan`` never loads the planner.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_core import to_json

from circinus.plan.records import DeploymentKey, QueryPlan, StagePlan
from circinus.plan.units import placement_shares
from circinus.spec.models import KnobValue, Slo

if TYPE_CHECKING:
    from circinus.estimate.base import Estimate
    from circinus.planner import PlanResult, QueryOutcome
    from circinus.spec.index import OperatorIndex, WorldIndex
    from circinus.spec.models import Query
    from circinus.whynot import WhyNot


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReplicaOut(_Out):
    """Replicas of one stage on one device."""

    device: str = Field(description="Device name.")
    site: str = Field(description="Site of the device.")
    tier: Literal["edge", "cloud"] = Field(description="Tier of the site.")
    replicas: int = Field(ge=1, description="Replicas on this device.")
    units: float = Field(ge=0, description="Capacity units they occupy.")


class AllocationOut(_Out):
    """Resources allocated to one stage."""

    batch: int = Field(ge=1, description="Batch size each replica serves.")
    replicas: int = Field(ge=1, description="Replicas over all devices.")
    units: float = Field(ge=0, description="Capacity units over all devices.")


class OperatorOut(_Out):
    """The decision for one stage of a query's pipeline."""

    stage: str = Field(description="Stage name in the pipeline.")
    operator: str = Field(description="Operator the stage runs.")
    configuration: dict[str, KnobValue] = Field(description="Knob -> chosen value.")
    sharing: Literal["shared", "dedicated"] = Field(
        default="dedicated", description="shared: the stage runs on deployments that serve "
        "other queries too (their replicas and units are the deployments'); dedicated: on "
        "replicas of its own.")
    placement: list[ReplicaOut] = Field(description="Devices the stage runs on.")
    allocation: AllocationOut = Field(description="Batch size, replicas and units.")


class JoinOut(_Out):
    """A stage without an operator: no deployment, done when the last of its inputs is."""

    stage: str = Field(description="Stage name in the pipeline.")
    inputs: list[str] = Field(description="Sources and stages it waits for, as its edges name "
                              "them.")


class RouteShareOut(_Out):
    """One deployment a stage's requests go to."""

    deployment: str = Field(description="Name of the deployment (in `deployments`).")
    share: float = Field(gt=0, le=1, description="Fraction of the stage's requests sent there.")


class RouteOut(_Out):
    """Where one stage of a query sends its requests."""

    stage: str = Field(description="Stage name in the pipeline.")
    deployments: list[RouteShareOut] = Field(
        min_length=1, description="The deployments it uses, shares summing to 1.")
    visits: float = Field(
        default=1.0, ge=0,
        description="Sub-requests this stage serves per request of the query: the probability "
        "that a request's branches lead here, times the mean objects of the fan-out before it "
        "(1 in a pipeline without branches or fan-out).")


class BatchOut(_Out):
    """How a deployment batches requests."""

    max_batch_size: int = Field(ge=1, description="Requests served together by one replica.")
    timeout_ms: float | None = Field(
        default=None, description="Longest wait for a batch to fill, ms (null: a batch is "
        "served when full, the planner's model).")


class DeploymentOut(_Out):
    """One operator configuration running on one device: what a serving engine deploys."""

    name: str = Field(description="Unique name, referred to by the queries' `route`.")
    operator: str = Field(description="Operator it runs.")
    config: dict[str, KnobValue] = Field(description="Knob -> value.")
    device: str = Field(description="Device or pool it runs on.")
    site: str = Field(description="Site of the device.")
    tier: Literal["edge", "cloud"] = Field(description="Tier of the site.")
    sharing: Literal["shared", "dedicated"] = Field(
        description="shared: serves every query routed to it; dedicated: one query's own.")
    replicas: int = Field(ge=1, description="Replicas.")
    units_per_replica: float = Field(ge=0, description="Capacity units one replica takes.")
    memory_gb_per_replica: float = Field(ge=0, description="Memory one replica takes, GB.")
    batch: BatchOut = Field(description="Batch policy.")
    level: float | None = Field(
        description="Utilisation the planner sized it for (null: dedicated, sized for its "
        "query).")
    rate_rps: float = Field(ge=0, description="Requests per second routed to it, all queries.")
    utilization: float = Field(ge=0, description="Predicted busy fraction of its replicas.")
    cost_per_hour: float = Field(ge=0, description="replicas x units x price, $/h.")
    queries: list[str] = Field(description="Names of the queries routed to it.")


class PredictedOut(_Out):
    """The estimator's prediction for an admitted plan."""

    latency_ms: float | None = Field(description="Latency at `percentile`, ms (null: unbounded).")
    latency_mean_ms: float | None = Field(description="Mean latency, ms (null: unbounded).")
    latency_var_ms2: float | None = Field(
        default=None, description="Variance of the latency, ms² (null: unbounded); with the "
        "mean and `latency_third_ms3`, the shifted gamma distribution whose percentile is "
        "`latency_ms`.")
    latency_third_ms3: float | None = Field(
        default=None, description="Third central moment of the latency, ms³ (null: unbounded, "
        "or a plan file written before it was recorded: the gamma of mean and variance).")
    percentile: float = Field(description="Percentile of `latency_ms`.")
    accuracy: float | None = Field(description="End-to-end accuracy (null: no accuracy model).")
    cost_per_hour: float = Field(description="Compute + network cost, $/h; on shared "
                                 "deployments, the query's share of their cost by work.")
    compute_cost_per_hour: float = Field(description="Cost of the allocated units, $/h (its "
                                         "share of shared deployments).")
    network_cost_per_hour: float = Field(description="Cost of inter-site traffic, $/h.")
    max_utilization: float = Field(description="Highest utilisation of any replica group.")


class ResourceRefOut(_Out):
    """A constrained resource."""

    kind: Literal["device", "memory", "link"] = Field(description="Kind of resource.")
    name: str = Field(description="Device name, or 'src->dst' for a link.")


class RelaxationOut(_Out):
    """The nearest admissible bound of one SLO objective, the others unchanged."""

    objective: Literal["latency_ms", "min_accuracy", "max_cost_per_hour"] = Field(
        description="The SLO field relaxed.")
    current: float = Field(description="Its bound now.")
    nearest: float | None = Field(
        description="Least relaxed bound that admits the query at the current load (null: no "
        "value of this objective alone does).")


class WhyNotOut(_Out):
    """Why a rejected query is not admitted, in structured form."""

    binding: Literal["accuracy", "latency", "cost", "placement", "capacity", "selection"] = Field(
        description="The obstacle: an SLO objective, placement, capacity or the selection.")
    resource: ResourceRefOut | None = Field(
        description="For capacity: the resource most of its candidates lack (null otherwise).")
    nearest_slo: list[RelaxationOut] | None = Field(
        description="Per objective the SLO sets: its nearest admissible bound (null: not "
        "computed).")
    admissible: bool | None = Field(
        description="Whether relaxing one objective admits it (null: not computed).")


class QueryOut(_Out):
    """One query: its SLO and either its plan or the reason it is rejected."""

    name: str = Field(description="Query name.")
    pipeline: str = Field(description="Pipeline name.")
    rate_rps: float = Field(description="Request rate, req/s.")
    weight: float = Field(description="Goodput weight.")
    slo: Slo = Field(description="The query's objectives.")
    admitted: bool = Field(description="Whether the query is served.")
    reason: str | None = Field(description="Why it is rejected (null when admitted).")
    candidates: int = Field(description="Candidate plans offered to the selection.")
    operators: list[OperatorOut] = Field(description="Per-stage decisions (empty if rejected).")
    route: list[RouteOut] = Field(
        default_factory=list, description="Per stage, the deployments its requests go to and "
        "their shares (empty if rejected).")
    joins: list[JoinOut] = Field(
        default_factory=list, description="The pipeline's stages without an operator (no "
        "deployment, no cost; empty if rejected or none).")
    source_rate_rps: dict[str, float] = Field(
        default_factory=dict, description="Sources with a message rate of their own, req/s "
        "(the query's source_rate_rps).")
    predicted: PredictedOut | None = Field(description="Prediction (null if rejected).")
    why_not: WhyNotOut | None = Field(
        default=None, description="Binding obstacle and nearest admissible SLO (null if "
        "admitted).")


class DeviceOut(_Out):
    """Use of one device or pool."""

    name: str = Field(description="Device name.")
    site: str = Field(description="Site.")
    tier: Literal["edge", "cloud"] = Field(description="Tier.")
    used_units: float = Field(description="Units allocated by admitted plans.")
    capacity_units: float = Field(description="Units the device has.")
    utilization: float = Field(description="used_units / capacity_units.")
    used_memory_gb: float | None = Field(description="Memory allocated, GB (null: unmodelled).")
    capacity_memory_gb: float | None = Field(description="Memory of the device, GB.")
    goodput_per_unit: float | None = Field(
        default=None, description="About how much more goodput (weighted queries) one more unit "
        "would admit: the selection's goodput LP dual of the device's units (plus its memory's "
        "times the memory per unit), a first-order guide from the relaxation (docs/capacity.md)"
        "; null when the selector solved no LP.")


class LinkOut(_Out):
    """Traffic on one directed link."""

    src: str = Field(description="Source site.")
    dst: str = Field(description="Destination site.")
    used_mbps: float = Field(description="Traffic of admitted plans, Mbit/s.")
    capacity_mbps: float | None = Field(description="Link capacity, Mbit/s (null: unlimited).")
    utilization: float | None = Field(description="used / capacity (null: unlimited).")
    goodput_per_mbps: float | None = Field(
        default=None, description="About how much more goodput one more Mbit/s of capacity "
        "would admit (the goodput LP's dual; null: unlimited, or no LP solved).")


class ResourcesOut(_Out):
    """Use against capacity of every device, pool and link."""

    devices: list[DeviceOut]
    links: list[LinkOut]


class SolverOut(_Out):
    """How the global selection was solved."""

    status: Literal["optimal", "time_limit", "stalled", "rounded", "partitioned",
                    "greedy"] = Field(
        description="Solver outcome.")
    goodput_bound: float = Field(description="Proven upper bound on goodput.")
    gap: float = Field(description="(bound - goodput) / bound.")
    cost_gap: float = Field(description="Relative gap of cost at this goodput.")
    seconds: float = Field(description="Solver wall time, s.")


class LinkCeilingOut(_Out):
    """A link the link check kept under a utilisation."""

    src: str = Field(description="Source site.")
    dst: str = Field(description="Destination site.")
    utilization: float = Field(description="The ceiling: above it, transfers on the link slow "
                               "its plans past their SLOs.")


class LinkCheckOut(_Out):
    """What the link check did (the plans estimated again at their shared links' load)."""

    rounds: int = Field(description="Repairs of the selection because plans missed their SLOs "
                        "at their links' utilisation.")
    dropped_candidates: int = Field(description="Candidates dropped for missing their SLOs at "
                                    "their links' utilisation.")
    unadmitted: int = Field(description="Admitted queries dropped from the last selection, "
                            "without a new one (the check ran out of rounds or time).")
    ceilings: list[LinkCeilingOut] = Field(description="Links kept under a utilisation.")
    seconds: float = Field(description="Wall time of the check, s (part of select_seconds).")


class PlanFile(_Out):
    """The plan of a whole world."""

    format: Literal["circinus-plan/2"] = Field(
        default="circinus-plan/2", description="Format version (2: shared deployments).")
    world: str = Field(description="World name.")
    goodput: float = Field(description="Weighted number of admitted queries.")
    goodput_rps: float = Field(description="Request rate of admitted queries, req/s.")
    admitted: int = Field(description="Admitted queries.")
    total_queries: int = Field(description="Queries in the world.")
    total_cost_per_hour: float = Field(description="Cost of all admitted plans, $/h.")
    search_seconds: float = Field(description="Wall time of the per-query search, s.")
    select_seconds: float = Field(description="Wall time of the global selection, s.")
    evaluations: int = Field(description="Plans whose performance was estimated.")
    why_not_seconds: float | None = Field(
        default=None, description="Wall time of the nearest-SLO search for rejected queries, s.")
    why_not_skipped: int = Field(
        default=0, description="Rejected queries whose nearest admissible SLO was not searched "
        "for: past the planner's why_not_time_s (their why_not has no nearest_slo).")
    solver: SolverOut
    link_check: LinkCheckOut | None = Field(
        default=None, description="What the link check did (null: it was off).")
    deployments: list[DeploymentOut] = Field(
        description="Every deployment of the plan: the shared ones and each admitted query's "
        "dedicated replicas; what a serving engine runs.")
    queries: list[QueryOut]
    resources: ResourcesOut


def _num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _query(index: WorldIndex, spec: Query, outcome: QueryOutcome,
           built: _Deployments) -> QueryOut:
    ops: list[OperatorOut] = []
    route: list[RouteOut] = []
    joins: list[JoinOut] = []
    predicted = None
    if outcome.plan is not None and outcome.estimate is not None:
        visits = built.visits(spec.pipeline, outcome.plan)
        for st in outcome.plan.stages:
            op_out, route_out = built.stage(spec.name, spec.pipeline, st, visits[st.stage])
            ops.append(op_out)
            route.append(route_out)
        predicted = built.predicted(outcome.estimate)
        joins = built.joins(spec.pipeline)
    # Built from validated records, the plan file's records are not validated again: it was
    # most of the time of writing 100,000 queries' plans.
    return _record(
        QueryOut, name=spec.name, pipeline=spec.pipeline, rate_rps=spec.rate_rps,
        weight=spec.weight, slo=spec.slo, admitted=outcome.admitted, reason=outcome.reason,
        candidates=outcome.candidates, operators=ops, route=route, joins=joins,
        source_rate_rps=dict(spec.source_rate_rps), predicted=predicted,
        why_not=why_not_out(outcome.why_not))


def predicted_out(e: Estimate) -> PredictedOut:
    """The plan file's form of an estimate."""
    return PredictedOut.model_construct(
        latency_ms=_num(e.latency_ms), latency_mean_ms=_num(e.latency_mean_ms),
        latency_var_ms2=_num(e.latency_var_ms2), latency_third_ms3=_num(e.latency_third_ms3),
        percentile=e.percentile, accuracy=e.accuracy, cost_per_hour=e.cost_per_hour,
        compute_cost_per_hour=e.compute_cost_per_hour,
        network_cost_per_hour=e.network_cost_per_hour, max_utilization=e.max_utilization)


class _Deployments:
    """The plan's deployments, named: the shared ones as the selection sized them, then one per
    dedicated stage and device of each admitted query."""

    def __init__(self, index: WorldIndex, result: PlanResult) -> None:
        self.index = index
        self._pipes = {q.name: q.pipeline for q in index.world.queries}
        self.by_name: dict[str, DeploymentOut] = {}
        self._shared: dict[str, str] = {}  # resource -> name
        # Memos by object identity, each entry holding its object (alive while it is used).
        self._visits: dict[tuple[str, int], tuple[tuple[StagePlan, ...], dict[str, float]]] = {}
        self._joins: dict[str, list[JoinOut]] = {}
        # Shared stages by value: alike queries' plans hold equal stage plans of their own
        # (20,000 generated queries: 53,016 shared stages, 16,084 objects, 1,153 values).
        self._stages: dict[tuple[str, StagePlan, float], tuple[OperatorOut, RouteOut]] = {}
        self._predicted: dict[int, tuple[Estimate, PredictedOut]] = {}
        self._shares: dict[tuple[str, int],
                           tuple[StagePlan, tuple[tuple[str, float], ...]]] = {}
        specs = {q.name: q for q in index.world.queries}
        taken: dict[str, int] = {}
        for d in result.deployments:
            key = d.spec.key
            base = f"{key.operator}@{key.device}"
            taken[base] = taken.get(base, 0) + 1
        seen: dict[str, int] = {}
        for d in result.deployments:
            key = d.spec.key
            base = f"{key.operator}@{key.device}"
            seen[base] = seen.get(base, 0) + 1
            name = base if taken[base] == 1 else f"{base}-{seen[base]}"
            op = index.operators[key.operator]
            self._shared[d.name] = name
            self._add(name, op.spec.name, op.config_dict(key.config), key.device, "shared",
                      d.replicas, d.spec.units, d.spec.memory_gb, key.batch, key.level,
                      d.rate_rps, d.utilization, d.cost_per_hour, list(d.queries))
        for o in result.outcomes:
            if o.plan is None or all(st.shared for st in o.plan.stages):
                continue  # (no dedicated stage: nothing of its own to name)
            spec = specs[o.name]
            pipe = index.pipelines[spec.pipeline]
            scale = spec.work_scale
            visits, _ = pipe.visits(pipe.fanout_mean(
                index.operators, {st.stage: st.config for st in o.plan.stages}))
            for st in o.plan.stages:
                if st.shared:
                    continue
                op = index.operators[pipe.operator_of[st.stage]]
                for rep, (_, share) in zip(st.placement, placement_shares(
                        index, op, st.config, st.batch, st.placement), strict=True):
                    dev = index.devices[rep.device]
                    prof = op.profiles[st.config, dev.hardware]
                    ms = prof.mean_ms if st.batch == 1 else prof.batch_ms[st.batch]
                    rate = pipe.rate(spec, st.stage) * visits[st.stage] * share
                    busy = rate * ms * scale.get(st.stage, 1.0) / 1000.0 / st.batch
                    self._add(self.dedicated(o.name, st.stage, rep.device), op.spec.name,
                              op.config_dict(st.config), rep.device, "dedicated", rep.count,
                              prof.units, prof.memory_gb, st.batch, None, rate,
                              busy / rep.count,
                              rep.count * prof.units * dev.price_per_unit_hour, [o.name])

    def visits(self, pipeline: str, plan: QueryPlan) -> dict[str, float]:
        """Sub-requests per request at each stage of ``plan`` (of a query on ``pipeline``),
        worked out once per plan's stages (the queries of one site and group hold plans of
        their own names around the same stages)."""
        key = (pipeline, id(plan.stages))
        hit = self._visits.get(key)
        if hit is None or hit[0] is not plan.stages:
            pipe = self.index.pipelines[pipeline]
            hit = self._visits[key] = (plan.stages, pipe.visits(pipe.fanout_mean(
                self.index.operators, {st.stage: st.config for st in plan.stages}))[0])
        return hit[1]

    def joins(self, pipeline: str) -> list[JoinOut]:
        """The plan file's records of ``pipeline``'s joins, built once per pipeline (the
        records are frozen; every admitted query of it holds the same list)."""
        hit = self._joins.get(pipeline)
        if hit is None:
            hit = self._joins[pipeline] = [
                JoinOut.model_construct(stage=name, inputs=list(inputs))
                for name, inputs in self.index.pipelines[pipeline].joins.items()]
        return hit

    def stage(self, query: str, pipeline: str, st: StagePlan,
              visits: float) -> tuple[OperatorOut, RouteOut]:
        """The plan file's decision and route of stage ``st`` of ``query``: for a shared
        stage, the same records for every query with an equal stage plan and visits (built
        once; the records are frozen)."""
        key = (pipeline, st, visits)
        hit = self._stages.get(key) if st.shared else None
        if hit is not None:
            return hit
        op = self.index.operators[self.index.pipelines[pipeline].operator_of[st.stage]]
        steps = self.route(query, st)
        reps = []
        for (name, _), r in zip(steps, st.placement, strict=True):
            dep = self.by_name[name]
            reps.append(ReplicaOut.model_construct(
                device=r.device, site=dep.site, tier=dep.tier, replicas=dep.replicas,
                units=dep.replicas * dep.units_per_replica))
        op_out = OperatorOut.model_construct(
            stage=st.stage, operator=op.spec.name, configuration=op.config_dict(st.config),
            sharing="shared" if st.shared else "dedicated", placement=reps,
            allocation=AllocationOut.model_construct(
                batch=st.batch, replicas=sum(r.replicas for r in reps),
                units=sum(r.units for r in reps)))
        route_out = RouteOut.model_construct(stage=st.stage, deployments=[
            RouteShareOut.model_construct(deployment=name, share=share) for name, share in steps],
            visits=visits)
        if st.shared:
            self._stages[key] = (op_out, route_out)
        return op_out, route_out

    def predicted(self, estimate: Estimate) -> PredictedOut:
        """:func:`predicted_out` of ``estimate``, once per estimate (queries share them)."""
        hit = self._predicted.get(id(estimate))
        if hit is None or hit[0] is not estimate:
            hit = self._predicted[id(estimate)] = (estimate, predicted_out(estimate))
        return hit[1]

    @staticmethod
    def dedicated(query: str, stage: str, device: str) -> str:
        """Name of a query's dedicated deployment of ``stage`` on ``device``."""
        return f"{query}/{stage}@{device}"

    def _add(self, name: str, operator: str, config: dict[str, KnobValue], device: str,
             sharing: Literal["shared", "dedicated"], replicas: int, units: float,
             memory_gb: float, batch: int, level: float | None, rate: float, utilization: float,
             cost: float, queries: list[str]) -> None:
        dev = self.index.devices[device]
        assert name not in self.by_name, name
        self.by_name[name] = DeploymentOut(
            name=name, operator=operator, config=config, device=device, site=dev.site,
            tier=self.index.sites[dev.site].tier, sharing=sharing, replicas=replicas,
            units_per_replica=units, memory_gb_per_replica=memory_gb,
            batch=BatchOut(max_batch_size=batch), level=level, rate_rps=rate,
            utilization=utilization, cost_per_hour=cost, queries=queries)

    def route(self, query: str, st: StagePlan) -> list[tuple[str, float]]:
        """``(deployment, share)`` per device of a stage of ``query``, in placement order."""
        pipe_op = self._operator(query, st)
        hit = self._shares.get((pipe_op.spec.name, id(st)))
        if hit is None or hit[0] is not st:
            hit = self._shares[pipe_op.spec.name, id(st)] = (st, placement_shares(
                self.index, pipe_op, st.config, st.batch, st.placement))
        shares = hit[1]
        if not st.shared:
            return [(self.dedicated(query, st.stage, d), share) for d, share in shares]
        assert st.level is not None
        return [(self._shared[DeploymentKey(pipe_op.spec.name, st.config, d, st.batch,
                                            st.level).resource], share) for d, share in shares]

    def _operator(self, query: str, st: StagePlan) -> OperatorIndex:
        pipe = self.index.pipelines[self._pipes[query]]
        return self.index.operators[pipe.operator_of[st.stage]]


def why_not_out(why: WhyNot | None) -> WhyNotOut | None:
    """The plan file's form of a why-not."""
    if why is None:
        return None
    resource = None
    if why.resource is not None:
        kind, name = why.resource
        assert kind in ("device", "memory", "link")
        resource = ResourceRefOut(kind=kind, name=name)
    nearest = None if why.relaxations is None else [
        RelaxationOut.model_construct(objective=r.objective, current=r.current, nearest=r.nearest)
        for r in why.relaxations]
    return _record(WhyNotOut, binding=why.binding, resource=resource, nearest_slo=nearest,
                   admissible=why.admissible)


_M = TypeVar("_M", bound=BaseModel)


def _record(cls: type[_M], **values: object) -> _M:
    """``cls.model_construct(**values)`` given every field of ``cls`` (a record without
    aliases, extra fields or post-init), in its order: the same object, made without
    :meth:`~pydantic.BaseModel.model_construct`'s look-ups of aliases and defaults field by
    field (the plan file of 100,000 generated queries makes 100,000 query records and
    ~11,000 why-nots; ``model_construct`` took half the time of building them)."""
    assert tuple(values) == _plain_fields(cls), f"{cls.__name__}: every field, in order"
    made = cls.__new__(cls)
    object.__setattr__(made, "__dict__", values)
    object.__setattr__(made, "__pydantic_fields_set__", set(values))
    object.__setattr__(made, "__pydantic_extra__", None)
    object.__setattr__(made, "__pydantic_private__", None)
    return made


@functools.cache
def _plain_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``cls``, in order, where :func:`_record` may make it."""
    assert not cls.__pydantic_root_model__ and not cls.__pydantic_post_init__, cls
    assert cls.model_config.get("extra") != "allow", cls
    assert all(f.alias is None and f.validation_alias is None
               for f in cls.model_fields.values()), cls
    return tuple(cls.model_fields)


def _link_check(result: PlanResult) -> LinkCheckOut | None:
    check = result.link_check
    if check is None:
        return None
    ceilings = [LinkCeilingOut(src=name.split("->")[0], dst=name.split("->")[1], utilization=u)
                for name, u in check.ceilings]
    return LinkCheckOut(rounds=check.rounds, dropped_candidates=check.dropped,
                        unadmitted=check.unadmitted, ceilings=ceilings, seconds=check.seconds)


def _unit_value(duals: dict[tuple[str, str], float], device: str, memory_gb: float | None,
                units: float) -> float | None:
    """One more unit's goodput by the LP duals: its units row plus the memory a unit brings
    times the memory row's (``None`` without duals)."""
    value = duals.get(("device", device))
    if value is None:
        return None
    if memory_gb is not None and units > 0:
        value += memory_gb / units * duals.get(("memory", device), 0.0)
    return max(0.0, value)


@functools.cache
def _plan_file_adapter() -> TypeAdapter[PlanFile]:
    return TypeAdapter(PlanFile)


PRETTY_UP_TO = 10_000
"""Queries up to which :func:`plan_file_json` indents the plan file for reading by eye;
larger plans are written compact (no one reads 100,000 queries' plans by eye: at that size
the indented file is 310 MB against 169 MB, and took 2.1 s to serialise against 1.2 s and
0.7 s to write against 0.1 s)."""


def plan_file_json(plan: PlanFile) -> bytes:
    """The plan file as ``circinus plan --json`` writes it, in UTF-8: ``plan.model_dump_json``
    indented by 2 up to :data:`PRETTY_UP_TO` queries, compact above; serialised straight to
    bytes (decoding the text into a string only to encode it again for the file was a tenth
    of the time of writing it)."""
    indent = 2 if len(plan.queries) <= PRETTY_UP_TO else None
    return _plan_file_adapter().dump_json(plan, indent=indent)


PIECE_ITEMS = 4_000
"""Queries (or deployments) per piece of :func:`plan_file_pieces`."""


@functools.cache
def _list_adapter(kind: type[_Out]) -> TypeAdapter[list[_Out]]:
    return TypeAdapter(list[kind])  # type: ignore[valid-type]


def plan_file_pieces(plan: PlanFile) -> Iterator[bytes]:
    """:func:`plan_file_json` in pieces, whose concatenation is it: above
    :data:`PRETTY_UP_TO` queries, the deployments and the queries :data:`PIECE_ITEMS` at a
    time, so that a writer can write one piece while the next is serialised (the whole at
    once below)."""
    if len(plan.queries) <= PRETTY_UP_TO:
        yield plan_file_json(plan)
        return
    # The envelope, compact, with both lists empty: they come one after the other there, and
    # the marker cannot occur elsewhere (every other '"' in it is inside a string, escaped).
    envelope = _plan_file_adapter().dump_json(
        plan.model_copy(update={"deployments": [], "queries": []}))
    marker = b'"deployments":[],"queries":[],'
    assert envelope.count(marker) == 1, "the plan file's fields moved"
    head, _, tail = envelope.partition(marker)
    yield head + b'"deployments":['
    yield from _items(DeploymentOut, plan.deployments)
    yield b'],"queries":['
    yield from _queries(plan.queries)
    yield b"]," + tail


def _queries(queries: Sequence[QueryOut]) -> Iterator[bytes]:
    """``queries`` as the compact JSON list's inside, :data:`PIECE_ITEMS` at a time, as
    :func:`_items` writes them.

    NOTE: the records that many queries share (a shared stage's decision and route, an
    estimate's prediction, a pipeline's joins: the plan file builds each once) are serialised
    once, and the fields between them in one call each: at 100,000 generated queries the
    queries' 161 MB are mostly the same few thousand stage records over and over, and the
    list's serialiser took 1.9-2.1 s to write them. Plain values are written as their
    fields' serialisers write them (``str``, ``float``, ``int``, ``bool``, ``None``, a
    ``dict`` of them; a record by its own); checked byte for byte against it."""
    head, tail, listed = _query_layout()
    shared: dict[int, tuple[object, bytes]] = {}

    def once(item: BaseModel) -> bytes:
        hit = shared.get(id(item))
        if hit is None or hit[0] is not item:  # (kept with it: its id is not reused)
            hit = shared[id(item)] = (item, to_json(item, inf_nan_mode="null"))
        return hit[1]

    for start in range(0, len(queries), PIECE_ITEMS):
        out: list[bytes] = []  # joined once per piece
        put = out.append
        for q in queries[start:start + PIECE_ITEMS]:
            put(b"," if out or start else b"")
            first = to_json({name: getattr(q, name) for name in head}, inf_nan_mode="null")
            put(first[:-1])
            for name, key in listed:
                put(key)
                items = getattr(q, name)
                put(b"[" + b",".join([once(x) for x in items]) + b"]" if items else b"[]")
            put(b',"source_rate_rps":')
            put(to_json(q.source_rate_rps, inf_nan_mode="null"))
            put(b',"predicted":')
            put(b"null" if q.predicted is None else once(q.predicted))
            put(b",")
            put(to_json({name: getattr(q, name) for name in tail}, inf_nan_mode="null")[1:])
        yield b"".join(out)


@functools.cache
def _query_layout() -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, bytes], ...]]:
    """:class:`QueryOut`'s fields as :func:`_queries` writes them: the plain ones before the
    lists of records, the plain ones after the prediction, and the lists with their keys."""
    fields = list(QueryOut.model_fields)
    lists = ("operators", "route", "joins")
    assert fields[fields.index("operators"):fields.index("why_not")] == [
        *lists, "source_rate_rps", "predicted"], "QueryOut's fields moved: update _queries"
    return (tuple(fields[:fields.index("operators")]),
            tuple(fields[fields.index("predicted") + 1:]),
            tuple((name, b',"' + name.encode() + b'":') for name in lists))


def _items(kind: type[_Out], items: Sequence[_Out]) -> Iterator[bytes]:
    """``items`` as the compact JSON list's inside, :data:`PIECE_ITEMS` at a time."""
    adapter = _list_adapter(kind)
    for start in range(0, len(items), PIECE_ITEMS):
        part = adapter.dump_json(list(items[start:start + PIECE_ITEMS]))[1:-1]
        yield part if start == 0 else b"," + part


def to_plan_file(index: WorldIndex, result: PlanResult) -> PlanFile:
    """The documented plan file of ``result``."""
    specs = {q.name: q for q in index.world.queries}
    built = _Deployments(index, result)
    memory = {r.name: r for r in result.resources if r.kind == "memory"}
    duals = dict(result.selection.unit_values)
    devices, links = [], []
    for r in result.resources:
        if r.kind == "device":
            dev = index.devices[r.name]
            cap = r.capacity or dev.units
            mem = memory.get(r.name)
            devices.append(DeviceOut(
                name=r.name, site=dev.site, tier=index.sites[dev.site].tier, used_units=r.used,
                capacity_units=cap, utilization=r.used / cap,
                used_memory_gb=None if mem is None else mem.used,
                capacity_memory_gb=dev.memory_gb,
                goodput_per_unit=_unit_value(duals, r.name, dev.memory_gb, cap)))
        elif r.kind == "link":
            src, dst = r.name.split("->")
            links.append(LinkOut(src=src, dst=dst, used_mbps=r.used, capacity_mbps=r.capacity,
                                 utilization=None if r.capacity is None else r.used / r.capacity,
                                 goodput_per_mbps=duals.get(("link", r.name))))
    sel = result.selection
    return PlanFile(
        world=result.world,
        goodput=result.goodput,
        goodput_rps=sum(specs[o.name].rate_rps for o in result.outcomes if o.admitted),
        admitted=result.admitted,
        total_queries=len(result.outcomes),
        total_cost_per_hour=result.cost_per_hour,
        search_seconds=result.search_seconds,
        select_seconds=result.select_seconds,
        evaluations=result.evaluations,
        why_not_seconds=result.why_not_seconds,
        why_not_skipped=result.why_not_skipped,
        solver=SolverOut(status=sel.status, goodput_bound=sel.goodput_bound, gap=sel.gap,
                         cost_gap=sel.cost_gap, seconds=sel.seconds),
        link_check=_link_check(result),
        deployments=list(built.by_name.values()),
        queries=[_query(index, specs[o.name], o, built) for o in result.outcomes],
        resources=ResourcesOut(devices=devices, links=links),
    )
