"""Circinus: an SLO-aware query planner for compound AI serving.

Quick start::

    import circinus
    world = circinus.load_world("examples/jellybean-vqa.yaml")
    result = circinus.Planner().plan(world)
    for outcome in result.outcomes:
        print(outcome.name, outcome.admitted, outcome.reason)
"""

from circinus.errors import CircinusError, InfeasibleError, SolverBudgetExceeded, SpecError
from circinus.planner import Planner, PlanResult, QueryOutcome
from circinus.spec.load import load_world

__version__ = "0.1.0"

__all__ = [
    "CircinusError",
    "InfeasibleError",
    "PlanResult",
    "Planner",
    "QueryOutcome",
    "SolverBudgetExceeded",
    "SpecError",
    "__version__",
    "load_world",
]
