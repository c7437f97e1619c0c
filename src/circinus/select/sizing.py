"""The deployment check: admitted plans estimated again on their deployments as sized.

NOTE: a shared stage's candidate estimate holds for every size its deployment can have at its
level, as long as its co-tenants' requests take as long as its own (the worst state of
:mod:`circinus.estimate.analytic`). Once the selection is made, each deployment's replicas,
aggregate rate and mix of work multipliers are known (:class:`~circinus.select.deployments.
Ledger`), and every admitted plan is estimated at that real state (batches filled by all its
queries, the pooled replicas, the mix's service time) and at its links' utilisation. A plan that
then misses its SLO (only possible when a co-tenant's work is heavier than its own) has its
candidate dropped, and the selector chooses again within what is left of the budget, at most
:data:`MAX_ROUNDS` times; after that, or out of time, such plans are dropped from the selection
until none misses (dropping one changes its deployments, so each drop is checked again). Each
round estimates at the links' utilisation under the selection it checks (a new selection may
load a link more than the one the link check saw). The estimates reported for the admitted
queries are these real-state ones, with each query's share of its deployments' replicas and
cost.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from circinus.estimate.analytic import AnalyticEstimator, DeploymentState
from circinus.estimate.base import Estimate
from circinus.search.base import Candidate
from circinus.select.base import Selection, SelectionProblem
from circinus.select.contention import Select, utilisation, with_chosen
from circinus.select.deployments import DeploymentSpec, Ledger
from circinus.spec.models import Query, Slo

MAX_ROUNDS = 3
"""New selections the deployment check makes at most before it only drops."""
MIN_ROUND_S = 0.1
"""Below this much of the selection budget left, the check drops instead of selecting again."""



@dataclass(frozen=True)
class SizedDeployment:
    """A shared deployment as the selection sized it."""

    name: str
    """Resource name (:attr:`~circinus.plan.records.DeploymentKey.resource`)."""
    spec: DeploymentSpec
    replicas: int
    load: float
    """Busy replicas' worth of work routed to it."""
    rate_rps: float
    """Requests per second routed to it by all its queries."""
    queries: tuple[str, ...]
    """The admitted queries routed to it, in the world's order."""
    state: DeploymentState
    """What its queries' latency was estimated at (see
    :meth:`~circinus.estimate.analytic.AnalyticEstimator.with_deployments`)."""

    @property
    def utilization(self) -> float:
        """Load over replicas."""
        return self.load / self.replicas

    @property
    def cost_per_hour(self) -> float:
        """Replicas x units x price, $/h."""
        return self.replicas * self.spec.price_per_hour


@dataclass(frozen=True)
class DeploymentCheck:
    """What the deployment check did."""

    rounds: int
    """Selections made again after plans missed their SLOs on their sized deployments."""
    dropped: int
    """Candidates dropped for missing their SLO on their sized deployments."""
    unadmitted: int
    """Admitted queries dropped without a new selection."""
    deployments: tuple[SizedDeployment, ...]
    """The shared deployments of the final selection, with at least one query each."""
    seconds: float
    estimated: Estimated | None = field(default=None, repr=False, compare=False)
    """What the admitted plans' final estimates were made at (for a later check, ``since``
    of :func:`check_deployments`); ``None`` when not recorded."""


