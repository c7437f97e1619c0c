"""The online planner: queries arrive and leave and capacities change while plans are kept.

NOTE: the planner is a state machine over three pieces of state: every present query with its
candidate set (the output of the per-query search, kept), the candidate each admitted query
runs, and a :class:`~circinus.online.ledger.Ledger` of what the admitted plans use of every
capacity, exact in whole replicas per shared deployment (the selection's arithmetic,
:mod:`circinus.select.deployments`). Every event keeps two invariants: no capacity is exceeded,
and every admitted query runs one of its own candidates and meets its SLO at the current state:
its shared deployments as sized now and its links at their utilisation now
(:mod:`~circinus.online.guard`). Admitted queries keep their plans unless moving them admits
more, or their deployments' new state makes them miss their SLO.

* **Start.** The queries of the initial world are planned as the batch planner does (search,
  then the global selector and its checks), so ``result()`` right after the start equals
  ``Planner.plan``.
* **Arrival.** Only the newcomer is searched (the search's caches and its estimator's memo make
  this about a tenth of a second at 10,000 queries). It is admitted with its candidate of least
  *marginal* cost that fits what is left: joining a shared deployment with headroom costs only
  its own part (network, dedicated stages), one that needs more replicas pays for them. The
  admission stands if every admitted query on the deployments it joins and the shared links it
  crosses still meets its SLO at the new state; else the next candidate is tried. If none fits,
  a bounded local repair (:mod:`~circinus.online.repair`) tries to move up to ``max_moves``
  admitted queries that hold the resources it lacks to other candidates of theirs; the repair is
  taken only if the whole ledger then fits, the newcomer is admitted and the SLOs hold, so
  goodput grows and nobody is dropped. Otherwise the query waits, with a reason and its nearest
  admissible SLO.
* **Departure.** Its load is taken off (its deployments shrink to the replicas the rest needs),
  its co-tenants are estimated at their deployments' new state (one that then misses its SLO,
  e.g. now paying a larger share of a replica than its cost bound allows, is dropped and tried
  again like a waiting query), and the waiting queries that could use what was freed are tried,
  heaviest first (then in arrival order), each with its candidate of least marginal cost.
* **Capacity change** (a device resized, added or removed, a link's capacity changed). The world
  is rebuilt and the fit re-checked. Queries whose plan used a removed device, or whose candidate
  set it emptied, are searched again and re-admitted if they fit. Resources left over capacity
  are first relieved by moving their holders to other candidates (the repair rule, unbounded);
  if that fails, the selector re-selects among those holders alone, the others fixed, which may
  evict some (they wait). The admitted plans on changed deployments and shared links are checked
  again and those that miss their SLO are dropped. Waiting queries are then tried; after
  ``add_device`` the waiting ones that can reach the new device are searched again first. A
  resize keeps the candidate sets (a plan's estimate does not depend on a device's size; only
  plans larger than the old size are missing, rare with many-unit devices).
* **Rebalance** (``rebalance()``, e.g. periodically): the global selector over every present
  query's candidates, by default with every admitted query kept (their weights are raised above
  the total weight of the others). The result replaces the state only if it admits more weight,
  or as much at a lower cost.

Shared links (with the settings' ``link_check``, the default) and shared deployments: the start
and every rebalance run the batch planner's link and deployment checks on their selection
(:mod:`~circinus.online.selection`), and the queries keep the candidates that survive them; a
plan the checks leave that misses its SLO at the state the final selection brings (the
deployment check may select again at the link loads of an earlier selection) is dropped
(:func:`~circinus.online.guard.settle`; never on a selection the checks left consistent, so the
start still equals the batch planner's). Every single admission (arrival, refill, a repair's
moves, re-admission after a change) is checked at the state it brings. So ``result()`` reports
every admitted query's latency at its links' utilisation and its deployments' real state, and
its share of their whole replicas' cost. A query kept out by a link is told so (binding
resource: the link) but gets no nearest SLO: that search prices plans alone on their links.

What greedy online admission can achieve (link check off, dedicated replicas): arrivals into an
empty world with ``max_moves=0`` admit exactly what first-come-first-served selection
(``FcfsSelector``) admits in arrival order; the repair can only add to that; no order beats the
global selector over the same candidates (an optimum the MILP proves on small worlds), and
``rebalance()`` reaches it when it keeps nobody. With the check, one admission at a time and a
whole selection are checked at different loads, so the two may admit differently; with shared
deployments, an admission pays marginal costs that a whole selection shares out differently.
"""


