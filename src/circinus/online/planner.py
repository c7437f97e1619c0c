"""The online planner: queries arrive and leave and capacities change while plans are kept.

NOTE: the planner is a state machine over three pieces of state: every present query with its
candidate set (the output of the per-query search, kept), the candidate each admitted query
runs, and a :class:`~circinus.online.ledger.Ledger` of what the admitted plans use of every
capacity. Every event keeps two invariants: no capacity is exceeded, and every admitted query
runs one of its own candidates (so it meets its SLO). Admitted queries keep their plans unless
moving them admits more.

* **Start.** The queries of the initial world are planned as the batch planner does (search,
  then the global selector), so ``result()`` right after the start equals ``Planner.plan``.
* **Arrival.** Only the newcomer is searched (the search's caches and its estimator's memo make
  this about a tenth of a second at 10,000 queries). It is admitted with its cheapest candidate
  that fits what is left. If none fits, a bounded local repair (:mod:`~circinus.online.repair`)
  tries to move up to ``max_moves`` admitted queries that hold the resources it lacks to other
  candidates of theirs; the repair is taken only if it admits the newcomer, so goodput grows and
  nobody is dropped. Otherwise the query waits, with a reason and its nearest admissible SLO.
* **Departure.** Its resources are freed and the waiting queries that could use them are tried,
  heaviest first (then in arrival order), each with its cheapest candidate that fits.
* **Capacity change** (a device resized, added or removed, a link's capacity changed). The world
  is rebuilt and the fit re-checked. Queries whose plan used a removed device, or whose candidate
  set it emptied, are searched again and re-admitted if they fit. Resources left over capacity
  are first relieved by moving their holders to other candidates (the repair rule, unbounded);
  if that fails, the selector re-selects among those holders alone, the others fixed, which may
  evict some (they wait). Waiting queries are then tried; after ``add_device`` the waiting ones
  that can reach the new device are searched again first. A resize keeps the candidate sets (a
  plan's estimate does not depend on a device's size; only plans larger than the old size are
  missing, rare with many-unit devices).
* **Rebalance** (``rebalance()``, e.g. periodically): the global selector over every present
  query's candidates, by default with every admitted query kept (their weights are raised above
  the total weight of the others). The result replaces the state only if it admits more weight,
  or as much at a lower cost.

Shared links (with the settings' ``link_check``, the default): the start and every rebalance
run the batch planner's link check on their selection (:mod:`circinus.select.contention`), and
the queries keep the candidates that survive it; every single admission (arrival, refill, a
repair's moves, re-admission after a change) is checked at the links' utilisation with it, and
a capacity change drops the admitted plans that then miss their SLO
(:mod:`circinus.online.links`). So every admitted plan meets its SLO at its links' current
utilisation, and ``result()`` reports contended latencies. A query kept out by a link is told
so (binding resource: the link) but gets no nearest SLO: that search prices plans alone on their
links.

What greedy online admission can achieve (link check off): arrivals into an empty world with
``max_moves=0`` admit exactly what first-come-first-served selection (``FcfsSelector``) admits
in arrival order; the repair can only add to that; no order beats the global selector over the
same candidates (an optimum the MILP proves on small worlds), and ``rebalance()`` reaches it
when it keeps nobody. With the check, one admission at a time and a whole selection are checked
at different loads, so the two may admit differently.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from circinus.errors import SpecError, UnknownNameError
from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import EPS, Estimate
from circinus.online.ledger import Ledger, Resource
from circinus.online.links import LinkGuard, shared_links
from circinus.online.records import Arrival, CapacityChange, Departure, Rebalance
from circinus.online.repair import Mover, Option, repair
from circinus.online.world import add_device, remove_device, resize_device, set_link_capacity
from circinus.online.world import validated as _validated
from circinus.plan.file import PlanFile, to_plan_file
from circinus.plan.records import QueryPlan
from circinus.planner import (
    SEARCHES,
    SELECTORS,
    PlanResult,
    QueryOutcome,
    ResourceUse,
    capacity_reason,
    explain_rejections,
    select_checked,
)
from circinus.search.base import Candidate, QueryCandidates
from circinus.select.base import Selection, SelectionProblem
from circinus.select.contention import LinkCheck
from circinus.spec.index import WorldIndex
from circinus.spec.models import Device, PlannerSettings, Query, World
from circinus.spec.validate import build_index
from circinus.whynot import NearestSlo, WhyNot


@dataclass(frozen=True)
class _Entry:
    """A present query: its spec, candidates, and each candidate's use and repair option."""

    query: Query
    found: QueryCandidates
    options: tuple[Option, ...]

    @staticmethod
    def of(query: Query, found: QueryCandidates) -> _Entry:
        return _Entry(query, found, tuple(
            Option(k, c.estimate.usage(), c.estimate.cost_per_hour)
            for k, c in enumerate(found.candidates)))


