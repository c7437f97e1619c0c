"""The simulation's settings and its result file (``circinus simulate --json``).

``SimulationResult`` is what a run measured, per admitted query (latency percentiles, SLO
attainment), per deployment (requests, busy replicas, waits for batches and in the queue), per
device (busy units) and per link (traffic, transfer times), next to what the plan file
predicted. Latencies are in ms; an unbounded one (a request that never completed) is
written as ``null``. Percentiles are empirical: the smallest measured latency with at least
``p`` % of the requests at or below it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulationSettings(_Out):
    """How long and how to simulate."""

    duration_s: float = Field(default=60.0, gt=0, le=86_400,
                              description="Simulated time in which requests are measured, s.")
    warmup_fraction: float = Field(
        default=0.1, ge=0, lt=1,
        description="Leading fraction of the simulated time whose arrivals are not measured.")
    seed: int = Field(default=0, ge=0, description="Seed of every random draw.")
    share_links: bool = Field(
        default=True,
        description="Share each link's capacity_mbps among the transfers in flight (processor "
        "sharing); false reads it as a budget only, as the planner does, so every message "
        "takes its time alone.")
    max_link_rounds: int = Field(
        default=50, ge=1, description="Rounds of the fixed point at most (links shared, or "
        "deployments that feed each other in a cycle).")
    link_tolerance_s: float = Field(
        default=1e-9, gt=0,
        description="A transfer time that moves less than this between rounds is settled, s.")

    @property
    def window(self) -> tuple[float, float]:
        """``[start, end)`` of the measured arrivals, seconds."""
        return self.duration_s * self.warmup_fraction, self.duration_s


class LatencyOut(_Out):
    """Measured end-to-end latency of one query's requests, ms (null: unbounded)."""

    mean_ms: float | None = Field(description="Mean.")
    p50_ms: float | None = Field(description="Median.")
    p90_ms: float | None = Field(description="90th percentile.")
    p95_ms: float | None = Field(description="95th percentile.")
    p99_ms: float | None = Field(description="99th percentile.")
    at_slo_ms: float | None = Field(description="At the query's SLO percentile.")


class QueryMeasuredOut(_Out):
    """One admitted query: what was measured (simulated or served) and what the plan
    predicted; the keys ``circinus simulate`` and ``circinus serve`` share."""

    name: str = Field(description="Query name.")
    pipeline: str = Field(description="Pipeline name.")
    rate_rps: float = Field(description="Mean request rate, req/s.")
    weight: float = Field(description="Goodput weight.")
    percentile: float = Field(description="SLO percentile.")
    slo_latency_ms: float | None = Field(description="SLO latency bound, ms (null: none).")
    requests: int = Field(description="Measured requests (those arriving after the warm-up).")
    completed: int = Field(description="Measured requests that completed.")
    latency: LatencyOut
    within_slo: float | None = Field(
        description="Fraction of measured requests within the latency bound (null: no bound).")
    predicted_latency_ms: float | None = Field(
        description="The plan's predicted latency at the SLO percentile, ms.")
    predicted_mean_ms: float | None = Field(description="The plan's predicted mean, ms.")


class QuerySimOut(QueryMeasuredOut):
    """One admitted query simulated: what was measured and what the plan predicted."""

    max_utilization: float = Field(
        description="Busiest deployment it is routed to: busy time / (replicas x measured "
        "time), over every query it serves.")
    predicted_max_utilization: float = Field(description="The plan's predicted utilisation.")
    latency_met: bool = Field(description="Measured latency at the percentile <= the bound.")
    slo_met: bool = Field(
        description="Latency met, and the plan's accuracy and cost meet the SLO.")


class DeploymentSimOut(_Out):
    """One deployment: its queue, shared by every query routed to it."""

    name: str = Field(description="Deployment name (as in the plan file).")
    device: str = Field(description="Device it runs on.")
    sharing: Literal["shared", "dedicated"] = Field(description="As the plan file says.")
    queries: int = Field(description="Admitted queries routed to it.")
    replicas: int = Field(description="Replicas (servers of its queue).")
    batch: int = Field(description="Batch size.")
    requests: int = Field(
        description="Requests that reached it inside the window and were served.")
    utilization: float = Field(
        description="Busy server-time inside the window / (replicas x measured time).")
    predicted_utilization: float = Field(description="The plan's predicted utilisation.")
    mean_fill_ms: float | None = Field(
        description="Mean wait of those requests for their batch to fill, ms (null: none).")
    mean_queue_ms: float | None = Field(
        description="Mean wait of their batches for a free replica, ms (null: none).")


class DeviceSimOut(_Out):
    """Busy time on one device, over every deployment there."""

    name: str = Field(description="Device name.")
    capacity_units: float = Field(description="Units the device has.")
    allocated_units: float = Field(description="Units the admitted plans allocate.")
    busy_units: float = Field(description="Units busy serving, averaged over the window.")
    utilization: float | None = Field(
        description="busy_units / allocated_units (null: nothing allocated).")


class LinkSimOut(_Out):
    """Traffic on one directed link."""

    src: str = Field(description="Source site.")
    dst: str = Field(description="Destination site.")
    transfers: int = Field(description="Messages sent inside the window.")
    traffic_mbps: float = Field(description="Mean traffic inside the window, Mbit/s.")
    capacity_mbps: float | None = Field(description="Link capacity (null: unlimited).")
    utilization: float | None = Field(description="traffic / capacity (null: unlimited).")
    mean_transfer_ms: float | None = Field(
        description="Mean time of a message, sharing included, ms (null: no traffic).")
    mean_alone_ms: float | None = Field(
        description="Mean time the same messages take alone on the link, ms.")


class SimulationResult(_Out):
    """What serving a plan file achieved in simulation."""

    format: Literal["circinus-simulation/1"] = "circinus-simulation/1"
    world: str = Field(description="World name.")
    trace: str = Field(description="Arrival process: poisson or azure.")
    seed: int = Field(description="Seed of every random draw.")
    duration_s: float = Field(description="Simulated time, s.")
    warmup_s: float = Field(description="Leading time whose arrivals are not measured, s.")
    total_queries: int = Field(description="Queries in the world.")
    admitted: int = Field(description="Admitted queries (all are simulated).")
    met: int = Field(description="Admitted queries that met their SLO when served.")
    goodput: float = Field(description="Sum of the weights of the queries that met their SLO.")
    predicted_goodput: float = Field(description="The plan file's goodput.")
    requests: int = Field(description="Measured requests over all queries.")
    completed: int = Field(description="Measured requests that completed.")
    share_links: bool = Field(description="Whether link capacities were shared.")
    link_rounds: int = Field(
        description="Passes of the fixed point over shared links and cycles of deployments (0: "
        "neither, one pass is exact).")
    converged: bool = Field(description="Whether transfer and finish times settled.")
    cyclic: bool = Field(
        default=False, description="Whether some deployments feed each other in a cycle.")
    wall_seconds: float = Field(description="Wall time of the simulation, s.")
    queries: list[QuerySimOut]
    deployments: list[DeploymentSimOut] = Field(
        default_factory=list, description="Every deployment of the plan, in its order.")
    devices: list[DeviceSimOut]
    links: list[LinkSimOut]