@dataclass(frozen=True)
class Estimated:
    """The chosen candidates a deployment check estimated at the real state, and that state:
    each deployment's and each loaded link's slowdown.

    NOTE: a plan's estimate at the real state depends, besides the query and the plan, only
    on the states of the deployments its shared stages run on (its ``deployment_load``) and
    the slowdowns of the links its transfers cross (its ``link_mbps``: every link crossed,
    even without traffic). Where a later check finds those unchanged, estimating the plan
    again would give the very same estimate, so the candidate is kept as it is: after the join
    pass (:mod:`circinus.select.join`) moved a few hundred of 100,000 generated queries, the
    second check estimated only the plans on the deployments and links the moves touched."""

    states: Mapping[str, DeploymentState]
    slowdowns: Mapping[tuple[str, str], float]
    candidates: Mapping[int, Candidate]
    """The candidates estimated, by identity (each holds its object alive)."""

    def holds(self, cand: Candidate, states: Mapping[str, DeploymentState],
              real: AnalyticEstimator) -> bool:
        """Whether ``cand`` is one of these and its deployments and links are as they were
        (in ``states``, and at ``real``'s link slowdowns)."""
        if self.candidates.get(id(cand)) is not cand:
            return False
        est = cand.estimate
        return (all(states.get(name) == self.states.get(name)
                    for name, _ in est.deployment_load)
                and all(real.slowdown(*pair) == self.slowdowns.get(pair, 1.0)
                        for pair, _ in est.link_mbps))


def states(book: Ledger) -> dict[str, DeploymentState]:
    """The state of every loaded deployment of ``book``."""
    out = {}
    for name, n in book.replicas.items():
        rate = book.rate.get(name, 0.0)
        if n and rate > 0:
            work = book.work[name]
            out[name] = DeploymentState(n, rate, work / rate, book.work_sq[name] / rate,
                                        book.burst.get(name, 0.0))
    return out


def sized(problem: SelectionProblem, chosen: Sequence[int | None]) -> tuple[SizedDeployment, ...]:
    """The deployments of ``chosen`` with their replicas, load, rate and queries."""
    book = problem.book(chosen)
    members: dict[str, list[str]] = {}
    for qc, k in zip(problem.candidates, chosen, strict=True):
        if k is not None:
            for name, _ in qc.candidates[k].estimate.deployment_load:
                members.setdefault(name, []).append(qc.query)
    now = states(book)
    return tuple(
        SizedDeployment(name, problem.deployments[name], book.replicas[name], book.load[name],
                        book.rate.get(name, 0.0), tuple(members[name]), now[name])
        for name in sorted(members) if name in now)


