"""Why a query is not admitted: the binding objective or resource, and the nearest SLO that
would be admitted at the current load (:class:`NearestSlo`), both against what the admitted
queries leave (:class:`Residual`)."""

from circinus.whynot.binding import binding_of, scarcest
from circinus.whynot.nearest import NearestSlo
from circinus.whynot.records import OBJECTIVES, Binding, Objective, Relaxation, WhyNot
from circinus.whynot.residual import Residual, Trial

__all__ = [
    "OBJECTIVES",
    "Binding",
    "NearestSlo",
    "Objective",
    "Relaxation",
    "Residual",
    "Trial",
    "WhyNot",
    "binding_of",
    "scarcest",
]
