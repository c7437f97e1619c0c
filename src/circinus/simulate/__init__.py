"""A discrete-event serving simulator: what the plans of a plan file achieve when served.

It is independent of the planner's estimator: it reads only the world (:mod:`circinus.spec`)
and the plan file (:mod:`circinus.plan.file`), and serves every admitted query with arrivals
(Poisson or a replayed trace), routing with the plan's shares, one FIFO queue per deployment
shared by all its queries (batches formed across queries), DAG joins and network transfers,
with links shared among all queries.

Usage::

    from circinus.simulate import SimulationSettings, load_simulation, make_arrivals, simulate

    sim = load_simulation("world.yaml", "plan.json")
    result = simulate(sim, arrivals=make_arrivals("poisson"),
                      settings=SimulationSettings(duration_s=60, seed=0))
    print(result.goodput, result.predicted_goodput)
"""

from circinus.simulate.arrivals import (
    ARRIVALS,
    BaseArrivals,
    PoissonArrivals,
    TraceArrivals,
    make_arrivals,
)
from circinus.simulate.engine import SimulationRun, simulate, simulate_run
from circinus.simulate.load import load_simulation, read_plan_file
from circinus.simulate.model import SimWorld, compile_plan
from circinus.simulate.results import SimulationResult, SimulationSettings

__all__ = [
    "ARRIVALS",
    "BaseArrivals",
    "PoissonArrivals",
    "SimWorld",
    "SimulationResult",
    "SimulationRun",
    "SimulationSettings",
    "TraceArrivals",
    "compile_plan",
    "load_simulation",
    "make_arrivals",
    "read_plan_file",
    "simulate",
    "simulate_run",
]
