"""What the admitted plans use of every constrained resource, in whole replicas per shared
deployment, and who holds it.

NOTE: the arithmetic is the selection's own (:class:`circinus.select.deployments.Ledger`): a
plan uses its own resources (dedicated replicas, links) and puts a load on each shared
deployment it joins, and a deployment carrying load ``L`` at level ``l`` has ``ceil(L / l)``
whole replicas (and at least the fewest its queries' estimates assume), each taking its units
and memory and costing its price. So a plan's *marginal*
use (:meth:`Ledger.delta`) is its own use plus the replicas its load adds: nothing when it fits
in the headroom that rounding up left; and when it leaves, each of its deployments shrinks to
the replicas the rest of their load needs. Without shared deployments every plan's marginal use
is its own use and the sums are plain sums.

The selection's ledger indexes candidates by position in a :class:`~circinus.select.base.
SelectionProblem`. Here queries come and go, so each present query's candidate set gets a
*slot* in a problem that only grows; a query's slot is replaced when its candidates change
while it waits, and the slots of queries gone are dropped by rebuilding the ledger once they
outnumber the present ones (which also sums the use afresh). On top, the ledger keeps who holds
each resource: a plan holds its own rows and, per deployment it joins, the deployment
(``("deployment", name)``) and its device's units and memory.

A plan *fits* when, for every constrained resource its marginal use grows,
``used + change <= capacity + EPS``.

Example: a deployment of level 0.8 with load 1.0 has 2 replicas (1.25 rounded up); a plan with
load 0.5 on it adds none (1.5 / 0.8 = 1.875 still rounds up to 2), one with load 0.7 a third
(2.125).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

from circinus.estimate.analytic import DeploymentState
from circinus.estimate.base import EPS
from circinus.search.base import QueryCandidates
from circinus.select.base import SelectionProblem
from circinus.select.deployments import DeploymentSpec
from circinus.select.deployments import Ledger as Book
from circinus.select.sizing import states

Resource = tuple[str, str]
"""``("device", name)``, ``("memory", device)``, ``("link", "src->dst")``, and
``("deployment", resource name)`` for a shared deployment's tenants."""

MIN_COMPACT = 64
"""Slots of queries gone kept at least before the ledger is rebuilt without them (it is rebuilt
once they outnumber the present queries, or as soon as nothing is admitted)."""


