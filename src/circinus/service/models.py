"""The service's request and response bodies (the OpenAPI document is generated from them).

Requests reuse the world format's own models (a query is a :class:`~circinus.spec.models.Query`,
a new device a :class:`~circinus.spec.models.Device`), with their ranges; every model forbids
unknown fields. Plans and predictions are written as in the plan file
(:mod:`circinus.plan.file`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from circinus.plan.file import PredictedOut, WhyNotOut
from circinus.spec.models import (
    MAX_BANDWIDTH_MBPS,
    MAX_MEMORY_GB,
    MAX_UNITS,
    MIN_BANDWIDTH_MBPS,
    MIN_MEMORY_GB,
    MIN_UNITS,
    KnobValue,
    Slo,
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Request(BaseModel):
    """A request body: no unknown fields, no coercion (``0`` is not ``false``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Problem(_Body):
    """An error: what went wrong and the way out, in one line."""

    error: str = Field(description="What went wrong and what to do instead.")
    field: str | None = Field(default=None, description="Path of the offending field of the "
                              "request (e.g. `body.slo.latency_ms`), when one is to blame.")


class DeviceResize(_Request):
    """New capacity of a device: units and/or memory (at least one)."""

    units: float | None = Field(default=None, ge=MIN_UNITS, le=MAX_UNITS,
                                description="Capacity in units (as the world's `units`).")
    memory_gb: float | None = Field(default=None, ge=MIN_MEMORY_GB, le=MAX_MEMORY_GB,
                                    description="Memory of the whole device, GB.")


class LinkCapacity(_Request):
    """New capacity of a directed link."""

    src: str = Field(min_length=1, max_length=128, description="Site the traffic leaves.")
    dst: str = Field(min_length=1, max_length=128, description="Site the traffic enters.")
    capacity_mbps: float | None = Field(
        ge=MIN_BANDWIDTH_MBPS, le=MAX_BANDWIDTH_MBPS,
        description="Total traffic all queries together may send over it, Mbit/s (null: "
        "unlimited).")


class RebalanceRequest(_Request):
    """Options of a full re-selection."""

    keep_admitted: bool = Field(default=True, description="No admitted query may lose its "
                                "place (its plan may still change).")
    time_limit_s: float | None = Field(default=None, gt=0, le=600,
                                       description="The selector's budget, s (default: the "
                                       "world's `planner.time_limit_s`).")


class ReplicaRef(_Body):
    """Replicas of a stage on one device."""

    device: str = Field(description="Device name.")
    replicas: int = Field(description="Replicas there (for a shared stage: the fewest the "
                          "deployment may have with this query on it).")


class StageOut(_Body):
    """The decision for one stage of an admitted query."""

    stage: str = Field(description="Stage name in the pipeline.")
    operator: str = Field(description="Operator the stage runs.")
    configuration: dict[str, KnobValue] = Field(description="Knob -> chosen value.")
    batch: int = Field(description="Batch size.")
    sharing: Literal["shared", "dedicated"] = Field(description="On deployments shared with "
                                                    "other queries, or replicas of its own.")
    placement: list[ReplicaRef] = Field(description="Devices the stage runs on.")


class DeploymentRef(_Body):
    """A shared deployment an admitted query joins, as sized now."""

    deployment: str = Field(description="The deployment's resource name.")
    replicas: int = Field(description="Its replicas now, for all its queries.")


class QueryState(_Body):
    """A present query: its plan and prediction at the current state, or why it waits."""

    name: str = Field(description="Query name.")
    pipeline: str = Field(description="Pipeline name.")
    slo: Slo = Field(description="The query's objectives.")
    admitted: bool = Field(description="Whether the query is served.")
    plan: list[StageOut] = Field(description="Per-stage decisions (empty while it waits).")
    deployments: list[DeploymentRef] = Field(description="Shared deployments it joins.")
    predicted: PredictedOut | None = Field(description="Prediction at the current state (null "
                                           "while it waits).")
    reason: str | None = Field(description="Why it waits (null when admitted).")
    why_not: WhyNotOut | None = Field(description="Binding obstacle and, for an arrival, the "
                                      "nearest admissible SLO (null when admitted).")


class ArrivalOut(QueryState):
    """The answer to an arriving query."""

    moved: list[str] = Field(description="Admitted queries moved to another of their plans to "
                             "make room for it.")
    candidates: int = Field(description="Candidate plans its search found.")
    decision_ms: float = Field(description="Time the planner took to decide, ms.")


class QuerySummary(_Body):
    """One present query in the list."""

    name: str = Field(description="Query name.")
    admitted: bool = Field(description="Whether the query is served.")


class QueryList(_Body):
    """Every present query, in arrival order."""

    admitted: int = Field(description="Admitted queries.")
    waiting: int = Field(description="Present queries not admitted.")
    queries: list[QuerySummary] = Field(description="Every present query, in arrival order.")


class DepartureOut(_Body):
    """What a departure freed."""

    query: str = Field(description="The query that left.")
    was_admitted: bool = Field(description="Whether it was admitted.")
    admitted: list[str] = Field(description="Waiting queries admitted into what it freed.")
    moved: list[str] = Field(description="Admitted queries now on another of their plans.")
    evicted: list[str] = Field(description="Admitted queries that lost their place and wait.")
    decision_ms: float = Field(description="Time the planner took to decide, ms.")


class ChangeOut(_Body):
    """What a change of a device or link did."""

    change: str = Field(description="The change, e.g. `device box: 4 -> 2 units`.")
    moved: list[str] = Field(description="Admitted queries now on another of their plans.")
    evicted: list[str] = Field(description="Admitted queries that lost their place and wait.")
    admitted: list[str] = Field(description="Waiting queries admitted after the change.")
    searched: list[str] = Field(description="Queries searched again.")
    decision_ms: float = Field(description="Time the planner took to decide, ms.")


class RebalanceOut(_Body):
    """A full re-selection."""

    accepted: bool = Field(description="Whether it replaced the state (more weight admitted, or "
                           "as much at a lower cost).")
    goodput_before: float = Field(description="Admitted weight before.")
    goodput_after: float = Field(description="Admitted weight of the new selection.")
    cost_before: float = Field(description="Cost before, $/h.")
    cost_after: float = Field(description="Cost of the new selection, $/h.")
    moved: list[str] = Field(description="Queries now on another plan.")
    admitted: list[str] = Field(description="Queries admitted.")
    evicted: list[str] = Field(description="Queries that lost their place.")
    status: str = Field(description="The selector's status.")
    decision_ms: float = Field(description="Time the planner took to decide, ms.")


class DeviceState(_Body):
    """A device: its capacity and what the admitted plans use of it."""

    name: str = Field(description="Device name.")
    site: str = Field(description="Site of the device.")
    hardware: str = Field(description="Hardware class.")
    units: float = Field(description="Capacity in units.")
    used_units: float = Field(description="Units the admitted plans use.")
    memory_gb: float | None = Field(description="Memory, GB (null: not a constraint).")
    used_memory_gb: float = Field(description="Memory the admitted plans use, GB.")


class Health(_Body):
    """Liveness or readiness."""

    status: Literal["ok", "starting", "unavailable"] = Field(description="ok: serving.")
    detail: str | None = Field(default=None, description="What it is waiting for.")
