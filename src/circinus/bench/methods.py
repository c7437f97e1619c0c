"""The planning methods a benchmark compares, each a (search, selector, settings) triple.

Every method runs through the same :class:`~circinus.planner.Planner`, hence the same world
index, the same estimator and, where the method has a global stage, the same MILP selection:
only the part that differs between planners differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Method:
    """One planner configuration under test."""

    name: str
    search: str
    """Registry key in :data:`circinus.planner.SEARCHES`."""
    selector: str
    """Registry key in :data:`circinus.planner.SELECTORS`."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Overrides of the world's planner settings."""
    max_queries: int | None = None
    """Worlds with more queries are skipped (the method would not finish in a bench run); a
    method may also refuse a world by raising :class:`~circinus.errors.TooLargeError` (the
    oracle past its plans per query), which skips it too."""
    summary: str = ""


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("circinus", "circinus", "milp",
               summary="decomposed, similarity-aware search + MILP selection (LP rounding "
                       "above 3,000 candidates)"),
        Method("circinus-dedicated", "circinus", "milp", {"sharing": "dedicated"},
               summary="Circinus with replicas of every query's own (no shared deployments)"),
        Method("oracle", "oracle", "exact", {"time_limit_s": 600.0}, max_queries=100,
               summary="the whole plan space of small worlds (every configuration, device set, "
                       "replica count, batch, level; at most 100,000 plans per query) + exact "
                       "MILP"),
        Method("exhaustive", "exhaustive", "exact", {"candidates_per_query": 64},
               max_queries=1000,
               summary="Circinus's placement space enumerated without its search's prunes, 64 "
                       "candidates per query, exact MILP"),
        Method("vulcan", "vulcan", "fcfs", max_queries=1000,
               summary="per-query Bayesian optimisation (optuna TPE) in arrival order against "
                       "the capacity left"),
        Method("vulcan+select", "vulcan-alone", "milp", max_queries=1000,
               summary="Vulcan's per-query search alone + Circinus's global selection"),
        Method("jellybean", "jellybean", "fcfs",
               summary="variant beam search + multi-tier worker assignment (10 orders, best "
                       "10), in arrival order against the workers left"),
        Method("jellybean+select", "jellybean-alone", "milp",
               summary="JellyBean's optimizer per query alone + Circinus's global selection"),
        Method("infaas", "infaas", "fcfs",
               summary="per query the cheapest variant meeting the SLO on one tier, shared "
                       "autoscaled variants, FCFS"),
        Method("nexus", "nexus", "fcfs",
               summary="latency split per stage + batch-aware packing of sessions on shared "
                       "cloud deployments"),
        Method("edge-only", "circinus", "milp", {"tiers": ("edge",)},
               summary="Circinus restricted to edge devices"),
        Method("cloud-only", "circinus", "milp", {"tiers": ("cloud",)},
               summary="Circinus restricted to cloud devices"),
        Method("random", "random", "milp",
               summary="uniformly random plans per query + the same selection as circinus"),
    )
}
"""Methods by name; ``circinus bench search --method NAME`` picks from these."""
