"""Planning queries one at a time in arrival order, each against the capacity left.

NOTE: planners without a global view (Vulcan, JellyBean per workflow) plan a query when it
arrives, on what the queries before it left: a plan that does not fit the capacity left is no
plan. :class:`ArrivalOrderSearch` runs a per-query planner that way. Queries are taken in the
order they are listed (their arrival order); each is planned against a :class:`Room`, what the
plans chosen for the earlier queries leave of every device, memory and link capacity; the
planner's choice is the query's only candidate and its use is taken from the room, so a
first-come-first-served selection (``fcfs``) admits exactly these choices. A query whose
planner finds no plan fitting the room gets no candidate and a ``capacity:`` reason when some
plan it tried met its SLO on the empty world (or, when it placed nothing on the room, some plan
it would place on the empty world does).

The room counts what the selection will count: each plan's dedicated replicas and links, and
for every shared deployment the whole replicas its load needs (at least each member's floor),
so a plan fits the room iff the selection's exact ledger
(:class:`~circinus.select.deployments.Ledger`) with it fits; a plan joining a deployment with
headroom takes nothing more of its device.

With ``online = False`` the same planner sees every query alone against the empty world and
hands its ranked plans to a global selector (the ``+select`` variants of the bench): the
comparison then isolates the per-query search from the admission policy.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from circinus.baselines.space import PerQuerySearch
from circinus.estimate.base import EPS, Estimate
from circinus.plan.records import QueryPlan
from circinus.search.base import Candidate, QueryCandidates
from circinus.search.shortlist import Evaluated, admissible, shortlist
from circinus.select.deployments import deployment_table, own_use, replicas
from circinus.spec.index import WorldIndex
from circinus.spec.models import Query

Resource = tuple[str, str]
"""``("device", name)``, ``("memory", device)`` or ``("link", "src->dst")``."""


class Room:
    """What the plans taken so far leave of every capacity (see the module note).

    Mutable: :meth:`take` records a plan; the other methods only read. A plan's use is
    :meth:`need`: its dedicated replicas and links, plus the whole replicas each shared
    deployment it joins must grow by.
    """

    def __init__(self, index: WorldIndex) -> None:
        self.index = index
        self.capacity: dict[Resource, float] = dict(index.capacities)
        self.used: dict[Resource, float] = {}
        self.load: dict[str, float] = {}
        """Per shared deployment, the load (busy replicas) of the plans taken."""
        self.replicas: dict[str, int] = {}
        self.floor: dict[str, int] = {}
        self.shares: dict[Resource, float] = {}
        """Per row, the use of the plans taken counting their shares of shared deployments
        (``load / level`` replicas' worth): what is left of a device counting the headroom
        of its deployments as free."""

    def copy(self) -> Room:
        """An independent room with what this one has taken (the world shared)."""
        other = Room.__new__(Room)
        other.index, other.capacity = self.index, self.capacity
        other.used, other.load = dict(self.used), dict(self.load)
        other.replicas, other.floor = dict(self.replicas), dict(self.floor)
        other.shares = dict(self.shares)
        return other

    def need(self, query: Query, plan: QueryPlan, estimate: Estimate
             ) -> dict[Resource, float]:
        """What taking the plan adds to every row: e.g. a plan putting load 0.5 on a level-0.8
        deployment carrying 0.3 on 1 replica needs ``ceil(0.8 / 0.8) - 1 = 0`` more replicas
        there, one putting 0.6 needs one more (its units and memory)."""
        table = deployment_table(self.index, [plan], [query.pipeline])
        rows, _ = own_use(estimate, table)
        floors = dict(estimate.deployment_floor)
        for name, load in estimate.deployment_load:
            spec = table[name]
            now = self.replicas.get(name, 0)
            after = max(replicas(self.load.get(name, 0.0) + load, spec.level),
                        self.floor.get(name, 0), floors.get(name, 1))
            if after > now:
                dev = spec.key.device
                rows["device", dev] = rows.get(("device", dev), 0.0) + (after - now) * spec.units
                if spec.memory_gb > 0:
                    rows["memory", dev] = (rows.get(("memory", dev), 0.0)
                                           + (after - now) * spec.memory_gb)
        return {r: v for r, v in rows.items() if r in self.capacity}

    def overfill(self, query: Query, plan: QueryPlan, estimate: Estimate) -> float:
        """Largest relative excess over what is left of a capacity, 0 when the plan fits.
        E.g. 3 units on a 4-unit device of which 2 are taken: ``(2 + 3) / 4 - 1 = 0.25``."""
        worst = 0.0
        for r, amount in self.need(query, plan, estimate).items():
            cap = self.capacity[r]
            if amount > EPS:
                total = self.used.get(r, 0.0) + amount
                worst = max(worst, total / cap - 1.0 if cap > EPS else float("inf"))
        return worst

    def fits(self, query: Query, plan: QueryPlan, estimate: Estimate) -> bool:
        """Whether the plan fits what is left (within :data:`EPS`)."""
        return all(self.used.get(r, 0.0) + amount <= self.capacity[r] + EPS
                   for r, amount in self.need(query, plan, estimate).items())

    def take(self, query: Query, plan: QueryPlan, estimate: Estimate) -> None:
        """Record the plan."""
        for r, amount in self.need(query, plan, estimate).items():
            self.used[r] = self.used.get(r, 0.0) + amount
        for r, amount in estimate.usage().items():
            if r in self.capacity:
                self.shares[r] = self.shares.get(r, 0.0) + amount
        table = deployment_table(self.index, [plan], [query.pipeline])
        floors = dict(estimate.deployment_floor)
        for name, load in estimate.deployment_load:
            self.load[name] = self.load.get(name, 0.0) + load
            self.floor[name] = max(self.floor.get(name, 0), floors.get(name, 1))
            self.replicas[name] = max(replicas(self.load[name], table[name].level),
                                      self.floor[name])


class ArrivalOrderSearch(PerQuerySearch):
    """A per-query planner run in arrival order against the capacity left (module note).

    Subclasses implement :meth:`_plan`, which returns the plans it evaluated in the order the
    planner prefers them (its choice first among the admissible ones that fit the room).
    """

    online: ClassVar[bool] = True
    """Plan against the capacity left (``fcfs``); ``False``: each query alone, for a global
    selector."""
    selector: ClassVar[str] = "fcfs"

    def search(self, queries: Sequence[Query]) -> list[QueryCandidates]:
        room = Room(self.estimator.index) if self.online else None
        out = []
        for position, query in enumerate(queries):
            qc = self._plan_one(position, query, room)
            if room is not None and qc.candidates:
                room.take(query, qc.candidates[0].plan, qc.candidates[0].estimate)
            out.append(qc)
        return out

    def _search_one(self, position: int, query: Query) -> QueryCandidates:
        return self._plan_one(position, query, None)

    def _plan_one(self, position: int, query: Query, room: Room | None) -> QueryCandidates:
        """Candidates of ``query``: with a ``room``, the first admissible plan of
        :meth:`_plan` that fits it; without, :meth:`_offline` of its plans."""
        tried, scope, unplaced = self._plan(position, query, room)
        if room is None:
            return self._offline(query, tried, scope, unplaced)
        index = self.estimator.index
        settings = self.settings
        fitting = False
        for plan, est in tried:
            if admissible(query, est, index=index, settings=settings):
                fitting = True
                if room.fits(query, plan, est):
                    return QueryCandidates(query.name, (Candidate(plan, est),), None, len(tried))
        if not tried:  # nothing placed on the room: would it be on the empty world?
            alone, _, _ = self._plan(position, query, None)
            fitting = any(admissible(query, est, index=index, settings=settings)
                          for _, est in alone)
        if fitting:
            reason = (f"capacity: none of the plans meeting its SLO ({scope}) fits what the "
                      "queries before it left")
            return QueryCandidates(query.name, (), reason, len(tried))
        return self._offline(query, tried, scope, unplaced)

    def _offline(self, query: Query, tried: Sequence[Evaluated], scope: str,
                 unplaced: str) -> QueryCandidates:
        """The shortlist of ``tried`` (:func:`~circinus.search.shortlist.shortlist`)."""
        _, best_accuracy = self._vectors.get(query.pipeline, query.slo.min_accuracy)
        return shortlist(query, tried, index=self.estimator.index, settings=self.settings,
                         best_accuracy=best_accuracy, evaluations=len(tried), scope=scope,
                         unplaced=unplaced)

    @abstractmethod
    def _plan(self, position: int, query: Query, room: Room | None
              ) -> tuple[list[Evaluated], str, str]:
        """The plans the planner evaluated for ``query`` (the ``position``-th), in its order
        of preference, with the scope of its search for reasons (e.g. ``"among the 60 plans
        tried"``) and the reason when it placed nothing."""

