"""Circinus: an SLO-aware query planner for compound AI serving.

Quick start::

    import circinus
    world = circinus.load_world("examples/jellybean-vqa.yaml")
    result = circinus.Planner().plan(world)
    for outcome in result.outcomes:
        print(outcome.name, outcome.admitted, outcome.reason)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from circinus.errors import CircinusError, InfeasibleError, SolverBudgetExceeded, SpecError

if TYPE_CHECKING:
    from circinus.planner import Planner, PlanResult, QueryOutcome
    from circinus.spec.load import load_world

__version__ = "0.1.0"

_LAZY = {"Planner": "circinus.planner", "PlanResult": "circinus.planner",
         "QueryOutcome": "circinus.planner", "load_world": "circinus.spec.load"}
"""Imported on first use: the planner pulls in the solvers and optimisers (over a second), which
a command such as ``circinus validate`` never needs."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'circinus' has no attribute {name!r}")

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
