"""The link check: admitted plans re-estimated at the utilisation of the links they share.

NOTE: the search estimates every plan as if its messages were alone on their links, and the
selection only keeps each link's summed traffic within its ``capacity_mbps``. But the transfers
of every admitted query share the link (processor sharing, as the simulator serves it), so at
utilisation ``rho`` each is slowed by :func:`~circinus.estimate.queueing.shared_link_slowdown`,
a lot when the capacity is only one or two transfers' bandwidth. The check closes that loop.
Each link has a *check load*, the utilisation its plans are estimated at, and may get a
*ceiling*, a utilisation the selection must keep it under. A round:

1. From the selection, each shared link's utilisation. A link without a ceiling is checked at
   the running maximum of its utilisation over the rounds; one with a ceiling, at the ceiling.
2. The admitted plans that cross a slowed link are estimated again at the check loads
   (:class:`~circinus.estimate.analytic.AnalyticEstimator` with ``link_load``). If all still
   meet their SLOs, the selection stands.
3. Otherwise every slowed link such a plan crosses gets a ceiling, found by *peeling*: of the
   admitted plans on the link, each that misses its SLO gets its *tolerance*, the largest
   utilisation of the link at which it meets it (bisection; the others tolerate the check
   load; one that misses even with this link idle is left out: no ceiling here saves it);
   from the most tolerant down, plans are kept while their summed traffic stays within the
   least tolerance kept; that tolerance is the ceiling (none when every plan left tolerates
   the check load: a return link carrying a few bytes of a plan whose uplink is too busy must
   not be closed to every other plan). E.g. three plans of 27 % each that
   tolerate 30 % give a ceiling of 30 %: one of them fits under it. (Dropping every plan that
   misses at the first selection's load would instead leave a link the selection filled
   empty, while some of its plans can meet their SLOs at a lower load.)
4. Every candidate crossing a slowed link is estimated again at the check loads and dropped
   if it then misses its query's SLO (a query left without any is told which link). Each
   ceiling caps its link's capacity, and the selection is *repaired* within what is left of
   the selection's time budget: the queries whose chosen candidate was dropped leave, then
   the admitted queries on a link over its ceiling leave until it fits (the most freed per
   unit of weight first), and the queries left out are admitted again, best fit first, into
   the room that freed (:func:`~circinus.select.deployments.repair`); back to 1. Only the
   queries on the capped links and those that lost their candidate change: a whole new
   selection per round cost more than the rest of the check at 100,000 generated queries (an
   LP over every query for the few hundred whose plans missed).

When a round finds no admitted plan that misses, every admitted plan meets its SLO at its
links' check loads, each at least the link's utilisation (the running maximum includes it; a
ceiling caps it), and the slowdown grows with the load: so it meets it at the final
utilisation. A last step estimates the admitted plans at the links' actual utilisation, which
are the latencies reported. After :data:`MAX_ROUNDS` repairs (or when the budget is spent,
after the first, which always runs, and admits queries again to its end whatever the clock
says: it is local and cheap, and what it admits must not depend on the machine's load) the
last selection is not repaired: the same step drops its admitted plans that miss their SLO at
the actual utilisation, which only lowers every load, so the others still meet theirs.

The check is conservative: a candidate dropped at a load is not tried again at a lower one, and
a ceiling is not raised again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import EPS, Estimate
from circinus.plan.records import QueryPlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.select.base import Resource, Selection, SelectionProblem
from circinus.spec.models import Query

MAX_ROUNDS = 4
"""Repairs the link check makes at most before it only drops (see module note)."""
MIN_ROUND_S = 0.1
"""Below this much of the selection budget left, the check drops instead of repairing again."""
FIRST_REPAIR_S = 3.0
"""Time the first repair may take to move admitted queries to cheaper candidates when the
budget is already spent (it admits queries again to its end whatever the clock says)."""
BISECTION_STEPS = 14
"""Halvings of a plan's tolerance interval: within 6.1e-5 of the check load, from below (24
before, within 6e-8: at 100,000 generated queries the 10 more halvings of 674 plans'
intervals took about 1 s of the check's CPU, 9.99 and 10.39 s against 9.23 and 9.37 s in
alternating runs, for the same 89,176 admitted)."""

Link = tuple[str, str]
"""``(src_site, dst_site)``."""
_Pattern = tuple[tuple[tuple[int, Estimate | None], ...] | None, tuple[float, Link] | None]
"""What the link check's re-estimation makes of a query's candidates (:meth:`_Check.
_pattern`)."""
Select = Callable[[SelectionProblem, float, Selection], Selection]
"""Selects again over a problem within a time limit, s, given the selection so far (its
choices in the problem's candidates, ``None`` where dropped), which the answer is never worse
than."""
Repair = Callable[[SelectionProblem, Selection, float, bool], Selection]
"""Mends a selection of a problem whose candidates or capacities a check cut (its choices in
the problem's candidates, ``None`` where dropped) into one that fits the problem, by a
:func:`time.monotonic` deadline (:func:`~circinus.select.deployments.repair`); with the flag
set, it makes the selection fit and admits queries again to the end whatever the deadline
says (``complete``), only the moves to cheaper candidates bound by it."""


@dataclass(frozen=True)
class LinkCheck:
    """What the link check did."""

    rounds: int
    """Repairs of the selection after plans were found to miss their SLOs."""
    dropped: int
    """Candidates dropped for missing their SLO at the links' check load."""
    unadmitted: int
    """Admitted queries dropped by the final pass without a new selection."""
    emptied: tuple[tuple[str, str], ...]
    """``(query, link)`` for each query left without candidates: the link (``src->dst``) of
    the largest slowdown its candidates crossed."""
    loads: tuple[tuple[str, float], ...]
    """Per shared link (``src->dst``), the utilisation its plans were checked at (at least its
    final utilisation)."""
    ceilings: tuple[tuple[str, float], ...]
    """The links that got a ceiling and its utilisation: the selection kept them under it."""
    kernel_evaluations: int
    """Transfer (and stage) estimates the check computed."""
    seconds: float

    def usable(self, capacity: Mapping[Resource, float]) -> dict[Resource, float]:
        """``capacity`` with every link that got a ceiling cut to it."""
        return {**capacity, **{("link", name): u * capacity["link", name]
                               for name, u in self.ceilings}}


def utilisation(capacity: Mapping[Resource, float],
                used: Mapping[Resource, float]) -> dict[Link, float]:
    """Utilisation of every link with a capacity, ``used / capacity``, by ``(src, dst)``
    (never below 0: use summed over plans may round to a hair below it)."""
    out = {}
    for (kind, name), cap in capacity.items():
        if kind == "link":
            src, _, dst = name.partition("->")
            out[src, dst] = max(0.0, used.get((kind, name), 0.0) / cap)
    return out


def check_links(estimator: AnalyticEstimator, queries: Sequence[Query],
                problem: SelectionProblem, selection: Selection, repair: Repair, *,
                time_limit_s: float) -> tuple[SelectionProblem, Selection, LinkCheck]:
    """Run the link check (module note) on ``selection`` of ``problem``.

    Args:
        estimator: the estimator the candidates were found with (its world; its memos are
            shared by the loaded estimators).
        queries: the queries of ``problem``, in its order.
        repair: mends the selection after plans were found to miss their SLOs.
        time_limit_s: what is left of the selection budget for the repairs.

    Returns the problem with the surviving candidates (carrying their contended estimates)
    and the world's capacities, its selection, and what was done.
    """
    return _Check(estimator, queries, problem.capacity).run(
        problem, selection, repair, time.monotonic() + time_limit_s)


class _Check:
    """The state of one link check (module note): check loads, ceilings and counts."""

    def __init__(self, estimator: AnalyticEstimator, queries: Sequence[Query],
                 capacity: Mapping[Resource, float]) -> None:
        self.estimator = estimator
        self.queries = queries
        self.capacity = dict(capacity)
        self.loads: dict[Link, float] = {}
        self.ceilings: dict[Link, float] = {}
        self.emptied: dict[str, str] = {}
        self.dropped = 0
        self._made: list[AnalyticEstimator] = []
        self._at: dict[tuple[tuple[Link, float], ...], AnalyticEstimator] = {}
        self._estimates: dict[tuple[int, tuple[float, ...]], Estimate] = {}
        self._fresh: dict[tuple[int, int], tuple[Estimate, Estimate]] = {}
        self._kinds: dict[tuple[int, int], tuple[QueryPlan, int]] = {}
        self._kind_of: dict[tuple[object, ...], int] = {}
        self._slowed: dict[tuple[int, int], tuple[Estimate, list[Link]]] = {}

    def run(self, problem: SelectionProblem, selection: Selection, repair: Repair,
            deadline: float) -> tuple[SelectionProblem, Selection, LinkCheck]:
        start = time.monotonic()
        rounds = unadmitted = 0
        while True:
            admitted = sum(k is not None for k in selection.chosen)
            for pair, rho in utilisation(self.capacity, selection.used(problem)).items():
                if pair not in self.ceilings:
                    self.loads[pair] = max(rho, self.loads.get(pair, 0.0))
            loaded = self.at(self.loads)
            missing = {pair for q, k in enumerate(selection.chosen) if k is not None
                       for pair in self._missed(loaded, q, problem.candidates[q].candidates[k])}
            if missing:
                crossing = self._crossing(problem, selection, missing)
                for pair in sorted(missing):
                    ceiling = self._ceiling(crossing[pair], pair)
                    if ceiling is not None:
                        self.ceilings[pair] = self.loads[pair] = ceiling
                problem, chosen = self._recheck(self.at(self.loads), problem, selection)
                left = deadline - time.monotonic()
                if rounds < MAX_ROUNDS and (rounds == 0 or left >= MIN_ROUND_S):
                    # The first repair runs whatever the clock says, and to its end: it is
                    # local, and without it the plans that miss are only dropped (a loaded
                    # machine can spend the budget on the first selection). Cut at a few
                    # seconds it admitted 61 fewer of 100,000 generated queries on a busy
                    # machine than run to its end (89,115 against 89,176, for 1 s of CPU).
                    rounds += 1
                    selection = repair(problem, replace(selection, chosen=chosen),
                                       max(deadline, time.monotonic() + FIRST_REPAIR_S),
                                       rounds == 1)
                    continue
                selection = with_chosen(problem, selection, chosen)
            problem, selection = self._settle(problem, selection)
            unadmitted = admitted - sum(k is not None for k in selection.chosen)
            break
        record = LinkCheck(
            rounds, self.dropped, unadmitted, tuple(sorted(self.emptied.items())),
            tuple(sorted((f"{s}->{t}", rho) for (s, t), rho in self.loads.items())),
            tuple(sorted((f"{s}->{t}", u) for (s, t), u in self.ceilings.items())),
            sum(e.kernel_evaluations for e in self._made), time.monotonic() - start)
        return replace(problem, capacity=self.capacity), selection, record

    def estimate(self, loaded: AnalyticEstimator, q: int, cand: Candidate) -> Estimate:
        """``cand`` (of query ``q``) estimated by ``loaded``, memoised by its kind
        (:meth:`_kind`) and the slowdowns of the links it crosses (all an estimate at some
        load depends on): the rounds, the peeling and the last step estimate the same plans
        at the same slowdowns many times, and the queries of one site and group share their
        plans.

        NOTE: an estimate object is shared only by plans of one kind (alike queries' plans of
        the same stages), so what it gives at one estimator's loads is looked up by the two
        objects first: at 100,000 generated queries 808,592 candidates (every one a plan
        object of its own) share 121,811 estimates, and working out each candidate's kind
        and slowdowns was most of the check's re-estimation."""
        est = cand.estimate
        known = self._fresh.get((id(loaded), id(est)))
        if known is not None and known[0] is est:  # (kept with it: its id is not reused)
            return known[1]
        key = (self._kind(q, cand.plan),
               tuple(loaded.slowdown(*pair) for pair, _ in est.link_mbps))
        hit = self._estimates.get(key)
        if hit is None:
            hit = self._estimates[key] = loaded.estimate(self.queries[q], cand.plan)
        self._fresh[id(loaded), id(est)] = (est, hit)
        return hit

    def _kind(self, q: int, plan: QueryPlan) -> int:
        """A number per distinct :meth:`~circinus.estimate.base.BaseEstimator.estimate_key`
        of ``plan`` for query ``q``, worked out once per query and plan object.

        NOTE: the key is a long tuple (the plan's stages), built and hashed anew for each of
        the check's look-ups before: at 100,000 generated queries 244,808 of them for 32,861
        estimates. Numbered once per plan object, the check took 7.92 s against 8.27 s (three
        alternating runs each, in one process on one selection; the same answer)."""
        query = self.queries[q]
        hit = self._kinds.get((id(query), id(plan)))
        if hit is None:  # the plan is kept with its number: its id is not reused meanwhile
            hit = self._kinds[id(query), id(plan)] = (plan, self._kind_of.setdefault(
                self.estimator.estimate_key(query, plan), len(self._kind_of)))
        return hit[1]

    def at(self, loads: Mapping[Link, float]) -> AnalyticEstimator:
        """An estimator at ``loads`` (kept, to count its work): the same one for the same
        loads, so that what :meth:`_missed` worked out at them is not worked out again (a
        round after a repair that left every load as it was looks up ~15,000 estimates at
        100,000 generated queries)."""
        key = tuple(sorted(loads.items()))
        hit = self._at.get(key)
        if hit is None:
            hit = self._at[key] = self.estimator.with_link_load(loads)
            self._made.append(hit)
        return hit

    def _missed(self, loaded: AnalyticEstimator, q: int, cand: Candidate) -> list[Link]:
        """The slowed links of ``cand`` (of query ``q``) if it misses its SLO at ``loaded``'s
        loads, else none.

        NOTE: the slowed links and the estimate at ``loaded`` are looked up once per estimate
        object (alike queries share their candidates' estimates, and an estimate object is
        shared only by plans of one :meth:`_kind`), the SLO checked per query: the rounds
        and the last step ask this of every admitted query (89,254 at 100,000 generated
        queries, about 15,000 distinct estimates)."""
        est = cand.estimate
        key = (id(loaded), id(est))
        hit = self._slowed.get(key)
        if hit is None or hit[0] is not est:  # (the estimate is kept: its id is not reused)
            hit = self._slowed[key] = (
                est, [pair for pair, _ in est.link_mbps if loaded.slowdown(*pair) > 1.0])
        slowed = hit[1]
        if not slowed or self.estimate(loaded, q, cand).meets(self.queries[q].slo):
            return []
        return slowed

    @staticmethod
    def _crossing(problem: SelectionProblem, selection: Selection, pairs: set[Link],
                  ) -> dict[Link, list[tuple[int, Candidate, float]]]:
        """Per link of ``pairs``, the admitted plans crossing it: ``(query, candidate,
        Mbit/s)``, in query order (one pass over the selection for every link)."""
        out: dict[Link, list[tuple[int, Candidate, float]]] = {pair: [] for pair in pairs}
        for q, k in enumerate(selection.chosen):
            if k is None:
                continue
            cand = problem.candidates[q].candidates[k]
            for pair, mbps in cand.estimate.link_mbps:
                on = out.get(pair)
                if on is not None:
                    on.append((q, cand, mbps))
        return out

    def _ceiling(self, crossing: Sequence[tuple[int, Candidate, float]],
                 pair: Link) -> float | None:
        """The ceiling of link ``pair`` by peeling the admitted plans ``crossing`` it
        (``(query, candidate, Mbit/s)``; module note); ``None``
        when no ceiling here would help: every plan on it that misses, misses even with the
        link idle (the other links at their check loads), e.g. a return link that carries
        a few bytes of a plan whose uplink is the one too busy. Such plans are dropped, and
        closing the link (a ceiling of 0) would shut out every plan that needs it."""
        cap = self.capacity["link", f"{pair[0]}->{pair[1]}"]
        loaded = self.at(self.loads)
        plans = []  # (tolerance, share of the capacity)
        # a plan's tolerance depends on its estimate's key and its SLO alone (the loads are
        # fixed here): alike queries' plans are bisected once
        known: dict[tuple[int, object], float] = {}
        for q, cand, mbps in crossing:
            if not self._missed(loaded, q, cand):
                tol = self.loads[pair]
            else:
                key = (self._kind(q, cand.plan), self.queries[q].slo)
                tol = known.get(key, math.nan)
                if math.isnan(tol):
                    tol = known[key] = self._tolerance(loaded, q, cand, pair)
            if tol >= 0:
                plans.append((tol, mbps / cap))
        if all(tol >= self.loads[pair] for tol, _ in plans):
            return None
        plans.sort(key=lambda p: -p[0])
        ceiling, total = plans[0][0], 0.0
        for tol, share in plans:
            if total + share > tol + EPS:
                break
            total += share
            ceiling = tol
        return max(ceiling, 0.0)

    def _tolerance(self, loaded: AnalyticEstimator, q: int, cand: Candidate,
                   pair: Link) -> float:
        """The largest utilisation of ``pair`` (the other links at their check loads, those of
        ``loaded``) at which ``cand`` meets its SLO, from below; -1 when it misses even on an
        idle link."""
        query = self.queries[q]

        def meets(rho: float) -> bool:
            self._made.append(loaded.with_link_at(pair, rho))
            return self.estimate(self._made[-1], q, cand).meets(query.slo)

        if not meets(0.0):
            return -1.0
        lo, hi = 0.0, self.loads[pair]
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if meets(mid) else (lo, mid)
        return lo

    def _recheck(self, loaded: AnalyticEstimator, problem: SelectionProblem,
                 selection: Selection) -> tuple[SelectionProblem, tuple[int | None, ...]]:
        """``problem`` with every candidate crossing a slowed link estimated again at
        ``loaded``'s loads and dropped if it then misses its SLO, the links capped at their
        ceilings; and the selection's choices in it (``None`` where dropped). Queries left
        without candidates get a reason."""
        out: list[QueryCandidates] = []
        chosen: list[int | None] = []
        slowest: dict[int, tuple[float, Link]] = {}  # by estimate: alike queries share them
        # each pair of estimates once (candidates of alike queries share theirs)
        pairs: dict[tuple[int, int], tuple[Estimate, Estimate]] = {}
        # What becomes of a query's candidates depends on their estimates and its SLO alone:
        # worked out once per such class (100,000 generated queries: 808,592 candidates of
        # 100,000 queries, far fewer classes).
        patterns: dict[tuple[object, ...], _Pattern] = {}
        for q, (query, qc, pick) in enumerate(zip(self.queries, problem.candidates,
                                                  selection.chosen, strict=True)):
            assert query.name == qc.query, (query.name, qc.query)
            key = (query.slo, *[id(c.estimate) for c in qc.candidates])
            hit = patterns.get(key)
            if hit is None:
                hit = patterns[key] = self._pattern(loaded, q, qc, slowest, pairs)
            pattern, worst = hit
            if pattern is None:  # every candidate as it is
                out.append(qc)
                chosen.append(pick)
                continue
            kept: list[Candidate] = []
            new_pick = None
            for k, fresh in pattern:
                cand = qc.candidates[k]
                if k == pick:
                    new_pick = len(kept)
                kept.append(cand if fresh is None else Candidate(cand.plan, fresh))
            self.dropped += len(qc.candidates) - len(kept)
            if not kept:
                assert worst is not None
                link = f"{worst[1][0]}->{worst[1][1]}"
                self.emptied[qc.query] = link
                qc = replace(qc, reason=_reason(link, worst[0], loaded.link_load[worst[1]],
                                                len(qc.candidates)))
            out.append(replace(qc, candidates=tuple(kept)))
            chosen.append(new_pick)
        capped = {**self.capacity, **{("link", f"{s}->{t}"): u * self.capacity["link", f"{s}->{t}"]
                                      for (s, t), u in self.ceilings.items()}}
        return problem.with_candidates(out, capacity=capped,
                                       again=pairs.values()), tuple(chosen)

    def _pattern(self, loaded: AnalyticEstimator, q: int, qc: QueryCandidates,
                 slowest: dict[int, tuple[float, Link]],
                 pairs: dict[tuple[int, int], tuple[Estimate, Estimate]]) -> _Pattern:
        """What :meth:`_recheck` makes of the candidates ``qc`` of query ``q`` at ``loaded``'s
        loads: the kept ones (index, and the estimate they carry now, ``None`` for their own),
        ``None`` when every one is kept as it is; and the slowest link of those dropped. The
        estimates of ``slowest`` (their slowest link) and ``pairs`` (each re-estimated one
        and what it is now) are noted in passing."""
        slo = self.queries[q].slo
        kept: list[tuple[int, Estimate | None]] = []
        worst: tuple[float, Link] | None = None
        changed = False
        for k, cand in enumerate(qc.candidates):
            est = cand.estimate
            slow = slowest.get(id(est))
            if slow is None:
                slow = slowest[id(est)] = max(
                    ((loaded.slowdown(*pair), pair) for pair, _ in est.link_mbps),
                    default=(1.0, ("", "")))
            fresh = None
            if slow[0] > 1.0:
                again = self.estimate(loaded, q, cand)
                if not again.meets(slo):
                    worst = slow if worst is None else max(worst, slow)
                    changed = True
                    continue
                if again is not est:
                    fresh = again
                    changed = True
                    if (id(est), id(again)) not in pairs:
                        pairs[id(est), id(again)] = (est, again)
                        # at these loads the fresh estimate is its own (what the next
                        # round's look-up at the same loads would work out again)
                        self._fresh.setdefault((id(loaded), id(again)), (again, again))
            kept.append((k, fresh))
        return (tuple(kept) if changed else None), worst

    def _settle(self, problem: SelectionProblem,
                selection: Selection) -> tuple[SelectionProblem, Selection]:
        """The last step: ``selection`` without the admitted plans that miss their SLO at the
        links' actual utilisation (none unless the rounds ran out; module note), the others
        carrying their estimates at that utilisation (at most their check loads)."""
        loaded = self.at(utilisation(self.capacity, selection.used(problem)))
        chosen = list(selection.chosen)
        cands = list(problem.candidates)
        redone: dict[int, tuple[Estimate, Estimate]] = {}
        for q, k in enumerate(selection.chosen):
            if k is None:
                continue
            cand = cands[q].candidates[k]
            if self._missed(loaded, q, cand):
                chosen[q] = None
            elif any(loaded.slowdown(*pair) > 1.0 for pair, _ in cand.estimate.link_mbps):
                fresh = list(cands[q].candidates)
                fresh[k] = Candidate(cand.plan, self.estimate(loaded, q, cand))
                cands[q] = replace(cands[q], candidates=tuple(fresh))
                redone[id(fresh[k].estimate)] = (cand.estimate, fresh[k].estimate)
        problem = problem.with_candidates(cands, again=redone.values())
        return problem, with_chosen(problem, selection, tuple(chosen))


def _reason(link: str, slowdown: float, rho: float, count: int) -> str:
    slower = "without bound" if math.isinf(slowdown) else f"{slowdown:.3g}x"
    return (f"capacity: link {link} at {rho:.0%} utilisation slows its transfers {slower}; "
            f"none of its {count} candidate(s) then meets its SLO")


def with_chosen(problem: SelectionProblem, selection: Selection,
                 chosen: tuple[int | None, ...]) -> Selection:
    """``selection`` with ``chosen`` (its choices in ``problem``'s candidates, some dropped);
    the bound stays: it bounds the problem before the drop, which allows more."""
    if chosen == selection.chosen:
        return selection
    goodput = sum(w for w, k in zip(problem.weights, chosen, strict=True) if k is not None)
    cost = problem.cost(chosen)
    bound = selection.goodput_bound
    return replace(selection, chosen=chosen, goodput=goodput, cost_per_hour=cost,
                   gap=(bound - goodput) / bound if bound > EPS else 0.0)
