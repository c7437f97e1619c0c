"""Capacity planning: the cheapest units to add to devices and pools (and new devices from a
catalog) so that a share of the query weight is admitted, chosen jointly with the plans."""

from circinus.capacity.model import CapacityModel, Sizing
from circinus.capacity.planner import CapacityPlanner, CapacityResult
from circinus.capacity.problem import CapacityProblem
from circinus.capacity.resources import Growable, growable, grown

__all__ = [
    "CapacityModel",
    "CapacityPlanner",
    "CapacityProblem",
    "CapacityResult",
    "Growable",
    "Sizing",
    "growable",
    "grown",
]
