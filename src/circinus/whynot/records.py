"""Why a query is not admitted: the binding obstacle and the nearest admissible SLO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Objective = Literal["latency_ms", "min_accuracy", "max_cost_per_hour"]
"""An SLO field that can be relaxed: raised for latency and cost, lowered for accuracy."""

OBJECTIVES: tuple[Objective, ...] = ("latency_ms", "min_accuracy", "max_cost_per_hour")
"""The relaxable objectives, in the order they are reported."""

Binding = Literal["accuracy", "latency", "cost", "placement", "capacity", "selection"]
"""The kind of obstacle, as the reason's prefix names it (see ``docs/plan-format.md``)."""


@dataclass(frozen=True)
class Relaxation:
    """The nearest admissible value of one objective, the others left as they are.

    E.g. ``Relaxation("latency_ms", 150.0, 212.4)``: with ``latency_ms: 212.4`` (and the same
    accuracy and cost bounds) the query would be admitted into the capacity the admitted queries
    leave; with ``212.3`` it would not.
    """

    objective: Objective
    current: float
    """The SLO's bound now."""
    nearest: float | None
    """The least relaxed bound that admits the query at the current load (``current`` itself
    when no relaxation is needed: a candidate fits and, on shared deployments, meets its SLO
    there); ``None`` when no value of this objective alone does."""


@dataclass(frozen=True)
class WhyNot:
    """Why a query is rejected, in structured form (the reason string says the same in words)."""

    binding: Binding
    """What stops it: an SLO objective no plan meets (``accuracy``, ``latency``, ``cost``), no
    place to run (``placement``), a resource taken by the admitted queries or too small for any
    plan (``capacity``), or the selection's choice (``selection``: a candidate fits)."""
    resource: tuple[str, str] | None
    """For ``capacity``: the resource most of its candidates lack, ``(kind, name)`` with kind
    ``device``, ``memory`` or ``link``; with shared deployments, lack in the whole replicas a
    candidate would add (one joining a deployment with headroom takes no units, one needing a
    replica more takes its units whatever its share). ``None`` otherwise (or when no plan fits
    even an empty world)."""
    relaxations: tuple[Relaxation, ...] | None
    """One per objective the SLO sets, in :data:`OBJECTIVES` order; ``None`` when the nearest
    SLO was not computed."""

    @property
    def admissible(self) -> bool | None:
        """Whether relaxing some single objective admits the query (``None``: not computed)."""
        if self.relaxations is None:
            return None
        return any(r.nearest is not None for r in self.relaxations)
