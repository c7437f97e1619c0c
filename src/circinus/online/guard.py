"""The online planner's SLO check: no event may slow a shared link or load a shared deployment
past an admitted query's SLO.

NOTE: a candidate's estimate is made before it is admitted: alone on its links, and on each
shared deployment at the worst state of its level (:mod:`circinus.estimate.analytic`). Once
admitted, its latency and its share of whole replicas depend on the others:

* **Links.** Transfers on a link with a capacity share it (processor sharing), so admitting a
  plan that sends over a link slows every admitted plan on it
  (:func:`~circinus.estimate.queueing.shared_link_slowdown`); a departure only lowers loads.
* **Deployments.** A shared deployment's real state (:func:`~circinus.select.sizing.states`:
  replicas, every query's rate filling its batches, the mix of their work) changes with every
  query that joins or leaves it, and so do its tenants' latencies (a co-tenant heavier than a
  query slows it) and their shares of the replicas' cost (fewer co-tenants, a larger share).

So after a change, the admitted queries it may affect (:meth:`SloGuard.affected`: the tenants of
the deployments whose state changed and, with the settings' ``link_check``, the plans on the
shared links whose load changed) are estimated again at the current state: the links at their
current utilisation, every shared deployment at its real state (:meth:`SloGuard.at`). An
admission stands only if they all still meet their SLOs (their estimates then become these);
after a departure, a move or a capacity change the planner drops the ones that miss (and
offers them their other candidates). So after every event each admitted plan meets its SLO at
the current state. A plan on no changed deployment whose links are not slowed is not estimated
again (its estimate was made at a state at least as loaded, or alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import Estimate
from circinus.online.ledger import Ledger, Resource
from circinus.search.base import Candidate
from circinus.select.base import SelectionProblem
from circinus.select.contention import utilisation
from circinus.select.deployments import ledger
from circinus.select.sizing import excess, states
from circinus.spec.models import Query

Running = Callable[[str], tuple[Query, Candidate]]
"""An admitted query's spec and the candidate it runs, by name."""


class SloGuard:
    """Checks admitted plans at the current state (module note) and remembers which waiting
    queries a check keeps out, and why.

    Args:
        link_check: the planner settings' ``link_check``; off, links are taken as idle.
    """

    def __init__(self, *, link_check: bool) -> None:
        self.link_check = link_check
        self._blocked: dict[str, tuple[str, str, float]] = {}
        self.kernel_evaluations = 0
        """Stage and transfer estimates the checks computed."""

    def at(self, estimator: AnalyticEstimator, ledger: Ledger) -> AnalyticEstimator:
        """``estimator`` at the links' current utilisation (with the link check) and the shared
        deployments' real state."""
        out = estimator
        if self.link_check:
            out = out.with_link_load(utilisation(ledger.capacity, ledger.used))
        now = ledger.states()
        return out.with_deployments(now) if now else out

    def affected(self, ledger: Ledger, rows: Iterable[Resource],
                 deployments: Iterable[str]) -> dict[str, None]:
        """The admitted queries a change of ``rows`` and ``deployments`` may push past their
        SLO: the tenants of ``deployments`` and, with the link check, the holders of the
        shared links among ``rows``."""
        names: dict[str, None] = {}
        for d in deployments:
            names.update(dict.fromkeys(ledger.holders(("deployment", d))))
        if self.link_check:
            for r in rows:
                if r[0] == "link" and r in ledger.capacity:
                    names.update(dict.fromkeys(ledger.holders(r)))
        return names

    def recheck(self, loaded: AnalyticEstimator, names: Iterable[str], running: Running, *,
                to_first_miss: bool = False) -> dict[str, Estimate]:
        """``names`` (admitted) estimated at ``loaded``'s state, those that join a shared
        deployment or cross a slowed link (the others are left out); with ``to_first_miss``,
        only up to the first that misses its SLO."""
        out: dict[str, Estimate] = {}
        alike: dict[tuple[object, ...], Estimate] = {}  # tenants often run the same plan
        for name in names:
            query, cand = running(name)
            if not cand.estimate.deployment_load and all(
                    loaded.slowdown(*pair) <= 1.0 for pair, _ in cand.estimate.link_mbps):
                continue
            key = _shape(query, cand)
            est = alike.get(key)
            if est is None:
                est = alike[key] = loaded.estimate(query, cand.plan)
            out[name] = est
            if to_first_miss and not est.meets(query.slo):
                break
        self.kernel_evaluations += loaded.kernel_evaluations
        return out

    # -- why a query waits -------------------------------------------------------------------

    def blame(self, name: str, ledger: Ledger, usage: Mapping[Resource, float]) -> None:
        """Record that ``name`` waits because admitting it with ``usage`` slowed a shared link
        too much: the most used shared link of ``usage`` is blamed."""
        used = ledger.used
        rho, link = max((used.get(r, 0.0) / ledger.capacity[r], r[1])
                        for r in shared_links(ledger, usage))
        self._blocked[name] = ("link", link, rho)

    def blame_link(self, name: str, link: str, rho: float) -> None:
        """Record that ``name`` waits because of ``link`` at utilisation ``rho``."""
        self._blocked[name] = ("link", link, rho)

    def blame_deployment(self, name: str, deployment: str) -> None:
        """Record that ``name`` waits because a plan on the shared ``deployment`` (its own or a
        co-tenant's) misses its SLO at the state it would have."""
        self._blocked[name] = ("deployment", deployment, 0.0)

    def forget(self, name: str) -> None:
        """``name`` is admitted, gone, or its candidates changed."""
        self._blocked.pop(name, None)

    def blocked(self) -> dict[str, str]:
        """Waiting queries a link keeps out -> the link (``src->dst``) blamed."""
        return {name: what for name, (kind, what, _) in self._blocked.items() if kind == "link"}

    def reason(self, name: str) -> str | None:
        """Why the check keeps ``name`` out, as a reason string, if it does."""
        blocked = self._blocked.get(name)
        if blocked is None:
            return None
        kind, what, rho = blocked
        if kind == "link":
            return (f"capacity: link {what} at {rho:.0%} utilisation with it slows transfers so "
                    "that a plan on the link misses its SLO")
        return (f"capacity: on the shared deployment {what} as sized with it a plan misses its "
                "SLO (requests heavier than its own share the replicas, or its share of whole "
                "replicas is over its cost bound)")


