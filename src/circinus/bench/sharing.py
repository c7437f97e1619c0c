"""``circinus bench sharing``: shared deployments against dedicated replicas, side by side.

NOTE: every world is planned twice by the default planner, once with ``planner.sharing:
shared`` (one deployment per operator configuration and place serves every query routed to it)
and once with ``dedicated`` (every query gets replicas of its own), then each plan file is
served by the simulator (Poisson arrivals, the bench's seed, ``duration_s`` simulated seconds;
worlds of more than :data:`LONG_SIMULATION_QUERIES` queries for ``large_duration_s``: an hour
of 10,000 queries is some 200 million requests, more than the machine's memory holds).
Recorded per (world, mode): admitted queries, goodput, cost and cost per admitted query, the
GPU units the plan allocates and the units its deployments are predicted to keep busy
(utilisation x replicas x units, summed over GPU devices), the wall time of the plan call, the
simulated goodput and the share of admitted queries that met their SLO when served. Each
record carries the one-minute load average when it began: the machine is shared.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from circinus.plan.file import PlanFile, to_plan_file
from circinus.planner import Planner
from circinus.simulate import SimulationSettings, compile_plan, make_arrivals, simulate
from circinus.spec.index import WorldIndex

MODES = ("shared", "dedicated")
LONG_SIMULATION_QUERIES = 2_000
"""Worlds with more queries are simulated for ``large_duration_s`` (module note)."""
TARGET_PREDICTION = 0.05
"""Predicted goodput within this relative distance of the simulated one."""
TARGET_MET = 0.97
"""Share of admitted queries that must meet their SLO when served."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SharingRecord:
    """One world planned in one mode, and served."""

    world: str
    mode: str
    queries: int
    admitted: int
    goodput: float
    cost_per_hour: float
    cost_per_admitted: float | None
    gpu_units_allocated: float
    gpu_units_busy: float
    """Predicted: utilisation x replicas x units of the deployments on GPU devices."""
    deployments: int
    shared_deployments: int
    plan_seconds: float
    status: str
    gap: float
    simulated_seconds: float
    """Simulated time, s."""
    simulated_goodput: float
    met_share: float | None
    """Share of the admitted queries that met their SLO when served (``None``: none
    admitted)."""
    prediction_error: float | None
    """``(predicted - simulated) / simulated`` goodput."""
    simulation_wall_seconds: float
    load_average: float


@dataclass(frozen=True)
class SharingReport:
    """Everything ``circinus bench sharing`` prints and writes."""

    seed: int
    cores: int | None
    records: tuple[SharingRecord, ...]
    load_average_start: tuple[float, float, float]
    load_average_end: tuple[float, float, float]

    def to_json(self) -> dict[str, object]:
        """Plain data for ``--json``."""
        return {"benchmark": "sharing", **asdict(self)}


def gpu_units(index: WorldIndex, plan: PlanFile) -> tuple[float, float]:
    """``(allocated, predicted busy)`` units of GPU devices under ``plan``."""
    kind = {h.name: h.kind for h in index.world.hardware}
    gpus = {d.name for d in index.world.devices if kind[d.hardware] == "gpu"}
    allocated = busy = 0.0
    for d in plan.deployments:
        if d.device in gpus:
            units = d.replicas * d.units_per_replica
            allocated += units
            busy += units * d.utilization
    return allocated, busy


def measure(label: str, index: WorldIndex, mode: str, *, seed: int, duration_s: float,
            progress: Progress | None = None) -> SharingRecord:
    """Plan ``index`` in ``mode`` and serve the plan (module note)."""
    say = progress or (lambda _: None)
    world = index.world
    settings = world.planner.model_copy(update={"sharing": mode, "seed": seed})
    load = os.getloadavg()[0]
    say(f"{label} {mode}: planning")
    t0 = time.monotonic()
    result = Planner(settings=settings).plan(index)
    wall = time.monotonic() - t0
    plan = to_plan_file(index, result)
    allocated, busy = gpu_units(index, plan)
    say(f"{label} {mode}: simulating {duration_s:g} s")
    t1 = time.monotonic()
    served = simulate(compile_plan(index, plan), arrivals=make_arrivals("poisson"),
                      settings=SimulationSettings(duration_s=duration_s, seed=seed))
    sim_wall = time.monotonic() - t1
    met = sum(q.slo_met for q in served.queries)
    error = ((result.goodput - served.goodput) / served.goodput if served.goodput > 0
             else 0.0 if result.goodput == 0 else None)
    return SharingRecord(
        world=label, mode=mode, queries=len(world.queries), admitted=result.admitted,
        goodput=result.goodput, cost_per_hour=result.cost_per_hour,
        cost_per_admitted=result.cost_per_hour / result.admitted if result.admitted else None,
        gpu_units_allocated=allocated, gpu_units_busy=busy,
        deployments=len(plan.deployments),
        shared_deployments=sum(d.sharing == "shared" for d in plan.deployments),
        plan_seconds=wall, status=result.selection.status, gap=result.selection.gap,
        simulated_seconds=duration_s, simulated_goodput=served.goodput,
        met_share=met / len(served.queries) if served.queries else None,
        prediction_error=error, simulation_wall_seconds=sim_wall, load_average=load)


def run_sharing_bench(worlds: Sequence[tuple[str, Callable[[], WorldIndex]]], *, seed: int = 0,
                      duration_s: float = 3600.0, large_duration_s: float = 300.0,
                      modes: Sequence[str] = MODES, progress: Progress | None = None,
                      partial: Callable[[SharingReport], None] | None = None
                      ) -> SharingReport:
    """Every world of ``worlds`` (label, loader: a world is loaded when its turn comes) in every
    mode; ``partial`` gets the report so far after every record."""
    begin = os.getloadavg()
    records: list[SharingRecord] = []
    for label, load in worlds:
        index = load()
        long = len(index.world.queries) > LONG_SIMULATION_QUERIES
        for mode in modes:
            records.append(measure(label, index, mode, seed=seed,
                                   duration_s=large_duration_s if long else duration_s,
                                   progress=progress))
            if partial is not None:
                partial(SharingReport(seed, os.cpu_count(), tuple(records), begin,
                                      os.getloadavg()))
    return SharingReport(seed, os.cpu_count(), tuple(records), begin, os.getloadavg())