class Ledger:
    """Capacities, the exact use and cost of the admitted plans, and the holders of each
    resource (see the module note).

    Queries are known by name: :meth:`enter` gives a query's candidates a slot (before
    :meth:`delta`, :meth:`fits` or :meth:`add` name them) and :meth:`leave` forgets it.
    ``capacity`` may be replaced; the deployments table only grows (:meth:`grow`) until
    :meth:`prune`.
    """

    def __init__(self, capacity: Mapping[Resource, float]) -> None:
        self._table: dict[str, DeploymentSpec] = {}
        self._slot: dict[str, int] = {}
        self._holders: dict[Resource, dict[str, None]] = {}
        self._book = Book(SelectionProblem((), (), dict(capacity), self._table))

    @property
    def capacity(self) -> dict[Resource, float]:
        """Every constrained resource and its capacity (read-only; assign a new mapping to
        change them)."""
        return self._book.problem.capacity

    @capacity.setter
    def capacity(self, capacity: Mapping[Resource, float]) -> None:
        self._book.problem = replace(self._book.problem, capacity=dict(capacity))

    @property
    def book(self) -> Book:
        """The selection's ledger this one keeps, over a problem whose candidates include
        those of queries gone (read-only: for asking what a plan would take, as
        :class:`~circinus.whynot.Residual` does)."""
        return self._book

    # -- candidates and deployments ----------------------------------------------------------

    @property
    def table(self) -> Mapping[str, DeploymentSpec]:
        """Every shared deployment a known candidate joins, by resource name."""
        return self._table

    def grow(self, specs: Mapping[str, DeploymentSpec]) -> None:
        """Add the deployments of ``specs`` not yet known (a known one keeps its spec)."""
        for name, spec in specs.items():
            self._table.setdefault(name, spec)

    def prune(self, device: str) -> None:
        """Forget the deployments on ``device`` (removed; none may be loaded, and no present
        query's candidates may join them)."""
        for name in [n for n, s in self._table.items() if s.key.device == device]:
            assert not self._book.replicas.get(name), name
            del self._table[name]
        self._rebuild()

    def enter(self, found: Iterable[QueryCandidates]) -> None:
        """Give each query of ``found`` (none admitted) a slot holding these candidates; their
        deployments must be in the table."""
        fresh = list(found)
        if not fresh:
            return
        assert not any(self._slot.get(qc.query) in self._book.chosen for qc in fresh)
        problem = self._book.problem
        base = len(problem.candidates)
        for i, qc in enumerate(fresh):
            self._slot[qc.query] = base + i
        self._book.problem = replace(
            problem, candidates=problem.candidates + tuple(fresh),
            weights=problem.weights + (1.0,) * len(fresh))
        if not self._book.chosen and self._dead() > MIN_COMPACT:
            self._rebuild()  # nothing to book again: as cheap as it gets

    def leave(self, name: str) -> None:
        """Forget query ``name`` (not admitted)."""
        assert self._slot[name] not in self._book.chosen, name
        del self._slot[name]
        if self._dead() > max(MIN_COMPACT, len(self._slot)):
            self._rebuild()

    def _dead(self) -> int:
        """Slots of queries gone or of candidates replaced."""
        return len(self._book.problem.candidates) - len(self._slot)

    def _rebuild(self) -> None:
        """The ledger of the same choices over the present queries' slots only."""
        old, slots = self._book, self._slot
        names = list(slots)
        self._slot = {name: i for i, name in enumerate(names)}
        self._book = Book(SelectionProblem(
            tuple(old.problem.candidates[slots[n]] for n in names), (1.0,) * len(names),
            old.problem.capacity, self._table))
        for name in names:
            k = old.chosen.get(slots[name])
            if k is not None:
                self._book.add(self._slot[name], k)

    # -- looking ahead -----------------------------------------------------------------------

    def delta(self, name: str, k: int, sign: int = 1) -> tuple[dict[Resource, float], float]:
        """The change of use of every row and of cost if candidate ``k`` of ``name`` is added
        (``sign=1``) or taken off (``-1``)."""
        return self._book.delta(self._slot[name], k, sign)

    def fits(self, name: str, k: int) -> bool:
        """Whether candidate ``k`` of ``name`` can be added within every capacity."""
        return self.marginal(name, k) is not None

    def marginal(self, name: str, k: int) -> float | None:
        """What adding candidate ``k`` of ``name`` would add to the cost, $/h, if it fits
        within every capacity; ``None`` if it does not."""
        cost, over = self.trial(name, k)
        return None if over else cost

    def trial(self, name: str, k: int) -> tuple[float, tuple[Resource, ...]]:
        """What adding candidate ``k`` of ``name`` would add to the cost, $/h, and the
        capacities it would overflow (none when it fits)."""
        cap, used = self.capacity, self._book.used
        change, cost = self._book.delta(self._slot[name], k)
        return cost, tuple(r for r, v in change.items()
                           if v > 0 and r in cap and used.get(r, 0.0) + v > cap[r] + EPS)

    # -- booking -----------------------------------------------------------------------------

    def add(self, name: str, k: int) -> None:
        """Admit ``name`` with its candidate ``k`` (no capacity check)."""
        q = self._slot[name]
        self._book.add(q, k)
        for r in self._rows(q, k):
            self._holders.setdefault(r, {})[name] = None

    def remove(self, name: str) -> int:
        """Take off what ``name`` booked; returns its candidate's index."""
        q = self._slot[name]
        k = self._book.chosen[q]
        self._book.remove(q)
        for r in self._rows(q, k):
            holders = self._holders[r]
            del holders[name]
            if not holders:
                del self._holders[r]
        return k

    def _rows(self, q: int, k: int) -> dict[Resource, None]:
        """The rows candidate ``k`` of slot ``q`` holds (module note), each once."""
        rows = list(self._book.own(q, k)[0])
        est = self._book.problem.candidates[q].candidates[k].estimate
        for name, _ in est.deployment_load:
            spec = self._table[name]
            rows += [("deployment", name), ("device", spec.key.device)]
            if spec.memory_gb > 0:
                rows.append(("memory", spec.key.device))
        return dict.fromkeys(rows)

    # -- views -------------------------------------------------------------------------------

    @property
    def used(self) -> dict[Resource, float]:
        """What the admitted plans use of every row they hold (a copy; a rounding residue
        of the running sums below 0 reads 0)."""
        return {r: max(v, 0.0) for r, v in self._book.used.items() if r in self._holders}

    def deployments(self, name: str) -> tuple[str, ...]:
        """The shared deployments the admitted query ``name`` joins."""
        q = self._slot[name]
        est = self._book.problem.candidates[q].candidates[self._book.chosen[q]].estimate
        return tuple(d for d, _ in est.deployment_load)

    def holders(self, resource: Resource) -> Iterator[str]:
        """The admitted queries holding ``resource`` (a shared deployment's tenants for
        ``("deployment", name)``), in the order they took it."""
        return iter(self._holders.get(resource, {}))

    def over(self) -> list[Resource]:
        """The resources used beyond their capacity (after a capacity cut), sorted."""
        used = self._book.used
        return sorted(r for r, cap in self.capacity.items() if used.get(r, 0.0) > cap + EPS)

    @property
    def cost(self) -> float:
        """Cost of the admitted plans with whole replicas, $/h."""
        return self._book.cost

    def replicas(self) -> dict[str, int]:
        """Replicas of every loaded shared deployment (a copy)."""
        return {d: n for d, n in self._book.replicas.items() if n}

    def states(self) -> dict[str, DeploymentState]:
        """The state of every loaded shared deployment
        (:func:`circinus.select.sizing.states`)."""
        return states(self._book)
