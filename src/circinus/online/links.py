"""The online planner's link check: no admission may slow a shared link past an SLO.

NOTE: transfers on a link with a capacity share it (processor sharing), so admitting a plan
that sends over a link slows every admitted plan on it
(:func:`~circinus.estimate.queueing.shared_link_slowdown`). The batch planner checks a whole
selection (:mod:`circinus.select.contention`); the online planner checks each admission: with
the newcomer booked, every admitted plan on the shared links it crosses is estimated again at
the links' utilisation, and the admission stands only if all of them still meet their SLOs.
A departure only lowers loads; a capacity change re-checks every admitted plan on a shared
link and drops the ones that miss (which lowers loads again, so the others still meet theirs).
So after every event each admitted plan meets its SLO at its links' current utilisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import Estimate
from circinus.online.ledger import Ledger, Resource
from circinus.search.base import Candidate
from circinus.select.contention import utilisation
from circinus.spec.models import Query

Running = Callable[[str], tuple[Query, Candidate]]
"""An admitted query's spec and the candidate it runs, by name."""


class LinkGuard:
    """Checks admissions against link contention (module note) and remembers which waiting
    queries it keeps out, and by which link.

    Args:
        enabled: the planner settings' ``link_check``; off, every check passes.
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._blocked: dict[str, tuple[str, float]] = {}
        self.kernel_evaluations = 0
        """Transfer estimates the checks computed."""

    def contended(self, estimator: AnalyticEstimator, ledger: Ledger,
                  links: Iterable[Resource], running: Running
                  ) -> tuple[dict[str, Estimate], list[str]]:
        """Every admitted query on ``links`` whose plan crosses a link slowed at the current
        utilisation, estimated again: those that still meet their SLO with their contended
        estimate, and those that miss it."""
        loaded = estimator.with_link_load(utilisation(ledger.capacity, ledger.used))
        names = dict.fromkeys(n for r in links for n in ledger.holders(r))
        meet: dict[str, Estimate] = {}
        miss: list[str] = []
        for name in names:
            query, cand = running(name)
            if all(loaded.slowdown(*pair) <= 1.0 for pair, _ in cand.estimate.link_mbps):
                continue
            est = loaded.estimate(query, cand.plan)
            if est.meets(query.slo):
                meet[name] = est
            else:
                miss.append(name)
        self.kernel_evaluations += loaded.kernel_evaluations
        return meet, miss

    def blame(self, name: str, ledger: Ledger, usage: Mapping[Resource, float]) -> None:
        """Record that ``name`` waits because admitting it with ``usage`` failed the check:
        the most used shared link of ``usage`` is blamed."""
        rho, link = max((ledger.used.get(r, 0.0) / ledger.capacity[r], r[1])
                        for r in shared_links(ledger, usage))
        self._blocked[name] = (link, rho)

    def blame_link(self, name: str, link: str, rho: float) -> None:
        """Record that ``name`` waits because of ``link`` at utilisation ``rho``."""
        self._blocked[name] = (link, rho)

    def forget(self, name: str) -> None:
        """``name`` is admitted, gone, or its candidates changed."""
        self._blocked.pop(name, None)

    def blocked(self) -> dict[str, str]:
        """Waiting queries the check keeps out -> the link (``src->dst``) blamed."""
        return {name: link for name, (link, _) in self._blocked.items()}

    def reason(self, name: str) -> str | None:
        """Why the check keeps ``name`` out, as a reason string, if it does."""
        blocked = self._blocked.get(name)
        if blocked is None:
            return None
        link, rho = blocked
        return (f"capacity: link {link} at {rho:.0%} utilisation with it slows transfers so "
                "that a plan on the link misses its SLO")


def shared_links(ledger: Ledger, usage: Mapping[Resource, float]) -> list[Resource]:
    """The links with a capacity among the resources of ``usage``."""
    return [r for r in usage if r[0] == "link" and r in ledger.capacity]
