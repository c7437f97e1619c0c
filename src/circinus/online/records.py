"""What each event of the online planner did: immutable records returned to the caller."""

from __future__ import annotations

from dataclasses import dataclass

from circinus.estimate.base import Estimate
from circinus.plan.records import QueryPlan
from circinus.whynot import WhyNot


@dataclass(frozen=True)
class Arrival:
    """The answer to one arriving query."""

    query: str
    admitted: bool
    plan: QueryPlan | None
    """Its plan when admitted."""
    estimate: Estimate | None
    moved: tuple[str, ...]
    """Admitted queries moved to another of their candidates to make room for it."""
    reason: str | None
    """Why it waits (``None`` when admitted), as in the batch planner's outcomes."""
    why_not: WhyNot | None
    """The binding objective or resource and the nearest admissible SLO when it waits."""
    candidates: int
    seconds: float
    """Wall time of the decision (validation, search, admission, repair), s."""
    why_not_seconds: float = 0.0
    """Wall time of explaining a rejection (the nearest admissible SLO), s; 0 when admitted."""


@dataclass(frozen=True)
class Departure:
    """What one departure freed."""

    query: str
    was_admitted: bool
    admitted: tuple[str, ...]
    """Waiting queries admitted into the capacity it freed."""
    seconds: float
    moved: tuple[str, ...] = ()
    """Admitted queries now on another of their plans: dropped because their shared
    deployments' new state made them miss their SLO, then admitted again."""
    evicted: tuple[str, ...] = ()
    """Admitted queries that lost their place (their shared deployments' new state made them
    miss their SLO) and now wait."""


@dataclass(frozen=True)
class CapacityChange:
    """What a change of a device or link did to the admitted queries."""

    change: str
    """E.g. ``"device box: 4 -> 2 units"``."""
    moved: tuple[str, ...]
    """Admitted queries now on another of their plans (still admitted)."""
    evicted: tuple[str, ...]
    """Admitted queries that lost their place and now wait."""
    admitted: tuple[str, ...]
    """Waiting queries admitted after the change."""
    searched: tuple[str, ...]
    """Queries searched again because their plans changed or new devices became reachable."""
    seconds: float


@dataclass(frozen=True)
class Rebalance:
    """A full re-selection over every present query's candidates."""

    accepted: bool
    """Whether the new selection replaced the current state (it admits more weight, or as much
    at a lower cost)."""
    goodput_before: float
    goodput_after: float
    cost_before: float
    cost_after: float
    moved: tuple[str, ...]
    admitted: tuple[str, ...]
    evicted: tuple[str, ...]
    status: str
    """The selector's status (``optimal``, ``time_limit`` or ``greedy``)."""
    seconds: float
