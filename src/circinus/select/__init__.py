"""Global selection: at most one candidate plan per query within every capacity."""

from circinus.select.base import BaseSelector, Resource, Selection, SelectionProblem
from circinus.select.fcfs import FcfsSelector
from circinus.select.lp import LpRoundSelector
from circinus.select.milp import MilpSelector

__all__ = [
    "BaseSelector",
    "FcfsSelector",
    "LpRoundSelector",
    "MilpSelector",
    "Resource",
    "Selection",
    "SelectionProblem",
]