class OnlinePlanner:
    """Plans queries as they come and go (see module note).

    Args:
        world: devices, links, pipelines and the queries present at the start (planned at once,
            as :class:`~circinus.planner.Planner` would).
        search: registry key of the per-query search (:data:`circinus.planner.SEARCHES`).
        selector: registry key of the selector used at the start, on ``rebalance()`` and after a
            capacity cut (:data:`circinus.planner.SELECTORS`).
        settings: planner settings overriding the world's ``planner`` section.
        max_moves: admitted queries one arrival's repair may move (0: no repair).
        why_not: find the nearest admissible SLO of queries that must wait (in ``arrive`` and
            ``result``).

    Events raise :class:`~circinus.errors.SpecError` for a malformed query or change and
    :class:`~circinus.errors.UnknownNameError` for an unknown query, device or link, leaving the
    state as it was. Not thread-safe: feed events from one thread.
    """

    def __init__(self, world: World | WorldIndex, *, search: str = "circinus",
                 selector: str = "milp", settings: PlannerSettings | None = None,
                 max_moves: int = 4, why_not: bool = True) -> None:
        if search not in SEARCHES:
            raise SpecError(f"unknown search {search!r}; choose from {sorted(SEARCHES)}")
        if selector not in SELECTORS:
            raise SpecError(f"unknown selector {selector!r}; choose from {sorted(SELECTORS)}")
        if max_moves < 0:
            raise SpecError(f"max_moves must be >= 0, got {max_moves!r}")
        index = world if isinstance(world, WorldIndex) else build_index(world)
        self.search_key, self.selector_key = search, selector
        # NOTE: admissions here are booked one plan at a time in additive units, which is what
        # dedicated replicas are; shared deployments (whole replicas sized for many queries)
        # are planned by the batch planner only, so this planner runs every stage dedicated.
        self.settings = (settings or index.world.planner).model_copy(
            update={"sharing": "dedicated"})
        self.max_moves, self.why_not = max_moves, why_not
        self._topology = index.world.model_copy(update={"queries": []})
        self._entries: dict[str, _Entry] = {}
        self._chosen: dict[str, int] = {}
        self._mover_memo: dict[str, tuple[int, Mover]] = {}
        self._ledger = Ledger(index.capacities)
        self._seconds = {"search": 0.0, "select": 0.0, "why_not": 0.0}
        self._kernels = 0
        self._selection: Selection | None = None
        """The selector's answer while the state is exactly it (for ``result``)."""
        self._check: LinkCheck | None = None
        """The link check of ``_selection``."""
        self._links = LinkGuard(enabled=self.settings.link_check)
        self._estimator: AnalyticEstimator | None = None
        self._rebuild(build_index(self._topology))
        if index.world.queries:
            self._start(index.world.queries)

    # -- views -------------------------------------------------------------------------------

    @property
    def queries(self) -> tuple[str, ...]:
        """Present queries, in arrival order (the initial world's first, in its order)."""
        return tuple(self._entries)

    @property
    def admitted(self) -> tuple[str, ...]:
        """Admitted queries, in arrival order."""
        return tuple(n for n in self._entries if n in self._chosen)

    @property
    def waiting(self) -> tuple[str, ...]:
        """Present queries not admitted, in arrival order."""
        return tuple(n for n in self._entries if n not in self._chosen)

    def plan_of(self, name: str) -> Candidate | None:
        """The plan ``name`` runs (with its estimate), ``None`` while it waits."""
        entry = self._entry(name, "plan_of")
        k = self._chosen.get(name)
        return None if k is None else entry.found.candidates[k]

    def used(self) -> dict[Resource, float]:
        """What the admitted plans use of every resource (a copy)."""
        return dict(self._ledger.used)

    def capacity(self) -> dict[Resource, float]:
        """Every constrained resource and its capacity now (a copy)."""
        return dict(self._ledger.capacity)

    def index(self) -> WorldIndex:
        """The world now (devices and links as changed, the present queries) as an index."""
        queries = [e.query for e in self._entries.values()]
        return replace(self._index, world=self._topology.model_copy(update={"queries": queries}))

    # -- events ------------------------------------------------------------------------------

    def arrive(self, query: Query | Mapping[str, Any]) -> Arrival:
        """Search ``query`` alone and admit it if one of its candidates fits (after a repair)."""
        start = time.monotonic()
        spec = self._validate(query)
        found = self._timed_search([spec])[0]
        entry = self._entries[spec.name] = _Entry.of(spec, found)
        self._selection = None
        k = self._admit_first(entry)
        moved: tuple[str, ...] = ()
        if k is None and found.candidates and self.max_moves:
            fixed = self._admit_repaired(entry)
            if fixed is not None:
                k, moved = fixed
        if k is not None:
            cand = self._entries[spec.name].found.candidates[k]
            return Arrival(spec.name, True, cand.plan, cand.estimate, moved, None, None,
                           len(found.candidates), time.monotonic() - start)
        decided = time.monotonic()
        reason, why = self._explain(entry)
        return Arrival(spec.name, False, None, None, (), reason, why, len(found.candidates),
                       decided - start, time.monotonic() - decided)

    def depart(self, name: str) -> Departure:
        """Remove ``name``; the capacity it held goes to waiting queries that fit into it."""
        start = time.monotonic()
        entry = self._entry(name, "depart")
        k = self._chosen.get(name)
        if k is not None:
            self._release(name)
        del self._entries[name]
        self._mover_memo.pop(name, None)
        self._links.forget(name)
        self._selection = None
        admitted = () if k is None else self._refill(set(entry.options[k].usage))
        return Departure(name, k is not None, admitted, time.monotonic() - start)

    def set_capacity(self, *, device: str | None = None, units: float | None = None,
                     memory_gb: float | None = None, link: str | None = None,
                     mbps: float | None = None) -> CapacityChange:
        """Resize a device (``device=..., units=... and/or memory_gb=...``) or set a link's
        capacity (``link="src->dst", mbps=...``; ``mbps=None`` lifts the limit)."""
        if (device is None) == (link is None):
            raise SpecError("set_capacity: name either one device=... or one link='src->dst'")
        if device is not None:
            if mbps is not None:
                raise SpecError("set_capacity: mbps= is for links; give a device units= or "
                                "memory_gb=")
            world, what = resize_device(self._topology, device, units=units, memory_gb=memory_gb)
        else:
            assert link is not None
            if units is not None or memory_gb is not None:
                raise SpecError("set_capacity: units= and memory_gb= are for devices; give a "
                                "link mbps=")
            world, what = set_link_capacity(self._topology, link, mbps)
        return self._change(world, what)

    def add_device(self, device: Device | Mapping[str, Any]) -> CapacityChange:
        """Add a device; waiting queries that can reach it are searched again."""
        world, dev, what = add_device(self._topology, device)
        reach = [n for n in self.waiting
                 if any(self._index.reachable(site, dev.site)
                        for site in self._entries[n].query.sources.values())]
        return self._change(world, what, research=reach)

    def remove_device(self, name: str) -> CapacityChange:
        """Remove a device; the queries it served are re-planned elsewhere if they fit."""
        world, what = remove_device(self._topology, name)
        return self._change(world, what, removed=name)

    def rebalance(self, *, keep_admitted: bool = True,
                  time_limit_s: float | None = None) -> Rebalance:
        """Re-select over every present query's candidates with the global selector.

        Args:
            keep_admitted: no admitted query may lose its place (plans may still change).
            time_limit_s: the selector's budget (default: the settings').
        """
        start = time.monotonic()
        names = list(self._entries)
        weights = [self._entries[n].query.weight for n in names]
        boost = sum(weights) + max(weights, default=0.0) if keep_admitted else 0.0
        settings = self.settings if time_limit_s is None else self.settings.model_copy(
            update={"time_limit_s": time_limit_s})
        problem, sel, checked = self._select(
            names, [w + boost * (n in self._chosen) for n, w in zip(names, weights, strict=True)],
            settings)
        before = {n: self._entries[n].found.candidates[k].plan for n, k in self._chosen.items()}
        old_goodput, old_cost = self._totals(self._chosen.items())
        new = {n: k for n, k in zip(names, sel.chosen, strict=True) if k is not None}
        goodput = sum(self._entries[n].query.weight for n in new)
        cost = sum(qc.candidates[k].estimate.cost_per_hour
                   for qc, k in zip(problem.candidates, sel.chosen, strict=True) if k is not None)
        accepted = goodput > old_goodput + EPS or (
            abs(goodput - old_goodput) <= EPS and cost < old_cost - EPS)
        if accepted:
            for n in list(self._chosen):
                self._release(n)
            self._take(names, problem, checked)
            for n, k in new.items():
                self._admit(n, k)
            self._selection, self._check = (None, None) if keep_admitted else (sel, checked)
        moved, admitted, evicted = self._diff(before)
        return Rebalance(accepted, old_goodput, goodput, old_cost, cost, moved, admitted,
                         evicted, sel.status, time.monotonic() - start)

    # -- results -----------------------------------------------------------------------------

    def result(self, *, why_not: bool | None = None) -> PlanResult:
        """The state as the batch planner's :class:`~circinus.planner.PlanResult` (present
        queries in arrival order; ``why_not`` defaults to the planner's setting). The selection
        is the selector's own answer while nothing has changed since it, else ``greedy``."""
        names = list(self._entries)
        problem = self._problem(names, [self._entries[n].query.weight for n in names])
        chosen = tuple(self._chosen.get(n) for n in names)
        selection = self._selection
        if selection is None or selection.chosen != chosen:
            goodput, cost = self._totals(self._chosen.items())
            bound = sum(w for qc, w in zip(problem.candidates, problem.weights, strict=True)
                        if qc.candidates)
            selection = Selection(chosen, goodput, cost, bound,
                                  (bound - goodput) / bound if bound > EPS else 0.0, 0.0,
                                  "greedy", 0.0)
        used = selection.used(problem)
        checked = self._check if selection is self._selection else None
        ceilings = {} if checked is None else dict(checked.ceilings)
        if checked is not None:  # the capacities the selection was kept within
            problem = replace(problem, capacity=checked.usable(problem.capacity))
        outcomes: list[QueryOutcome] = []
        for name, qc, k in zip(names, problem.candidates, chosen, strict=True):
            if k is None:
                reason = qc.reason or self._links.reason(name) or capacity_reason(
                    problem, used, len(outcomes), ceilings)
                outcomes.append(QueryOutcome(name, False, None, None, reason,
                                             len(qc.candidates), qc.evaluations))
            else:
                c = qc.candidates[k]
                outcomes.append(QueryOutcome(name, True, c.plan, c.estimate, None,
                                             len(qc.candidates), qc.evaluations))
        t0 = time.monotonic()
        explained = explain_rejections(
            self._explainer, [self._entries[n].query for n in names], problem, outcomes, used,
            nearest=self.why_not if why_not is None else why_not,
            emptied=self._links.blocked())
        return PlanResult(
            world=self._topology.name, outcomes=explained, selection=selection,
            resources=self._resources(used), search_seconds=self._seconds["search"],
            select_seconds=self._seconds["select"],
            kernel_evaluations=(self._kernels + self._search.estimator.kernel_evaluations
                                + self._links.kernel_evaluations),
            why_not_seconds=time.monotonic() - t0, link_check=checked)

    def plan_file(self, *, why_not: bool | None = None) -> PlanFile:
        """The documented plan file of :meth:`result` (``docs/plan-format.md``)."""
        return to_plan_file(self.index(), self.result(why_not=why_not))

    # -- admission ---------------------------------------------------------------------------

    def _admit_first(self, entry: _Entry) -> int | None:
        """Admit ``entry`` with its cheapest candidate (they are sorted by cost) that fits what
        is left and passes the link check (:mod:`~circinus.online.links`); the candidate's
        index, or ``None`` (then the query waits)."""
        name = entry.query.name
        if entry.options:
            self._links.forget(name)  # blamed only by its latest try
        for opt in entry.options:
            if not self._ledger.fits(opt.usage):
                continue
            self._admit(name, opt.index)
            if self._links_hold(opt.usage):
                return opt.index
            self._links.blame(name, self._ledger, opt.usage)
            self._release(name)
        return None

    def _admit_repaired(self, entry: _Entry) -> tuple[int, tuple[str, ...]] | None:
        """Admit ``entry`` after a local repair, if one makes room and passes the link check:
        its candidate's index and the moved queries; else ``None`` with nothing changed."""
        fixed = self._repair_for(entry)
        if fixed is None:
            return None
        k, moves = fixed
        name = entry.query.name
        undo = [(n, self._chosen[n]) for n, _ in moves]
        moved = self._apply(moves)
        self._admit(name, k)
        touched = dict(entry.options[k].usage)
        for n, j in moves:
            touched.update(self._entries[n].options[j].usage)
        if self._links_hold(touched):
            return k, moved
        self._release(name)
        self._apply(undo)
        return None

    def _admit(self, name: str, k: int) -> None:
        self._ledger.add(name, self._entries[name].options[k].usage)
        self._chosen[name] = k
        self._links.forget(name)

    def _release(self, name: str) -> None:
        k = self._chosen.pop(name)
        self._ledger.remove(name, self._entries[name].options[k].usage)

    def _apply(self, moves: Sequence[tuple[str, int]]) -> tuple[str, ...]:
        for name, k in moves:
            self._release(name)
            self._admit(name, k)
        return tuple(name for name, _ in moves)

    def _repair_for(self, entry: _Entry) -> tuple[int, list[tuple[str, int]]] | None:
        """A candidate of ``entry`` and the moves that make room for it, or ``None``."""
        cap, used = self._ledger.capacity, self._ledger.used
        for opt in entry.options:
            if any(v > cap[r] + EPS for r, v in opt.usage.items() if r in cap):
                continue  # larger than the resource itself (after a cut)
            short = [r for r, v in opt.usage.items()
                     if r in cap and used.get(r, 0.0) + v > cap[r] + EPS]
            moves = repair(opt.usage, cap, used, self._movers(short), max_moves=self.max_moves)
            if moves:
                return opt.index, moves
        return None

    def _movers(self, resources: Iterable[Resource]) -> list[Mover]:
        """The admitted holders of ``resources`` that have other candidates (memoised per
        query and current candidate: a mover's moves change only when it moves)."""
        names = dict.fromkeys(n for r in resources for n in self._ledger.holders(r))
        out = []
        for name in names:
            k = self._chosen[name]
            memo = self._mover_memo.get(name)
            if memo is None or memo[0] != k:
                memo = self._mover_memo[name] = (k, Mover.of(name, self._entries[name].options, k))
            if memo[1].moves:
                out.append(memo[1])
        return out

    def _refill(self, freed: set[Resource] | None) -> tuple[str, ...]:
        """Admit waiting queries that now fit, heaviest first (ties: arrival order); with
        ``freed``, only those with a candidate using one of those resources."""
        waiting = [e for n, e in self._entries.items() if n not in self._chosen and e.options]
        if freed is not None:
            waiting = [e for e in waiting if any(r in freed for o in e.options for r in o.usage)]
        waiting.sort(key=lambda e: -e.query.weight)
        return tuple(e.query.name for e in waiting if self._admit_first(e) is not None)

    # -- capacity changes --------------------------------------------------------------------

    def _change(self, world: World, what: str, *, removed: str | None = None,
                research: Sequence[str] = ()) -> CapacityChange:
        """Apply a new topology: rebuild, re-plan what lost its place, relieve overload."""
        start = time.monotonic()
        try:
            index = build_index(world)
        except SpecError as exc:
            raise SpecError(f"{what}: {exc}") from None
        before = {n: self._entries[n].found.candidates[k].plan for n, k in self._chosen.items()}
        self._topology = world
        self._rebuild(index)
        self._selection = None
        displaced: list[str] = []
        if removed is not None:
            displaced, emptied = self._drop_device(removed)
            research = [*research, *emptied]
        self._research(research)
        self._relieve()
        self._enforce_links()
        for name in sorted(displaced, key=lambda n: -self._entries[n].query.weight):
            entry = self._entries[name]
            if self._admit_first(entry) is None and entry.options and self.max_moves:
                self._admit_repaired(entry)
        self._refill(None)
        moved, admitted, evicted = self._diff(before)
        return CapacityChange(what, moved, evicted, admitted, tuple(research),
                              time.monotonic() - start)

    def _drop_device(self, device: str) -> tuple[list[str], list[str]]:
        """Drop every candidate using ``device``; returns the admitted queries that ran on it
        (released) and the queries left without candidates."""
        res = ("device", device)
        displaced, emptied = [], []
        for name, entry in list(self._entries.items()):
            keep = [o.index for o in entry.options if res not in o.usage]
            if len(keep) == len(entry.options):
                continue
            k = self._chosen.get(name)
            if k is not None:
                self._release(name)
            found = entry.found
            reason = found.reason or f"placement: its every plan used the removed device {device}"
            self._mover_memo.pop(name, None)
            self._entries[name] = _Entry.of(entry.query, QueryCandidates(
                found.query, tuple(found.candidates[j] for j in keep),
                None if keep else reason, found.evaluations))
            if k is not None and k in keep:
                self._admit(name, keep.index(k))
            elif k is not None:
                displaced.append(name)
            if not keep:
                emptied.append(name)
        return displaced, emptied

    def _research(self, names: Sequence[str]) -> None:
        """Search ``names`` (none admitted) again in the current world."""
        if not names:
            return
        assert not any(n in self._chosen for n in names)
        specs = [self._entries[n].query for n in names]
        for spec, found in zip(specs, self._timed_search(specs), strict=True):
            self._mover_memo.pop(spec.name, None)
            self._entries[spec.name] = _Entry.of(spec, found)

    def _relieve(self) -> None:
        """Bring every resource back within its capacity (see module note)."""
        over = self._ledger.over()
        if not over:
            return
        movers = self._movers(over)
        moves = repair({}, self._ledger.capacity, self._ledger.used, movers,
                       max_moves=max(self.max_moves, len(movers)))
        if moves is not None:
            self._apply(moves)
            return
        names = list(dict.fromkeys(n for r in over for n in self._ledger.holders(r)))
        for n in names:
            self._release(n)
        left = {r: max(0.0, c - self._ledger.used.get(r, 0.0))
                for r, c in self._ledger.capacity.items()}
        problem = SelectionProblem(tuple(self._entries[n].found for n in names),
                                   tuple(self._entries[n].query.weight for n in names), left)
        t0 = time.monotonic()
        sel = SELECTORS[self.selector_key]().select(problem,
                                                    time_limit_s=self.settings.time_limit_s)
        self._seconds["select"] += time.monotonic() - t0
        assert sel.fits(problem), "selector returned a selection over capacity"
        for n, k in zip(names, sel.chosen, strict=True):
            if k is not None:
                self._admit(n, k)

    # -- helpers -----------------------------------------------------------------------------

    def _start(self, queries: Sequence[Query]) -> None:
        """Plan the initial queries as the batch planner does."""
        for found, spec in zip(self._timed_search(queries), queries, strict=True):
            self._entries[spec.name] = _Entry.of(spec, found)
        names = list(self._entries)
        problem, sel, checked = self._select(names, [q.weight for q in queries], self.settings)
        self._take(names, problem, checked)
        for name, k in zip(names, sel.chosen, strict=True):
            if k is not None:
                self._admit(name, k)
        self._selection, self._check = sel, checked
        self._movers(self._ledger.capacity)  # build every mover once now, not on an arrival

    def _select(self, names: Sequence[str], weights: Sequence[float], settings: PlannerSettings
                ) -> tuple[SelectionProblem, Selection, LinkCheck | None]:
        """The global selector over ``names``' candidates, then the batch planner's link check
        (:func:`circinus.planner.select_checked`); the state is not changed."""
        t0 = time.monotonic()
        problem, sel, checked, _ = select_checked(
            self._estimator_now(), [self._entries[n].query for n in names],
            self._problem(names, weights), SELECTORS[self.selector_key](), settings)
        self._seconds["select"] += time.monotonic() - t0
        if checked is not None:
            self._kernels += checked.kernel_evaluations
        return problem, sel, checked

    def _take(self, names: Sequence[str], problem: SelectionProblem,
              checked: LinkCheck | None) -> None:
        """Give ``names`` (none admitted) the candidates of ``problem`` (after a link check)."""
        for name, qc in zip(names, problem.candidates, strict=True):
            self._entries[name] = _Entry.of(self._entries[name].query, qc)
            self._mover_memo.pop(name, None)
            self._links.forget(name)
        if checked is not None:
            loads = dict(checked.loads)
            for query, link in checked.emptied:
                self._links.blame_link(query, link, loads[link])

    # -- link contention ---------------------------------------------------------------------

    def _links_hold(self, usage: Mapping[Resource, float]) -> bool:
        """The link check of an admission just booked: whether every admitted plan on the
        shared links of ``usage`` still meets its SLO (if so, their estimates become the
        contended ones)."""
        if not self._links.enabled:
            return True
        meet, miss = self._links.contended(self._estimator_now(), self._ledger,
                                           shared_links(self._ledger, usage), self._running)
        if miss:
            return False
        for name, est in meet.items():
            self._set_estimate(name, est)
        return True

    def _enforce_links(self) -> None:
        """After a capacity change: drop every admitted plan that misses its SLO at the links'
        utilisation (which only lowers the loads) and give the others their contended
        estimates."""
        if not self._links.enabled:
            return
        links = [r for r in self._ledger.capacity if r[0] == "link"]
        meet, miss = self._links.contended(self._estimator_now(), self._ledger, links,
                                           self._running)
        for name in miss:
            usage = self._entries[name].options[self._chosen[name]].usage
            self._links.blame(name, self._ledger, usage)
            self._release(name)
        for name, est in meet.items():
            self._set_estimate(name, est)

    def _running(self, name: str) -> tuple[Query, Candidate]:
        entry = self._entries[name]
        return entry.query, entry.found.candidates[self._chosen[name]]

    def _set_estimate(self, name: str, estimate: Estimate) -> None:
        """Record ``estimate`` for the plan admitted ``name`` runs (same plan and use)."""
        entry, k = self._entries[name], self._chosen[name]
        cands = list(entry.found.candidates)
        cands[k] = Candidate(cands[k].plan, estimate)
        self._entries[name] = replace(entry, found=replace(entry.found, candidates=tuple(cands)))

    def _estimator_now(self) -> AnalyticEstimator:
        assert self._estimator is not None
        return self._estimator

    def _rebuild(self, index: WorldIndex) -> None:
        """Search, estimator and explainer for a new topology (their caches start empty)."""
        if self._estimator is not None:
            self._kernels += self._estimator.kernel_evaluations
        self._index = index
        self._estimator = estimator = AnalyticEstimator(index=index)
        self._search = SEARCHES[self.search_key](estimator=estimator, settings=self.settings)
        self._explainer = NearestSlo(search=self._search)
        self._ledger.capacity = dict(index.capacities)

    def _timed_search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        t0 = time.monotonic()
        found = self._search.search(queries)
        self._seconds["search"] += time.monotonic() - t0
        return found

    def _validate(self, query: Query | Mapping[str, Any]) -> Query:
        spec = query if isinstance(query, Query) else _validated(Query, query, "arrive")
        if spec.name in self._entries:
            raise SpecError(f"arrive: a query named {spec.name!r} is already planned; depart it "
                            "first or choose another name")
        try:
            build_index(self._topology.model_copy(update={"queries": [spec]}))
        except SpecError as exc:
            raise SpecError(f"arrive: {exc}") from None
        return spec

    def _entry(self, name: str, what: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownNameError(f"{what}: no query {name!r} is present; see .queries for "
                                   "the present ones")
        return entry

    def _explain(self, entry: _Entry) -> tuple[str, WhyNot]:
        """Reason and why-not of a waiting query, against the current load."""
        t0 = time.monotonic()
        found = entry.found
        capacity, used = self._ledger.capacity, self._ledger.used
        reason = found.reason or self._links.reason(entry.query.name) or capacity_reason(
            SelectionProblem((found,), (entry.query.weight,), capacity), used, 0)
        link = self._links.blocked().get(entry.query.name)
        why = WhyNot("capacity", ("link", link), None) if link else self._explainer.explain(
            entry.query, found, reason, capacity=capacity, used=used, nearest=self.why_not)
        self._seconds["why_not"] += time.monotonic() - t0
        return reason, why

    def _problem(self, names: Sequence[str], weights: Sequence[float]) -> SelectionProblem:
        return SelectionProblem(tuple(self._entries[n].found for n in names), tuple(weights),
                                dict(self._ledger.capacity))

    def _totals(self, chosen: Iterable[tuple[str, int]]) -> tuple[float, float]:
        """Goodput and cost of admitting ``(name, candidate)`` pairs."""
        goodput = cost = 0.0
        for n, k in chosen:
            goodput += self._entries[n].query.weight
            cost += self._entries[n].options[k].cost
        return goodput, cost

    def _diff(self, before: Mapping[str, QueryPlan]
              ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """(moved, admitted, evicted) since ``before`` (plans of the then admitted queries)."""
        now = {n: self._entries[n].found.candidates[k].plan for n, k in self._chosen.items()}
        moved = tuple(n for n in self._entries if n in now and n in before and now[n] != before[n])
        admitted = tuple(n for n in self._entries if n in now and n not in before)
        evicted = tuple(n for n in self._entries if n in before and n not in now)
        return moved, admitted, evicted

    def _resources(self, used: Mapping[Resource, float]) -> tuple[ResourceUse, ...]:
        """Use against capacity of every device, memory and link, as the batch planner lists
        them."""
        index = self._index
        out = [ResourceUse("device", d.name, used.get(("device", d.name), 0.0), d.units)
               for d in index.world.devices]
        out += [ResourceUse("memory", d.name, used.get(("memory", d.name), 0.0), d.memory_gb)
                for d in index.world.devices if d.memory_gb is not None]
        out += [ResourceUse("link", f"{s}->{t}", used.get(("link", f"{s}->{t}"), 0.0),
                            ln.capacity_mbps) for (s, t), ln in sorted(index.links.items())]
        return tuple(out)
