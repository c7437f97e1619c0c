"""From the plans a search evaluated to a query's candidate set, or the reason it has none.

NOTE: searches that sample or construct plans one at a time (the baselines of
:mod:`circinus.baselines`) end with the same step: drop every plan that misses the query's SLO or
does not fit the world's capacities on its own (a query can never be admitted with such a plan),
then keep the cheapest and the plans that no kept plan beats on both cost and every resource,
exactly the rule :class:`~circinus.search.exhaustive.ExhaustiveSearch` applies to its pool. A
dominated plan is useless to every selector: wherever it fits, the plan that dominates it fits
too and costs no more. When nothing is left, the reason names the SLO dimension that failed,
in the exhaustive search's wording, qualified by ``scope`` (e.g. "among 60 plans tried") when
the search saw only part of the plan space.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from circinus.estimate.base import EPS, Estimate, dominates
from circinus.plan.records import QueryPlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings, Query, Slo

Evaluated = tuple[QueryPlan, Estimate]
"""A plan a search estimated, with its estimate."""

UNPLACED = "placement: no reachable device can serve every stage of the pipeline at its rate"
"""The reason of a query whose plan space is empty (the exhaustive search's wording, which
also covers a rate that no device, or set of devices, can serve under the utilisation bound)."""


def _uses(index: WorldIndex, estimate: Estimate) -> Iterator[tuple[float, float]]:
    """``(use, capacity)`` of every capacity-constrained resource ``estimate`` occupies."""
    cap = index.capacities
    for resource, amount in estimate.usage().items():
        if resource in cap:
            yield amount, cap[resource]


def fits(index: WorldIndex, estimate: Estimate) -> bool:
    """Whether the plan alone fits every device, memory and link capacity of the world."""
    return all(use <= cap + EPS for use, cap in _uses(index, estimate))


def overfill(index: WorldIndex, estimate: Estimate) -> float:
    """Largest relative excess over a capacity (``use / capacity - 1``), 0 when the plan fits.

    E.g. 6 units on a 4-unit device give 0.5.
    """
    return max(0.0, *(use / cap - 1.0 for use, cap in _uses(index, estimate)))


def admissible(query: Query, estimate: Estimate, *, index: WorldIndex,
               settings: PlannerSettings) -> bool:
    """Whether a plan of ``query`` with ``estimate`` may be a candidate: it meets the SLO, fits
    the world's capacities on its own and keeps every replica group under the utilisation
    bound."""
    return (estimate.meets(query.slo) and fits(index, estimate)
            and estimate.max_utilization <= settings.max_utilization + EPS)


def shortlist(query: Query, evaluated: Sequence[Evaluated], *, index: WorldIndex,
              settings: PlannerSettings, best_accuracy: float | None, evaluations: int,
              scope: str, unplaced: str = UNPLACED) -> QueryCandidates:
    """The candidates of ``query`` among ``evaluated`` plans (see module note).

    Args:
        evaluated: plans of ``query`` with their estimates, in the search's order (ties in cost
            keep that order, so a deterministic search gives a deterministic shortlist).
        best_accuracy: the best accuracy any configuration vector of the query achieves (for
            the reason; ``None`` when no accuracy is known).
        evaluations: the search's work on this query, reported as is.
        scope: how much of the plan space ``evaluated`` covers, appended to latency, cost and
            capacity reasons, e.g. ``"among 60 plans tried"``.
        unplaced: the reason when nothing was evaluated although the accuracy SLO is
            attainable (the search found no placement at all).
    """
    feasible: dict[QueryPlan, Estimate] = {}
    for plan, est in evaluated:
        if plan not in feasible and admissible(query, est, index=index, settings=settings):
            feasible[plan] = est
    ranked = sorted(feasible.items(), key=lambda item: item[1].cost_per_hour)
    kept: list[Candidate] = []
    for plan, est in ranked:
        if not any(_dominates(k.estimate, est) for k in kept):
            kept.append(Candidate(plan, est))
            if len(kept) == settings.candidates_per_query:
                break
    if kept:
        return QueryCandidates(query.name, tuple(kept), None, evaluations)
    reason = no_candidate_reason(query, [e for _, e in evaluated], best_accuracy, scope,
                                 unplaced=unplaced)
    return QueryCandidates(query.name, (), reason, evaluations)


def _dominates(a: Estimate, b: Estimate) -> bool:
    """Plan ``a`` costs no more than plan ``b`` and uses no more of any resource."""
    return dominates(a.cost_per_hour, a.usage(), b.cost_per_hour, b.usage())


def no_candidate_reason(query: Query, estimates: Sequence[Estimate],
                        best_accuracy: float | None, scope: str,
                        unplaced: str = UNPLACED) -> str:
    """Why none of ``estimates`` (plans of ``query``) is a candidate: the first SLO dimension,
    in the order accuracy, latency, cost, that none of them meets, else capacity."""
    slo = query.slo
    accurate = [e for e in estimates if "accuracy" not in e.violations(slo)]
    timely = [e for e in accurate if "latency" not in e.violations(slo)]
    return explain(slo, best_accuracy=best_accuracy, planned=bool(estimates),
                   accurate=bool(accurate),
                   best_latency_ms=min((e.latency_ms for e in accurate), default=None),
                   cheapest=min((e.cost_per_hour for e in timely), default=None),
                   scope=scope, unplaced=unplaced)


def explain(slo: Slo, *, best_accuracy: float | None, planned: bool, accurate: bool,
            best_latency_ms: float | None, cheapest: float | None, scope: str,
            unplaced: str = UNPLACED) -> str:
    """The one-line reason of a query without candidates, from what its search found.

    Args:
        best_accuracy: best accuracy of any configuration vector (``None``: unknown).
        planned: whether any plan was placed at all.
        accurate: whether any placed plan meets the accuracy bound.
        best_latency_ms: lowest latency at the SLO percentile among those (``None``: none, or
            all cut by the latency prune).
        cheapest: lowest cost among the plans meeting accuracy and latency (``None``: none).
        scope: how much of the plan space was seen, e.g. ``"among 60 plans tried"``; empty
            for a search that saw all of it.
    """
    within = f" ({scope})" if scope else ""
    if slo.min_accuracy is not None and (
        best_accuracy is None or best_accuracy < slo.min_accuracy - EPS
    ):
        shown = "none (no accuracy known)" if best_accuracy is None else f"{best_accuracy:.4g}"
        return f"accuracy: best achievable {shown} < required {slo.min_accuracy:.4g}"
    if not planned:
        return unplaced
    if not accurate:
        assert slo.min_accuracy is not None  # only the accuracy bound can be missed by all
        return f"search: no plan{within} reaches the required accuracy {slo.min_accuracy:.4g}"
    if slo.latency_ms is not None and cheapest is None:
        if best_latency_ms is None:
            return (f"latency: every plan at the required accuracy has a mean latency above "
                    f"{slo.latency_ms:g} ms{within}")
        return (f"latency: best p{slo.percentile:g} at the required accuracy is "
                f"{best_latency_ms:.1f} ms > {slo.latency_ms:g} ms{within}")
    if slo.max_cost_per_hour is not None and cheapest is not None and (
        cheapest > slo.max_cost_per_hour + EPS
    ):
        return (f"cost: cheapest plan meeting latency and accuracy costs ${cheapest:.4g}/h "
                f"> ${slo.max_cost_per_hour:.4g}/h{within}")
    return (f"capacity: every plan meeting the SLO{within} needs more than a device, its "
            "memory or a link holds, or loads a replica group over the utilisation bound")