def check_deployments(estimator: AnalyticEstimator, queries: Sequence[Query],
                      problem: SelectionProblem, selection: Selection, select: Select, *,
                      links: bool, time_limit_s: float, since: DeploymentCheck | None = None,
                      size: bool = True,
                      ) -> tuple[SelectionProblem, Selection, DeploymentCheck]:
    """Run the deployment check (module note) on ``selection`` of ``problem``.

    Args:
        estimator: the estimator the candidates were found with.
        queries: the queries of ``problem``, in its order.
        select: the selector (making its answer fit whole replicas), called again after plans
            missed their SLOs.
        links: estimate the admitted plans at their shared links' utilisation under the
            selection being checked (what the link check does), each round anew.
        time_limit_s: what is left of the selection budget.
        since: an earlier check of this selection since changed (by the join pass): the
            chosen candidates it estimated whose deployments and links are as it found them
            keep their estimates (:class:`Estimated`), the same as estimating them again.
        size: give the record the deployments as sized (:func:`sized`, a pass over the
            selection's ledger); without, its ``deployments`` are empty, for a caller that
            sizes a later selection anyway.

    Returns the problem whose chosen candidates carry their real-state estimates, the
    selection and what was done.
    """
    start = time.monotonic()
    deadline = start + time_limit_s
    rounds = dropped = unadmitted = 0
    before = None if since is None else since.estimated
    while True:
        book = problem.book(selection.chosen)
        load = {} if not links else {pair: rho for pair, rho in utilisation(
            problem.capacity, book.used).items() if rho > 0}
        at_links = estimator.with_link_load(load) if load else estimator
        now = states(book)
        real = at_links.with_deployments(now)
        fresh: dict[int, Candidate] = {}
        missing: list[int] = []
        known: dict[tuple[object, ...], Estimate] = {}  # queries of a site share plans
        # (estimated alike): each is estimated again once. An estimate object is shared
        # only by plans of one estimate key (alike queries' plans of the same stages), so
        # it is looked up by the object first: at 100,000 generated queries ~89,000 admitted
        # plans share ~15,000 estimates, and building and hashing each plan's key took more
        # than a third of the pass.
        by_estimate: dict[int, tuple[Estimate, Estimate]] = {}
        for q, k in enumerate(selection.chosen):
            if k is None:
                continue
            cand = problem.candidates[q].candidates[k]
            old = cand.estimate
            if not old.deployment_load:
                continue
            if before is not None and before.holds(cand, now, real):
                new = cand
            else:
                hit = by_estimate.get(id(old))
                if hit is None or hit[0] is not old:  # (kept with it: its id is not reused)
                    key = real.estimate_key(queries[q], cand.plan)
                    est = known.get(key)
                    if est is None:
                        est = known[key] = real.estimate(queries[q], cand.plan)
                    hit = by_estimate[id(old)] = (old, est)
                new = Candidate(cand.plan, hit[1])
            if new.estimate.meets(queries[q].slo):
                fresh[q] = new
            else:
                missing.append(q)
        if not missing:
            break
        left = deadline - time.monotonic()
        if rounds < MAX_ROUNDS and left >= MIN_ROUND_S:
            chosen = list(selection.chosen)
            for q in missing:
                chosen[q] = None
            problem = _without(problem, selection, missing)
            dropped += len(missing)
            rounds += 1
            selection = select(problem, left, with_chosen(problem, selection, tuple(chosen)))
            continue
        # Drop the plan that misses by the most relative margin first, then check again.
        worst = max(missing, key=lambda q: (_excess(real, queries[q], problem, selection, q), -q))
        chosen = list(selection.chosen)
        chosen[worst] = None
        unadmitted += 1
        selection = with_chosen(problem, selection, tuple(chosen))
    cands = list(problem.candidates)
    for q, cand in fresh.items():
        k = selection.chosen[q]
        assert k is not None
        options = list(cands[q].candidates)
        options[k] = cand
        cands[q] = replace(cands[q], candidates=tuple(options))
    problem = problem.with_candidates(cands)
    estimated = Estimated(now, {pair: real.slowdown(*pair) for pair in load},
                          {id(c): c for c in fresh.values()})
    record = DeploymentCheck(rounds, dropped, unadmitted,
                             sized(problem, selection.chosen) if size else (),
                             time.monotonic() - start, estimated)
    return problem, selection, record


def excess(estimate: Estimate, slo: Slo) -> float:
    """How far ``estimate`` is past its latency or cost bound, relatively (0 within both).

    Example: p99 300 ms against a 250 ms bound and no cost bound: 1.2."""
    ratios = [0.0]
    if slo.latency_ms is not None:
        ratios.append(estimate.latency_ms / slo.latency_ms)
    if slo.max_cost_per_hour is not None and slo.max_cost_per_hour > 0:
        ratios.append(estimate.cost_per_hour / slo.max_cost_per_hour)
    return max(ratios)


def _excess(real: AnalyticEstimator, query: Query, problem: SelectionProblem,
            selection: Selection, q: int) -> float:
    """:func:`excess` of query ``q``'s chosen plan estimated by ``real``."""
    k = selection.chosen[q]
    assert k is not None
    return excess(real.estimate(query, problem.candidates[q].candidates[k].plan), query.slo)


def _without(problem: SelectionProblem, selection: Selection,
             missing: Sequence[int]) -> SelectionProblem:
    """``problem`` without the chosen candidates of the queries in ``missing``."""
    cands = list(problem.candidates)
    for q in missing:
        k = selection.chosen[q]
        assert k is not None
        qc = cands[q]
        kept = qc.candidates[:k] + qc.candidates[k + 1:]
        reason = qc.reason if kept else (
            "capacity: its plans miss their SLO on the shared deployments they join as sized "
            "(co-tenants' requests heavier than its own, or its share of whole replicas over "
            "its cost bound)")
        cands[q] = replace(qc, candidates=kept, reason=reason)
    return problem.with_candidates(cands)