from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from circinus.errors import SpecError, UnknownNameError
from circinus.estimate.base import EPS
from circinus.online.explain import explain_waiting
from circinus.online.ledger import Resource
from circinus.online.records import Arrival, CapacityChange, Departure, Rebalance
from circinus.online.report import result_of
from circinus.online.selection import Selected, select_present, take
from circinus.online.snapshot import QueryRecord, Snapshot
from circinus.online.state import Entry, OnlineState
from circinus.online.tools import PlanningTools
from circinus.online.world import add_device, remove_device, resize_device, set_link_capacity
from circinus.online.world import validated as _validated
from circinus.plan.file import PlanFile, to_plan_file
from circinus.planner import PlanResult
from circinus.search.base import Candidate
from circinus.spec.index import WorldIndex
from circinus.spec.models import Device, PlannerSettings, Query, World
from circinus.spec.validate import build_index
from circinus.whynot import WhyNot


class OnlinePlanner:
    """Plans queries as they come and go (see module note).

    Args:
        world: devices, links, pipelines and the queries present at the start (planned at once,
            as :class:`~circinus.planner.Planner` would).
        search: registry key of the per-query search (:data:`circinus.planner.SEARCHES`).
        selector: registry key of the selector used at the start, on ``rebalance()`` and after a
            capacity cut (:data:`circinus.planner.SELECTORS`).
        settings: planner settings overriding the world's ``planner`` section (its ``sharing``
            decides whether stages join shared deployments or get replicas of their own).
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
        if max_moves < 0:
            raise SpecError(f"max_moves must be >= 0, got {max_moves!r}")
        index = world if isinstance(world, WorldIndex) else build_index(world)
        self.settings = settings or index.world.planner
        self.max_moves, self.why_not = max_moves, why_not
        self._topology = index.world.model_copy(update={"queries": []})
        empty = build_index(self._topology)
        self._tools = PlanningTools(empty, search=search, selector=selector,
                                    settings=self.settings)
        self.search_key, self.selector_key = search, selector
        self._last: Selected | None = None
        """The selector's answer while the state is exactly it (for ``result``)."""
        self._state = OnlineState(empty, self._tools.estimator,
                                  link_check=self.settings.link_check, max_moves=max_moves)
        if index.world.queries:
            self._start(index.world.queries)

    @classmethod
    def restore(cls, topology: World, records: Sequence[QueryRecord], *,
                search: str = "circinus", selector: str = "milp",
                settings: PlannerSettings | None = None, max_moves: int = 4,
                why_not: bool = True) -> OnlinePlanner:
        """The planner whose :meth:`snapshot` gave ``topology`` and ``records`` (in arrival
        order), without searching anything: the admitted queries run the same candidates with
        the same estimates, and the ledger and deployments follow from them. The other
        arguments are the constructor's.

        Raises:
            SpecError: a record that does not fit ``topology`` (a query it cannot plan, a
                chosen index out of range, admitted plans over a capacity).
        """
        if topology.queries:
            raise SpecError("restore: the topology must have no queries; pass them as records")
        planner = cls(topology, search=search, selector=selector, settings=settings,
                      max_moves=max_moves, why_not=why_not)
        state = planner._state
        names = [r.query.name for r in records]
        if len(set(names)) != len(names):
            raise SpecError("restore: two records of one query name")
        try:
            build_index(topology.model_copy(update={"queries": [r.query for r in records]}))
        except SpecError as exc:
            raise SpecError(f"restore: {exc}") from None
        state.enter([(r.query, r.found) for r in records])
        for r in records:
            if r.chosen is None:
                continue
            if not 0 <= r.chosen < len(r.found.candidates):
                raise SpecError(f"restore: query {r.query.name!r} runs candidate {r.chosen} of "
                                f"{len(r.found.candidates)}")
            state.admit(r.query.name, r.chosen)
        if state.ledger.over():
            raise SpecError("restore: the admitted plans exceed a capacity of the topology")
        state.note_waiting()
        return planner

    def snapshot(self) -> Snapshot:
        """The state now, as records a restart rebuilds it from (:meth:`restore`)."""
        return Snapshot(self._topology, dict(self._state.entries), dict(self._state.chosen))

    # -- views -------------------------------------------------------------------------------

    @property
    def queries(self) -> tuple[str, ...]:
        """Present queries, in arrival order (the initial world's first, in its order)."""
        return tuple(self._state.entries)

    @property
    def admitted(self) -> tuple[str, ...]:
        """Admitted queries, in arrival order."""
        chosen = self._state.chosen
        return tuple(n for n in self._state.entries if n in chosen)

    @property
    def waiting(self) -> tuple[str, ...]:
        """Present queries not admitted, in arrival order."""
        chosen = self._state.chosen
        return tuple(n for n in self._state.entries if n not in chosen)

    def query(self, name: str) -> Query:
        """The spec of the present query ``name``."""
        return self._entry(name, "query").query

    @property
    def topology(self) -> WorldIndex:
        """The devices, links and pipelines now (no queries), as an index; read-only."""
        return self._tools.index

    def plan_of(self, name: str) -> Candidate | None:
        """The plan ``name`` runs with its estimate at the current state, ``None`` while it
        waits."""
        entry = self._entry(name, "plan_of")
        k = self._state.chosen.get(name)
        return None if k is None else entry.found.candidates[k]

    def why_waiting(self, name: str, *, nearest: bool = False) -> tuple[str, WhyNot]:
        """Why the waiting ``name`` waits, against the current load: its reason and why-not
        (``nearest``: with its nearest admissible SLO)."""
        entry = self._entry(name, "why_waiting")
        if name in self._state.chosen:
            raise SpecError(f"why_waiting: query {name!r} is admitted")
        return explain_waiting(self._tools, self._state, entry, nearest=nearest)

    def used(self) -> dict[Resource, float]:
        """What the admitted plans use of every resource, shared deployments in whole replicas
        (a copy)."""
        return self._state.ledger.used

    def capacity(self) -> dict[Resource, float]:
        """Every constrained resource and its capacity now (a copy)."""
        return dict(self._state.ledger.capacity)

    def deployments(self) -> dict[str, int]:
        """Replicas of every shared deployment the admitted plans join, by resource name."""
        return self._state.ledger.replicas()

    @property
    def cost_per_hour(self) -> float:
        """What the admitted plans cost, shared deployments in whole replicas, $/h."""
        return self._state.ledger.cost

    def index(self) -> WorldIndex:
        """The world now (devices and links as changed, the present queries) as an index."""
        queries = [e.query for e in self._state.entries.values()]
        return replace(self._tools.index,
                       world=self._topology.model_copy(update={"queries": queries}))

    # -- events ------------------------------------------------------------------------------

    def arrive(self, query: Query | Mapping[str, Any]) -> Arrival:
        """Search ``query`` alone and admit it if one of its candidates fits (after a repair)."""
        start = time.monotonic()
        spec = self._validate(query)
        found = self._tools.find([spec])[0]
        state = self._state
        state.enter([(spec, found)])
        entry = state.entries[spec.name]
        self._last = None
        k = state.admit_first(entry)
        moved: tuple[str, ...] = ()
        if k is None and found.candidates and self.max_moves:
            fixed = state.admit_repaired(entry)
            if fixed is not None:
                k, moved = fixed
        if k is not None:
            cand = state.entries[spec.name].found.candidates[k]
            return Arrival(spec.name, True, cand.plan, cand.estimate, moved, None, None,
                           len(found.candidates), time.monotonic() - start)
        decided = time.monotonic()
        reason, why = explain_waiting(self._tools, state, entry, nearest=self.why_not)
        return Arrival(spec.name, False, None, None, (), reason, why, len(found.candidates),
                       decided - start, time.monotonic() - decided)

    def depart(self, name: str) -> Departure:
        """Remove ``name``; its co-tenants are checked at their deployments' new state, and the
        capacity it held goes to waiting queries that fit into it."""
        start = time.monotonic()
        state = self._state
        entry = self._entry(name, "depart")
        k = state.chosen.get(name)
        before = state.ledger.used
        left = state.forget(name)
        self._last = None
        if k is None:
            return Departure(name, False, (), time.monotonic() - start)
        freed = set(entry.options[k].usage)
        dropped = dict(state.enforce(left, ()))
        for n, j in dropped.items():
            freed.update(state.entries[n].options[j].usage)
        now = state.ledger.used
        relieved = {r for r in freed if r[0] == "deployment"
                    or now.get(r, 0.0) < before.get(r, 0.0) - EPS}
        refilled = state.refill(freed, relieved)
        return Departure(
            name, True, tuple(n for n in refilled if n not in dropped),
            time.monotonic() - start,
            tuple(n for n, j in dropped.items() if state.chosen.get(n, j) != j),
            tuple(n for n in dropped if n not in state.chosen))

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
        index = self._tools.index
        reach = [n for n in self.waiting
                 if any(index.reachable(site, dev.site)
                        for site in self._state.entries[n].query.sources.values())]
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
        state = self._state
        names = list(state.entries)
        weights = [state.entries[n].query.weight for n in names]
        boost = sum(weights) + max(weights, default=0.0) if keep_admitted else 0.0
        settings = self.settings if time_limit_s is None else self.settings.model_copy(
            update={"time_limit_s": time_limit_s})
        made = select_present(
            self._tools, state, names,
            [w + boost * (n in state.chosen) for n, w in zip(names, weights, strict=True)],
            settings)
        problem, sel = made.problem, made.selection
        before = state.plans()
        old_goodput, old_cost = state.goodput(state.chosen), state.ledger.cost
        new = {n: k for n, k in zip(names, sel.chosen, strict=True) if k is not None}
        goodput, cost = state.goodput(new), problem.cost(sel.chosen)
        accepted = goodput > old_goodput + EPS or (
            abs(goodput - old_goodput) <= EPS and cost < old_cost - EPS)
        if accepted:
            for n in list(state.chosen):
                state.release(n)
            take(state, names, made)
            for n, k in new.items():
                state.admit(n, k)
            self._last = None if keep_admitted else made
            state.note_waiting()
        moved, admitted, evicted = state.diff(before)
        return Rebalance(accepted, old_goodput, goodput, old_cost, cost, moved, admitted,
                         evicted, sel.status, time.monotonic() - start)

    # -- results -----------------------------------------------------------------------------

    def result(self, *, why_not: bool | None = None) -> PlanResult:
        """The state as the batch planner's :class:`~circinus.planner.PlanResult` (present
        queries in arrival order; ``why_not`` defaults to the planner's setting). The selection
        is the selector's own answer while nothing has changed since it, else ``greedy``; the
        shared deployments are the ledger's, and each admitted query's estimate is the one at
        the current state (with its share of its deployments' replicas)."""
        return result_of(self._tools, self._state, self._topology.name, self._last,
                         nearest=self.why_not if why_not is None else why_not)

    def plan_file(self, *, why_not: bool | None = None) -> PlanFile:
        """The documented plan file of :meth:`result` (``docs/plan-format.md``)."""
        return to_plan_file(self.index(), self.result(why_not=why_not))

    # -- steps -------------------------------------------------------------------------------

    def _start(self, queries: Sequence[Query]) -> None:
        """Plan the initial queries as the batch planner does."""
        state = self._state
        for found, spec in zip(self._tools.find(queries), queries, strict=True):
            state.entries[spec.name] = Entry.of(spec, found)
        names = list(state.entries)
        made = select_present(self._tools, state, names, [q.weight for q in queries],
                              self.settings)
        take(state, names, made)
        for name, k in zip(names, made.selection.chosen, strict=True):
            if k is not None:
                state.admit(name, k)
        self._last = made
        state.movers(state.ledger.capacity)  # build every mover once now, not on an arrival
        state.note_waiting()

    def _change(self, world: World, what: str, *, removed: str | None = None,
                research: Sequence[str] = ()) -> CapacityChange:
        """Apply a new topology: rebuild, re-plan what lost its place, relieve overload, drop
        the plans that then miss their SLO (module note)."""
        start = time.monotonic()
        try:
            index = build_index(world)
        except SpecError as exc:
            raise SpecError(f"{what}: {exc}") from None
        state = self._state
        before, states = state.plans(), state.ledger.states()
        self._topology = world
        self._tools.rebuild(index)
        state.rebuild(index, self._tools.estimator)
        self._last = None
        displaced: list[str] = []
        if removed is not None:
            displaced, emptied = state.drop_device(removed)
            research = [*research, *emptied]
        self._research(research)
        state.relieve(self._tools.reselect)
        now = state.ledger.states()
        changed = [d for d in {**states, **now} if states.get(d) != now.get(d)]
        state.enforce(changed, [r for r in state.ledger.capacity if r[0] == "link"])
        for name in sorted(displaced, key=lambda n: -state.entries[n].query.weight):
            entry = state.entries[name]
            if state.admit_first(entry) is None and entry.options and self.max_moves:
                state.admit_repaired(entry)
        state.refill(None)
        moved, admitted, evicted = state.diff(before)
        return CapacityChange(what, moved, evicted, admitted, tuple(research),
                              time.monotonic() - start)

    def _research(self, names: Sequence[str]) -> None:
        """Search ``names`` (none admitted) again in the current world."""
        if not names:
            return
        assert not any(n in self._state.chosen for n in names)
        specs = [self._state.entries[n].query for n in names]
        self._state.enter(list(zip(specs, self._tools.find(specs), strict=True)))

    def _validate(self, query: Query | Mapping[str, Any]) -> Query:
        spec = query if isinstance(query, Query) else _validated(Query, query, "arrive")
        if spec.name in self._state.entries:
            raise SpecError(f"arrive: a query named {spec.name!r} is already planned; depart it "
                            "first or choose another name")
        try:
            build_index(self._topology.model_copy(update={"queries": [spec]}))
        except SpecError as exc:
            raise SpecError(f"arrive: {exc}") from None
        return spec

    def _entry(self, name: str, what: str) -> Entry:
        entry = self._state.entries.get(name)
        if entry is None:
            raise UnknownNameError(f"{what}: no query {name!r} is present; see .queries for "
                                   "the present ones")
        return entry
