"""The online planner's answers as the service's bodies (:mod:`circinus.service.models`)."""

from __future__ import annotations

from circinus.online import Arrival, CapacityChange, Departure, OnlinePlanner, Rebalance
from circinus.plan.file import predicted_out, why_not_out
from circinus.plan.records import QueryPlan
from circinus.service.models import (
    ArrivalOut,
    ChangeOut,
    DepartureOut,
    DeploymentRef,
    DeviceState,
    QueryState,
    RebalanceOut,
    ReplicaRef,
    StageOut,
)


def query_state(planner: OnlinePlanner, name: str, *, nearest: bool = False) -> QueryState:
    """The present query ``name`` now: its plan and prediction, or why it waits."""
    spec = planner.query(name)
    cand = planner.plan_of(name)
    if cand is None:
        reason, why = planner.why_waiting(name, nearest=nearest)
        return QueryState(name=name, pipeline=spec.pipeline, slo=spec.slo, admitted=False,
                          plan=[], deployments=[], predicted=None, reason=reason,
                          why_not=why_not_out(why))
    return QueryState(name=name, pipeline=spec.pipeline, slo=spec.slo, admitted=True,
                      plan=stages(planner, spec.pipeline, cand.plan),
                      deployments=_deployments(planner, [d for d, _ in
                                                         cand.estimate.deployment_load]),
                      predicted=predicted_out(cand.estimate), reason=None, why_not=None)


def arrival_out(planner: OnlinePlanner, arrival: Arrival) -> ArrivalOut:
    """The answer to an arrival (its plan and prediction, or the why-not it was given)."""
    spec = planner.query(arrival.query)
    plan = [] if arrival.plan is None else stages(planner, spec.pipeline, arrival.plan)
    deps = [] if arrival.estimate is None else _deployments(
        planner, [d for d, _ in arrival.estimate.deployment_load])
    return ArrivalOut(
        name=arrival.query, pipeline=spec.pipeline, slo=spec.slo, admitted=arrival.admitted,
        plan=plan, deployments=deps,
        predicted=None if arrival.estimate is None else predicted_out(arrival.estimate),
        reason=arrival.reason, why_not=why_not_out(arrival.why_not), moved=list(arrival.moved),
        candidates=arrival.candidates,
        decision_ms=(arrival.seconds + arrival.why_not_seconds) * 1000.0)


def departure_out(gone: Departure) -> DepartureOut:
    """The answer to a departure."""
    return DepartureOut(query=gone.query, was_admitted=gone.was_admitted,
                        admitted=list(gone.admitted), moved=list(gone.moved),
                        evicted=list(gone.evicted), decision_ms=gone.seconds * 1000.0)


def change_out(change: CapacityChange) -> ChangeOut:
    """The answer to a change of a device or link."""
    return ChangeOut(change=change.change, moved=list(change.moved),
                     evicted=list(change.evicted), admitted=list(change.admitted),
                     searched=list(change.searched), decision_ms=change.seconds * 1000.0)


def rebalance_out(made: Rebalance) -> RebalanceOut:
    """The answer to a rebalance."""
    return RebalanceOut(accepted=made.accepted, goodput_before=made.goodput_before,
                        goodput_after=made.goodput_after, cost_before=made.cost_before,
                        cost_after=made.cost_after, moved=list(made.moved),
                        admitted=list(made.admitted), evicted=list(made.evicted),
                        status=made.status, decision_ms=made.seconds * 1000.0)


def devices(planner: OnlinePlanner) -> list[DeviceState]:
    """Every device with its capacity and use now."""
    used = planner.used()
    return [DeviceState(name=d.name, site=d.site, hardware=d.hardware, units=d.units,
                        used_units=used.get(("device", d.name), 0.0), memory_gb=d.memory_gb,
                        used_memory_gb=used.get(("memory", d.name), 0.0))
            for d in planner.topology.world.devices]


def stages(planner: OnlinePlanner, pipeline: str, plan: QueryPlan) -> list[StageOut]:
    """Per-stage decisions of ``plan`` (a plan of a query of ``pipeline``)."""
    index = planner.topology
    pipe = index.pipelines[pipeline]
    out = []
    for st in plan.stages:
        op = index.operators[pipe.operator_of[st.stage]]
        out.append(StageOut(
            stage=st.stage, operator=op.spec.name, configuration=op.config_dict(st.config),
            batch=st.batch, sharing="shared" if st.shared else "dedicated",
            placement=[ReplicaRef(device=r.device, replicas=r.count) for r in st.placement]))
    return out


def _deployments(planner: OnlinePlanner, names: list[str]) -> list[DeploymentRef]:
    replicas = planner.deployments()
    return [DeploymentRef(deployment=d, replicas=replicas.get(d, 0)) for d in names]