def _shape(query: Query, cand: Candidate) -> tuple[object, ...]:
    """What an estimate of ``cand`` depends on besides the estimator: of its query, what
    :meth:`~circinus.estimate.base.BaseEstimator.estimate` reads (pipeline, sources, rate,
    work multipliers, SLO percentile), and the plan's stages. Two admitted queries of the same
    shape get the same estimate (at the tenth of a second per thousand plans a deployment of
    a thousand queries costs, this matters: a few hundred shapes among them)."""
    return (query.pipeline, tuple(sorted(query.sources.items())), query.rate_rps,
            tuple(sorted(query.work_scale.items())), query.slo.percentile, cand.plan.stages,
            tuple(sorted(query.source_rate_rps.items())),
            tuple(sorted(query.source_output_kb.items())))


def shared_links(book: Ledger, usage: Iterable[Resource]) -> list[Resource]:
    """The links with a capacity among the resources of ``usage``."""
    return [r for r in usage if r[0] == "link" and r in book.capacity]


def settle(estimator: AnalyticEstimator, queries: Sequence[Query], problem: SelectionProblem,
           chosen: Sequence[int | None], *, link_check: bool
           ) -> tuple[tuple[int | None, ...], dict[int, Estimate]]:
    """``chosen`` (of ``problem``, the candidates of ``queries``) without the plans that miss
    their SLO at the state it brings itself: its shared links at their utilisation (with the
    link check), its deployments as sized. The plan missing by most goes first, and the others
    are checked again. Returns the choices kept and the estimates at that state of those that
    join a shared deployment or cross a slowed link.

    The batch planner's checks may leave such plans: the deployment check selects again at
    the link loads of the link check's selection, and a new selection may load a link more."""
    kept = list(chosen)
    while True:
        book = ledger(problem, kept)
        loaded = estimator.with_link_load(utilisation(problem.capacity, book.used)) if (
            link_check) else estimator
        now = states(book)
        loaded = loaded.with_deployments(now) if now else loaded
        fresh: dict[int, Estimate] = {}
        alike: dict[tuple[object, ...], Estimate] = {}
        for q, k in enumerate(kept):
            if k is None:
                continue
            cand = problem.candidates[q].candidates[k]
            if cand.estimate.deployment_load or any(
                    loaded.slowdown(*pair) > 1.0 for pair, _ in cand.estimate.link_mbps):
                key = _shape(queries[q], cand)
                if key not in alike:
                    alike[key] = loaded.estimate(queries[q], cand.plan)
                fresh[q] = alike[key]
        miss = [q for q, est in fresh.items() if not est.meets(queries[q].slo)]
        if not miss:
            return tuple(kept), fresh
        kept[max(miss, key=lambda q: excess(fresh[q], queries[q].slo))] = None
