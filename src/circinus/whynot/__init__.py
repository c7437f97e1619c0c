"""Why a query is not admitted: the binding objective or resource, and the nearest SLO that
would be admitted at the current load (:class:`NearestSlo`)."""

from circinus.whynot.binding import binding_of, scarcest
from circinus.whynot.nearest import NearestSlo
from circinus.whynot.records import OBJECTIVES, Binding, Objective, Relaxation, WhyNot

__all__ = [
    "OBJECTIVES",
    "Binding",
    "NearestSlo",
    "Objective",
    "Relaxation",
    "WhyNot",
    "binding_of",
    "scarcest",
]
