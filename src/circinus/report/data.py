"""The numbers behind a report's figures, as one JSON file (``report.json``).

``circinus report`` draws its figures from records (:mod:`circinus.report.gather`,
:mod:`circinus.report.sweep`); this module writes those records, with the plan's and the
simulation's totals and the time each step took, as a :class:`ReportData`, so that a text
about the figures can take its numbers from the file that came with them
(``scripts/report_tables.py`` renders docs/report.md's tables from the committed one) instead
of from a reading of the pictures.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from circinus.plan.file import PlanFile
from circinus.report.plots import DeviceUse, LinkUse, LoadPoint
from circinus.runtime.machine import load_average
from circinus.simulate import SimulationResult


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanSummary(_Out):
    """The plan the report is about."""

    source: Literal["planned", "file"] = Field(
        description="planned: by the command (the default planner); file: read from --plan.")
    admitted: int
    total_queries: int
    goodput: float = Field(description="Predicted goodput (weight of the admitted queries).")
    cost_per_hour: float = Field(description="Cost of the plan, $/h.")
    deployments: int = Field(description="Deployments the plan runs.")
    rejected: dict[str, int] = Field(
        description="Rejected queries per kind of reason (the reason's first word: capacity, "
        "latency, accuracy, cost, ...).")


class LatencyRow(_Out):
    """One simulated query: the plan's latency at its SLO percentile against the simulation's."""

    query: str
    pipeline: str
    rate_rps: float
    percentile: float
    slo_latency_ms: float | None
    predicted_ms: float | None
    simulated_ms: float | None = Field(description="null: some request never completed.")
    requests: int
    slo_met: bool
    panel: bool = Field(description="Drawn in latency-cdf.png.")


class SimulationSummary(_Out):
    """The plan served in the simulator."""

    duration_s: float
    seed: int
    admitted: int
    met: int = Field(description="Admitted queries that met their SLO when simulated.")
    goodput: float
    requests: int
    queries: list[LatencyRow]


class SweepPoint(_Out):
    """One plan of the load sweep (goodput-vs-load.png)."""

    method: str
    load: float
    admitted: int
    queries: int
    goodput: float
    total_weight: float
    cost_per_hour: float
    seconds: float = Field(description="Planning time of this run, s.")


class DeviceRow(_Out):
    """One device of utilisation.png, in units."""

    name: str
    tier: str
    capacity_units: float
    allocated_units: float
    predicted_busy_units: float | None
    simulated_busy_units: float | None


class LinkRow(_Out):
    """One link of utilisation.png, in Mbit/s."""

    name: str
    capacity_mbps: float
    planned_mbps: float
    simulated_mbps: float | None


class Timing(_Out):
    """Where the command's time went, and the machine it ran on."""

    total_s: float
    steps_s: dict[str, float] = Field(
        description="Wall time per step: plan (when planned here), simulate, figures (the "
        "frontier groups' searches and the drawing), sweep.")
    sweep_planning_s: dict[str, float] = Field(
        description="Per method, its runs' planning time summed.")
    jobs: int = Field(description="Processes of the load sweep.")
    cpus: int = Field(description="CPUs of the machine.")
    load_average: tuple[float, float] = Field(
        description="The machine's 1-minute load average when the command started and ended.")


class ReportData(_Out):
    """``report.json``: what ``circinus report`` drew, as numbers."""

    format: Literal["circinus-report/1"] = "circinus-report/1"
    world: str
    plan: PlanSummary
    simulation: SimulationSummary
    sweep: list[SweepPoint]
    skipped: dict[str, str] = Field(description="Methods of the sweep not run, and why.")
    devices: list[DeviceRow]
    links: list[LinkRow]
    timing: Timing


def report_data(planfile: PlanFile, *, planned: bool, sim: SimulationResult,
                panels: Sequence[str], sweep: Sequence[LoadPoint],
                skipped: Sequence[tuple[str, str]], devices: Sequence[DeviceUse],
                links: Sequence[LinkUse], steps: Mapping[str, float], total_s: float,
                jobs: int, load_start: float) -> ReportData:
    """The :class:`ReportData` of one report: ``panels`` are the queries drawn in
    latency-cdf.png, ``steps`` the wall time of each step."""
    rejected = Counter((q.reason or "unknown").split(":", 1)[0].strip()
                       for q in planfile.queries if not q.admitted)
    shown = set(panels)
    planning: dict[str, float] = {}
    for p in sweep:
        planning[p.method] = planning.get(p.method, 0.0) + p.seconds
    return ReportData(
        world=planfile.world,
        plan=PlanSummary(source="planned" if planned else "file", admitted=planfile.admitted,
                         total_queries=planfile.total_queries, goodput=planfile.goodput,
                         cost_per_hour=planfile.total_cost_per_hour,
                         deployments=len(planfile.deployments), rejected=dict(rejected)),
        simulation=SimulationSummary(
            duration_s=sim.duration_s, seed=sim.seed, admitted=sim.admitted, met=sim.met,
            goodput=sim.goodput, requests=sim.requests,
            queries=[LatencyRow(query=q.name, pipeline=q.pipeline, rate_rps=q.rate_rps,
                                percentile=q.percentile, slo_latency_ms=q.slo_latency_ms,
                                predicted_ms=q.predicted_latency_ms,
                                simulated_ms=q.latency.at_slo_ms, requests=q.requests,
                                slo_met=q.slo_met, panel=q.name in shown)
                     for q in sim.queries]),
        sweep=[SweepPoint(method=p.method, load=p.load, admitted=p.admitted, queries=p.queries,
                          goodput=p.goodput, total_weight=p.total_weight,
                          cost_per_hour=p.cost_per_hour, seconds=p.seconds) for p in sweep],
        skipped=dict(skipped),
        devices=[DeviceRow(name=d.name, tier=d.tier, capacity_units=d.capacity_units,
                           allocated_units=d.allocated_units,
                           predicted_busy_units=d.predicted_busy_units,
                           simulated_busy_units=d.simulated_busy_units) for d in devices],
        links=[LinkRow(name=ln.name, capacity_mbps=ln.capacity_mbps,
                       planned_mbps=ln.planned_mbps, simulated_mbps=ln.simulated_mbps)
               for ln in links],
        timing=Timing(total_s=total_s, steps_s=dict(steps), sweep_planning_s=planning,
                      jobs=jobs, cpus=os.cpu_count() or 1,
                      load_average=(load_start, load_average())),
    )
